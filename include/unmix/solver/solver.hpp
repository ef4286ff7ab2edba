#pragma once
// Block projected gradient descent for Tucker-1 (ALGORITHMS.md sections 2-6). The solver sees only the
// model's collective products; it cannot tell one process from sixteen.
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
  /// mixture mode not split, entrywise constraints on B. Gradient statistics of an iterate are then
  /// completed during the next pass (a run stopped by a gradient tolerance does one extra pass and
  /// returns the iterate that met it).
  bool fused = true;
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
};

/// Called after every iteration with its statistics; return false to stop (every process must return
/// the same value).
using IterationCallback = std::function<bool(const IterationStats&)>;

/// Random start (ALGORITHMS.md section 5): B drawn first, then A; |N(0,1)| entries when `nonnegative`
/// else N(0,1); each entry drawn by its global index, so the start is the same at any process count;
/// then the constraints are applied once (scaled normalizations compensated exactly).
template <class Model>
void init_random(const Model& m, Factors& f, std::uint64_t seed, bool nonnegative, const ConstraintList& consA,
                 const ConstraintList& consB);

/// Apply the constraints once to a given start (compensating scaled normalizations).
template <class Model>
void apply_constraints_once(const Model& m, Factors& f, const ConstraintList& consA, const ConstraintList& consB);

template <class Model>
SolveResult solve(const Model& m, Factors& f, const ConstraintList& consA, const ConstraintList& consB,
                  const SolverOptions& opts, const IterationCallback& callback = {});

} // namespace unmix
