#include "unmix/rank/pipeline.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "unmix/core/resources.hpp"
#include "unmix/dist/layout.hpp"
#include "unmix/dist/svd.hpp"
#include "unmix/io/gnuplot.hpp"
#include "unmix/io/hdf5.hpp"
#include "unmix/model/cp.hpp"
#include "unmix/solver/cp_solver.hpp"

namespace unmix {

namespace {

using Clock = std::chrono::steady_clock;

struct Prepared {
  RankSweepOptions opts;
  Shape file_dims;
  std::vector<std::string> warnings;
};

/// Checks and options shared by `rank` and `factorize --rank auto`.
Prepared prepare(const FactorizeConfig& cfg, const std::string& ranks, int groups, const std::string& curvature,
                 const Comm& comm) {
  Prepared p;
  RankSweepOptions& o = p.opts;
  o.method = parse_curvature_method(curvature);
  o.solver = cfg.solver;
  o.consA = parse_factor_constraints(cfg.constraint_A, "A", comm);
  o.consB = parse_factor_constraints(cfg.constraint_B, "B", comm);
  o.model = cfg.model;
  const bool cp = cfg.model == "cp";
  if (cp) {
    check_cp_options(cfg);
    check_cp_constraints(o.consA, o.consB);
  } else if (cfg.model == "tucker") {
    throw ConfigError("--model tucker: a Tucker model has one rank per axis, which a curvature sweep does not pick; "
                      "sweep the number of sources with --model tucker1 (or the CP rank with --model cp), then "
                      "factorize --model tucker --rank R0,R1,...");
  } else if (cfg.model != "tucker1") {
    throw ConfigError("--model '" + cfg.model + "': use tucker1 (Y = B x1 A) or cp (a sum of rank-one tensors)");
  }
  if (!cfg.constraint_core.empty()) throw ConfigError("--constraint core=... is for factorize --model tucker");
  if (cfg.precision != "double" && cfg.precision != "float")
    throw ConfigError("--precision '" + cfg.precision + "': use float or double");
  h5::File f = h5::File::open_read(comm, cfg.input);
  collective_try(comm, [&] { p.file_dims = f.info(cfg.dataset).dims; });
  const Shape& d = p.file_dims;
  if (d.size() < 2)
    throw DataError("dataset '" + cfg.dataset + "' of '" + cfg.input + "' has " + std::to_string(d.size()) +
                    " axis; Tucker-1 needs at least 2 (mixtures x the rest)");
  if (cfg.mixture_axis < 0 || static_cast<std::size_t>(cfg.mixture_axis) >= d.size())
    throw ConfigError("--mixture-axis " + std::to_string(cfg.mixture_axis) + ": the dataset has axes 0 to " +
                      std::to_string(d.size() - 1));
  if (!cp && !scale_compensable(o.consB, d.size(), 0))
    throw ConfigError("--constraint B=" + cfg.constraint_B +
                      ": a scaled normalization of B must act on whole 1-slices (or the whole array) so that A can "
                      "absorb the scale exactly");
  if (!scale_compensable(o.consA, 2, 1))
    throw ConfigError("--constraint A=" + cfg.constraint_A +
                      ": a scaled normalization of A must act on its columns (or the whole array) so that B can "
                      "absorb the scale exactly");
  if (!cp) check_tucker1_scaling(o.consA, o.consB);
  const std::size_t I = d[static_cast<std::size_t>(cfg.mixture_axis)], M = shape_size(d) / std::max<std::size_t>(I, 1);
  const std::size_t rmax = std::min(I, M);
  o.ranks =
      ranks.empty() ? parse_rank_list("1:" + std::to_string(std::min<std::size_t>(rmax, 12))) : parse_rank_list(ranks);
  if (cp) check_cp_rank(o.ranks.back());
  if (!cp && o.ranks.back() > rmax)
    throw ConfigError("--ranks " + ranks + ": rank " + std::to_string(o.ranks.back()) +
                      " is larger than the tensor allows: with " + std::to_string(I) + " mixtures and " +
                      std::to_string(M) + " entries per mixture the rank can be at most " + std::to_string(rmax));
  if (groups < 0) throw ConfigError("--groups must be at least 1 (or 0 for automatic)");
  if (groups > comm.size())
    throw ConfigError("--groups " + std::to_string(groups) + " is more than the " + std::to_string(comm.size()) +
                      " process(es) of the job: every group needs at least one process");
  const double elem = cfg.precision == "float" ? 4.0 : 8.0;
  if (groups == 0) {
    const double bytes = static_cast<double>(shape_size(d)) * elem;
    const double mem = cfg.memory_limit > 0 ? cfg.memory_limit : node_memory().ceiling();
    // Assume every process of the job shares this node's memory (or the job's limit on it), and leave half
    // of it for the rest.
    const double per_proc = mem > 0 ? 0.5 * mem / comm.size() : 1e9;
    groups = comm.allreduce(default_group_count(comm.size(), o.ranks.size(), bytes, per_proc), Op::min);
  }
  o.groups = groups;
  // Every group reads a whole copy of the data, so the check before reading counts the blocks of all the
  // groups on a node together (each group's read checks only its own processes).
  const SweepPlan plan = SweepPlan::make(comm.size(), groups, o.ranks);
  const int g = plan.group_of(comm.rank());
  const std::size_t k = static_cast<std::size_t>(cfg.mixture_axis);
  Shape shape{d[k]}; // mode order, as read_distributed makes it
  for (std::size_t a = 0; a < d.size(); ++a)
    if (a != k) shape.push_back(d[a]);
  const BlockLayout layout(shape, ProcessGrid::default_for(shape, plan.group_size[static_cast<std::size_t>(g)]));
  const Shape box = layout.box_shape(comm.rank() - plan.group_first[static_cast<std::size_t>(g)]);
  const double block = static_cast<double>(shape_size(box));
  // A group keeps the factors of every candidate it solved (they are written at the end) while it solves the
  // next one; the most it holds beside its block is the largest of those sums.
  double solves = 0;
  if (cp) {
    ModeFactorsFootprint fp;
    fp.box = box;
    fp.value_bytes = static_cast<std::size_t>(elem);
    // The tree as the model decides it, from the shortest block of the last mode in this group's layout.
    const BlockPartition& last = layout.partition(box.size() - 1);
    std::size_t shortest = last.extent;
    for (int q = 0; q < last.parts; ++q) shortest = std::min(shortest, last.size(q));
    double kept = 0;
    for (std::size_t c = 0; c < o.ranks.size(); ++c) {
      if (plan.owner[c] != g) continue;
      fp.ranks.assign(box.size(), o.ranks[c]);
      fp.tree = CP<double>::tree_pays(box.size(), o.ranks[c], shortest);
      solves = std::max(solves, kept + mode_factors_solve_bytes(fp));
      for (std::size_t n = 0; n < box.size(); ++n)
        kept += 8.0 * static_cast<double>(o.ranks[c]) * static_cast<double>(box[n]);
    }
  } else {
    Tucker1Footprint fp = Tucker1Footprint::of(box, 0, static_cast<std::size_t>(elem), layout.grid().dims()[0] > 1);
    double kept = 0;
    for (std::size_t c = 0; c < o.ranks.size(); ++c) {
      if (plan.owner[c] != g) continue;
      fp.R = o.ranks[c];
      solves = std::max(solves, kept + tucker1_solve_bytes(fp, o.consA, o.consB, o.solver));
      kept += 8.0 * static_cast<double>(fp.R) * static_cast<double>(fp.Mp + fp.Ip);
    }
  }
  h5::require_memory(comm, h5::read_footprint_bytes(block, static_cast<std::size_t>(elem), solves), cfg.memory_limit,
                     "dataset '" + cfg.dataset + "' of '" + cfg.input + "' (" + shape_string(d) + ", as " +
                         (elem == 4.0 ? "float32" : "float64") + ", one copy for each of " + std::to_string(groups) +
                         " group(s)) with the candidates' factors and solves",
                     groups > 1 ? "use fewer --groups (each holds a whole copy of the data), " : "",
                     "their block and the larger of the read buffer and the candidates' factors with a solve's arrays");
  return p;
}

template <class T> RankSweepResult sweep(const FactorizeConfig& cfg, const RankSweepOptions& o, const Comm& comm) {
  GroupLoader<T> load = [&](const Comm& g) {
    return h5::read_distributed<T>(g, cfg.input, cfg.dataset, cfg.mixture_axis, std::nullopt, cfg.memory_limit);
  };
  return rank_sweep<T>(comm, o, load);
}

RankSweepResult sweep_any(const FactorizeConfig& cfg, const RankSweepOptions& o, const Comm& comm) {
  if (cfg.precision == "float") return sweep<float>(cfg, o, comm);
  return sweep<double>(cfg, o, comm);
}

std::vector<double> column(const RankSweepResult& r, double RankCandidate::*field) {
  std::vector<double> v;
  for (const auto& c : r.candidates) v.push_back(c.*field);
  return v;
}

/// One candidate's factors, written collectively by every process of `f`'s communicator (the processes
/// outside the solving group contribute nothing).
void write_candidate(const h5::File& f, const std::string& a_name, const std::string& b_name, const RankCandidate& c,
                     const CandidateFactors& cf, std::size_t I, const Shape& b_global, bool cp) {
  const Tensor<double> none;
  h5::write_distributed(f, a_name, {I, c.rank}, cf.mine ? cf.a_offset : Shape{0, 0}, cf.mine ? cf.f.A : none,
                        cf.mine && cf.owns_A);
  const Shape b_offset = cf.mine ? cf.b_offset : Shape(b_global.size(), 0);
  if (cp)
    h5::write_generated(f, b_name, b_global, b_offset, cf.mine ? cf.b_local : Shape(b_global.size(), 0),
                        cf.mine && cf.owns_B,
                        [&](const Shape& at, const Shape& count) { return cp_sources_box(cf.cp_factors, at, count); });
  else
    h5::write_distributed(f, b_name, b_global, b_offset, cf.mine ? cf.f.B : none, cf.mine && cf.owns_B);
}

std::vector<std::vector<double>> stat_rows(const std::vector<IterationStats>& s) {
  std::vector<std::vector<double>> rows;
  for (const auto& x : s) rows.push_back(x.row());
  return rows;
}

/// The tensor's shape (mixture mode first, then the other file axes in order).
Shape tensor_shape(const Shape& file_dims, int mixture_axis) {
  Shape s{file_dims[static_cast<std::size_t>(mixture_axis)]};
  for (std::size_t a = 0; a < file_dims.size(); ++a)
    if (a != static_cast<std::size_t>(mixture_axis)) s.push_back(file_dims[a]);
  return s;
}

void common_attrs(const h5::File& fo, const FactorizeConfig& cfg, const RankSweepResult& res, const Comm& comm,
                  const RankSweepOptions& o) {
  fo.attr("unmix_version", std::string(UNMIX_VERSION));
  fo.attr("input", cfg.input);
  fo.attr("dataset", cfg.dataset);
  fo.attr("mixture_axis", static_cast<long long>(cfg.mixture_axis));
  fo.attr("seed", static_cast<unsigned long long>(cfg.solver.seed));
  fo.attr("processes", static_cast<long long>(comm.size()));
  fo.attr("groups", static_cast<long long>(res.plan.groups));
  std::string grids;
  for (const auto& g : res.group_grids) grids += (grids.empty() ? "" : ",") + g;
  fo.attr("group_grids", grids);
  fo.attr("precision", cfg.precision);
  fo.attr("model", o.model);
  fo.attr("constraint_A", o.consA.spec.empty() ? std::string("none") : o.consA.spec);
  fo.attr("constraint_B", o.consB.spec.empty() ? std::string("none") : o.consB.spec);
  fo.attr("curvature_method", curvature_method_name(o.method));
  fo.attr("chosen_rank", static_cast<long long>(res.chosen_rank));
  fo.attr("peak_memory_bytes", comm.allreduce(static_cast<double>(peak_resident_bytes()), Op::max));
  for (const auto& [k, v] : cfg.options_text) fo.attr("option." + k, v);
}

} // namespace

std::string curve_plot(const RankSweepResult& res, const std::string& title, const std::string& method) {
  std::vector<std::vector<double>> rows;
  for (std::size_t k = 0; k < res.candidates.size(); ++k)
    rows.push_back({static_cast<double>(res.candidates[k].rank), res.candidates[k].rel_error,
                    k < res.curvature.size() ? res.curvature[k] : NAN});
  const std::string chosen = std::to_string(res.chosen_rank);
  std::ostringstream s;
  s << gnuplot::datablock("sweep", rows);
  s << "set title " << gnuplot::quote(title) << "\n"
    << "set xlabel 'rank'\nset ylabel 'final relative error'\n"
    << "set y2label " << gnuplot::quote(method + " curvature") << " textcolor rgb '#cc3333'\n"
    << "set ytics nomirror\nset y2tics textcolor rgb '#cc3333'\nset grid\nset key below horizontal\n"
    << "set offsets graph 0.03, graph 0.03, graph 0.05, graph 0.05\n"
    << "set arrow from " << chosen << ", graph 0 to " << chosen << ", graph 1 nohead dashtype 3 lc rgb '#22aa22'\n"
    << "set label " << gnuplot::quote("chosen rank " + chosen) << " at " << chosen
    << ", graph 0.5 offset 0.6, 0 textcolor rgb '#22aa22'\n"
    << "plot $sweep using 1:2:xtic(1) with linespoints linewidth 2 pointtype 7 lc rgb '#1f4e9c' title 'relative "
       "error', \\\n"
    << "     $sweep using 1:3 axes x1y2 with linespoints dashtype 2 pointtype 6 lc rgb '#cc3333' title 'curvature'\n";
  return s.str();
}

RankSummary run_rank(const RankConfig& cfg, const Comm& comm) {
  RankSummary sum;
  Prepared p = prepare(cfg.base, cfg.ranks, cfg.groups, cfg.curvature, comm);
  p.opts.on_iteration = cfg.on_iteration;
  p.opts.on_finished = cfg.on_finished;
  h5::AtomicOutput out(comm, cfg.base.out, cfg.base.overwrite);
  if (cfg.spectrum) {
    // The singular values of Y(1): a rank prior before any factorization (Y read once over all processes).
    const auto ts = Clock::now();
    if (cfg.base.precision == "float")
      sum.sigma =
          unfolding_spectrum(h5::read_distributed<float>(comm, cfg.base.input, cfg.base.dataset, cfg.base.mixture_axis,
                                                         std::nullopt, cfg.base.memory_limit))
              .sigma;
    else
      sum.sigma =
          unfolding_spectrum(h5::read_distributed<double>(comm, cfg.base.input, cfg.base.dataset, cfg.base.mixture_axis,
                                                          std::nullopt, cfg.base.memory_limit))
              .sigma;
    sum.spectrum_seconds = comm.allreduce(std::chrono::duration<double>(Clock::now() - ts).count(), Op::max);
  }
  const auto t0 = Clock::now();
  sum.sweep = sweep_any(cfg.base, p.opts, comm);
  sum.seconds = comm.allreduce(std::chrono::duration<double>(Clock::now() - t0).count(), Op::max);
  const RankSweepResult& res = sum.sweep;
  sum.warnings = res.warnings;
  const Shape ts = tensor_shape(p.file_dims, cfg.base.mixture_axis);
  {
    h5::File fo = h5::File::create(comm, out.tmp_path());
    const std::size_t K = res.candidates.size();
    std::vector<double> ranks;
    for (const auto& c : res.candidates) ranks.push_back(static_cast<double>(c.rank));
    fo.write_replicated<double>("ranks", {K}, ranks);
    fo.write_replicated<double>("rel_error", {K}, column(res, &RankCandidate::rel_error));
    fo.write_replicated<double>("curvature", {K}, res.curvature);
    fo.write_replicated<double>("iterations", {K}, column(res, &RankCandidate::iterations));
    fo.write_replicated<double>("seconds", {K}, column(res, &RankCandidate::seconds));
    if (cfg.base.model == "cp")
      fo.write_replicated<double>("core_consistency", {K}, column(res, &RankCandidate::core_consistency));
    std::vector<double> grp;
    for (const auto& c : res.candidates) grp.push_back(c.group);
    fo.write_replicated<double>("group", {K}, grp);
    for (std::size_t k = 0; k < K; ++k) {
      const auto& c = res.candidates[k];
      const std::string r = std::to_string(c.rank);
      Shape bg = ts;
      bg[0] = c.rank;
      write_candidate(fo, "A_" + r, "B_" + r, c, res.factors[k], ts[0], bg, cfg.base.model == "cp");
      fo.write_table("stats_" + r, IterationStats::columns(), stat_rows(c.stats));
    }
    if (!sum.sigma.empty()) fo.write_replicated<double>("singular_values", {sum.sigma.size()}, sum.sigma);
    common_attrs(fo, cfg.base, res, comm, p.opts);
    fo.attr("seconds", sum.seconds);
  }
  out.commit();
  if (cfg.plot) {
    const std::filesystem::path svg = gnuplot::image_beside(cfg.base.out);
    std::string why;
    if (comm.rank() == 0)
      why = gnuplot::make_image(
          svg, 700, 450,
          curve_plot(res, std::filesystem::path(cfg.base.input).filename().string() + " " + cfg.base.dataset,
                     curvature_method_name(p.opts.method)),
          cfg.base.overwrite);
    why = comm.bcast(why, 0);
    if (why.empty())
      sum.plot_path = svg.string();
    else
      sum.warnings.push_back("plot '" + svg.string() + "' not made (" + why + ")");
  }
  return sum;
}

FactorizeSummary run_factorize_auto(const FactorizeConfig& cfg, const Comm& comm, const ProgressFn& progress) {
  FactorizeSummary sum;
  Prepared p = prepare(cfg, cfg.auto_ranks, cfg.groups, cfg.curvature, comm);
  if (progress)
    p.opts.progress = [&](std::size_t, const IterationStats& s) {
      progress(s, cfg.solver.maxiter);
      return true;
    };
  h5::AtomicOutput out(comm, cfg.out, cfg.overwrite);
  const auto t0 = Clock::now();
  RankSweepResult res = sweep_any(cfg, p.opts, comm);
  sum.seconds = comm.allreduce(std::chrono::duration<double>(Clock::now() - t0).count(), Op::max);
  sum.warnings = res.warnings;
  const std::size_t k = res.chosen_index;
  const RankCandidate& c = res.candidates[k];
  sum.chosen_rank = c.rank;
  sum.result.stats = c.stats;
  sum.result.iterations = static_cast<std::size_t>(c.iterations);
  sum.result.converged = c.converged != 0;
  sum.result.stop_reason = c.stop_reason;
  sum.grid = res.group_grids.empty() ? std::string() : res.group_grids[static_cast<std::size_t>(c.group)];
  const Shape ts = tensor_shape(p.file_dims, cfg.mixture_axis);
  {
    h5::File fo = h5::File::create(comm, out.tmp_path());
    Shape bg = ts;
    bg[0] = c.rank;
    write_candidate(fo, "A", "B", c, res.factors[k], ts[0], bg, cfg.model == "cp");
    fo.write_table("stats", IterationStats::columns(), stat_rows(c.stats));
    const std::size_t K = res.candidates.size();
    std::vector<double> ranks;
    for (const auto& x : res.candidates) ranks.push_back(static_cast<double>(x.rank));
    fo.write_replicated<double>("sweep_ranks", {K}, ranks);
    fo.write_replicated<double>("sweep_rel_error", {K}, column(res, &RankCandidate::rel_error));
    fo.write_replicated<double>("sweep_curvature", {K}, res.curvature);
    common_attrs(fo, cfg, res, comm, p.opts);
    fo.attr("rank", static_cast<long long>(c.rank));
    fo.attr("grid", sum.grid);
    fo.attr("stop_reason", c.stop_reason);
    fo.attr("iterations", static_cast<long long>(c.iterations));
    fo.attr("rel_error", c.rel_error);
    fo.attr("seconds", sum.seconds);
  }
  out.commit();
  return sum;
}

} // namespace unmix
