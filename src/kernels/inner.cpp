#include "unmix/kernels/inner.hpp"

#include <vector>

namespace unmix {

std::size_t inner_steps_columns(std::size_t R, std::size_t n, const double* G, const double* M, double* X,
                                const double* inv_L, std::size_t steps, double tol, const EntrywiseProjection& project,
                                InnerMethod method) {
  std::vector<double> x(R), g(R);
  std::size_t taken = 0;
  for (std::size_t j = 0; j < n; ++j) {
    double* xj = X + j * R;
    const double* mj = M + j * R;
    double first = -1;
    for (std::size_t s = 0; s < steps; ++s) {
      if (method == InnerMethod::hals) {
        // One sweep of exact coordinate minimizations; the gradient is kept up to date.
        for (std::size_t r = 0; r < R; ++r) {
          double v = -mj[r];
          for (std::size_t q = 0; q < R; ++q) v += G[r + q * R] * xj[q];
          g[r] = v;
        }
        double change = 0;
        for (std::size_t r = 0; r < R; ++r) {
          const double d = G[r + r * R];
          if (!(d > 0)) continue;
          double nv = xj[r] - g[r] / d;
          if (project) project(std::span<double>(&nv, 1), 1);
          const double delta = nv - xj[r];
          if (delta == 0.0) continue;
          xj[r] = nv;
          change += delta * delta;
          for (std::size_t q = 0; q < R; ++q) g[q] += G[q + r * R] * delta;
        }
        ++taken;
        if (first < 0) first = change;
        if (change <= tol * first) break;
        continue;
      }
      for (std::size_t r = 0; r < R; ++r) {
        double v = -mj[r];
        for (std::size_t q = 0; q < R; ++q) v += G[r + q * R] * xj[q];
        g[r] = v;
      }
      for (std::size_t r = 0; r < R; ++r) x[r] = xj[r] - g[r] * inv_L[r];
      if (project) project(std::span<double>(x.data(), R), 1);
      double change = 0;
      for (std::size_t r = 0; r < R; ++r) {
        change += (x[r] - xj[r]) * (x[r] - xj[r]);
        xj[r] = x[r];
      }
      ++taken;
      if (first < 0) first = change;
      if (change <= tol * first) break;
    }
  }
  return taken;
}

std::size_t inner_steps_rows(std::size_t R, std::size_t n, const double* P, const double* Q, double* A,
                             const double* inv_L, std::size_t steps, double tol, const EntrywiseProjection& project,
                             InnerMethod method) {
  // Rows of A as columns of A^T (P is symmetric, so the row problem has the same form).
  std::vector<double> At(R * n), Qt(R * n);
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t r = 0; r < R; ++r) {
      At[r + i * R] = A[i + r * n];
      Qt[r + i * R] = Q[i + r * n];
    }
  const std::size_t taken = inner_steps_columns(R, n, P, Qt.data(), At.data(), inv_L, steps, tol, project, method);
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t r = 0; r < R; ++r) A[i + r * n] = At[r + i * R];
  return taken;
}

} // namespace unmix
