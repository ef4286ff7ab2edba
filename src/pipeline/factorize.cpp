#include "unmix/pipeline/factorize.hpp"

#include <chrono>
#include <cmath>
#include <sstream>

#include "unmix/core/resources.hpp"
#include "unmix/io/gnuplot.hpp"
#include "unmix/io/hdf5.hpp"
#include "unmix/model/cp.hpp"
#include "unmix/model/tucker.hpp"
#include "unmix/model/tucker1.hpp"
#include "unmix/multiscale/multiscale.hpp"
#include "unmix/pipeline/checkpoint.hpp"
#include "unmix/rank/nndsvd.hpp"
#include "unmix/rank/pipeline.hpp"
#include "unmix/solver/cp_solver.hpp"

namespace unmix {

namespace {

using Clock = std::chrono::steady_clock;
double since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

} // namespace

void check_cp_options(const FactorizeConfig& cfg) {
  const std::string model = cfg.model == "tucker" ? "tucker" : "cp";
  auto refuse = [&](const std::string& what) {
    throw ConfigError(what + " is not available with --model " + model +
                      " (it is a Tucker-1 feature); drop it or use --model tucker1");
  };
  if (cfg.rank_auto)
    throw ConfigError("--rank auto is not available with --model " + model +
                      (model == "cp" ? ": pick the rank with `unmix rank --model cp`, then factorize at it"
                                     : ": give one rank per axis, e.g. --rank 3,4,2 (choose each with `unmix rank` on "
                                       "the tensor unfolded along that axis, or from the CP rank)"));
  if (cfg.multiscale) refuse("--multiscale");
  const std::string display = model == "cp" ? "CP" : "Tucker";
  if (cfg.init == "nndsvd") refuse("--init nndsvd (" + display + " starts from a random start or a file)");
  if (cfg.solver.random_order || cfg.solver.group_by_factor || cfg.solver.recursive_random_order)
    refuse("a random --order (" + display + " updates its " + (model == "cp" ? "factors" : "core and factors") +
           " in mode order)");
  if (cfg.solver.extrapolate) refuse("--extrapolate");
  if (model == "cp" && !cfg.ranks.empty())
    throw ConfigError("--rank with one value per axis is for --model tucker; CP has one rank");
  if (model == "cp" && !cfg.constraint_core.empty())
    throw ConfigError("--constraint core=... is for --model tucker (CP has no core)");
}

void check_tucker1_scaling(const ConstraintList& consA, const ConstraintList& consB) {
  bool a_scaled = false;
  for (const auto& c : consA.items) a_scaled = a_scaled || c.is_scaled();
  if (a_scaled && !(consB.empty() || is_only_nonnegative(consB)))
    throw ConfigError("--constraint A=" + consA.spec +
                      ": B absorbs the scale of A after its own step and would no "
                      "longer satisfy B=" +
                      consB.spec +
                      "; give B nonnegative (or none), or use a projection on A (e.g. l1normalize_columns) instead");
}

void check_cp_rank(std::size_t rank) {
  if (rank > kMaxCpRank)
    throw ConfigError("--rank " + std::to_string(rank) + ": CP ranks above " + std::to_string(kMaxCpRank) +
                      " are not supported (every step forms R x R matrices; at this rank each takes " +
                      std::to_string(rank * rank * 8 / (1u << 20)) + " MiB)");
}

namespace {

/// The tensor mode of a dataset axis: the mixture axis moves to mode 0, the axes before it one place up.
std::size_t tensor_mode(int axis, int mixture_axis) {
  return static_cast<std::size_t>(axis < mixture_axis ? axis + 1 : axis);
}

/// The constraints of factor matrices (CP and Tucker): B's list is shared by factors of different extents (no
/// linear constraint), normalizations act on columns, rows or the whole factor, scaled ones so that the rest
/// of the model can absorb the scale exactly. Returns whether each side has a scaled normalization.
std::pair<bool, bool> check_factor_constraints(const ConstraintList& consA, const ConstraintList& consB,
                                               const std::string& model) {
  for (const auto& c : consB.items)
    if (c.kind == ConstraintKind::linear)
      throw ConfigError("--constraint B=" + consB.spec + ": with --model " + model +
                        ", B's constraints apply to the factor of every other mode, which differ in size; a linear "
                        "constraint is available for A (factor 0) only");
  auto side = [&](const ConstraintList* list) { return std::string(list == &consA ? "A=" : "B=") + list->spec; };
  bool scaled[2] = {false, false};
  for (const auto* list : {&consA, &consB}) {
    for (const auto& c : list->items) {
      // A factor is an extent x R matrix: Tucker-1's slicings of a source tensor would silently mean
      // something else here (1slices the rows, 12slices single entries).
      if ((c.is_projected_normalization() || c.is_scaled()) &&
          (c.slicing == Slicing::slices1 || c.slicing == Slicing::slices12 || c.slicing == Slicing::average12))
        throw ConfigError("--constraint " + side(list) + ": with --model " + model +
                          " every factor is a matrix (its mode's extent x R); normalize its columns (e.g. "
                          "l1scale_columns, simplex_columns) or rows instead of " +
                          slicing_name(c.slicing));
      scaled[list == &consB] = scaled[list == &consB] || c.is_scaled();
    }
    if (!scale_compensable(*list, 2, 1))
      throw ConfigError("--constraint " + side(list) + ": with --model " + model +
                        " every factor is a matrix (its mode's extent x R), and a scaled normalization must act on "
                        "its columns (e.g. l1scale_columns) or the whole factor so that the rest of the model can "
                        "absorb the scale exactly");
  }
  return {scaled[0], scaled[1]};
}
} // namespace

void check_cp_constraints(const ConstraintList& consA, const ConstraintList& consB) {
  const auto [a_scaled, b_scaled] = check_factor_constraints(consA, consB, "cp");
  // A factor that absorbs a scale is multiplied by positive weights. Factor 1 absorbs A's during the iteration
  // and takes its own step (and constraints) after that; A absorbs those of the later factors, the last of
  // them at the end of the iteration: only constraints that such a scaling keeps may stand on A then.
  if (a_scaled && b_scaled)
    throw ConfigError("--constraint A=" + consA.spec + " and B=" + consB.spec +
                      ": with --model cp only one side may have a scaled normalization (the other absorbs its scale)");
  if (b_scaled && !(consA.empty() || is_only_nonnegative(consA)))
    throw ConfigError("--constraint A=" + consA.spec + ": A absorbs the scale of B=" + consB.spec +
                      " after its own step and would no longer satisfy its own constraints; give A nonnegative (or "
                      "none), or use a projection such as simplex_columns on B instead");
}

ConstraintList tucker_core_constraints(const FactorizeConfig& cfg, const ConstraintList& consB) {
  std::string spec = cfg.constraint_core;
  if (spec.empty()) spec = implies_nonnegative(consB) ? "nonnegative" : "none";
  ConstraintList list;
  if (spec != "none") {
    try {
      list = parse_constraints(spec);
    } catch (const ConfigError& e) {
      throw ConfigError("--constraint core=" + spec + ": " + e.what());
    }
  }
  list.spec = spec;
  if (!is_entrywise_only(list))
    throw ConfigError("--constraint core=" + spec +
                      ": the Tucker core takes entrywise constraints only (nonnegative, clamp:LO:HI, binary or none)");
  return list;
}

void check_tucker_constraints(const ConstraintList& consA, const ConstraintList& consB, const ConstraintList& core) {
  const auto [a_scaled, b_scaled] = check_factor_constraints(consA, consB, "tucker");
  // The core absorbs the scales of the factors' normalizations: positive weights keep nonnegativity, not a
  // clamp or binary values.
  if ((a_scaled || b_scaled) && !(core.empty() || is_only_nonnegative(core)))
    throw ConfigError("--constraint core=" + core.spec + ": the core absorbs the scale of " +
                      (a_scaled ? "A=" + consA.spec : "B=" + consB.spec) +
                      " and would no longer satisfy its own constraint; give the core nonnegative (or none), or use "
                      "a projection such as simplex_columns on the factor instead");
}

std::string list_text(const std::vector<std::size_t>& v) {
  std::string t;
  for (std::size_t n = 0; n < v.size(); ++n) {
    if (n > 0) t += ',';
    t += std::to_string(v[n]);
  }
  return t;
}

std::vector<std::size_t> tucker_ranks(const FactorizeConfig& cfg, const Shape& shape) {
  std::vector<std::size_t> ranks = cfg.ranks.empty() ? std::vector<std::size_t>(shape.size(), cfg.rank) : cfg.ranks;
  auto list = [&] {
    std::vector<std::size_t> fit(ranks.size());
    for (std::size_t n = 0; n < ranks.size(); ++n) fit[n] = std::min(ranks[n], shape[n]);
    return list_text(fit);
  };
  if (ranks.size() != shape.size())
    throw ConfigError("--rank '" + list_text(ranks) + "': " + std::to_string(ranks.size()) +
                      " values for a tensor of " + std::to_string(shape.size()) + " axes (" + shape_string(shape) +
                      "): give one rank per axis, the mixture axis first, then the others in the input's order");
  double core = 1;
  for (std::size_t n = 0; n < shape.size(); ++n) {
    if (ranks[n] < 1) throw ConfigError("--rank: every Tucker rank must be at least 1");
    if (ranks[n] > shape[n])
      throw ConfigError("--rank: rank " + std::to_string(ranks[n]) + " of the model's axis " + std::to_string(n) +
                        " exceeds its extent " + std::to_string(shape[n]) + " (the tensor, mixture axis first, is " +
                        shape_string(shape) + "); e.g. --rank " + list());
    if (ranks[n] > kMaxCpRank)
      throw ConfigError("--rank: Tucker ranks above " + std::to_string(kMaxCpRank) +
                        " are not supported (every step forms R x R matrices)");
    core *= static_cast<double>(ranks[n]);
  }
  if (core > static_cast<double>(std::size_t{1} << 24))
    throw ConfigError("--rank: a Tucker core of " + std::to_string(static_cast<long long>(core)) +
                      " values is beyond the 2^24 taken (every process holds it and contracts it every step)");
  return ranks;
}

/// Parses a factor's constraint spec. A word `linear:FILE.h5` names an HDF5 file with datasets C
/// (k x n, n the factor's first extent) and b (k x m or k x 1); its matrices are loaded here.
ConstraintList parse_factor_constraints(const std::string& spec, const char* factor, const Comm& comm) {
  if (spec.empty() || spec == "none") return ConstraintList{};
  std::string plain, linear_file;
  std::size_t pos = 0;
  while (pos <= spec.size()) {
    const std::size_t nxt = spec.find('+', pos);
    std::string word = spec.substr(pos, nxt == std::string::npos ? std::string::npos : nxt - pos);
    if (word.rfind("linear:", 0) == 0) {
      linear_file = word.substr(7);
      word = "linear";
    }
    plain += (plain.empty() ? "" : "+") + word;
    if (nxt == std::string::npos) break;
    pos = nxt + 1;
  }
  ConstraintList list;
  try {
    list = parse_constraints(plain);
  } catch (const ConfigError& e) {
    throw ConfigError(std::string("--constraint ") + factor + "=" + spec + ": " + e.what());
  }
  list.spec = spec;
  bool has_linear = false;
  for (const auto& c : list.items) has_linear = has_linear || c.kind == ConstraintKind::linear;
  if (!has_linear) return list;
  if (linear_file.empty())
    throw ConfigError(
        std::string("--constraint ") + factor +
        "=linear needs its matrices: write linear:FILE.h5, FILE holding datasets C (k x n) and b (k x m)");
  h5::File f = h5::File::open_read(comm, linear_file);
  Shape cd, bd;
  std::vector<double> C, b;
  collective_try(comm, [&] {
    C = f.read_all("C", &cd);
    b = f.read_all("b", &bd);
    if (cd.size() != 2 || bd.empty() || bd.size() > 2)
      throw DataError("'" + linear_file + "': C must be a matrix (k x n) and b a k x m matrix or a vector of k");
  });
  const std::size_t k = cd[0], n = cd[1], m = bd.size() == 2 ? bd[1] : 1;
  std::vector<double> Ccm(k * n), bcm(k * m);
  for (std::size_t i = 0; i < k; ++i) {
    for (std::size_t j = 0; j < n; ++j) Ccm[i + j * k] = C[i * n + j];
    for (std::size_t j = 0; j < m; ++j) bcm[i + j * k] = b[i * m + j];
  }
  try {
    set_linear(list, std::move(Ccm), k, n, std::move(bcm), m);
  } catch (const ConfigError& e) {
    throw ConfigError(std::string("--constraint ") + factor + "=" + spec + ": " + e.what());
  }
  return list;
}

namespace {

std::string fingerprint(const FactorizeConfig& cfg, const Shape& shape, const Comm& comm, const std::string& grid) {
  std::ostringstream os;
  const auto& o = cfg.solver;
  if (cfg.model != "tucker1") // Tucker-1 checkpoints predate these fields
    os << "model=" << cfg.model << ";block_solver="
       << (o.bpp    ? "bpp"
           : o.hals ? "hals"
                    : "pg")
       << ";inner=" << o.inner << ";inner_tol=" << o.inner_tol << ";";
  os << "input=" << cfg.input << ";dataset=" << cfg.dataset << ";mixture_axis=" << cfg.mixture_axis
     << ";shape=" << shape_string(shape) << ";rank=" << cfg.rank << ";constraint_A=" << cfg.constraint_A
     << ";constraint_B=" << cfg.constraint_B << ";precision=" << cfg.precision << ";processes=" << comm.size()
     << ";grid=" << grid << ";momentum=" << o.momentum << ";delta=" << o.delta << ";subblock=" << o.subblock
     << ";order=" << o.random_order << o.group_by_factor << o.recursive_random_order << ";fused=" << o.fused;
  if (cfg.model == "tucker") {
    os << ";ranks=";
    for (std::size_t n = 0; n < cfg.ranks.size(); ++n) os << (n ? "," : "") << cfg.ranks[n];
    os << ";constraint_core=" << cfg.constraint_core;
  }
  return os.str();
}

/// Refuses data a factorization cannot use (NaN or infinite entries, all zeros) and warns when both factors
/// are constrained nonnegative but the data has negative entries. Returns whether the data is nonnegative.
template <class Model>
bool check_values(const Model& model, const FactorizeConfig& cfg, const ConstraintList& consA,
                  const ConstraintList& consB, FactorizeSummary& sum, const ConstraintList* core = nullptr) {
  if (model.y_nonfinite() > 0)
    throw DataError("dataset '" + cfg.dataset + "' of '" + cfg.input + "' has " +
                    std::to_string(static_cast<long long>(model.y_nonfinite())) +
                    " NaN or infinite entries; remove or impute them before factorizing");
  if (model.normY2() == 0)
    throw DataError("dataset '" + cfg.dataset + "' of '" + cfg.input + "' is all zeros: there is nothing to factorize");
  const double tiny = 1e-12 * std::max(std::abs(model.y_max()), std::abs(model.y_min()));
  const bool y_nonneg = model.y_min() >= -tiny;
  if (!y_nonneg && implies_nonnegative(consA) && implies_nonnegative(consB) && (!core || implies_nonnegative(*core))) {
    char buf[200];
    std::snprintf(buf, sizeof buf,
                  "the data has negative entries (min %.4g) but %s constrained nonnegative: the model cannot fit them",
                  model.y_min(), core ? "the factors and the core are" : "both factors are");
    sum.warnings.push_back(buf);
  }

  return y_nonneg;
}

/// When checkpoints are written (--checkpoint-every, and when a stop request or the wall-clock limit ends the
/// run) and where (--checkpoint, or OUT.ckpt.h5 for a stop request without it). The same for every model.
struct CheckpointPlan {
  CheckpointPlan(const FactorizeConfig& c, const Comm& cm)
      : cfg(c), comm(cm), path(c.checkpoint.empty() ? c.out + ".ckpt.h5" : c.checkpoint) {}
  bool due(std::size_t k, bool stopping) const {
    if (stopping) return !cfg.checkpoint.empty() || static_cast<bool>(cfg.stop_requested);
    if (cfg.checkpoint.empty()) return false;
    bool d = cfg.checkpoint_every_iters > 0 && k % cfg.checkpoint_every_iters == 0;
    if (cfg.checkpoint_every_seconds > 0) d = d || comm.allreduce(since(last), Op::max) >= cfg.checkpoint_every_seconds;
    return d;
  }
  void written(FactorizeSummary& sum) {
    sum.checkpoint_written = path;
    last = Clock::now();
  }
  const FactorizeConfig& cfg;
  const Comm& comm;
  std::string path;
  Clock::time_point last = Clock::now();
};

/// The hooks of a solve (SolveControl or CpSolveControl): progress, stop requests (any process asking stops
/// all), the resume state when --resume is given, and checkpoints when `plan` says, written by `write`.
template <class Control, class State, class Write>
Control solve_control(const FactorizeConfig& cfg, const Comm& comm, const ProgressFn& progress, const State* resume,
                      CheckpointPlan& plan, FactorizeSummary& sum, Write write) {
  Control ctl;
  if (progress)
    ctl.on_iteration = [&cfg, progress](const IterationStats& s) {
      progress(s, cfg.solver.maxiter);
      return true;
    };
  if (!cfg.resume.empty()) ctl.resume = resume;
  if (cfg.stop_requested) ctl.stop_requested = [&cfg, &comm] { return comm.any(cfg.stop_requested()); };
  ctl.want_checkpoint = [&plan](std::size_t k, bool stopping) { return plan.due(k, stopping); };
  ctl.write_checkpoint = [&plan, &sum, write](const auto& f, const auto& st) {
    write(f, st);
    plan.written(sum);
  };
  return ctl;
}

/// The input, distributed (its read time and grid noted in `sum`); a dataset of one axis is refused with
/// `needs` (what the model needs).
template <class T>
DistTensor<T> read_input(const FactorizeConfig& cfg, const Comm& comm, FactorizeSummary& sum, Clock::time_point t0,
                         const std::string& needs, const h5::WorkingBytes& working = {},
                         const std::string& working_what = "") {
  DistTensor<T> Y = h5::read_distributed<T>(comm, cfg.input, cfg.dataset, cfg.mixture_axis, cfg.grid, cfg.memory_limit,
                                            working, working_what);
  // The check's estimate, for the summary (the same count read_distributed made for this block).
  const double extra = working ? working(Y.global_shape(), Y.local().shape(), Y.grid().dims()[0] > 1) : 0.0;
  sum.estimate_bytes =
      comm.allreduce(h5::read_footprint_bytes(static_cast<double>(Y.local().size()), sizeof(T), extra), Op::max);
  sum.read_seconds = comm.allreduce(since(t0), Op::max);
  sum.grid = Y.grid().to_string();
  const Shape& shape = Y.global_shape();
  if (shape.size() < 2)
    throw DataError("dataset '" + cfg.dataset + "' of '" + cfg.input + "' has 1 axis (" + shape_string(shape) + "); " +
                    needs);
  return Y;
}

/// What a solve's summary reports beside its result: its time, the peak memory and Y's block (maxima over the
/// processes), and a warning for steps left unscaled (`zero_what`: what has a zero step constant).
void finish_summary(FactorizeSummary& sum, Clock::time_point solve_start, const Comm& comm, double y_block_bytes,
                    const std::string& zero_what) {
  sum.seconds = comm.allreduce(since(solve_start), Op::max);
  sum.peak_bytes = comm.allreduce(static_cast<double>(peak_resident_bytes()), Op::max);
  sum.y_bytes = comm.allreduce(y_block_bytes, Op::max);
  if (sum.result.zero_step_warnings > 0)
    sum.warnings.push_back(std::to_string(sum.result.zero_step_warnings) + " step(s) had a zero Lipschitz constant (" +
                           zero_what + ") and were left unscaled");
}

/// The attributes every output file has (the solve's result, where it ran, every option given). Called once the
/// factors are written: the peak memory is taken again here, so that it covers writing them.
void write_attributes(h5::File& fo, const FactorizeConfig& cfg, FactorizeSummary& sum, const Comm& comm,
                      const ConstraintList& consA, const ConstraintList& consB) {
  sum.peak_bytes = comm.allreduce(static_cast<double>(peak_resident_bytes()), Op::max);
  fo.attr("unmix_version", std::string(UNMIX_VERSION));
  fo.attr("model", cfg.model);
  fo.attr("input", cfg.input);
  fo.attr("dataset", cfg.dataset);
  fo.attr("mixture_axis", static_cast<long long>(cfg.mixture_axis));
  fo.attr("rank", static_cast<long long>(cfg.rank));
  fo.attr("seed", static_cast<unsigned long long>(cfg.solver.seed));
  fo.attr("processes", static_cast<long long>(comm.size()));
  fo.attr("grid", sum.grid);
  fo.attr("precision", cfg.precision);
  fo.attr("constraint_A", consA.spec.empty() ? std::string("none") : consA.spec);
  fo.attr("constraint_B", consB.spec.empty() ? std::string("none") : consB.spec);
  fo.attr("stop_reason", sum.result.stop_reason);
  fo.attr("iterations", static_cast<long long>(sum.result.iterations));
  fo.attr("rel_error", sum.result.stats.back().rel_error);
  fo.attr("seconds", sum.seconds);
  fo.attr("read_seconds", sum.read_seconds);
  fo.attr("peak_memory_bytes", sum.peak_bytes);
  fo.attr("y_block_bytes", sum.y_bytes);
  fo.attr("memory_estimate_bytes", sum.estimate_bytes);
  for (const auto& [k, v] : cfg.options_text) fo.attr("option." + k, v);
  std::vector<std::vector<double>> rows;
  for (const auto& st : sum.result.stats) rows.push_back(st.row());
  fo.write_table("stats", IterationStats::columns(), rows);
}

template <class T> FactorizeSummary run(const FactorizeConfig& cfg, const Comm& comm, const ProgressFn& progress) {
  FactorizeSummary sum;
  auto t0 = Clock::now();
  ConstraintList consA = parse_factor_constraints(cfg.constraint_A, "A", comm);
  ConstraintList consB = parse_factor_constraints(cfg.constraint_B, "B", comm);
  if (cfg.rank < 1) throw ConfigError("--rank must be at least 1");
  // The check before reading counts the solve's arrays beside the block (at a small mixture count B and its
  // copies outweigh Y); a rank beyond what the data allow is refused after reading, so it is capped here.
  const h5::WorkingBytes solve_arrays = [&](const Shape& global, const Shape& box, bool split) {
    const std::size_t I = global[0], M = shape_size(global) / std::max<std::size_t>(I, 1);
    Tucker1Footprint fp = Tucker1Footprint::of(box, std::min(cfg.rank, std::min(I, M)), sizeof(T), split);
    fp.checkpoints = !cfg.checkpoint.empty();
    const double solve_bytes = tucker1_solve_bytes(fp, consA, consB, cfg.solver);
    if (!cfg.multiscale) return solve_bytes;
    // Coarse-to-fine: the finest solve with the previous level's factors still held (B at half the size at
    // most), or a coarsening of the block, whichever is more: the block gathered with its neighbours' halos
    // where a coarsened axis is split over processes (T a value; none where the block holds all it reads),
    // the first coarsened axis resampled in doubles (half the block: 4 bytes a value), in float the coarse
    // block as stored (2), and the previous level's factors (a quarter of B at most). Between levels the C
    // library's free heap is handed back (release_free_heap): the leftovers of the coarse levels' arrays held
    // up to 140 MB more at 8 x 300 x 10000 in float (tests/cli/factorize.cpp checks the estimate there).
    bool gathers = false;
    for (int a : cfg.continuous_axes) {
      const std::size_t m = tensor_mode(a, cfg.mixture_axis);
      gathers = gathers || (a >= 0 && m < box.size() && box[m] < global[m]);
    }
    const double b = 8.0 * static_cast<double>(fp.R) * static_cast<double>(fp.Mp);
    const double block = static_cast<double>(shape_size(box));
    const double per_value = (gathers ? static_cast<double>(sizeof(T)) : 0.0) + 4.0 + (sizeof(T) == 4 ? 2.0 : 0.0);
    return std::max(solve_bytes + 0.5 * b, block * per_value + 0.25 * b);
  };
  DistTensor<T> Y = read_input<T>(cfg, comm, sum, t0, "Tucker-1 needs at least 2 (mixtures x the rest)", solve_arrays,
                                  "the solve's arrays (rank " + std::to_string(cfg.rank) + ")");
  const Shape& shape = Y.global_shape();
  const std::size_t I = shape[0], M = shape_size(shape) / std::max<std::size_t>(I, 1);
  if (cfg.rank > std::min(I, M))
    throw ConfigError("--rank " + std::to_string(cfg.rank) + " is larger than the tensor allows: with " +
                      std::to_string(I) + " mixtures and " + std::to_string(M) +
                      " entries per mixture the rank can be at most " + std::to_string(std::min(I, M)));
  if (!scale_compensable(consB, shape.size(), 0))
    throw ConfigError(
        "--constraint B=" + cfg.constraint_B +
        ": a scaled normalization of B must act on whole 1-slices (or the whole array) so that A can "
        "absorb the scale exactly; use 1slices/rows/average12slices, or a projection such as l1normalize");
  if (!scale_compensable(consA, 2, 1))
    throw ConfigError("--constraint A=" + cfg.constraint_A +
                      ": a scaled normalization of A must act on its columns (or the whole array) so that B can "
                      "absorb the scale exactly; use columns, or a projection such as simplex_rows");
  check_tucker1_scaling(consA, consB);

  Tucker1<T> model(Y, cfg.rank);
  const bool y_nonneg = check_values(model, cfg, consA, consB, sum);
  Factors f;
  SolverState resume_state;
  const std::string fp = fingerprint(cfg, shape, comm, sum.grid);
  if (!cfg.resume.empty()) {
    read_checkpoint(comm, cfg.resume, model, f, resume_state, fp);
  } else if (cfg.multiscale) {
    // Its own start on the coarsest grid (checked below): a start on this grid would only take memory.
  } else if (cfg.init == "random") {
    init_random(model, f, cfg.solver.seed, y_nonneg, consA, consB);
  } else if (cfg.init == "nndsvd") {
    init_nndsvd(model, f, unfolding_spectrum(Y), consA, consB);
  } else {
    h5::File in = h5::File::open_read(comm, cfg.init);
    collective_try(comm, [&] {
      if (!in.has("A") || !in.has("B"))
        throw DataError("--init '" + cfg.init + "' needs datasets A and B (as unmix factorize writes them)");
      const auto ai = in.info("A"), bi = in.info("B");
      const Shape want_a{I, cfg.rank}, want_b = model.b_global_shape();
      if (ai.dims != want_a || bi.dims != want_b)
        throw DataError("--init '" + cfg.init + "': A is " + shape_string(ai.dims) + " and B is " +
                        shape_string(bi.dims) + ", but this problem needs A " + shape_string(want_a) + " and B " +
                        shape_string(want_b));
    });
    collective_try(comm, [&] {
      f.A = h5::read_box(in, "A", {model.row_offset(), 0}, {model.rows_local(), cfg.rank});
      f.B = h5::read_box(in, "B", model.b_offset(), model.b_local_shape());
    });
    double bad = 0;
    for (double v : f.A.span()) bad += std::isfinite(v) ? 0 : 1;
    for (double v : f.B.span()) bad += std::isfinite(v) ? 0 : 1;
    if (comm.allreduce(bad) > 0) throw DataError("--init '" + cfg.init + "': A or B holds NaN or infinite values");
    apply_constraints_once(model, f, consA, consB);
  }

  // Write to a temporary name; it is renamed only when complete.
  h5::AtomicOutput out(comm, cfg.out, cfg.overwrite);
  auto ts = Clock::now();
  CheckpointPlan plan(cfg, comm);
  const auto ctl = solve_control<SolveControl>(
      cfg, comm, progress, &resume_state, plan, sum,
      [&](const Factors& cf, const SolverState& st) { write_checkpoint(comm, plan.path, model, cf, st, fp); });
  if (cfg.multiscale) {
    if (!cfg.resume.empty() || !cfg.checkpoint.empty())
      throw ConfigError("--multiscale cannot be combined with --checkpoint or --resume yet; run single-scale");
    if (cfg.init != "random")
      throw ConfigError("--multiscale starts from a random start on the coarsest grid; drop --init");
    MultiscaleOptions ms;
    for (int a : cfg.continuous_axes) {
      if (a < 0 || static_cast<std::size_t>(a) >= shape.size())
        throw ConfigError("--continuous-axes: axis " + std::to_string(a) +
                          " does not exist; the dataset has axes 0 to " + std::to_string(shape.size() - 1));
      if (a == cfg.mixture_axis)
        throw ConfigError("--continuous-axes: axis " + std::to_string(a) +
                          " is the mixture axis, which cannot be coarsened (A would change with the grid)");
      ms.modes.push_back(tensor_mode(a, cfg.mixture_axis));
    }
    sum.result = solve_multiscale(Y, cfg.rank, f, consA, consB, cfg.solver, y_nonneg, ms, ctl.on_iteration).result;
  } else {
    sum.result = solve(model, f, consA, consB, cfg.solver, ctl);
    if (sum.result.interrupted) {
      sum.interrupted = true;
      sum.seconds = comm.allreduce(since(ts), Op::max);
      return sum; // no output: the checkpoint holds the state (AtomicOutput leaves nothing behind)
    }
  }
  finish_summary(sum, ts, comm, static_cast<double>(Y.local().size() * sizeof(T)),
                 "an all-zero row of B or column of A");

  {
    h5::File fo = h5::File::create(comm, out.tmp_path());
    h5::write_distributed(fo, "A", {I, cfg.rank}, {model.row_offset(), 0}, f.A, model.owns_A());
    h5::write_distributed(fo, "B", model.b_global_shape(), model.b_offset(), f.B, model.owns_B());
    write_attributes(fo, cfg, sum, comm, consA, consB);
  }
  out.commit();
  return sum;
}

/// The models with one factor per mode: CP (Model = CP<T>) and Tucker (Tucker<T>, with its core).
template <class T, class Model>
FactorizeSummary run_modes(const FactorizeConfig& cfg, const Comm& comm, const ProgressFn& progress) {
  constexpr bool tucker = Model::has_core;
  const std::string name = tucker ? "tucker" : "cp";
  FactorizeSummary sum;
  check_cp_options(cfg);
  auto t0 = Clock::now();
  ConstraintList consA = parse_factor_constraints(cfg.constraint_A, "A", comm);
  ConstraintList consB = parse_factor_constraints(cfg.constraint_B, "B", comm);
  if (cfg.rank < 1) throw ConfigError("--rank must be at least 1");
  ConstraintList consCore;
  if constexpr (tucker) {
    consCore = tucker_core_constraints(cfg, consB);
    check_tucker_constraints(consA, consB, consCore);
  } else {
    check_cp_rank(cfg.rank);
    check_cp_constraints(consA, consB);
  }
  // The check before reading counts the solve's arrays beside the block (CP's Khatri-Rao products alone can
  // outweigh Y at few mixtures). Ranks the data do not allow are refused after reading, so they are capped here.
  const h5::WorkingBytes solve_arrays = [&](const Shape& global, const Shape& box, bool) {
    const std::size_t N = global.size();
    ModeFactorsFootprint fp;
    fp.box = box;
    fp.ranks.assign(N, cfg.rank);
    if (tucker && cfg.ranks.size() == N) fp.ranks = cfg.ranks;
    for (std::size_t n = 0; n < N; ++n) fp.ranks[n] = std::clamp<std::size_t>(fp.ranks[n], 1, global[n]);
    fp.value_bytes = sizeof(T);
    fp.core = tucker;
    fp.checkpoints = !cfg.checkpoint.empty();
    // The tree is decided by the shortest block of the last mode, this one or one shorter by 1 (blocks differ by
    // at most 1): where the two decide differently, both are counted.
    const std::size_t J = box[N - 1];
    fp.tree = Model::tree_pays(N, fp.ranks[N - 1], J > 0 ? J - 1 : 0);
    double bytes = mode_factors_solve_bytes(fp);
    if (!fp.tree && Model::tree_pays(N, fp.ranks[N - 1], J)) {
      fp.tree = true;
      bytes = std::max(bytes, mode_factors_solve_bytes(fp));
    }
    return bytes;
  };
  DistTensor<T> Y =
      read_input<T>(cfg, comm, sum, t0, "the " + name + " model needs at least 2", solve_arrays,
                    "the solve's arrays (rank " +
                        (tucker && !cfg.ranks.empty() ? list_text(cfg.ranks) : std::to_string(cfg.rank)) + ")");
  const Shape& shape = Y.global_shape();
  const std::size_t N = shape.size();
  std::vector<ConstraintList> cons(N, consB);
  cons[0] = consA;
  std::optional<Model> built;
  if constexpr (tucker) {
    built.emplace(Y, tucker_ranks(cfg, shape));
    cons.push_back(consCore);
    sum.ranks = shape_string(built->ranks());
  } else {
    built.emplace(Y, cfg.rank);
  }
  const Model& model = *built;
  const bool y_nonneg = check_values(model, cfg, consA, consB, sum, tucker ? &consCore : nullptr);
  if constexpr (tucker) {
    // R_n above the product of the other ranks: the core's mode-n unfolding has at most that rank, and so
    // factor n at most that many independent columns.
    for (std::size_t n = 0; n < N; ++n) {
      std::size_t others = 1;
      for (std::size_t m = 0; m < N; ++m)
        if (m != n) others *= model.rank(m);
      if (model.rank(n) > others)
        sum.warnings.push_back("Tucker rank " + std::to_string(model.rank(n)) + " of axis " + std::to_string(n) +
                               " exceeds the product of the other ranks (" + std::to_string(others) +
                               "): that factor has at most " + std::to_string(others) +
                               " independent columns; a lower rank fits as well");
    }
  }
  CpFactors f;
  CpSolverState resume_state;
  std::string fp;
  if constexpr (tucker) {
    // The ranks and the core's constraint as resolved (a single --rank, the default core constraint).
    FactorizeConfig resolved = cfg;
    resolved.ranks = model.ranks();
    resolved.constraint_core = consCore.spec;
    fp = fingerprint(resolved, shape, comm, sum.grid);
  } else {
    fp = fingerprint(cfg, shape, comm, sum.grid);
  }
  if (!cfg.resume.empty()) {
    read_cp_checkpoint(comm, cfg.resume, model, f, resume_state, fp);
  } else if (cfg.init == "random") {
    init_random_cp(model, f, cfg.solver.seed, y_nonneg, cons);
  } else {
    // A start from a file with A and factor_1 ... (and the core for Tucker): an earlier output of the same
    // model, e.g. of a run stopped by a signal, its shapes checked against this problem's.
    h5::File in = h5::File::open_read(comm, cfg.init);
    collective_try(comm, [&] {
      // An output of the other factor model may have the same factor shapes: refuse it rather than drop its core
      // (or read a CP result as a Tucker start without one).
      const std::string written = in.attr_string("model").value_or("");
      if ((written == "cp" || written == "tucker") && written != name)
        throw DataError("--init '" + cfg.init + "' is an output of --model " + written + "; a " + name +
                        " start needs an output of --model " + name);
    });
    std::vector<std::string> names{"A"};
    std::vector<Shape> want;
    for (std::size_t n = 1; n < N; ++n) names.push_back("factor_" + std::to_string(n));
    for (std::size_t n = 0; n < N; ++n) want.push_back({shape[n], model.rank(n)});
    if constexpr (tucker) {
      names.push_back("core");
      want.push_back(model.core_shape());
    }
    collective_try(comm, [&] {
      for (std::size_t k = 0; k < names.size(); ++k)
        if (!in.has(names[k]))
          throw DataError(
              "--init '" + cfg.init + "' has no dataset " + names[k] + "; a " +
              (tucker ? "Tucker start needs A, factor_1 ... and core" : "CP start needs A and factor_1 ...") +
              " (as factorize --model " + name + " writes them)");
      for (std::size_t k = 0; k < names.size(); ++k) {
        const Shape have = in.info(names[k]).dims;
        if (have != want[k])
          throw DataError("--init '" + cfg.init + "': " + names[k] + " is " + shape_string(have) +
                          " but this problem needs " + shape_string(want[k]));
      }
    });
    collective_try(comm, [&] {
      f.F.clear();
      for (std::size_t n = 0; n < N; ++n)
        f.F.push_back(h5::read_box(in, names[n], {model.row_offset(n), 0}, {model.rows_local(n), model.rank(n)}));
      if constexpr (tucker) f.G = h5::read_box(in, "core", Shape(N, 0), model.core_shape());
    });
    double bad = 0;
    for (const auto& X : f.F)
      for (double v : X.span()) bad += std::isfinite(v) ? 0 : 1;
    for (double v : f.G.span()) bad += std::isfinite(v) ? 0 : 1;
    if (comm.allreduce(bad) > 0) throw DataError("--init '" + cfg.init + "': the start holds NaN or infinite values");
    apply_cp_constraints_once(model, f, cons);
  }

  h5::AtomicOutput out(comm, cfg.out, cfg.overwrite);
  auto ts = Clock::now();
  CheckpointPlan plan(cfg, comm);
  const auto ctl = solve_control<CpSolveControl>(
      cfg, comm, progress, &resume_state, plan, sum,
      [&](const CpFactors& cf, const CpSolverState& st) { write_cp_checkpoint(comm, plan.path, model, cf, st, fp); });
  sum.result = solve_cp(model, f, cons, cfg.solver, ctl);
  if (sum.result.interrupted) {
    sum.interrupted = true;
    sum.seconds = comm.allreduce(since(ts), Op::max);
    return sum; // no output: the checkpoint holds the state (AtomicOutput leaves nothing behind)
  }
  finish_summary(sum, ts, comm, static_cast<double>(Y.local().size() * sizeof(T)),
                 tucker ? "an all-zero column of a factor, or a factor of zeros (the core's step)"
                        : "an all-zero column of a factor");
  if constexpr (!tucker) {
    const std::vector<double> core = model.least_squares_core(f.F);
    if (!core.empty()) sum.core_consistency = core_consistency(core, cfg.rank, N);
  }
  {
    h5::File fo = h5::File::create(comm, out.tmp_path());
    h5::write_distributed(fo, "A", {shape[0], model.rank(0)}, {model.row_offset(0), 0}, f.F[0], model.owns(0));
    // B, the product of the factors (and the core), is formed a piece at a time as it is written: whole it is
    // R / I_0 of Y in doubles.
    h5::write_generated(fo, "B", model.b_global_shape(), model.b_offset(), model.b_local_shape(), model.owns_B(),
                        [&](const Shape& at, const Shape& count) {
                          if constexpr (tucker)
                            return model.sources_box(f.F, f.G, at, count);
                          else
                            return model.sources_box(f.F, at, count);
                        });
    if constexpr (tucker) h5::write_distributed(fo, "core", model.core_shape(), Shape(N, 0), f.G, model.owns_core());
    if (std::isfinite(sum.core_consistency)) fo.attr("core_consistency", sum.core_consistency);
    for (std::size_t n = 1; n < N; ++n)
      h5::write_distributed(fo, "factor_" + std::to_string(n), {shape[n], model.rank(n)}, {model.row_offset(n), 0},
                            f.F[n], model.owns(n));
    write_attributes(fo, cfg, sum, comm, consA, consB);
    if constexpr (tucker) {
      fo.attr("ranks", list_text(model.ranks()));
      fo.attr("constraint_core", consCore.spec);
    }
  }
  out.commit();
  return sum;
}

} // namespace

std::string convergence_plot(const std::vector<IterationStats>& stats, const std::string& title) {
  const std::size_t n = stats.size(), step = n > 2000 ? (n + 1999) / 2000 : 1;
  std::vector<std::vector<double>> rows;
  bool any_stationarity = false;
  auto add = [&](const IterationStats& s) {
    const bool st = std::isfinite(s.rel_stationarity) && s.rel_stationarity > 0;
    any_stationarity = any_stationarity || st;
    rows.push_back({s.iteration, s.rel_error > 0 ? s.rel_error : NAN, st ? s.rel_stationarity : NAN});
  };
  for (std::size_t k = 0; k < n; k += step) add(stats[k]);
  if (n > 0 && (n - 1) % step != 0) add(stats[n - 1]); // the last row too
  std::ostringstream g;
  g << gnuplot::datablock("stats", rows);
  g << "set title " << gnuplot::quote(title) << "\n"
    << "set xlabel 'iteration'\nset ylabel 'relative error'\nset logscale y\nset grid\nset key top right\n"
    << "set format y '%g'\n";
  if (any_stationarity)
    g << "set ytics nomirror\nset logscale y2\nset y2tics textcolor rgb '#cc3333'\nset format y2 '%g'\n"
      << "set y2label 'stationarity / its start' textcolor rgb '#cc3333'\n";
  g << "plot $stats using 1:2 with lines linewidth 2 lc rgb '#1f4e9c' title 'relative error'";
  if (any_stationarity)
    g << ", \\\n     $stats using 1:3 axes x1y2 with lines dashtype 2 lc rgb '#cc3333' title 'stationarity'";
  g << "\n";
  return g.str();
}

FactorizeSummary run_factorize(const FactorizeConfig& cfg, const Comm& comm, const ProgressFn& progress) {
  if (cfg.model == "cp") {
    if (cfg.precision == "double") return run_modes<double, CP<double>>(cfg, comm, progress);
    if (cfg.precision == "float") return run_modes<float, CP<float>>(cfg, comm, progress);
  } else if (cfg.model == "tucker") {
    if (cfg.precision == "double") return run_modes<double, Tucker<double>>(cfg, comm, progress);
    if (cfg.precision == "float") return run_modes<float, Tucker<float>>(cfg, comm, progress);
  } else if (cfg.model != "tucker1") {
    throw ConfigError("--model '" + cfg.model +
                      "': use tucker1 (Y = B x1 A), cp (a sum of rank-one tensors) or tucker (a core times a factor "
                      "per axis)");
  } else {
    if (!cfg.ranks.empty()) throw ConfigError("--rank with one value per axis is for --model tucker");
    if (!cfg.constraint_core.empty()) throw ConfigError("--constraint core=... is for --model tucker");
    if (cfg.rank_auto) return run_factorize_auto(cfg, comm, progress);
    if (cfg.precision == "double") return run<double>(cfg, comm, progress);
    if (cfg.precision == "float") return run<float>(cfg, comm, progress);
  }
  throw ConfigError("--precision '" + cfg.precision + "': use float or double");
}

} // namespace unmix
