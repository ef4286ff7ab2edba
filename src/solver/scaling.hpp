#pragma once
// Column and row scalings of factor blocks (the rescaling trick's compensation), shared by the solvers.
#include <cstddef>
#include <vector>

#include "unmix/core/tensor.hpp"

namespace unmix {

/// Multiply column r of an (n x R) column-major array by w[r].
inline void scale_columns(Tensor<double>& X, std::size_t R, const std::vector<double>& w, bool invert) {
  if (X.empty()) return;
  const std::size_t n = X.size() / R;
  for (std::size_t r = 0; r < R; ++r) {
    const double s = invert ? 1.0 / w[r] : w[r];
    for (std::size_t i = 0; i < n; ++i) X[i + r * n] *= s;
  }
}
/// Multiply row r of an (R x n) column-major array by w[r].
inline void scale_rows(Tensor<double>& X, std::size_t R, const std::vector<double>& w, bool invert) {
  const std::size_t n = X.size() / R;
  for (std::size_t j = 0; j < n; ++j)
    for (std::size_t r = 0; r < R; ++r) X[r + j * R] *= invert ? 1.0 / w[r] : w[r];
}
inline void scale_all(Tensor<double>& X, double s) {
  for (double& v : X.span()) v *= s;
}

} // namespace unmix
