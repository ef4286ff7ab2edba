#include "unmix/apps/sediment_pipeline.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>

#include "unmix/apps/replicated.hpp"
#include "unmix/io/gnuplot.hpp"
#include "unmix/io/hdf5.hpp"

namespace unmix::sediment {

using apps::write_strings;
using apps::write_text;

namespace {

using Clock = std::chrono::steady_clock;
constexpr auto& since = apps::seconds_since;
constexpr auto& fmt = apps::format_number;

void write_tensor_datasets(const h5::File& f, const GrainTable& g, const KdeTensor& T) {
  f.write_replicated<double>("Y", {T.I, T.J, T.K}, T.c_order());
  std::vector<double> grid(T.J * T.K);
  for (std::size_t j = 0; j < T.J; ++j)
    for (std::size_t k = 0; k < T.K; ++k) grid[j * T.K + k] = T.grid[j][k];
  f.write_replicated<double>("grid", {T.J, T.K}, grid);
  f.write_replicated<double>("bandwidth", {T.J}, T.bandwidth);
  write_strings(f, "features", g.features);
  write_strings(f, "sinks", g.sinks);
  std::vector<double> counts;
  for (const auto& s : g.grains) counts.push_back(static_cast<double>(s.size()));
  f.write_replicated<double>("grains_per_sink", {g.sinks.size()}, counts);
  f.attr("layout", g.layout);
  f.attr("missing_values", static_cast<long long>(g.missing));
  f.attr("axes", std::string("Y: sinks x features x grid; grid: features x grid"));
}

// A string column of a gnuplot data file (double quotes; a quote or backslash inside escaped).
std::string data_string(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

/// Writes the plot data and gnuplot scripts into `dir` and runs gnuplot; returns a warning ("" if fine).
std::string make_plots(const std::string& dir, const std::string& format, const GrainTable& g, const KdeTensor& T,
                       const Factorization& fit, const std::vector<double>& proportions) {
  const std::size_t R = fit.rank, I = T.I, J = T.J, K = T.K;
  // Source densities: one block per feature (gnuplot `index j`), columns x, source 1..R.
  {
    std::ostringstream d;
    d.precision(10);
    for (std::size_t j = 0; j < J; ++j) {
      d << "# feature " << g.features[j] << "\n";
      for (std::size_t k = 0; k < K; ++k) {
        d << T.grid[j][k];
        for (std::size_t r = 0; r < R; ++r) d << ' ' << fit.B[r + R * (j + J * k)];
        d << '\n';
      }
      d << "\n\n";
    }
    write_text(dir + "/sources.dat", d.str());
  }
  {
    std::ostringstream d;
    d.precision(10);
    for (std::size_t i = 0; i < I; ++i) {
      d << i + 1 << ' ' << data_string(g.sinks[i]);
      for (std::size_t r = 0; r < R; ++r) d << ' ' << proportions[i + I * r];
      d << '\n';
    }
    write_text(dir + "/proportions.dat", d.str());
  }
  const std::string ext = format == "svg" ? "svg" : "png";
  auto terminal = [&](int w, int h) { return gnuplot::terminal(ext, w, h); };
  const std::size_t cols = J > 1 ? 2 : 1, rows = (J + cols - 1) / cols;
  {
    std::ostringstream s;
    s << terminal(1000, static_cast<int>(260 * rows + 60));
    s << "set output 'sources." << ext << "'\n";
    s << "set multiplot layout " << rows << "," << cols << " title 'Learned source densities (" << R << " sources)'\n";
    s << "set key top right\nset ylabel 'density per grid cell'\nset grid\n";
    for (std::size_t j = 0; j < J; ++j) {
      s << "set title " << gnuplot::quote(g.features[j]) << "\nset xlabel " << gnuplot::quote(g.features[j]) << "\n";
      s << "plot for [r=1:" << R << "] 'sources.dat' index " << j
        << " using 1:(column(r+1)) with lines linewidth 2 title sprintf('source %d', r)\n";
    }
    s << "unset multiplot\n";
    write_text(dir + "/sources.gp", s.str());
  }
  {
    std::ostringstream s;
    s << terminal(static_cast<int>(std::max<std::size_t>(700, 40 * I + 200)), 450);
    s << "set output 'proportions." << ext << "'\n";
    s << "set title 'Source proportions per sink'\nset ylabel 'proportion'\nset yrange [0:1]\n";
    s << "set style data histograms\nset style histogram rowstacked\nset style fill solid 0.85 border -1\n";
    s << "set boxwidth 0.8\nset key outside right\nset xtics rotate by -45\n";
    s << "plot for [r=1:" << R << "] 'proportions.dat' using (column(r+2)):xtic(2) title sprintf('source %d', r)\n";
    write_text(dir + "/proportions.gp", s.str());
  }
  std::string warning;
  for (const char* name : {"sources", "proportions"}) {
    const std::string why = gnuplot::run(dir + "/" + name + ".gp", dir);
    if (why.empty()) continue;
    warning += std::string(warning.empty() ? "" : "; ") + "plot '" + name + "." + ext + "' not made (" + why +
               "); its data and script '" + name + ".gp' are in the output folder";
  }
  return warning;
}

} // namespace

GrainTable load_grains(const GrainInput& in, const Comm& comm) {
  if (in.tidy.empty() == in.wide.empty())
    throw ConfigError("give the grains either as one tidy CSV (--grains FILE) or as one CSV per feature (--wide FILE "
                      "...), not both or neither");
  std::vector<std::string> paths = in.tidy.empty() ? in.wide : std::vector<std::string>{in.tidy};
  std::vector<std::string> texts(paths.size());
  collective_try(comm, [&] {
    if (comm.rank() != 0) return;
    for (std::size_t f = 0; f < paths.size(); ++f) texts[f] = csv::read_text(paths[f]);
  });
  for (auto& t : texts) t = comm.bcast(t, 0);
  GrainTable g;
  collective_try(comm, [&] {
    if (!in.tidy.empty()) {
      if (!in.features.empty())
        throw ConfigError("--features names the wide files' features; a tidy file has a header");
      g = parse_tidy(csv::parse(texts[0], paths[0]));
    } else {
      std::vector<std::string> names = in.features.empty() ? feature_names_from_paths(paths) : in.features;
      if (names.size() != paths.size())
        throw ConfigError("--features gives " + std::to_string(names.size()) + " names for " +
                          std::to_string(paths.size()) + " files");
      std::vector<csv::Table> tables;
      for (std::size_t f = 0; f < paths.size(); ++f) tables.push_back(csv::parse(texts[f], paths[f]));
      g = parse_wide(tables, names);
    }
    validate(g);
  });
  return g;
}

TensorSummary run_tensor(const TensorConfig& cfg, const Comm& comm) {
  TensorSummary s;
  h5::AtomicOutput out(comm, cfg.out, cfg.overwrite);
  s.grains = load_grains(cfg.input, comm);
  collective_try(comm, [&] { s.tensor = build_tensor(s.grains, cfg.kde); });
  {
    h5::File f = h5::File::create(comm, out.tmp_path());
    write_tensor_datasets(f, s.grains, s.tensor);
    f.attr("unmix_version", std::string(UNMIX_VERSION));
    f.attr("grid_points", static_cast<long long>(cfg.kde.grid_points));
    f.attr("margin", cfg.kde.margin);
    f.attr("bandwidth_scale", cfg.kde.bandwidth_scale);
    f.attr("processes", static_cast<long long>(comm.size()));
  }
  out.commit();
  return s;
}

Factorization factorize_tensor(const KdeTensor& T, std::size_t R, const FactorSettings& s, const Comm& comm) {
  return apps::factorize_replicated({T.I, T.J, T.K}, T.Y, R, s, comm, "sinks");
}

RankSweep sweep_ranks(const KdeTensor& T, std::size_t max_rank, const FactorSettings& s, const Comm& comm,
                      const std::function<void(std::size_t, double)>& progress) {
  return apps::sweep_ranks({T.I, T.J, T.K}, T.Y, max_rank, s, comm, "sinks", progress);
}

RunSummary run(const RunConfig& cfg, const Comm& comm, const std::function<void(const std::string&)>& note) {
  RunSummary sum;
  const auto t0 = Clock::now();
  auto say = [&](const std::string& s) {
    if (note) note(s);
  };
  if (cfg.proportions != "grains" && cfg.proportions != "factor")
    throw ConfigError("--proportions '" + cfg.proportions + "': use grains or factor");
  if (cfg.plot_format != "png" && cfg.plot_format != "svg" && cfg.plot_format != "none")
    throw ConfigError("--plots '" + cfg.plot_format + "': use png, svg or none");
  // Check the options that need no data before any work.
  apps::parse_factor_spec(cfg.factor.constraint_A, "A");
  apps::parse_factor_spec(cfg.factor.constraint_B, "B");
  apps::AtomicDir out(comm, cfg.out_dir, cfg.overwrite);

  sum.grains = load_grains(cfg.input, comm);
  const GrainTable& g = sum.grains;
  if (g.missing > 0)
    sum.warnings.push_back(std::to_string(g.missing) +
                           " missing (empty or NaN) values were skipped; those grains use their other features");
  collective_try(comm, [&] { sum.tensor = build_tensor(g, cfg.kde); });
  const KdeTensor& T = sum.tensor;
  sum.seconds_tensor = comm.allreduce(since(t0), Op::max);
  say("read " + std::to_string(g.sinks.size()) + " sinks x " + std::to_string(g.features.size()) + " features (" +
      std::to_string(g.grain_count()) + " grains); tensor " + std::to_string(T.I) + " x " + std::to_string(T.J) +
      " x " + std::to_string(T.K));

  const auto tf = Clock::now();
  const std::size_t rmax_allowed = std::min(T.I, T.J * T.K);
  if (cfg.rank > 0) {
    if (cfg.rank > rmax_allowed)
      throw ConfigError("--rank " + std::to_string(cfg.rank) + " is more than the " + std::to_string(T.I) +
                        " sinks allow");
    sum.fit = factorize_tensor(T, cfg.rank, cfg.factor, comm);
  } else {
    const std::size_t rmax = cfg.max_rank > 0 ? cfg.max_rank : std::min<std::size_t>(rmax_allowed, 10);
    if (rmax > rmax_allowed)
      throw ConfigError("--max-rank " + std::to_string(rmax) + " is more than the " + std::to_string(T.I) +
                        " sinks allow");
    FactorSettings quick = cfg.factor;
    quick.solver.maxiter = std::min(quick.solver.maxiter, cfg.sweep_maxiter);
    sum.sweep = sweep_ranks(T, rmax, quick, comm, [&](std::size_t r, double e) {
      say("rank " + std::to_string(r) + ": relative error " + fmt("%.5f", e));
    });
    say("chose rank " + std::to_string(sum.sweep->chosen) + " (maximum curvature of the relative error)");
    sum.fit = factorize_tensor(T, sum.sweep->chosen, cfg.factor, comm);
  }
  sum.seconds_factorize = comm.allreduce(since(tf), Op::max);
  const std::size_t R = sum.fit.rank;
  say("rank " + std::to_string(R) + ": " + std::to_string(sum.fit.result.iterations) + " iterations, relative error " +
      fmt("%.5f", sum.fit.result.stats.back().rel_error) + "; " + sum.fit.result.stop_reason);

  collective_try(comm, [&] {
    sum.labels = label_grains(g, T.grid, sum.fit.B, R);
    sum.proportions = cfg.proportions == "grains" ? grain_proportions(sum.labels, T.I, R) : sum.fit.A;
  });

  // Outputs.
  {
    h5::File f = h5::File::create(comm, out.file("results.h5"));
    write_tensor_datasets(f, g, T);
    std::vector<double> A(T.I * R), B(R * T.J * T.K);
    for (std::size_t i = 0; i < T.I; ++i)
      for (std::size_t r = 0; r < R; ++r) A[i * R + r] = sum.fit.A[i + T.I * r];
    for (std::size_t r = 0; r < R; ++r)
      for (std::size_t j = 0; j < T.J; ++j)
        for (std::size_t k = 0; k < T.K; ++k) B[(r * T.J + j) * T.K + k] = sum.fit.B[r + R * (j + T.J * k)];
    f.write_replicated<double>("A", {T.I, R}, A);
    f.write_replicated<double>("B", {R, T.J, T.K}, B);
    std::vector<std::string> cols;
    for (std::size_t r = 0; r < R; ++r) cols.push_back("source_" + std::to_string(r + 1));
    std::vector<std::vector<double>> rows;
    for (std::size_t i = 0; i < T.I; ++i) {
      rows.emplace_back(R);
      for (std::size_t r = 0; r < R; ++r) rows.back()[r] = sum.proportions[i + T.I * r];
    }
    f.write_table("proportions", cols, rows);
    f.attr("proportions", cfg.proportions == "grains"
                              ? std::string("maximum-likelihood mixture weights of each sink's grains under B")
                              : std::string("the factorization's A"));
    apps::write_fit_record(f, sum.fit, cfg.factor, comm, cfg.options_text);
    std::vector<std::vector<double>> lab;
    for (const auto& L : sum.labels)
      lab.push_back({static_cast<double>(L.sink + 1), static_cast<double>(L.source + 1), L.confidence});
    f.write_table("labels", {"sink", "source", "confidence"}, lab);
    if (sum.sweep) {
      f.write_replicated<double>("rank_errors", {sum.sweep->errors.size()}, sum.sweep->errors);
      f.attr("rank_chosen_by", std::string("maximum curvature (finite differences)"));
    }
  }
  std::string plot_warning;
  collective_try(comm, [&] {
    if (comm.rank() != 0) return;
    std::ostringstream p;
    p << "sink";
    for (std::size_t r = 0; r < R; ++r) p << ",source_" << r + 1;
    p << '\n';
    for (std::size_t i = 0; i < T.I; ++i) {
      p << csv::quote(g.sinks[i]);
      for (std::size_t r = 0; r < R; ++r) p << ',' << fmt("%.6f", sum.proportions[i + T.I * r]);
      p << '\n';
    }
    write_text(out.file("proportions.csv"), p.str());
    std::ostringstream l;
    l << "sink,grain,source,confidence,features_used";
    for (std::size_t r = 0; r < R; ++r) l << ",log10p_" << r + 1;
    l << '\n';
    for (const auto& L : sum.labels) {
      l << csv::quote(g.sinks[L.sink]) << ',' << csv::quote(L.grain) << ',';
      if (L.source >= 0) l << L.source + 1;
      l << ','
        << (L.source < 0               ? std::string()
            : std::isinf(L.confidence) ? "inf"
                                       : fmt("%.4f", L.confidence))
        << ',' << L.features_used;
      for (std::size_t r = 0; r < R; ++r) l << ',' << (L.features_used ? fmt("%.4f", L.log10p[r]) : std::string());
      l << '\n';
    }
    write_text(out.file("labels.csv"), l.str());
    if (sum.sweep) {
      std::vector<double> curve = sum.sweep->errors;
      for (std::size_t r = 1; r < curve.size(); ++r) curve[r] = std::min(curve[r], curve[r - 1]);
      const auto k = curvature(curve);
      std::ostringstream s;
      s << "rank,rel_error,curvature,chosen\n";
      for (std::size_t r = 0; r < sum.sweep->errors.size(); ++r)
        s << r + 1 << ',' << fmt("%.8g", sum.sweep->errors[r]) << ',' << fmt("%.6g", k[r]) << ','
          << (r + 1 == sum.sweep->chosen ? 1 : 0) << '\n';
      write_text(out.file("rank_sweep.csv"), s.str());
    }
    if (cfg.plot_format != "none")
      plot_warning = make_plots(out.tmp(), cfg.plot_format, g, T, sum.fit, sum.proportions);
  });
  if (!plot_warning.empty()) sum.warnings.push_back(plot_warning);
  out.commit();
  sum.seconds_total = comm.allreduce(since(t0), Op::max);
  return sum;
}

} // namespace unmix::sediment
