#pragma once
// Block projected gradient descent for Tucker-1 (ALGORITHMS.md sections 2-6). The solver sees only the
// model's collective products; it cannot tell one process from sixteen.
#include <algorithm>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "unmix/constraints/constraints.hpp"
#include "unmix/core/tensor.hpp"
#include "unmix/solver/policies.hpp"

namespace unmix {

struct SolverOptions {
  std::size_t maxiter = 1000;
  double max_seconds = 0;                                // 0: no wall-clock limit
  std::vector<Tolerance> tol{{Stat::stationarity, 1.0}}; // the reference's default rule
  bool momentum = true;
  double delta = 0.9999;
  bool subblock = false;               // one step constant per row of B / column of A
  bool random_order = false;           // shuffle the block updates every iteration
  bool group_by_factor = false;        // ... keeping each factor's steps together
  bool recursive_random_order = false; // ... and shuffling inside the groups too
  std::uint64_t seed = 1;
  /// One pass over Y per iteration (kernels/fused.hpp) where it gives the same iterates: fixed order,
  /// mixture mode not split, and B's constraints entrywise or entrywise followed by one scaled
  /// normalization that A absorbs (e.g. l1scale_average12slices+nonnegative: the pass applies the ReLU per
  /// tile, the rescaling follows on the whole B and carries over to Y B^T and B B^T; a row the nonnegative
  /// fallback replaces costs one more product with Y in that iteration). Gradient statistics of an iterate are then
  /// completed during the next pass (a run stopped by a gradient tolerance does one extra pass and
  /// returns the iterate that met it).
  bool fused = true;
  /// Projected gradient steps per block and iteration, the product with Y formed once (ALGORITHMS.md
  /// section 11). 1 is the reference's single step. Extra steps are taken only on blocks whose
  /// constraints act entrywise (others keep one step); each column of B / row of A stops on its own
  /// when a step moves it by less than inner_tol times its first extra step.
  std::size_t inner = 1;
  double inner_tol = 0.1;
  /// The extra steps are HALS sweeps (exact coordinate minimization) instead of gradient steps.
  bool hals = false;
  /// Exact block solves: a block whose only constraint is nonnegativity is set to its nonnegative
  /// least-squares minimizer (block principal pivoting, kernels/nnls.hpp) after the step, from the same
  /// products with Y; blocks with other constraints keep the projected gradient step(s).
  bool bpp = false;
  /// With bpp, when both factors are solved exactly: extrapolate each factor after its solve (Ang &
  /// Gillis 2019) instead of Xu & Yin's momentum, X^ = max(0, X + beta (X - X_prev)); the other factor is
  /// solved against X^. beta starts at 0.5 and grows by 1.01 (up to beta_bar, which grows by 1.005 up to
  /// 1) while the error decreases; when it increases, beta_bar takes beta's value, beta is divided by 1.5
  /// and the next solve starts from the plain factor. The iterate reported (and returned) is the last A
  /// solved with the extrapolated B it was solved against. Ignored otherwise.
  bool extrapolate = false;
};

/// The factors of one process: A's rows of its mixture block (I_p x R) and B's columns of its box
/// (R x local extents of the other modes), both column-major.
struct Factors {
  Tensor<double> A, B;
};

struct SolveResult {
  std::vector<IterationStats> stats; // row 0 is the starting point
  std::string stop_reason;
  bool converged = false; // a tolerance was met (not maxiter, time or interruption)
  std::size_t iterations = 0;
  std::size_t zero_step_warnings = 0; // rows/columns left unscaled because their constant was 0
  bool interrupted = false;           // stopped by SolveControl::stop_requested
};

/// Called after every iteration with its statistics; return false to stop (every process must return
/// the same value).
using IterationCallback = std::function<bool(const IterationStats&)>;

/// Everything beyond the factors that the solver needs to continue a run exactly where it stopped:
/// a run resumed from it reaches bit-identical factors (same process count and grid).
struct SolverState {
  std::size_t iteration = 0;            // iterations done; the next one is iteration + 1
  Tensor<double> A_prev, B_prev;        // momentum history
  Tensor<double> A_last, B_last;        // the previous iterate (relative change)
  std::vector<double> LA_last, LB_last; // step constants of the previous iteration
  double LA_cur = 0, LB_cur = 0, f_prev = 0, stat0 = 0;
  double pending_ga2 = 0, pending_sa2 = 0; // A parts of the last row's gradient statistics
  double t = 1, omega_hat = 0;             // momentum schedule
  double seconds = 0;                      // solve time so far
  std::uint64_t rng_state = 0;             // update-order shuffles
  std::size_t zero_steps = 0;
  double beta = 0.5, beta_bar = 1.0; // extrapolation after exact solves (SolverOptions::extrapolate)
  bool restart = false;
  std::vector<IterationStats> stats;
};

/// Hooks of a solve, all optional. Every decision must be the same on every process.
struct SolveControl {
  IterationCallback on_iteration;
  /// Asked after each iteration: write a checkpoint now? (Also asked with stop = true when the run is
  /// about to stop for a stop request or the wall-clock limit.)
  std::function<bool(std::size_t iteration, bool stopping)> want_checkpoint;
  std::function<void(const Factors&, const SolverState&)> write_checkpoint;
  /// Asked after each iteration: stop now (a signal, say)? The state is checkpointed first.
  std::function<bool()> stop_requested;
  /// Continue from this state (the factors passed to solve() must be the checkpoint's).
  const SolverState* resume = nullptr;
};

/// Random start (ALGORITHMS.md section 5): B drawn first, then A; |N(0,1)| entries when `nonnegative`
/// else N(0,1); each entry drawn by its global index, so the start is the same at any process count;
/// then the constraints are applied once (scaled normalizations compensated exactly).
template <class Model>
void init_random(const Model& m, Factors& f, std::uint64_t seed, bool nonnegative, const ConstraintList& consA,
                 const ConstraintList& consB);

/// Apply the constraints once to a given start (compensating scaled normalizations).
template <class Model>
void apply_constraints_once(const Model& m, Factors& f, const ConstraintList& consA, const ConstraintList& consB);

/// Whether a Tucker-1 solve takes the single pass over Y per iteration (the fused B step): asked for
/// (SolverOptions::fused), the updates in the fixed order, the mixture mode whole on every process, and B's
/// constraints entrywise or entrywise followed by a rescaling of whole rows. `b_axes`: B's axes (R and the
/// modes after the mixtures).
bool tucker1_single_pass(const SolverOptions& o, const ConstraintList& consB, std::size_t b_axes, bool mixture_split);

/// A Tucker-1 solve's local sizes and what changes its arrays: for the memory check before reading Y.
struct Tucker1Footprint {
  std::size_t Ip = 0, Mp = 0, R = 0; // the local block is Ip mixtures x Mp entries
  std::size_t value_bytes = 8;       // of Y: 8 (double) or 4 (float)
  std::size_t b_axes = 2;
  bool mixture_split = false; // the grid splits the mixture mode
  bool checkpoints = false;   // SolveControl writes checkpoints (two more copies of B while one is written)
  /// For a local block `box` of Y in mode order (the mixtures first), rank R.
  static Tucker1Footprint of(const Shape& box, std::size_t R, std::size_t value_bytes, bool mixture_split) {
    Tucker1Footprint fp;
    fp.Ip = box.empty() ? 0 : box[0];
    fp.Mp = shape_size(box) / std::max<std::size_t>(fp.Ip, 1);
    fp.R = R;
    fp.value_bytes = value_bytes;
    fp.b_axes = box.size();
    fp.mixture_split = mixture_split;
    return fp;
  }
};

/// The most memory a Tucker-1 solve holds at once beyond Y's block, per process, in bytes: the factors
/// (B, R x Mp doubles, and A) and the solver's own arrays, counted in copies of B at the path the options
/// take: the single pass keeps B and its momentum history (and the previous iterate with extrapolation),
/// the two-pass iteration those, the previous iterate and A^T Y; on top of them the largest transient (a
/// gradient, A^T Y in float, the exact solves' per-column state, a checkpoint's copies), plus the
/// I x R arrays. Checked against measured peaks in tests/cli/factorize.cpp.
double tucker1_solve_bytes(const Tucker1Footprint& fp, const ConstraintList& consA, const ConstraintList& consB,
                           const SolverOptions& o);

template <class Model>
SolveResult solve(const Model& m, Factors& f, const ConstraintList& consA, const ConstraintList& consB,
                  const SolverOptions& opts, const IterationCallback& callback = {});
template <class Model>
SolveResult solve(const Model& m, Factors& f, const ConstraintList& consA, const ConstraintList& consB,
                  const SolverOptions& opts, const SolveControl& control);

} // namespace unmix
