#include "unmix/srmd/spgl1.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <string>

#include "unmix/core/error.hpp"

namespace unmix::srmd {

const char* to_string(Spgl1Status s) {
  switch (s) {
  case Spgl1Status::running: return "running";
  case Spgl1Status::root_found: return "root found (residual = sigma)";
  case Spgl1Status::bp_solution: return "basis pursuit solution";
  case Spgl1Status::least_squares: return "least-squares solution (residual above sigma)";
  case Spgl1Status::lasso: return "LASSO solution";
  case Spgl1Status::iterations: return "iteration limit reached";
  case Spgl1Status::line_search_failed: return "line search failed";
  case Spgl1Status::suboptimal_bp: return "suboptimal basis pursuit solution";
  }
  return "unknown";
}

namespace {

using Vec = std::vector<double>;

double dot(std::span<const double> a, std::span<const double> b) {
  double s = 0;
  for (std::size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}
double norm2(std::span<const double> a) { return std::sqrt(dot(a, a)); }

/// Weight of entry i: d empty -> 1, one value -> d[0], else d[i].
inline double weight(std::span<const double> d, std::size_t i) {
  return d.empty() ? 1.0 : (d.size() == 1 ? d[0] : d[i]);
}

double dual_norm(std::span<const double> x, std::span<const double> d) {
  double m = 0;
  for (std::size_t i = 0; i < x.size(); ++i) m = std::max(m, std::abs(x[i]) / weight(d, i));
  return m;
}

/// The operator with product counters.
struct Counted {
  const LinearOperator& A;
  std::size_t n_a = 0, n_at = 0;
  /// r = b - A x
  void residual(std::span<const double> b, std::span<const double> x, Vec& r) {
    r.resize(b.size());
    A.forward(x, r);
    for (std::size_t i = 0; i < r.size(); ++i) r[i] = b[i] - r[i];
    ++n_a;
  }
  /// g = -A^T r
  void gradient(std::span<const double> r, Vec& g) {
    g.resize(A.cols());
    A.adjoint(r, g);
    for (double& v : g) v = -v;
    ++n_at;
  }
};

struct LineResult {
  double f;
  int err; // 0 converged, 1 no descent, 2 too many iterations
  std::size_t iters;
};

constexpr double kGamma = 1e-4;
constexpr std::size_t kMaxLineIters = 10;

/// Projected backtracking along the projection arc: x_new = P(x - step * scale * g).
LineResult line_curvy(Counted& op, std::span<const double> b, const Vec& x, const Vec& g, double fmax,
                      std::span<const double> d, double tau, Vec& x_new, Vec& r_new) {
  const std::size_t n = x.size();
  double step = 1, s_norm = 0, scale = 1;
  int n_safe = 0;
  std::size_t it = 0;
  Vec trial(n), s(n);
  while (true) {
    for (std::size_t i = 0; i < n; ++i) trial[i] = x[i] - step * scale * g[i];
    x_new = project_l1(trial, d, tau);
    op.residual(b, x_new, r_new);
    const double f_new = dot(r_new, r_new) / 2;
    for (std::size_t i = 0; i < n; ++i) s[i] = x_new[i] - x[i];
    const double gts = scale * dot(g, s);
    if (gts >= 0) return {f_new, 1, it};
    if (f_new < fmax + kGamma * step * gts) return {f_new, 0, it};
    if (it >= kMaxLineIters) return {f_new, 2, it};
    ++it;
    step /= 2;
    // When the step bound is huge, damped directions may project to the same point: if two trials
    // moved equally far, shrink the direction itself.
    const double s_norm_old = s_norm;
    s_norm = norm2(s) / std::sqrt(static_cast<double>(n));
    if (std::abs(s_norm - s_norm_old) <= 1e-6 * s_norm) {
      const double g_norm = norm2(g) / std::sqrt(static_cast<double>(n));
      scale = s_norm / g_norm / std::ldexp(1.0, n_safe);
      ++n_safe;
    }
  }
}

/// Backtracking along a feasible direction dx with safeguarded quadratic interpolation.
LineResult line_feasible(Counted& op, std::span<const double> b, double f, const Vec& x, const Vec& dx, double gtd,
                         double fmax, Vec& x_new, Vec& r_new) {
  const std::size_t n = x.size();
  double step = 1;
  std::size_t it = 0;
  gtd = -std::abs(gtd);
  x_new.resize(n);
  while (true) {
    for (std::size_t i = 0; i < n; ++i) x_new[i] = x[i] + step * dx[i];
    op.residual(b, x_new, r_new);
    const double f_new = dot(r_new, r_new) / 2;
    if (f_new < fmax + kGamma * step * gtd) return {f_new, 0, it};
    if (it >= kMaxLineIters) return {f_new, 2, it};
    ++it;
    if (step <= 0.1) {
      step /= 2;
    } else {
      double tmp = (-gtd * step * step) / (2 * (f_new - f - step * gtd));
      if (tmp < 0.1 || tmp > 0.9 * step || std::isnan(tmp)) tmp = step / 2;
      step = tmp;
    }
  }
}

} // namespace

std::vector<double> project_nonneg_weighted_l1(std::span<const double> b, std::span<const double> d, double tau) {
  const std::size_t n = b.size();
  if (d.size() > 1 && d.size() != n) throw ConfigError("l1 projection: weights and vector differ in length");
  Vec x(n, 0.0);
  double total = 0;
  for (std::size_t i = 0; i < n; ++i) total += weight(d, i) * b[i];
  if (tau >= total) return Vec(b.begin(), b.end());
  if (tau < std::numeric_limits<double>::epsilon()) return x;
  // Only positive entries can stay nonzero. Sort them by b_i / d_i, largest first (ties by index, so
  // the order is a total order), growing the sorted prefix until the threshold is found.
  struct Key {
    double ratio;
    std::size_t i;
  };
  std::vector<Key> cand;
  cand.reserve(n);
  for (std::size_t i = 0; i < n; ++i)
    if (b[i] > 0) cand.push_back({b[i] / weight(d, i), i});
  auto before = [](const Key& p, const Key& q) { return p.ratio > q.ratio || (p.ratio == q.ratio && p.i < q.i); };
  std::size_t k = std::min<std::size_t>(cand.size(), 256);
  double soft = 0;
  while (true) {
    if (k < cand.size())
      std::nth_element(cand.begin(), cand.begin() + static_cast<std::ptrdiff_t>(k), cand.end(), before);
    std::sort(cand.begin(), cand.begin() + static_cast<std::ptrdiff_t>(k), before);
    double csdb = 0, csd2 = 0;
    soft = 0;
    bool stopped = false;
    for (std::size_t q = 0; q < k; ++q) {
      const std::size_t i = cand[q].i;
      const double di = weight(d, i);
      csdb += di * b[i];
      csd2 += di * di;
      const double alpha1 = (csdb - tau) / csd2, alpha2 = b[i] / di;
      if (alpha1 >= alpha2) {
        stopped = true;
        break;
      }
      soft = alpha1;
    }
    if (stopped || k == cand.size()) break;
    k = std::min(cand.size(), 8 * k);
  }
  for (std::size_t i = 0; i < n; ++i) x[i] = std::max(0.0, b[i] - soft * weight(d, i));
  return x;
}

std::vector<double> project_l1(std::span<const double> x, std::span<const double> d, double tau) {
  Vec a(x.size());
  for (std::size_t i = 0; i < x.size(); ++i) a[i] = std::abs(x[i]);
  Vec p = project_nonneg_weighted_l1(a, d, tau);
  for (std::size_t i = 0; i < x.size(); ++i) p[i] = x[i] > 0 ? p[i] : (x[i] < 0 ? -p[i] : 0.0);
  return p;
}

Spgl1Result spgl1(const LinearOperator& A, std::span<const double> b, double tau, double sigma,
                  std::span<const double> x0, const Spgl1Options& opt) {
  const std::size_t m = A.rows(), n = A.cols();
  if (b.size() != m)
    throw DataError("spgl1: right-hand side has " + std::to_string(b.size()) + " entries, the operator " +
                    std::to_string(m) + " rows");
  if (!x0.empty() && x0.size() != n) throw DataError("spgl1: starting point has the wrong length");
  const std::span<const double> d = opt.weights;
  if (d.size() > 1 && d.size() != n) throw ConfigError("spgl1: give one weight or one per column");
  for (double v : d)
    if (!std::isfinite(v) || v <= 0) throw ConfigError("spgl1: weights must be finite and strictly positive");
  if (!(sigma >= 0) || !(tau >= 0)) throw ConfigError("spgl1: sigma and tau must be nonnegative");

  Counted op{A};
  bool single_tau = tau != 0;
  const std::size_t iter_lim = opt.iter_lim ? opt.iter_lim : 10 * m;
  const std::size_t n_prev = std::max<std::size_t>(1, opt.n_prev_vals);
  double step_max = opt.step_max;
  int line_errors_left = opt.max_line_errors;
  Vec last_fv(n_prev, -std::numeric_limits<double>::infinity());

  const double bnorm = norm2(b);
  if (bnorm <= sigma) {
    tau = 0;
    single_tau = true;
  }

  Spgl1Result res;
  Vec x = x0.empty() ? Vec(n, 0.0) : Vec(x0.begin(), x0.end());
  x = project_l1(x, d, tau);
  Vec r, g;
  op.residual(b, x, r);
  op.gradient(r, g);
  double f = dot(r, r) / 2;
  last_fv[0] = f;
  double f_best = f, f_old = f;
  Vec x_best = x;

  Vec tmp(n);
  for (std::size_t i = 0; i < n; ++i) tmp[i] = x[i] - g[i];
  Vec dx = project_l1(tmp, d, tau);
  double dx_norm = 0;
  for (std::size_t i = 0; i < n; ++i) dx_norm = std::max(dx_norm, std::abs(dx[i] - x[i]));
  double g_step = dx_norm < 1 / step_max ? step_max : std::min(step_max, std::max(opt.step_min, 1 / dx_norm));

  Spgl1Status stat = Spgl1Status::running;
  bool test_update_tau = false;
  std::size_t iter = 0, n_newton = 0, n_line = 0;
  double gnorm = 0, rnorm = 0, rgap = 0;
  Vec x_old, g_old, r_old, x_new, r_new, sv(n);

  while (true) {
    gnorm = dual_norm(g, d);
    rnorm = norm2(r);
    double gap = 0;
    for (std::size_t i = 0; i < m; ++i) gap += r[i] * (r[i] - b[i]);
    gap += tau * gnorm;
    rgap = std::abs(gap) / std::max(1.0, f);
    const double aerror1 = rnorm - sigma, aerror2 = f - sigma * sigma / 2;
    const double rerror1 = std::abs(aerror1) / std::max(1.0, rnorm);
    const double rerror2 = std::abs(aerror2) / std::max(1.0, f);

    if (single_tau) {
      if (rgap <= opt.opt_tol || rnorm < opt.opt_tol * bnorm) stat = Spgl1Status::lasso;
    } else {
      if (gnorm <= opt.ls_tol * rnorm) stat = Spgl1Status::least_squares;
      if (rgap <= std::max(opt.opt_tol, rerror2) || rerror1 <= opt.opt_tol) {
        if (rnorm <= sigma) stat = Spgl1Status::suboptimal_bp;
        if (rerror1 <= opt.opt_tol) stat = Spgl1Status::root_found;
        if (rnorm <= opt.bp_tol * bnorm) stat = Spgl1Status::bp_solution;
      }
      const bool change1 = std::abs(f - f_old) <= opt.dec_tol * f;
      const bool change2 = std::abs(f - f_old) <= 1e-1 * f * std::abs(rnorm - sigma);
      test_update_tau = ((change1 && rnorm > 2 * sigma) || (change2 && rnorm <= 2 * sigma)) &&
                        stat == Spgl1Status::running && !test_update_tau;
      if (test_update_tau) {
        // Newton step on the Pareto curve phi(tau) = ||r(tau)||: phi' = -||A^T r||_dual / ||r||.
        const double tau_old = tau;
        tau = std::max(0.0, tau + (rnorm * aerror1) / gnorm);
        ++n_newton;
        if (tau < tau_old) {
          // The ball shrank: project the iterate back into it and start the history afresh.
          x = project_l1(x, d, tau);
          op.residual(b, x, r);
          op.gradient(r, g);
          f = dot(r, r) / 2;
          std::fill(last_fv.begin(), last_fv.end(), -std::numeric_limits<double>::infinity());
          last_fv[0] = f;
        }
      }
    }
    if (stat == Spgl1Status::running && iter >= iter_lim) stat = Spgl1Status::iterations;
    if (stat != Spgl1Status::running) break;

    ++iter;
    x_old = x;
    f_old = f;
    g_old = g;
    r_old = r;
    const double fmax = *std::max_element(last_fv.begin(), last_fv.end());
    Vec gs(n);
    for (std::size_t i = 0; i < n; ++i) gs[i] = g_step * g[i];
    LineResult ls = line_curvy(op, b, x, gs, fmax, d, tau, x_new, r_new);
    n_line += ls.iters;
    if (ls.err == 0) {
      x.swap(x_new);
      r.swap(r_new);
      f = ls.f;
    } else {
      // The projected search failed: retry along the feasible direction P(x - step g) - x.
      for (std::size_t i = 0; i < n; ++i) tmp[i] = x_old[i] - g_step * g[i];
      dx = project_l1(tmp, d, tau);
      for (std::size_t i = 0; i < n; ++i) dx[i] -= x_old[i];
      const double gtd = dot(g, dx);
      ls = line_feasible(op, b, f_old, x_old, dx, gtd, fmax, x_new, r_new);
      n_line += ls.iters;
      if (ls.err == 0) {
        x.swap(x_new);
        r.swap(r_new);
        f = ls.f;
      }
    }
    if (ls.err != 0) {
      // Failed again: revert and damp the largest spectral step.
      x = x_old;
      f = f_old;
      r = r_old;
      if (line_errors_left <= 0) {
        stat = Spgl1Status::line_search_failed;
      } else {
        step_max /= 10;
        --line_errors_left;
      }
      g_step = std::min(step_max, g_step);
    } else {
      op.gradient(r, g);
      double sts = 0, sty = 0;
      for (std::size_t i = 0; i < n; ++i) {
        const double s = x[i] - x_old[i], yv = g[i] - g_old[i];
        sts += s * s;
        sty += s * yv;
      }
      g_step = sty <= 0 ? step_max : std::min(step_max, std::max(opt.step_min, sts / sty));
    }
    if (single_tau || f > sigma * sigma / 2) {
      last_fv[iter % n_prev] = f;
      if (f_best > f) {
        f_best = f;
        x_best = x;
      }
    }
  }

  if (single_tau && f > f_best) {
    x = x_best;
    op.residual(b, x, r);
    op.gradient(r, g);
    gnorm = dual_norm(g, d);
    rnorm = norm2(r);
  }
  res.x = std::move(x);
  res.r = std::move(r);
  res.g = std::move(g);
  res.tau = tau;
  res.rnorm = rnorm;
  res.gnorm = gnorm;
  res.rgap = rgap;
  res.status = stat;
  res.iterations = iter;
  res.n_newton = n_newton;
  res.n_prod_a = op.n_a;
  res.n_prod_at = op.n_at;
  res.n_line = n_line;
  return res;
}

} // namespace unmix::srmd
