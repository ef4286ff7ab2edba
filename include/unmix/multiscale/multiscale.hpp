#pragma once
// Multiscale (coarse to fine) Tucker-1 solves (ALGORITHMS.md section 8). Modes that discretize a
// continuous variable are resampled onto coarser grids with the same end points: a grid of n points
// becomes one of ceil((n - 1) / 2^l) + 1 points at level l, so a size 2^k + 1 keeps every 2^l-th point
// exactly and any other size is linearly interpolated onto the coarser grid. The coarsest level is solved
// from the usual random start; each solution's B is interpolated (piecewise linear) onto the next finer
// grid, the constraints are applied once (scaled normalizations compensated exactly in A, and targets that
// depend on the grid, such as average12slices, follow the grid's own extents), and the result starts the
// next solve. A is kept: the mixture mode is never coarsened.
//
// Targets adjusted to the grid: on a coarse level, B's projected normalizations (simplex, l1normalize,
// l2normalize) whose slices extend along coarsened axes aim at the target the same densities have on
// that grid, the user's target times the product of the spacing ratios (n_coarse - 1) / (n_data - 1) of
// the coarsened axes the slice covers (square root of it for l2normalize; see constraints_for_grid in
// constraints.hpp for the rule and why). Without it a coarse level would force its slices to the data
// grid's sums (twice the densities' sum per halving), which A, when it is itself normalized (simplex_rows),
// cannot compensate: the coarse fit would be poor and a poor start for the next level. On the data's own
// grid (level 0) the user's constraints apply unchanged, so the result meets them exactly.
#include <cstddef>
#include <vector>

#include "unmix/constraints/constraints.hpp"
#include "unmix/dist/dist_tensor.hpp"
#include "unmix/solver/solver.hpp"

namespace unmix {

/// Linear resampling of one axis from n_src to n_dst points with the end points aligned: target t sits
/// at source position t (n_src - 1) / (n_dst - 1) and takes (1 - w) src[i0] + w src[i0 + 1].
struct ResampleTap {
  std::size_t i0 = 0;
  double w = 0;
};
std::vector<ResampleTap> resample_taps(std::size_t n_src, std::size_t n_dst);

/// The size of an axis of n points after `level` halvings: ceil((n - 1) / 2^level) + 1.
std::size_t coarse_size(std::size_t n, int level);

/// Resample the given modes of a local column-major tensor (MPI-free; the whole array).
Tensor<double> resample(const Tensor<double>& x, const std::vector<std::size_t>& modes, const Shape& new_shape);

/// Every process asks for the box [want_offset, want_offset + want_shape) of an array whose providers hold
/// disjoint boxes (held_offset, held); collective over `comm`. Returns the box, column-major.
template <class T>
Tensor<T> gather_box(const Comm& comm, const Shape& held_offset, const Tensor<T>& held, bool provider,
                     const Shape& want_offset, const Shape& want_shape);

/// Y resampled along `modes` to `coarse_shape`, distributed over the same process grid.
template <class T>
DistTensor<T> coarsen(const DistTensor<T>& Y, const std::vector<std::size_t>& modes, const Shape& shape);

struct MultiscaleOptions {
  std::vector<std::size_t> modes; // tensor modes (>= 1) that are continuous
  int levels = 0;                 // coarser levels to use; 0: as many as keep every mode >= min_size points
  std::size_t min_size = 5;
};

/// The number of coarser levels the options give for a tensor shape (throws ConfigError when a mode is
/// the mixture mode, out of range, or too small to coarsen once).
int multiscale_levels(const Shape& shape, const MultiscaleOptions& opts);

struct MultiscaleResult {
  SolveResult result;          // rows of every level, coarsest first; `scale` = level (0 = the data's grid)
  std::vector<Shape> shapes;   // per level solved, coarsest first
  std::vector<double> seconds; // per level (max over processes)
  std::vector<std::size_t> iterations;
  std::vector<double> rel_errors; // final relative error of each level (on that level's grid)
};

/// Solves Y ~= B x1 A coarse to fine; `f` receives the factors on Y's own grid. `y_nonneg` selects the
/// random start's distribution. The callback sees every row (with its scale) and may stop the current level.
template <class T>
MultiscaleResult solve_multiscale(const DistTensor<T>& Y, std::size_t rank, Factors& f, const ConstraintList& consA,
                                  const ConstraintList& consB, const SolverOptions& opts, bool y_nonneg,
                                  const MultiscaleOptions& ms, const IterationCallback& callback = {});

} // namespace unmix
