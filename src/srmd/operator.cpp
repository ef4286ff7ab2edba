#include "unmix/srmd/operator.hpp"

#include <algorithm>

#include "unmix/core/error.hpp"

namespace unmix::srmd {

DenseOperator::DenseOperator(std::size_t m, std::size_t n, std::vector<double> column_major)
    : m_(m), n_(n), a_(std::move(column_major)) {
  if (a_.size() != m * n)
    throw DataError("dense operator: " + std::to_string(a_.size()) + " values given for a " + std::to_string(m) +
                    " x " + std::to_string(n) + " matrix");
}

void DenseOperator::forward(std::span<const double> x, std::span<double> y) const {
  std::fill(y.begin(), y.end(), 0.0);
  for (std::size_t j = 0; j < n_; ++j) {
    const double xj = x[j];
    if (xj == 0) continue;
    const double* col = a_.data() + j * m_;
    for (std::size_t i = 0; i < m_; ++i) y[i] += col[i] * xj;
  }
}

void DenseOperator::adjoint(std::span<const double> r, std::span<double> g) const {
  for (std::size_t j = 0; j < n_; ++j) {
    const double* col = a_.data() + j * m_;
    double s = 0;
    for (std::size_t i = 0; i < m_; ++i) s += col[i] * r[i];
    g[j] = s;
  }
}

void SerialReduction::gather(std::span<const double> local, std::span<double> full) const {
  if (local.size() != full.size()) throw Error("serial gather: sizes differ");
  std::copy(local.begin(), local.end(), full.begin());
}

} // namespace unmix::srmd
