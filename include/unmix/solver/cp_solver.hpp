#pragma once
// Block projected gradient descent for the models with one factor per mode (ALGORITHMS.md sections 1-6): the
// CP model, and the Tucker model (model/tucker.hpp) with its core as one more block. Each iteration updates
// the core first (Tucker), then the factors in mode order 0, 1, ..., N-1. For factor n, with H_n the
// Hadamard product of the other factors' Gram matrices and M_n their MTTKRP with Y (CP), or H_n and M_n the
// core's contractions of model/tucker.hpp:
//     grad_n = F_n H_n - M_n,   L_n = sigma_max(H_n)   (one constant per column with subblock),
//     F_n <- P_n(F_n - grad_n / L_n)  after Xu & Yin's extrapolation (the same rule as Tucker-1).
// --inner steps and exact nonnegative least-squares solves (block principal pivoting) use the same H_n
// and M_n (section 11). A scaled normalization of factor n (columns or the whole factor) is absorbed
// exactly, so the model is unchanged by it: for CP by factor 0, or by factor 1 when n = 0; for Tucker by
// the core's mode-n slices.
// The Tucker core's step: grad_G = G x_0 F_0^T F_0 ... - Y x_0 F_0^T ..., L = prod_n sigma_max(F_n^T F_n),
// momentum as the factors', entrywise constraints only, --inner - 1 more steps from the same product (the
// core is one block: no exact solve); its product with Y comes from the last factor's pass.
//
// Statistics per iteration: objective and relative error from the Gram matrices and the last block's
// product (no extra pass); the gradient statistics (grad_norm, stationarity, rel_stationarity; the core's
// gradient included) need every other mode's product at the new iterate and are computed only when a
// tolerance asks for one of them (NaN otherwise). Passes over Y per iteration: with the CP model's dimension
// tree (CP::uses_tree) 2, the statistics included; otherwise one per mode, and N - 1 more for the gradient
// statistics.
#include <cstdint>
#include <functional>
#include <vector>

#include "unmix/constraints/constraints.hpp"
#include "unmix/solver/solver.hpp"

namespace unmix {

/// The factors of one process: factor n's rows of this process's block of mode n (rows_local(n) x R_n); for
/// the Tucker model also the core (the same on every process; empty for CP).
struct CpFactors {
  std::vector<Tensor<double>> F;
  Tensor<double> G;
};

/// The factor that absorbs the scale weights of factor n's scaled normalization.
inline std::size_t cp_compensating_factor(std::size_t n) { return n == 0 ? 1 : 0; }

/// Everything beyond the factors the solver needs to continue exactly where it stopped (a run resumed from it
/// reaches bit-identical factors at the same process count and grid).
struct CpSolverState {
  std::size_t iteration = 0;               // iterations done
  std::vector<Tensor<double>> prev, last;  // per factor: momentum history, previous iterate
  std::vector<std::vector<double>> L_last; // per factor: step constants of the previous iteration
  std::vector<double> L_cur;               // per factor: the largest step constant of the last iteration
  Tensor<double> core_prev, core_last;     // Tucker: the core's momentum history and previous iterate
  std::vector<double> core_L_last;         // Tucker: the core's step constant of the previous iteration
  double f_prev = 0, stat0 = 0, t = 1, omega_hat = 0, seconds = 0;
  std::size_t zero_steps = 0;
  std::vector<IterationStats> stats;
};

/// Hooks of a CP or Tucker solve, all optional, as SolveControl's for Tucker-1.
struct CpSolveControl {
  IterationCallback on_iteration;
  std::function<bool(std::size_t iteration, bool stopping)> want_checkpoint;
  std::function<void(const CpFactors&, const CpSolverState&)> write_checkpoint;
  std::function<bool()> stop_requested;
  const CpSolverState* resume = nullptr; // continue from this state (the factors passed must be its)
};

/// Random start: |N(0,1)| entries when `nonnegative`, else N(0,1); entry (i, r) of factor n is drawn by
/// its global index from its own stream, so the start is the same at any process count; then the
/// constraints (one list per factor, and one more for the Tucker core) applied once, scaled normalizations
/// compensated exactly. The Tucker core is drawn the same way, then scaled so that the model's norm is the
/// data's.
template <class Model>
void init_random_cp(const Model& m, CpFactors& f, std::uint64_t seed, bool nonnegative,
                    const std::vector<ConstraintList>& cons);

/// Apply the constraints once to a given start (compensating scaled normalizations exactly).
template <class Model>
void apply_cp_constraints_once(const Model& m, CpFactors& f, const std::vector<ConstraintList>& cons);

/// Solve from the factors given (and the core, for Tucker; `cons` holds its list last). Honours maxiter, max_seconds,
/// tol, momentum, delta, subblock, inner, inner_tol, hals and bpp of SolverOptions; random orders and extrapolate are
/// Tucker-1 options and are refused (ConfigError). `stop_requested` is polled after every iteration (every process must
/// answer the same).
/// The shapes a CP or Tucker solve's memory depends on, for the check before reading.
struct ModeFactorsFootprint {
  Shape box;                      // the local block of Y (mode order: the mixtures first)
  std::vector<std::size_t> ranks; // the factors' columns (CP: the rank in every mode)
  std::size_t value_bytes = 8;    // of Y: 8 (double) or 4 (float)
  bool core = false;              // Tucker (a core), else CP
  bool tree = false;              // the dimension tree is used (ModeFactors::tree_pays)
  bool checkpoints = false;       // checkpoints are written (copies of the factors and the core)
};

/// The most memory a CP or Tucker solve holds at once beyond Y's block, per process, in bytes, following the
/// products' own buffers: the factors and their copies (previous and last iterates, gradients, products), the
/// core's; CP: the MTTKRP's Khatri-Rao products and their conversions (kept between calls; the one of mode 0
/// is R / I_1... of Y in doubles, and so can outweigh Y at few mixtures), with the tree its contraction
/// (R / I_(N-1) of Y, formed in its kept storage); Tucker: the products with all factors but one (what
/// multi_mode_product_values reports) and, with the tree, the kept contraction; the
/// residual formed in slabs, CP's least-squares core, writing B in pieces. Checked against measured peaks in
/// tests/cli/factorize.cpp.
double mode_factors_solve_bytes(const ModeFactorsFootprint& fp);

template <class Model>
SolveResult solve_cp(const Model& m, CpFactors& f, const std::vector<ConstraintList>& cons, const SolverOptions& opts,
                     const CpSolveControl& control);
template <class Model>
SolveResult solve_cp(const Model& m, CpFactors& f, const std::vector<ConstraintList>& cons, const SolverOptions& opts,
                     const IterationCallback& callback = {}, const std::function<bool()>& stop_requested = {});

} // namespace unmix
