#include "unmix/rank/curvature.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include "unmix/core/error.hpp"

namespace unmix {

CurvatureMethod parse_curvature_method(const std::string& name) {
  if (name == "finite-differences" || name == "finite_differences") return CurvatureMethod::finite_differences;
  if (name == "splines") return CurvatureMethod::splines;
  if (name == "circles") return CurvatureMethod::circles;
  if (name == "breakpoints") return CurvatureMethod::breakpoints;
  if (name == "kneedle") return CurvatureMethod::kneedle;
  throw ConfigError("--curvature '" + name + "': use finite-differences, splines, circles, breakpoints or kneedle");
}

std::string curvature_method_name(CurvatureMethod m) {
  switch (m) {
  case CurvatureMethod::finite_differences: return "finite-differences";
  case CurvatureMethod::splines: return "splines";
  case CurvatureMethod::circles: return "circles";
  case CurvatureMethod::breakpoints: return "breakpoints";
  case CurvatureMethod::kneedle: return "kneedle";
  }
  return "?";
}

namespace {

/// The samples with the assumed end values, scaled by y_max = max(1, max y): p[0] = 1 / y_max,
/// p[1..n] = y / y_max, p[n+1] = 0.
std::vector<double> padded(std::span<const double> y) {
  double ymax = 1.0;
  for (double v : y) ymax = std::max(ymax, v);
  std::vector<double> p(y.size() + 2);
  p[0] = 1.0 / ymax;
  for (std::size_t i = 0; i < y.size(); ++i) p[i + 1] = y[i] / ymax;
  p.back() = 0.0;
  return p;
}

double kappa(double d1, double d2) { return d2 / std::pow(1.0 + d1 * d1, 1.5); }

/// Solves the dense system M x = b (N x N, row-major) by Gaussian elimination with partial pivoting.
std::vector<double> dense_solve(std::vector<double> M, std::vector<double> b) {
  const std::size_t N = b.size();
  for (std::size_t c = 0; c < N; ++c) {
    std::size_t piv = c;
    for (std::size_t r = c + 1; r < N; ++r)
      if (std::abs(M[r * N + c]) > std::abs(M[piv * N + c])) piv = r;
    if (piv != c) {
      for (std::size_t k = 0; k < N; ++k) std::swap(M[c * N + k], M[piv * N + k]);
      std::swap(b[c], b[piv]);
    }
    const double d = M[c * N + c];
    if (d == 0) continue;
    for (std::size_t r = c + 1; r < N; ++r) {
      const double f = M[r * N + c] / d;
      if (f == 0) continue;
      for (std::size_t k = c; k < N; ++k) M[r * N + k] -= f * M[c * N + k];
      b[r] -= f * b[c];
    }
  }
  std::vector<double> x(N, 0.0);
  for (std::size_t c = N; c-- > 0;) {
    double s = b[c];
    for (std::size_t k = c + 1; k < N; ++k) s -= M[c * N + k] * x[k];
    x[c] = M[c * N + c] != 0 ? s / M[c * N + c] : 0.0;
  }
  return x;
}

std::vector<double> finite_differences(std::span<const double> y) {
  const std::size_t n = y.size();
  const auto p = padded(y);
  const double dn = static_cast<double>(n);
  std::vector<double> k(n);
  for (std::size_t i = 1; i <= n; ++i) {
    const double d1 = dn * (p[i + 1] - p[i - 1]) / 2.0;
    const double d2 = dn * dn * (p[i - 1] - 2.0 * p[i] + p[i + 1]);
    k[i - 1] = kappa(d1, d2);
  }
  return k;
}

std::vector<double> splines(std::span<const double> y) {
  const std::size_t n = y.size();
  if (n < 2) return finite_differences(y);
  const auto p = padded(y);
  const std::size_t N = n + 2;
  const double h = 1.0 / static_cast<double>(n);
  // Second derivatives M_j at the knots: the continuity equations inside, not-a-knot at both ends.
  std::vector<double> A(N * N, 0.0), rhs(N, 0.0);
  A[0 * N + 0] = 1;
  A[0 * N + 1] = -2;
  A[0 * N + 2] = 1;
  for (std::size_t j = 1; j + 1 < N; ++j) {
    A[j * N + j - 1] = 1;
    A[j * N + j] = 4;
    A[j * N + j + 1] = 1;
    rhs[j] = 6.0 * (p[j - 1] - 2.0 * p[j] + p[j + 1]) / (h * h);
  }
  A[(N - 1) * N + N - 3] = 1;
  A[(N - 1) * N + N - 2] = -2;
  A[(N - 1) * N + N - 1] = 1;
  const auto M = dense_solve(std::move(A), std::move(rhs));
  std::vector<double> k(n);
  for (std::size_t j = 1; j <= n; ++j) {
    const double d1 = (p[j + 1] - p[j]) / h - h * (2.0 * M[j] + M[j + 1]) / 6.0;
    k[j - 1] = kappa(d1, M[j]);
  }
  return k;
}

std::vector<double> circles(std::span<const double> y) {
  const std::size_t n = y.size();
  const auto p = padded(y);
  const double h = 1.0 / static_cast<double>(n);
  std::vector<double> k(n);
  for (std::size_t i = 1; i <= n; ++i) k[i - 1] = signed_circle_curvature(0.0, p[i - 1], h, p[i], 2.0 * h, p[i + 1]);
  return k;
}

std::vector<double> breakpoints(std::span<const double> y) {
  const std::size_t n = y.size();
  std::vector<double> xs(n), k(n);
  for (std::size_t i = 0; i < n; ++i) xs[i] = static_cast<double>(i + 1);
  for (std::size_t i = 0; i < n; ++i) {
    const auto c = breakpoint_coefficients(xs, y, xs[i]);
    double err = 0;
    for (std::size_t t = 0; t < n; ++t) {
      const double f = c[0] + c[1] * (std::min(xs[t], xs[i]) - xs[i]) + c[2] * (std::max(xs[t], xs[i]) - xs[i]);
      err += (f - y[t]) * (f - y[t]);
    }
    k[i] = err > 0 ? 1.0 / err : std::numeric_limits<double>::max();
  }
  return k;
}

std::vector<double> kneedle(std::span<const double> y) {
  const std::size_t n = y.size();
  std::vector<double> k(n, 0.0);
  if (n < 2) return k;
  const auto [lo, hi] = std::minmax_element(y.begin(), y.end());
  const double range = *hi - *lo;
  for (std::size_t i = 0; i < n; ++i) {
    const double xn = static_cast<double>(i) / static_cast<double>(n - 1);
    const double yn = range > 0 ? (y[i] - *lo) / range : 0.0;
    k[i] = (1.0 - yn) - xn;
  }
  return k;
}

} // namespace

double signed_circle_curvature(double x0, double y0, double x1, double y1, double x2, double y2) {
  const double cross = (x1 - x0) * (y2 - y0) - (y1 - y0) * (x2 - x0);
  const double a = std::hypot(x1 - x0, y1 - y0), b = std::hypot(x2 - x1, y2 - y1), c = std::hypot(x2 - x0, y2 - y0);
  const double d = a * b * c;
  return d > 0 ? 2.0 * cross / d : 0.0;
}

std::vector<double> breakpoint_coefficients(std::span<const double> xs, std::span<const double> ys, double z) {
  // Least squares by the normal equations on the columns that are not identically zero (at the first or
  // last x one of the two slopes has no data and is set to 0).
  const std::size_t n = xs.size();
  std::vector<std::vector<double>> cols(3, std::vector<double>(n));
  for (std::size_t t = 0; t < n; ++t) {
    cols[0][t] = 1.0;
    cols[1][t] = std::min(xs[t], z) - z;
    cols[2][t] = std::max(xs[t], z) - z;
  }
  std::vector<std::size_t> use;
  for (std::size_t c = 0; c < 3; ++c) {
    double s = 0;
    for (double v : cols[c]) s += v * v;
    if (s > 0) use.push_back(c);
  }
  const std::size_t m = use.size();
  std::vector<double> G(m * m), r(m);
  for (std::size_t a = 0; a < m; ++a) {
    for (std::size_t b = 0; b < m; ++b) {
      double s = 0;
      for (std::size_t t = 0; t < n; ++t) s += cols[use[a]][t] * cols[use[b]][t];
      G[a * m + b] = s;
    }
    double s = 0;
    for (std::size_t t = 0; t < n; ++t) s += cols[use[a]][t] * ys[t];
    r[a] = s;
  }
  const auto x = dense_solve(std::move(G), std::move(r));
  std::vector<double> out(3, 0.0);
  for (std::size_t a = 0; a < m; ++a) out[use[a]] = x[a];
  return out;
}

std::vector<double> standard_curvature(std::span<const double> y, CurvatureMethod method) {
  if (y.empty()) return {};
  switch (method) {
  case CurvatureMethod::finite_differences: return finite_differences(y);
  case CurvatureMethod::splines: return splines(y);
  case CurvatureMethod::circles: return circles(y);
  case CurvatureMethod::breakpoints: return breakpoints(y);
  case CurvatureMethod::kneedle: return kneedle(y);
  }
  return {};
}

std::size_t argmax_index(std::span<const double> k) {
  std::size_t best = 0;
  double bv = -std::numeric_limits<double>::infinity();
  for (std::size_t i = 0; i < k.size(); ++i)
    if (k[i] > bv) {
      bv = k[i];
      best = i;
    }
  return best;
}

} // namespace unmix
