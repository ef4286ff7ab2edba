#pragma once
// Small policies the block solver is composed from (DESIGN.md rule 4): the step rule (one Lipschitz
// constant per block, or one per row of B / column of A), the momentum rule, and the stopping rules.
#include <cmath>
#include <cstddef>
#include <limits>
#include <string>
#include <vector>

#include "unmix/kernels/blas.hpp"

namespace unmix {

/// Step sizes 1/L from the R x R Gram matrix that multiplies the block in its gradient.
template <class S>
concept StepRule = requires(const S s, const std::vector<double>& gram, std::size_t R) {
  { s.constants(gram, R) } -> std::same_as<std::vector<double>>;
};

/// One constant for the whole block: L = sigma_max(Gram), computed exactly (largest eigenvalue).
struct LipschitzStep {
  std::vector<double> constants(const std::vector<double>& gram, std::size_t R) const {
    return {blas::sym_max_eig(gram.data(), R)};
  }
};

/// One constant per row of B / column of A: L_r = ||Gram[:, r]||_2.
struct SubBlockStep {
  std::vector<double> constants(const std::vector<double>& gram, std::size_t R) const {
    std::vector<double> L(R);
    for (std::size_t r = 0; r < R; ++r) {
      double s = 0;
      for (std::size_t q = 0; q < R; ++q) s += gram[q + r * R] * gram[q + r * R];
      L[r] = std::sqrt(s);
    }
    return L;
  }
};

/// Extrapolation weight for a block: omega = min(omega_hat, delta sqrt(L_last / L)).
template <class M>
concept MomentumRule = requires(const M m, double omega_hat, double L_last, double L) {
  { m.weight(omega_hat, L_last, L) } -> std::same_as<double>;
};

/// Xu & Yin (2013) block extrapolation.
struct XuYinMomentum {
  double delta = 0.9999;
  double weight(double omega_hat, double L_last, double L) const {
    if (!(L > 0) || !(L_last > 0)) return 0.0;
    return std::min(omega_hat, delta * std::sqrt(L_last / L));
  }
};

struct NoMomentum {
  double weight(double, double, double) const { return 0.0; }
};

/// The sequence t_k and omega_hat of the extrapolation: t0 = 1, t <- (1 + sqrt(1 + 4 t^2)) / 2,
/// omega_hat = (t_last - 1) / t, 0 in the first iteration.
struct MomentumSchedule {
  double t = 1.0;
  double omega_hat = 0.0;
  void advance() {
    const double t_last = t;
    t = 0.5 * (1.0 + std::sqrt(1.0 + 4.0 * t * t));
    omega_hat = (t_last - 1.0) / t;
  }
};

/// The statistics recorded after every iteration (one row of the stats table).
struct IterationStats {
  double iteration = 0;
  double objective = 0;        // ||A B - Y||_F^2
  double rel_error = 0;        // ||A B - Y||_F / ||Y||_F
  double grad_norm = 0;        // sqrt(sum_n ||g_n||^2)
  double stationarity = 0;     // sqrt(sum_n ||g_n[X_n > 0 or g_n < 0]||^2) for nonnegative blocks, else ||g_n||
  double obj_ratio = 0;        // f_prev / f
  double rel_decrease = 0;     // (f_prev - f) / f_prev
  double rel_stationarity = 0; // stationarity / its value at the start
  double rel_change = 0;       // ||X_k - X_(k-1)|| / ||X_k|| over both factors
  double L_A = 0, L_B = 0;     // step constants (largest, with sub-blocks)
  double seconds = 0;          // wall time since the start of the solve
  double scale = 0;            // multiscale level (0 = finest / single scale)
  static std::vector<std::string> columns();
  std::vector<double> row() const;
};

/// A statistic with a tolerance: the run stops when any is met (values at or below the tolerance,
/// except obj_ratio, which stops at or below too: f_prev / f <= tol means no progress).
enum class Stat {
  objective,
  rel_error,
  grad_norm,
  stationarity,
  obj_ratio,
  rel_decrease,
  rel_stationarity,
  rel_change
};
struct Tolerance {
  Stat stat;
  double value;
};
Tolerance parse_tolerance(const std::string& text); // "rel_error=0.12"
std::string stat_name(Stat s);
/// The statistics that need the gradient of every block at the iterate (stationarity, grad_norm,
/// rel_stationarity).
bool is_gradient_stat(Stat s);
double stat_value(const IterationStats& s, Stat which);
/// True if any tolerance is met by `s`; `which` receives a description of the rule that fired.
bool tolerance_met(const std::vector<Tolerance>& tol, const IterationStats& s, std::string* which);

} // namespace unmix
