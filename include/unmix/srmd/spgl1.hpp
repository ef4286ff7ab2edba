#pragma once
// SPGL1 (van den Berg and Friedlander 2008): spectral projected gradient for the LASSO
//   min ||b - A x||_2  s.t.  ||W x||_1 <= tau,
// with Newton updates of tau on the Pareto curve for basis pursuit denoise
//   min ||W x||_1  s.t.  ||b - A x||_2 <= sigma
// (sigma = 0: basis pursuit). Defaults and exit codes follow the reference implementation.
#include <cstddef>
#include <span>
#include <vector>

#include "unmix/srmd/operator.hpp"

namespace unmix::srmd {

enum class Spgl1Status {
  running = 0,
  root_found = 1,         // ||r|| = sigma within opt_tol (BPDN solution)
  bp_solution = 2,        // residual below bp_tol ||b|| (basis pursuit solution)
  least_squares = 3,      // gradient below ls_tol ||r||: a least-squares solution, ||r|| > sigma
  lasso = 4,              // optimal for the given tau (LASSO)
  iterations = 5,         // iteration limit
  line_search_failed = 6, // too many line-search failures
  suboptimal_bp = 7,      // ||r|| < sigma at a nearly optimal point
};

const char* to_string(Spgl1Status s);

struct Spgl1Options {
  std::size_t iter_lim = 0; // 0: 10 x rows
  std::size_t n_prev_vals = 3;
  double bp_tol = 1e-6;
  double ls_tol = 1e-6;
  double opt_tol = 1e-4;
  double dec_tol = 1e-4;
  double step_min = 1e-16;
  double step_max = 1e5;
  int max_line_errors = 10;
  /// Weights of the l1 norm: empty (all 1), one value (all equal) or one per column; all > 0.
  std::vector<double> weights;
};

struct Spgl1Result {
  std::vector<double> x, r, g; // solution, residual b - A x, gradient -A^T r
  double tau = 0, rnorm = 0, gnorm = 0, rgap = 0;
  Spgl1Status status = Spgl1Status::running;
  std::size_t iterations = 0, n_newton = 0, n_prod_a = 0, n_prod_at = 0, n_line = 0;
};

/// The general solver: tau > 0 fixes the ball (LASSO); tau = 0 searches tau for the residual sigma.
/// `x0` may be empty (start at 0).
Spgl1Result spgl1(const LinearOperator& A, std::span<const double> b, double tau, double sigma,
                  std::span<const double> x0 = {}, const Spgl1Options& opt = {});
inline Spgl1Result spg_bpdn(const LinearOperator& A, std::span<const double> b, double sigma,
                            const Spgl1Options& opt = {}) {
  return spgl1(A, b, 0.0, sigma, {}, opt);
}
inline Spgl1Result spg_lasso(const LinearOperator& A, std::span<const double> b, double tau,
                             const Spgl1Options& opt = {}) {
  return spgl1(A, b, tau, 0.0, {}, opt);
}
inline Spgl1Result spg_bp(const LinearOperator& A, std::span<const double> b, const Spgl1Options& opt = {}) {
  return spgl1(A, b, 0.0, 0.0, {}, opt);
}

/// Projection of a nonnegative b onto {x >= 0 : sum d_i x_i <= tau} (d > 0), by sorting b_i / d_i.
/// d empty: all ones; one value: all equal.
std::vector<double> project_nonneg_weighted_l1(std::span<const double> b, std::span<const double> d, double tau);
/// Projection of any x onto the weighted l1 ball {z : sum d_i |z_i| <= tau} (sign times the above).
std::vector<double> project_l1(std::span<const double> x, std::span<const double> d, double tau);

} // namespace unmix::srmd
