#include "unmix/apps/sediment_pipeline.hpp"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>

#include "unmix/dist/dist_tensor.hpp"
#include "unmix/io/gnuplot.hpp"
#include "unmix/io/hdf5.hpp"
#include "unmix/model/tucker1.hpp"

namespace unmix::sediment {

namespace fs = std::filesystem;

namespace {

using Clock = std::chrono::steady_clock;
double since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

std::string fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

/// A fixed-length string dataset (C strings, null padded) of the names, written by rank 0. Collective.
void write_strings(const h5::File& f, const std::string& name, const std::vector<std::string>& v) {
  const std::string ctx = f.path() + ":" + name;
  std::size_t len = 1;
  for (const auto& s : v) len = std::max(len, s.size());
  h5::Handle type(static_cast<hid_t>(h5::check(H5Tcopy(H5T_C_S1), "H5Tcopy", ctx)), H5Tclose);
  h5::check(H5Tset_size(type, len), "H5Tset_size", ctx);
  h5::check(H5Tset_strpad(type, H5T_STR_NULLPAD), "H5Tset_strpad", ctx);
  const hsize_t n = v.size();
  h5::Handle space(static_cast<hid_t>(h5::check(H5Screate_simple(1, &n, nullptr), "H5Screate_simple", ctx)), H5Sclose);
  h5::Handle ds(
      static_cast<hid_t>(h5::check(H5Dcreate2(f.id(), name.c_str(), type, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT),
                                   "H5Dcreate", ctx)),
      H5Dclose);
  std::vector<char> buf(std::max<std::size_t>(n, 1) * len, '\0');
  for (std::size_t i = 0; i < v.size(); ++i) std::copy(v[i].begin(), v[i].end(), buf.begin() + long(i * len));
  h5::Handle mspace(static_cast<hid_t>(h5::check(H5Screate_simple(1, &n, nullptr), "H5Screate_simple", ctx)), H5Sclose);
  if (f.comm().rank() != 0) {
    h5::check(H5Sselect_none(space), "H5Sselect_none", ctx);
    h5::check(H5Sselect_none(mspace), "H5Sselect_none", ctx);
  }
  h5::check(H5Dwrite(ds, type, mspace, space, H5P_DEFAULT, buf.data()), "H5Dwrite", ctx);
}

/// The whole of a distributed array, column-major, on every process: each owner sends its box.
std::vector<double> gather_box(const Comm& comm, const Shape& global, const Shape& offset, const Tensor<double>& local,
                               bool owner) {
  const std::size_t N = global.size();
  std::vector<double> pack;
  if (owner) {
    for (std::size_t n = 0; n < N; ++n) pack.push_back(static_cast<double>(offset[n]));
    for (std::size_t n = 0; n < N; ++n) pack.push_back(static_cast<double>(local.extent(n)));
    pack.insert(pack.end(), local.span().begin(), local.span().end());
  }
  const auto all = comm.allgatherv<double>(pack);
  std::vector<double> out(shape_size(global), 0.0);
  std::size_t pos = 0;
  Shape off(N), ext(N);
  std::vector<std::size_t> idx(N);
  while (pos < all.size()) {
    for (std::size_t n = 0; n < N; ++n) off[n] = static_cast<std::size_t>(all[pos + n]);
    for (std::size_t n = 0; n < N; ++n) ext[n] = static_cast<std::size_t>(all[pos + N + n]);
    pos += 2 * N;
    const std::size_t cnt = shape_size(ext);
    std::fill(idx.begin(), idx.end(), std::size_t{0});
    for (std::size_t l = 0; l < cnt; ++l) {
      std::size_t g = 0, stride = 1;
      for (std::size_t n = 0; n < N; ++n) {
        g += (off[n] + idx[n]) * stride;
        stride *= global[n];
      }
      out[g] = all[pos + l];
      for (std::size_t n = 0; n < N; ++n) {
        if (++idx[n] < ext[n]) break;
        idx[n] = 0;
      }
    }
    pos += cnt;
  }
  return out;
}

/// A folder written under a temporary name and renamed when complete (an existing one is replaced
/// only with `overwrite`, and only at the end).
class AtomicDir {
public:
  AtomicDir(const Comm& comm, std::string final_path, bool overwrite) : comm_(&comm), final_(std::move(final_path)) {
    while (final_.size() > 1 && final_.back() == '/') final_.pop_back();
    std::string tmp;
    collective_try(comm, [&] {
      if (comm.rank() != 0) return;
      h5::check_output_path(final_, overwrite, "folder", "--out DIR");
      std::error_code ec;
      tmp = final_ + ".tmp." + std::to_string(getpid());
      fs::remove_all(tmp, ec);
      if (!fs::create_directory(tmp, ec) || ec)
        throw IoError("cannot create folder '" + tmp + "': " + (ec ? ec.message() : std::string("unknown error")));
    });
    tmp_ = comm.bcast(tmp, 0);
  }
  ~AtomicDir() {
    if (!done_ && comm_->rank() == 0 && !tmp_.empty()) {
      std::error_code ec;
      fs::remove_all(tmp_, ec);
    }
  }
  AtomicDir(const AtomicDir&) = delete;
  AtomicDir& operator=(const AtomicDir&) = delete;
  const std::string& tmp() const { return tmp_; }
  std::string file(const std::string& name) const { return tmp_ + "/" + name; }
  void commit() {
    comm_->barrier();
    collective_try(*comm_, [&] {
      if (comm_->rank() != 0) return;
      std::error_code ec;
      std::string old;
      if (fs::exists(final_, ec)) {
        old = final_ + ".old." + std::to_string(getpid());
        fs::rename(final_, old, ec);
        if (ec) throw IoError("cannot move the old '" + final_ + "' aside: " + ec.message());
      }
      fs::rename(tmp_, final_, ec);
      if (ec) {
        std::error_code ec2;
        if (!old.empty()) fs::rename(old, final_, ec2);
        throw IoError("cannot rename '" + tmp_ + "' to '" + final_ + "': " + ec.message());
      }
      if (!old.empty()) fs::remove_all(old, ec);
    });
    done_ = true;
  }

private:
  const Comm* comm_;
  std::string final_, tmp_;
  bool done_ = false;
};

/// Writes a text file on rank 0 (inside a collective_try by the caller).
void write_text(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
  out.close();
  if (!out) throw IoError("cannot write '" + path + "'");
}

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

ConstraintList parse_for(const std::string& spec, const char* factor) {
  try {
    ConstraintList list = parse_constraints(spec);
    list.spec = spec;
    for (const auto& c : list.items)
      if (c.kind == ConstraintKind::linear)
        throw ConfigError("linear constraints need matrices; use unmix factorize for them");
    return list;
  } catch (const ConfigError& e) {
    throw ConfigError(std::string("--constraint ") + factor + "=" + spec + ": " + e.what());
  }
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
  const Shape shape{T.I, T.J, T.K};
  const std::size_t M = T.J * T.K;
  if (R < 1 || R > std::min(T.I, M))
    throw ConfigError("--rank " + std::to_string(R) + ": with " + std::to_string(T.I) +
                      " sinks the rank must be between 1 and " + std::to_string(std::min(T.I, M)));
  const ConstraintList consA = parse_for(s.constraint_A, "A"), consB = parse_for(s.constraint_B, "B");
  if (!scale_compensable(consB, 3, 0))
    throw ConfigError("--constraint B=" + s.constraint_B +
                      ": a scaled normalization of B must act on whole 1-slices so that A can absorb the scale");
  if (!scale_compensable(consA, 2, 1))
    throw ConfigError("--constraint A=" + s.constraint_A +
                      ": a scaled normalization of A must act on its columns so that B can absorb the scale");
  const ProcessGrid grid =
      s.grid ? ProcessGrid::parse(*s.grid, 3, comm.size()) : ProcessGrid::default_for(shape, comm.size(), 0);
  DistTensor<double> Y(comm, BlockLayout(shape, grid));
  {
    auto& loc = Y.local();
    const Shape& off = Y.offset();
    const std::size_t a = loc.extent(0), b = loc.extent(1), c = loc.extent(2);
    for (std::size_t k = 0; k < c; ++k)
      for (std::size_t j = 0; j < b; ++j)
        for (std::size_t i = 0; i < a; ++i) loc[i + a * (j + b * k)] = T.at(off[0] + i, off[1] + j, off[2] + k);
  }
  Tucker1<double> model(Y, R);
  Factorization best;
  double best_obj = std::numeric_limits<double>::infinity();
  for (std::size_t start = 0; start < std::max<std::size_t>(s.starts, 1); ++start) {
    SolverOptions opts = s.solver;
    opts.seed = s.solver.seed + start;
    Factors f;
    init_random(model, f, opts.seed, true, consA, consB);
    SolveResult res = solve(model, f, consA, consB, opts);
    const double obj = res.stats.back().objective;
    if (obj < best_obj) {
      best_obj = obj;
      best.rank = R;
      best.seed = opts.seed;
      best.result = std::move(res);
      best.A = gather_box(comm, {T.I, R}, {model.row_offset(), 0}, f.A, model.owns_A());
      best.B = gather_box(comm, model.b_global_shape(), model.b_offset(), f.B, model.owns_B());
    }
  }
  return best;
}

RankSweep sweep_ranks(const KdeTensor& T, std::size_t max_rank, const FactorSettings& s, const Comm& comm,
                      const std::function<void(std::size_t, double)>& progress) {
  RankSweep sw;
  for (std::size_t r = 1; r <= max_rank; ++r) {
    sw.fits.push_back(factorize_tensor(T, r, s, comm));
    sw.errors.push_back(sw.fits.back().result.stats.back().rel_error);
    if (progress) progress(r, sw.errors.back());
  }
  // A rank-r fit can always do as well as the rank r-1 one (a zero proportion column and any extra source),
  // so an error above the previous one is a fit that stopped early: the curve uses the running minimum.
  std::vector<double> curve = sw.errors;
  for (std::size_t r = 1; r < curve.size(); ++r) curve[r] = std::min(curve[r], curve[r - 1]);
  sw.chosen = pick_rank(curve);
  return sw;
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
  parse_for(cfg.factor.constraint_A, "A");
  parse_for(cfg.factor.constraint_B, "B");
  AtomicDir out(comm, cfg.out_dir, cfg.overwrite);

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
    std::vector<std::vector<double>> st;
    for (const auto& s : sum.fit.result.stats) st.push_back(s.row());
    f.write_table("stats", IterationStats::columns(), st);
    std::vector<std::vector<double>> lab;
    for (const auto& L : sum.labels)
      lab.push_back({static_cast<double>(L.sink + 1), static_cast<double>(L.source + 1), L.confidence});
    f.write_table("labels", {"sink", "source", "confidence"}, lab);
    if (sum.sweep) {
      f.write_replicated<double>("rank_errors", {sum.sweep->errors.size()}, sum.sweep->errors);
      f.attr("rank_chosen_by", std::string("maximum curvature (finite differences)"));
    }
    f.attr("unmix_version", std::string(UNMIX_VERSION));
    f.attr("rank", static_cast<long long>(R));
    f.attr("seed", static_cast<long long>(sum.fit.seed));
    f.attr("processes", static_cast<long long>(comm.size()));
    f.attr("constraint_A", cfg.factor.constraint_A);
    f.attr("constraint_B", cfg.factor.constraint_B);
    f.attr("stop_reason", sum.fit.result.stop_reason);
    f.attr("iterations", static_cast<long long>(sum.fit.result.iterations));
    f.attr("rel_error", sum.fit.result.stats.back().rel_error);
    for (const auto& [k, v] : cfg.options_text) f.attr("option." + k, v);
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
