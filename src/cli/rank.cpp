// unmix rank: estimate the number of sources by sweeping candidate ranks over process groups.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <memory>
#include <sstream>

#include "common.hpp"
#include "unmix/io/hdf5.hpp"
#include "unmix/rank/pipeline.hpp"

namespace unmix::cli {

int cmd_rank(const std::vector<std::string>& args, const Comm& world) {
  po::options_description io("Input and output");
  io.add_options()("dataset,d", po::value<std::string>(), "dataset to factorize (default: the file's only dataset)")(
      "mixture-axis", po::value<int>()->default_value(0),
      "axis of the dataset (as h5py shows it) that indexes the mixtures, e.g. 2 for geodata.h5")(
      "out,o", po::value<std::string>()->required(),
      "output HDF5 file: ranks, rel_error, curvature, A_<r>, B_<r> and stats_<r> for every candidate; an SVG plot "
      "of the curve is written next to it")("overwrite", po::bool_switch(), "replace an existing output file")(
      "no-plot", po::bool_switch(), "do not write the SVG plot")(
      "no-spectrum", po::bool_switch(), "do not compute the singular values of Y(1) (ScaLAPACK) first")(
      "precision", po::value<std::string>()->default_value("double"), "store Y as float or double")(
      "memory-limit", po::value<std::string>(),
      "memory the processes of one node may use together, e.g. 64G (K, M, G, T: powers of 1024, as SLURM's "
      "--mem). Default: the job's limit (cgroup), else the node's memory. A dataset that cannot fit is refused "
      "before it is read");
  po::options_description sweep("Rank sweep");
  sweep.add_options()("ranks", po::value<std::string>()->default_value(""),
                      "candidate ranks: FIRST:LAST[:STEP] or a list 2,3,5 (default 1 to min(I, M, 12))")(
      "groups", po::value<int>()->default_value(0),
      "process groups solving candidates concurrently, each holding its own copy of Y (default: as many as "
      "candidates and memory allow)")("curvature", po::value<std::string>()->default_value("finite-differences"),
                                      "how the rank is picked from the error curve: finite-differences, splines, "
                                      "circles, breakpoints or kneedle");
  po::options_description model("Model and solver (as for factorize)");
  model.add_options()("model", po::value<std::string>()->default_value("tucker1"),
                      "tucker1 or cp (see factorize --help); with cp every candidate is a CP factorization and the "
                      "output's A_<r> and B_<r> are its factor 0 and its sources")(
      "constraint,c", po::value<std::vector<std::string>>()->composing(),
      "constraints, as A=SPEC or B=SPEC or SPEC for both (see factorize --help). Default: nonnegative")(
      "seed", po::value<unsigned long long>()->default_value(1), "random seed of every candidate's start")(
      "maxiter", po::value<long>()->default_value(1000), "iteration limit of every candidate")(
      "tol", po::value<std::vector<std::string>>()->composing(),
      "stop a candidate when a statistic reaches a tolerance, NAME=VALUE, repeatable (default stationarity=1)")(
      "max-time", po::value<double>()->default_value(0), "wall-clock limit of each candidate in seconds (0: none)")(
      "momentum", po::value<std::string>()->default_value("on"), "block extrapolation: on or off")(
      "delta", po::value<double>()->default_value(0.9999),
      "momentum safeguard delta")("subblock", po::bool_switch(), "one step constant per row of B and column of A")(
      "inner", po::value<long>()->default_value(1), "steps per block and iteration (see factorize --help)")(
      "inner-tol", po::value<double>()->default_value(0.1), "when a column/row stops its extra steps (see factorize)")(
      "block-solver", po::value<std::string>()->default_value("pg"),
      "pg, hals or bpp (exact nonnegative least squares of factors only nonnegative; see factorize --help)");
  po::options_description desc;
  desc.add(io).add(sweep).add(model);
  Parsed p = parse("rank", "IN.h5 --out OUT.h5 [--ranks 1:12] [--groups G] [options]", desc, {"input"}, args, world);
  const auto& vm = p.vm;

  RankConfig rc;
  FactorizeConfig& cfg = rc.base;
  read_common_factorize_options(vm, world, cfg);
  rc.ranks = vm["ranks"].as<std::string>();
  rc.groups = vm["groups"].as<int>();
  rc.curvature = vm["curvature"].as<std::string>();
  rc.plot = !vm["no-plot"].as<bool>();
  rc.spectrum = !vm["no-spectrum"].as<bool>();
  cfg.options_text = options_text(vm);

  // Progress, from the first process of each group (groups run concurrently, so lines, not a bar): a line
  // when a candidate finishes, and one every 10 s of a long solve.
  if (!p.quiet) {
    auto last = std::make_shared<std::chrono::steady_clock::time_point>(std::chrono::steady_clock::now());
    rc.on_iteration = [last](std::size_t r, const IterationStats& st) {
      const auto now = std::chrono::steady_clock::now();
      if (now - *last < std::chrono::seconds(10)) return;
      *last = now;
      std::fprintf(stderr, "rank %zu: iteration %.0f, rel_error %.6g\n", r, st.iteration, st.rel_error);
      std::fflush(stderr);
    };
    rc.on_finished = [](const RankCandidate& c) {
      std::fprintf(stderr, "rank %zu done (group %d): rel_error %.6g, %.0f iterations, %.3f s; %s\n", c.rank, c.group,
                   c.rel_error, c.iterations, c.seconds, c.stop_reason.c_str());
      std::fflush(stderr);
    };
  }
  note(world, p.quiet, "rank sweep on " + std::to_string(world.size()) + " process(es)");
  RankSummary s = run_rank(rc, world);
  for (const auto& w : s.warnings) warn(world, w);
  if (world.rank() == 0) {
    const auto& res = s.sweep;
    // Beside each candidate: the singular value sigma_r of Y(1) and the error of the best rank-r fit
    // without constraints, sqrt(sum_{q > r} sigma_q^2) / ||Y||.
    double total = 0;
    for (double v : s.sigma) total += v * v;
    const bool spec = !s.sigma.empty(), cp = cfg.model == "cp";
    std::printf("%5s  %12s  %12s  %10s  %9s  %5s%s%s\n", "rank", "rel_error", "curvature", "iterations", "seconds",
                "group", spec ? "       sigma_r     svd_error" : "", cp ? "  core_consistency" : "");
    for (std::size_t k = 0; k < res.candidates.size(); ++k) {
      const auto& c = res.candidates[k];
      double sig = 0, tail = 0;
      if (c.rank <= s.sigma.size()) sig = s.sigma[c.rank - 1];
      for (std::size_t q = c.rank; q < s.sigma.size(); ++q) tail += s.sigma[q] * s.sigma[q];
      char extra[64] = "";
      if (spec) std::snprintf(extra, sizeof extra, "  %12.6g  %12.6g", sig, total > 0 ? std::sqrt(tail / total) : 0.0);
      char core[32] = "";
      if (cp) std::snprintf(core, sizeof core, "  %16.1f", c.core_consistency);
      std::printf("%5zu  %12.6g  %12.6g  %10.0f  %9.3f  %5d%s%s%s\n", c.rank, c.rel_error, res.curvature[k],
                  c.iterations, c.seconds, c.group, extra, core, k == res.chosen_index ? "  <- chosen" : "");
    }
    std::string grids;
    for (const auto& g : res.group_grids) grids += (grids.empty() ? "" : ", ") + g;
    std::printf("chosen rank %zu (%s curvature); %d group%s (grids %s), %.3f s\n", res.chosen_rank,
                rc.curvature.c_str(), res.plan.groups, res.plan.groups > 1 ? "s" : "", grids.c_str(), s.seconds);
    std::printf("wrote %s\n", cfg.out.c_str());
    if (!s.plot_path.empty()) std::printf("plot %s\n", s.plot_path.c_str());
    std::fflush(stdout);
  }
  return 0;
}

} // namespace unmix::cli
