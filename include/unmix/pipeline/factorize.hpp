#pragma once
// `unmix factorize` as one library call: read the tensor, validate, start, solve, write the output
// file atomically.
#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "unmix/core/mpi.hpp"
#include "unmix/solver/solver.hpp"

namespace unmix {

struct FactorizeConfig {
  std::string input, dataset;
  int mixture_axis = 0;
  /// "tucker1" (Y = B x1 A), "cp" (Y = sum_r a0_r o a1_r o ...) or "tucker" (Y = G x0 F0 x1 F1 ...; both
  /// solver/cp_solver.hpp). With cp and tucker, constraint_A constrains factor 0 (the mixtures) and
  /// constraint_B every other factor.
  std::string model = "tucker1";
  std::size_t rank = 0;
  /// tucker: one rank per axis of the model (the mixture axis first, then the others in the input's order);
  /// empty: `rank` for every axis.
  std::vector<std::size_t> ranks;
  std::string constraint_A = "nonnegative", constraint_B = "nonnegative";
  /// tucker: the core's constraints (entrywise only); empty: nonnegative when B's imply it, else none.
  std::string constraint_core;
  SolverOptions solver;
  std::string precision = "double"; // or "float": Y stored in float32
  double memory_limit = 0;          // bytes per node the processes there may use (0: the job's or node's)
  std::string init = "random";      // "random" or an HDF5 file with A and B
  std::optional<std::string> grid;
  std::string out;
  bool overwrite = false;
  /// --rank auto: sweep these candidate ranks ("" = 1 to min(I, M, 12)) over `groups` process groups
  /// (0 = chosen from the data size), pick by `curvature`, keep the chosen factorization.
  bool rank_auto = false;
  std::string auto_ranks;
  int groups = 0;
  std::string curvature = "finite-differences";
  /// --multiscale: solve coarse to fine along these dataset axes (as h5py shows them; never the mixture
  /// axis), see multiscale/multiscale.hpp.
  bool multiscale = false;
  std::vector<int> continuous_axes;
  /// Checkpoints: written to `checkpoint` every so many iterations and/or seconds (0: never), and
  /// always when the run is stopped by `stop_requested` (to `checkpoint`, or OUT.ckpt.h5 if unset).
  std::string checkpoint;
  std::size_t checkpoint_every_iters = 0;
  double checkpoint_every_seconds = 0;
  /// Continue from a checkpoint of the same problem and options (same process count and grid).
  std::string resume;
  /// Polled after every iteration on every process (any process saying yes stops all of them).
  std::function<bool()> stop_requested;
  /// Every option as given, written as attributes of the output file.
  std::map<std::string, std::string> options_text;
};

struct FactorizeSummary {
  SolveResult result;
  double seconds = 0;        // solve time (wall, max over processes)
  double read_seconds = 0;   // reading the input
  double peak_bytes = 0;     // largest resident memory of a process, read and solve (max over processes)
  double y_bytes = 0;        // the largest local block of Y (max over processes)
  double estimate_bytes = 0; // the memory check's estimate for a process (block, read piece and, for
                             // Tucker-1, the solve's arrays; max over processes)
  std::string grid;
  std::vector<std::string> warnings;
  std::size_t chosen_rank = 0; // --rank auto: the rank kept
  std::string ranks;           // --model tucker: the ranks used, one per axis of the model ("3x2x2")
  /// --model cp: the core consistency of the result in percent (kernels/mttkrp.hpp), NaN when not computed.
  double core_consistency = std::numeric_limits<double>::quiet_NaN();
  bool interrupted = false;       // stopped on request: no output written, the checkpoint holds the state
  std::string checkpoint_written; // the last checkpoint written, if any
};

/// Progress: called on every process after each iteration (print from rank 0 only).
using ProgressFn = std::function<void(const IterationStats&, std::size_t maxiter)>;

/// Parses a factor's constraint spec as --constraint gives it (`factor` is "A" or "B"); a word
/// `linear:FILE.h5` loads C and b from FILE collectively over `comm`.
ConstraintList parse_factor_constraints(const std::string& spec, const char* factor, const Comm& comm);

/// Tucker-1: B absorbs the weights of A's scaled normalization after B's own step, so with one B may carry
/// no constraint but nonnegativity (else B ends every iteration rescaled off its constraints).
void check_tucker1_scaling(const ConstraintList& consA, const ConstraintList& consB);

/// What --model cp and --model tucker do not take (Tucker-1 features: --rank auto, multiscale, --init nndsvd, random
/// orders,
/// --extrapolate), refused with a ConfigError before the data is read.
void check_cp_options(const FactorizeConfig& cfg);
/// CP constraints: every factor is a matrix, so normalizations act on columns or rows (not Tucker-1's slices
/// of a source tensor) and scaled ones on columns (or the whole factor); B's list (shared by factors of
/// different extents) cannot hold a linear constraint; one side at most has a scaled normalization, and when it
/// is B's, A (which absorbs the scale after its own step) has no constraint but nonnegativity.
void check_cp_constraints(const ConstraintList& consA, const ConstraintList& consB);
/// Tucker constraints: as CP's for the factors (check_cp_constraints), and the core, which absorbs the scales of
/// the factors' scaled normalizations, then takes no constraint but nonnegativity.
void check_tucker_constraints(const ConstraintList& consA, const ConstraintList& consB, const ConstraintList& core);
/// The Tucker core's constraint list from --constraint core=SPEC (or its default, FactorizeConfig).
ConstraintList tucker_core_constraints(const FactorizeConfig& cfg, const ConstraintList& consB);
/// The Tucker ranks of a tensor of this shape (mixture axis first), checked: one per axis, 1 to its extent,
/// a core of at most 2^24 values.
std::vector<std::size_t> tucker_ranks(const FactorizeConfig& cfg, const Shape& shape);
/// Ranks as --rank takes them ("3,2,4").
std::string list_text(const std::vector<std::size_t>& v);
/// The largest CP (and Tucker) rank taken (every step forms R x R matrices).
constexpr std::size_t kMaxCpRank = 4096;
void check_cp_rank(std::size_t rank);

FactorizeSummary run_factorize(const FactorizeConfig& cfg, const Comm& comm, const ProgressFn& progress = {});

/// The gnuplot commands of the convergence plot of a solve: the relative error per iteration and, on a
/// second axis, the stationarity relative to its start where it was computed (both logarithmic), the data
/// inline (datablock $stats: iteration, rel_error, rel_stationarity; at most about 2000 rows, evenly
/// spaced, the last one kept). Pure, for tests.
std::string convergence_plot(const std::vector<IterationStats>& stats, const std::string& title);

} // namespace unmix
