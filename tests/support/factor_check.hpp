#pragma once
// Comparing factorizations: best matching of sources (up to permutation and scaling).
#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <vector>

#include "unmix/core/tensor.hpp"
#include "unmix/model/planted.hpp"

namespace unmix::test {

/// Relative error ||X - Y|| / ||Y|| over two arrays.
inline double rel_diff(std::span<const double> x, std::span<const double> y) {
  double d = 0, n = 0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    d += (x[i] - y[i]) * (x[i] - y[i]);
    n += y[i] * y[i];
  }
  return n > 0 ? std::sqrt(d / n) : std::sqrt(d);
}

/// Columns of an (n x R) column-major matrix scaled to unit L2 norm.
inline std::vector<double> unit_columns(const std::vector<double>& X, std::size_t n, std::size_t R) {
  std::vector<double> out(X);
  for (std::size_t r = 0; r < R; ++r) {
    double s = 0;
    for (std::size_t i = 0; i < n; ++i) s += X[i + r * n] * X[i + r * n];
    s = std::sqrt(s);
    for (std::size_t i = 0; i < n; ++i) out[i + r * n] = s > 0 ? X[i + r * n] / s : 0;
  }
  return out;
}

/// Best permutation of the columns of `est` onto `truth` (both n x R, compared after scaling each
/// column to unit norm): the largest relative column error under that permutation.
inline double matched_column_error(const std::vector<double>& est, const std::vector<double>& truth, std::size_t n,
                                   std::size_t R, std::vector<std::size_t>* perm_out = nullptr) {
  const auto E = unit_columns(est, n, R), T = unit_columns(truth, n, R);
  std::vector<std::size_t> perm(R);
  std::iota(perm.begin(), perm.end(), 0);
  double best = std::numeric_limits<double>::infinity();
  std::vector<std::size_t> best_perm = perm;
  do {
    double worst = 0;
    for (std::size_t r = 0; r < R; ++r) {
      double d = 0;
      for (std::size_t i = 0; i < n; ++i) d += std::pow(E[i + perm[r] * n] - T[i + r * n], 2);
      worst = std::max(worst, std::sqrt(d));
    }
    if (worst < best) {
      best = worst;
      best_perm = perm;
    }
  } while (std::next_permutation(perm.begin(), perm.end()));
  if (perm_out) *perm_out = best_perm;
  return best;
}

/// The box of a whole source tensor B (R x the other modes) that a distributed process holds (its box of Y
/// is `box` at `off`), for comparing distributed factors with serial ones.
inline Tensor<double> box_of_sources(const Tensor<double>& B, const Shape& global_y, const Shape& off,
                                     const Shape& box) {
  const std::size_t R = B.extent(0);
  Shape bshape = box;
  bshape[0] = R;
  Tensor<double> out(bshape);
  const std::size_t n = out.size() / R;
  for (std::size_t j = 0; j < n; ++j) {
    const std::size_t gj = global_column(global_y, off, box, j);
    for (std::size_t r = 0; r < R; ++r) out[r + j * R] = B[r + gj * R];
  }
  return out;
}

/// Column-major multi-index of linear index k in a tensor of this shape.
inline Shape unravel(std::size_t k, const Shape& shape) {
  Shape idx(shape.size());
  for (std::size_t m = 0; m < shape.size(); ++m) {
    idx[m] = k % shape[m];
    k /= shape[m];
  }
  return idx;
}

} // namespace unmix::test
