// unmix sediment: provenance of detrital grains (sediment sinks fed by unknown sources).
//   unmix sediment tensor  grain tables -> sinks x features x grid tensor of kernel density estimates
//   unmix sediment run     grain tables -> tensor -> rank -> factorization -> proportions, densities, labels
#include <cmath>
#include <cstdio>
#include <sstream>

#include "common.hpp"
#include "unmix/apps/sediment_pipeline.hpp"

namespace unmix::cli {

namespace {

po::options_description input_options() {
  po::options_description d("Grains");
  d.add_options()("grains", po::value<std::string>(),
                  "tidy grain table: a CSV with a header row and columns sink, grain, then one column per feature")(
      "wide", po::value<std::vector<std::string>>()->multitoken()->composing(),
      "one CSV per feature instead: grains as rows, sinks as columns (optional header row of sink names, the same in "
      "every file); e.g. --wide sinks20_Age.csv sinks20_Th_U.csv ...")(
      "features", po::value<std::vector<std::string>>()->multitoken()->composing(),
      "names of the --wide files' features, in the same order (default: the file names without their common prefix, "
      "e.g. sinks20_Age.csv -> Age)");
  return d;
}

po::options_description kde_options() {
  po::options_description d("Densities");
  d.add_options()("grid-points", po::value<long>()->default_value(256),
                  "grid points per feature (a common grid per feature over all sinks)")(
      "margin", po::value<double>()->default_value(3.0),
      "the grid spans the feature's values plus this many bandwidths on each side")(
      "bandwidth-rule", po::value<std::string>()->default_value("median"),
      "combine the sinks' Silverman bandwidths of a feature by median, mean, min or max")(
      "bandwidth-scale", po::value<double>()->default_value(1.0), "multiply every automatic bandwidth by this")(
      "bandwidth", po::value<std::vector<std::string>>()->composing(),
      "fixed bandwidth of one feature, FEATURE=H (repeatable; overrides the rule)");
  return d;
}

sediment::GrainInput read_input(const po::variables_map& vm) {
  sediment::GrainInput in;
  if (vm.count("grains")) in.tidy = vm["grains"].as<std::string>();
  if (vm.count("wide")) in.wide = vm["wide"].as<std::vector<std::string>>();
  if (vm.count("features")) in.features = vm["features"].as<std::vector<std::string>>();
  if (in.tidy.empty() && in.wide.empty())
    throw ConfigError("no grains given: use --grains FILE (tidy table) or --wide FILE ... (one file per feature)");
  if (!in.tidy.empty() && !in.wide.empty()) throw ConfigError("give either --grains or --wide, not both");
  return in;
}

sediment::KdeOptions read_kde(const po::variables_map& vm) {
  sediment::KdeOptions k;
  const long n = vm["grid-points"].as<long>();
  if (n < 2) throw ConfigError("--grid-points must be at least 2 (got " + std::to_string(n) + ")");
  k.grid_points = static_cast<std::size_t>(n);
  k.margin = vm["margin"].as<double>();
  if (!(k.margin >= 0) || !std::isfinite(k.margin)) throw ConfigError("--margin must be 0 or more");
  k.rule = sediment::parse_bandwidth_rule(vm["bandwidth-rule"].as<std::string>());
  k.bandwidth_scale = vm["bandwidth-scale"].as<double>();
  if (!(k.bandwidth_scale > 0) || !std::isfinite(k.bandwidth_scale))
    throw ConfigError("--bandwidth-scale must be positive");
  if (vm.count("bandwidth"))
    for (const auto& s : vm["bandwidth"].as<std::vector<std::string>>()) {
      const auto eq = s.rfind('=');
      if (eq == std::string::npos || eq == 0)
        throw ConfigError("--bandwidth '" + s + "': write FEATURE=H, e.g. Age=12.5");
      char* end = nullptr;
      const std::string num = s.substr(eq + 1);
      const double h = std::strtod(num.c_str(), &end);
      if (num.empty() || *end != '\0' || !(h > 0) || !std::isfinite(h))
        throw ConfigError("--bandwidth '" + s + "': the bandwidth must be a positive number");
      k.bandwidth.emplace_back(s.substr(0, eq), h);
    }
  return k;
}

int cmd_tensor(const std::vector<std::string>& args, const Comm& world) {
  po::options_description out("Output");
  out.add_options()("out,o", po::value<std::string>()->required(),
                    "output HDF5 file: Y (sinks, features, grid), grid (features, grid), bandwidth, features, sinks")(
      "overwrite", po::bool_switch(), "replace an existing output file");
  po::options_description desc;
  desc.add(input_options()).add(kde_options()).add(out);
  Parsed p = parse("sediment tensor", "(--grains FILE | --wide FILE...) --out OUT.h5 [options]", desc, {}, args, world);
  sediment::TensorConfig cfg;
  cfg.input = read_input(p.vm);
  cfg.kde = read_kde(p.vm);
  cfg.out = p.vm["out"].as<std::string>();
  cfg.overwrite = p.vm["overwrite"].as<bool>();
  sediment::TensorSummary s = sediment::run_tensor(cfg, world);
  if (s.grains.missing > 0)
    warn(world, std::to_string(s.grains.missing) + " missing (empty or NaN) values were skipped");
  if (world.rank() == 0) {
    std::printf("tensor %zu sinks x %zu features x %zu grid points from %zu grains\n", s.tensor.I, s.tensor.J,
                s.tensor.K, s.grains.grain_count());
    for (std::size_t j = 0; j < s.tensor.J; ++j)
      std::printf("  %-12s bandwidth %.6g, grid [%.6g, %.6g]\n", s.grains.features[j].c_str(), s.tensor.bandwidth[j],
                  s.tensor.grid[j].front(), s.tensor.grid[j].back());
    std::printf("wrote %s\n", cfg.out.c_str());
    std::fflush(stdout);
  }
  return 0;
}

int cmd_run(const std::vector<std::string>& args, const Comm& world) {
  po::options_description model("Model");
  model.add_options()("rank,r", po::value<long>()->default_value(0),
                      "number of sources; 0 estimates it (factorize at ranks 1..--max-rank, pick the maximum "
                      "curvature of the relative error)")(
      "max-rank", po::value<long>()->default_value(0), "largest rank tried by the estimate (default: min(sinks, 10))")(
      "sweep-maxiter", po::value<long>()->default_value(1000),
      "iteration limit of each fit of the rank estimate (the chosen rank is refitted with --maxiter)")(
      "constraint,c", po::value<std::vector<std::string>>()->composing(),
      "constraints as A=SPEC or B=SPEC (see unmix factorize --help). Default: A=simplex_rows (proportions on the "
      "simplex), B=simplex_12slices (each source density of each feature sums to 1)")(
      "seed", po::value<unsigned long long>()->default_value(1),
      "random seed")("starts", po::value<long>()->default_value(1), "random starts per rank; the best fit is kept")(
      "grid", po::value<std::string>(), "process grid over sinks x features x grid points, e.g. 1x1x2");
  po::options_description solver("Solver");
  solver.add_options()("maxiter", po::value<long>()->default_value(5000), "iteration limit per factorization")(
      "tol", po::value<std::vector<std::string>>()->composing(),
      "stopping rule NAME=VALUE (repeatable; see unmix factorize --help). Default: rel_change=1e-5")(
      "momentum", po::value<std::string>()->default_value("on"), "block extrapolation: on or off");
  po::options_description out("Output");
  out.add_options()("out,o", po::value<std::string>()->required(),
                    "output folder: results.h5, proportions.csv, labels.csv, rank_sweep.csv (when estimated), "
                    "sources.png, proportions.png")("overwrite", po::bool_switch(),
                                                    "replace an existing output folder")(
      "plots", po::value<std::string>()->default_value("png"), "plot format: png, svg or none")(
      "proportions", po::value<std::string>()->default_value("grains"),
      "reported proportions: grains (maximum-likelihood mixture weights of each sink's grains under the learned "
      "source densities) or factor (the factorization's A); results.h5 keeps A either way");
  po::options_description desc;
  desc.add(input_options()).add(kde_options()).add(model).add(solver).add(out);
  Parsed p =
      parse("sediment run", "(--grains FILE | --wide FILE...) --out DIR [--rank R] [options]", desc, {}, args, world);
  const auto& vm = p.vm;
  sediment::RunConfig cfg;
  cfg.input = read_input(vm);
  cfg.kde = read_kde(vm);
  const long rank = vm["rank"].as<long>(), max_rank = vm["max-rank"].as<long>();
  if (rank < 0) throw ConfigError("--rank must be 0 (estimate) or a positive number of sources");
  if (max_rank < 0) throw ConfigError("--max-rank must be positive");
  cfg.rank = static_cast<std::size_t>(rank);
  cfg.max_rank = static_cast<std::size_t>(max_rank);
  cfg.factor.solver.tol = {{Stat::rel_change, 1e-5}};
  read_fit_options(vm, cfg.factor);
  const long sweep_maxiter = vm["sweep-maxiter"].as<long>();
  if (sweep_maxiter < 1) throw ConfigError("--sweep-maxiter must be at least 1");
  cfg.sweep_maxiter = static_cast<std::size_t>(sweep_maxiter);
  const std::string mom = vm["momentum"].as<std::string>();
  if (mom != "on" && mom != "off") throw ConfigError("--momentum '" + mom + "': use on or off");
  cfg.factor.solver.momentum = mom == "on";
  cfg.out_dir = vm["out"].as<std::string>();
  cfg.overwrite = vm["overwrite"].as<bool>();
  cfg.plot_format = vm["plots"].as<std::string>();
  cfg.proportions = vm["proportions"].as<std::string>();
  cfg.options_text = options_text(vm);

  sediment::RunSummary s = sediment::run(cfg, world, [&](const std::string& line) { note(world, p.quiet, line); });
  for (const auto& w : s.warnings) warn(world, w);
  if (world.rank() == 0) {
    const std::size_t R = s.fit.rank;
    std::size_t confident = 0;
    for (const auto& L : s.labels) confident += L.confidence > 1 ? 1 : 0;
    std::printf("%zu sources%s; relative error %.5f; %zu grains labelled (%zu with confidence > 1); %.3f s on %d "
                "process%s\n",
                R, s.sweep ? " (estimated)" : "", s.fit.result.stats.back().rel_error, s.labels.size(), confident,
                s.seconds_total, world.size(), world.size() > 1 ? "es" : "");
    std::printf("wrote %s\n", cfg.out_dir.c_str());
    std::fflush(stdout);
  }
  return 0;
}

} // namespace

int cmd_sediment(const std::vector<std::string>& args, const Comm& world) {
  const std::string usage = "usage: unmix sediment <tensor|run> [options]   (unmix sediment <tensor|run> --help)\n\n"
                            "  tensor  grain tables -> HDF5 tensor of kernel density estimates (sinks x features x "
                            "grid)\n"
                            "  run     grain tables -> tensor -> rank -> factorization -> source proportions, source "
                            "densities, grain labels, plots\n";
  if (args.empty() || args[0] == "--help" || args[0] == "-h") {
    if (world.rank() == 0) std::fputs(usage.c_str(), args.empty() ? stderr : stdout);
    if (args.empty()) throw ConfigError("unmix sediment needs a step: tensor or run");
    return 0;
  }
  const std::vector<std::string> rest(args.begin() + 1, args.end());
  if (args[0] == "tensor") return cmd_tensor(rest, world);
  if (args[0] == "run") return cmd_run(rest, world);
  throw ConfigError("unknown step 'sediment " + args[0] + "': use 'unmix sediment tensor' or 'unmix sediment run'");
}

} // namespace unmix::cli
