#include "unmix/solver/cp_solver.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>

#include "loop.hpp"
#include "scaling.hpp"
#include "unmix/core/rng.hpp"
#include "unmix/kernels/blas.hpp"
#include "unmix/kernels/inner.hpp"
#include "unmix/kernels/nnls.hpp"
#include "unmix/model/cp.hpp"

namespace unmix {

namespace {

/// Apply factor n's constraints and return the scale weights (to be absorbed by another factor).
template <class Model>
ScaleWeights constrain(const Model& m, CpFactors& f, std::size_t n, const std::vector<ConstraintList>& cons) {
  if (cons[n].empty()) return {};
  FactorView v = m.view(n, f.F[n]);
  return unmix::apply(cons[n], v);
}

/// Multiply the columns of X (n x R) by the weights (or divide, with invert).
void scale_by(Tensor<double>& X, std::size_t R, const ScaleWeights& w, bool invert) {
  if (!w.per_rank.empty()) scale_columns(X, R, w.per_rank, invert);
  if (w.scalar != 1.0) scale_all(X, invert ? 1.0 / w.scalar : w.scalar);
}

/// G[q, r] *= w_q w_r (the Gram matrix of a factor whose columns were multiplied by w).
void scale_gram(std::vector<double>& G, std::size_t R, const ScaleWeights& w) {
  for (std::size_t r = 0; r < R; ++r)
    for (std::size_t q = 0; q < R; ++q) {
      double s = w.scalar * w.scalar;
      if (!w.per_rank.empty()) s *= w.per_rank[q] * w.per_rank[r];
      G[q + r * R] *= s;
    }
}

template <class Model, class StepRuleT, class MomentumT> class CpSolver {
public:
  CpSolver(const Model& m, CpFactors& f, const std::vector<ConstraintList>& cons, const SolverOptions& o,
           StepRuleT step, MomentumT mom)
      : m_(m), f_(f), cons_(cons), opts_(o), step_(step), mom_(mom), N_(m.order()), R_(m.rank()) {
    for (const auto& t : opts_.tol) need_grad_ = need_grad_ || is_gradient_stat(t.stat);
    for (std::size_t n = 0; n < N_; ++n) nonneg_.push_back(implies_nonnegative(cons_[n]));
  }

  SolveResult run(const CpSolveControl& ctl) {
    SolveResult res;
    t0_ = std::chrono::steady_clock::now();
    for (std::size_t n = 0; n < N_; ++n) G_.push_back(m_.gram(n, f_.F[n]));
    std::size_t k0 = 1;
    std::string why;
    if (ctl.resume) {
      restore(*ctl.resume);
      res.stats = ctl.resume->stats;
      res.iterations = ctl.resume->iteration;
      k0 = ctl.resume->iteration + 1;
      if (m_.uses_tree()) C_ = m_.contracted(f_.F[N_ - 1]);
    } else {
      prev_ = f_.F;
      last_ = f_.F;
      L_last_.assign(N_, {});
      L_cur_.assign(N_, 0.0);
      if (m_.uses_tree()) {
        C_ = m_.contracted(f_.F[N_ - 1]);
        n_last_ = 0;
        M_last_ = m_.mttkrp_from(C_, 0, f_.F);
      } else {
        n_last_ = N_ - 1;
        M_last_ = m_.mttkrp(n_last_, f_.F);
      }
      IterationStats s = stats(0);
      res.stats.push_back(s);
      if (tolerance_met(opts_.tol, s, &why)) {
        res.stop_reason = "converged at the start: " + why;
        res.converged = true;
        return finish(res);
      }
    }
    for (std::size_t k = k0; k <= opts_.maxiter; ++k) {
      for (std::size_t n = 0; n < N_; ++n) update(n);
      IterationStats s = stats(static_cast<double>(k));
      res.stats.push_back(s);
      res.iterations = k;
      if (end_of_iteration(
              res, s, k, opts_.tol, opts_, ctl, sched_, [&](double v) { return m_.max_all(v); },
              [&] { ctl.write_checkpoint(f_, snapshot(res, k)); }))
        return finish(res);
    }
    res.stop_reason = "reached the iteration limit (" + std::to_string(opts_.maxiter) + ")";
    return finish(res);
  }

  CpSolverState snapshot(const SolveResult& res, std::size_t k) const {
    CpSolverState st;
    st.iteration = k;
    st.prev = prev_;
    st.last = last_;
    st.L_last = L_last_;
    st.L_cur = L_cur_;
    st.f_prev = f_prev_;
    st.stat0 = stat0_;
    st.t = sched_.t;
    st.omega_hat = sched_.omega_hat;
    st.seconds = solve_seconds(t0_);
    st.zero_steps = zero_steps_;
    st.stats = res.stats;
    return st;
  }

  void restore(const CpSolverState& st) {
    prev_ = st.prev;
    last_ = st.last;
    L_last_ = st.L_last;
    L_cur_ = st.L_cur;
    f_prev_ = st.f_prev;
    stat0_ = st.stat0;
    sched_.t = st.t;
    sched_.omega_hat = st.omega_hat;
    zero_steps_ = st.zero_steps;
    t0_ = solve_started_ago(st.seconds);
  }

private:
  SolveResult& finish(SolveResult& res) {
    res.zero_step_warnings = zero_steps_;
    return res;
  }

  /// The MTTKRP of mode n at the current factors: from the contraction of the last mode where the model
  /// keeps one (kept current: recomputed whenever the last factor changes), else one pass over Y.
  Tensor<double> mttkrp(std::size_t n) const {
    if (m_.uses_tree() && n + 1 < N_) return m_.mttkrp_from(C_, n, f_.F);
    return m_.mttkrp(n, f_.F);
  }

  /// H_n: the Hadamard product of the Gram matrices of every factor but n.
  std::vector<double> hadamard_except(std::size_t n) const {
    std::vector<double> H(R_ * R_, 1.0);
    for (std::size_t m = 0; m < N_; ++m)
      if (m != n)
        for (std::size_t i = 0; i < R_ * R_; ++i) H[i] *= G_[m][i];
    return H;
  }

  /// grad = F H - M for a factor's local rows.
  Tensor<double> gradient(const Tensor<double>& F, const std::vector<double>& H, const Tensor<double>& M) const {
    Tensor<double> g = M;
    const std::size_t rows = F.size() / R_;
    if (rows > 0)
      blas::gemm<double>(blas::Trans::N, blas::Trans::N, rows, R_, R_, 1.0, F.data(), rows, H.data(), R_, -1.0,
                         g.data(), rows);
    return g;
  }

  void update(std::size_t n) {
    const std::vector<double> H = hadamard_except(n);
    const std::vector<double> L = step_.constants(H, R_);
    const std::vector<double> inv = inverse_steps(L, R_, zero_steps_);
    L_cur_[n] = *std::max_element(L.begin(), L.end());
    Tensor<double>& X = f_.F[n];
    extrapolate_block(X, prev_[n], L_last_[n], L, R_, false, mom_, sched_.omega_hat);
    Tensor<double> M = mttkrp(n);
    const Tensor<double> g = gradient(X, H, M);
    const std::size_t rows = X.size() / R_;
    for (std::size_t r = 0; r < R_; ++r)
      for (std::size_t i = 0; i < rows; ++i) X[i + r * rows] -= g[i + r * rows] * inv[r];
    if (opts_.bpp && is_only_nonnegative(cons_[n])) {
      if (rows > 0) nnls_bpp_rows(R_, rows, H.data(), M.data(), X.data());
    } else if (opts_.inner > 1 && is_entrywise_only(cons_[n]) && rows > 0) {
      const EntrywiseProjection proj = entrywise_projection(cons_[n]);
      if (proj) proj(X.span(), R_);
      inner_steps_rows(R_, rows, H.data(), M.data(), X.data(), inv.data(), opts_.inner - 1, opts_.inner_tol, proj,
                       opts_.hals ? InnerMethod::hals : InnerMethod::gradient);
    }
    const ScaleWeights w = constrain(m_, f_, n, cons_);
    G_[n] = m_.gram(n, X);
    M_last_ = std::move(M);
    n_last_ = n;
    if (w.any()) {
      // The rescaling trick: factor c absorbs the weights, its history follows; factor n's history moves to
      // the new scale. M_n (built from factor c) and the Gram matrix of c follow without recomputation.
      const std::size_t c = cp_compensating_factor(n);
      for (Tensor<double>* Z : {&f_.F[c], &prev_[c], &last_[c]}) scale_by(*Z, R_, w, false);
      for (Tensor<double>* Z : {&prev_[n], &last_[n]}) scale_by(*Z, R_, w, true);
      scale_gram(G_[c], R_, w);
      scale_by(M_last_, R_, w, false);
      if (m_.uses_tree() && c == N_ - 1) scale_by(C_, R_, w, false); // C is linear in the last factor
    }
    if (m_.uses_tree() && n == N_ - 1) C_ = m_.contracted(f_.F[n]);
  }

  IterationStats stats(double k) {
    IterationStats s;
    s.iteration = k;
    const double y2 = m_.normY2();
    const std::vector<double> H = hadamard_except(n_last_);
    double hg = 0;
    for (std::size_t i = 0; i < R_ * R_; ++i) hg += H[i] * G_[n_last_][i];
    double fval = y2 - 2.0 * m_.dot(n_last_, f_.F[n_last_], M_last_) + hg;
    // The Gram formula cancels when the error is tiny: form the residual instead.
    if (fval < 1e-9 * y2) fval = m_.exact_residual2(f_.F);
    s.objective = std::max(fval, 0.0);
    s.rel_error = y2 > 0 ? std::sqrt(s.objective / y2) : 0.0;
    s.grad_norm = s.stationarity = s.rel_stationarity = std::numeric_limits<double>::quiet_NaN();
    if (need_grad_) {
      double g2 = 0, st2 = 0;
      for (std::size_t n = 0; n < N_; ++n) {
        const Tensor<double> M = n == n_last_ ? M_last_ : mttkrp(n);
        const Tensor<double> g = gradient(f_.F[n], hadamard_except(n), M);
        double a = 0, b = 0;
        for (std::size_t i = 0; i < g.size(); ++i) {
          a += g[i] * g[i];
          if (!nonneg_[n] || f_.F[n][i] > 0 || g[i] < 0) b += g[i] * g[i];
        }
        g2 += m_.sum_rows(n, a);
        st2 += m_.sum_rows(n, b);
      }
      s.grad_norm = std::sqrt(g2);
      s.stationarity = std::sqrt(st2);
      if (k == 0) stat0_ = s.stationarity;
      s.rel_stationarity = stat0_ > 0 ? s.stationarity / stat0_ : 0.0;
    }
    double d2 = 0, x2 = 0;
    for (std::size_t n = 0; n < N_; ++n) {
      double d = 0, x = 0;
      for (std::size_t i = 0; i < f_.F[n].size(); ++i) {
        const double v = f_.F[n][i], dv = v - last_[n][i];
        d += dv * dv;
        x += v * v;
      }
      d2 += m_.sum_rows(n, d);
      x2 += m_.sum_rows(n, x);
    }
    s.rel_change = x2 > 0 ? std::sqrt(d2 / x2) : 0.0;
    if (k > 0) {
      s.obj_ratio = s.objective > 0 ? f_prev_ / s.objective : std::numeric_limits<double>::infinity();
      s.rel_decrease = f_prev_ > 0 ? (f_prev_ - s.objective) / f_prev_ : 0.0;
    }
    f_prev_ = s.objective;
    s.L_A = L_cur_[0];
    s.L_B = N_ > 1 ? *std::max_element(L_cur_.begin() + 1, L_cur_.end()) : 0.0;
    s.seconds = solve_seconds(t0_);
    last_ = f_.F;
    return s;
  }

  const Model& m_;
  CpFactors& f_;
  const std::vector<ConstraintList>& cons_;
  SolverOptions opts_;
  StepRuleT step_;
  MomentumT mom_;
  std::size_t N_, R_;
  bool need_grad_ = false;
  std::vector<bool> nonneg_;
  MomentumSchedule sched_;
  std::vector<std::vector<double>> G_;
  std::vector<Tensor<double>> prev_, last_;
  std::vector<std::vector<double>> L_last_;
  std::vector<double> L_cur_;
  Tensor<double> M_last_;
  Tensor<double> C_; // the data with its last mode contracted by the current last factor (dimension tree)
  std::size_t n_last_ = 0;
  double f_prev_ = 0, stat0_ = 0;
  std::size_t zero_steps_ = 0;
  std::chrono::steady_clock::time_point t0_;
};

} // namespace

template <class Model>
void init_random_cp(const Model& m, CpFactors& f, std::uint64_t seed, bool nonnegative,
                    const std::vector<ConstraintList>& cons) {
  const std::size_t N = m.order(), R = m.rank();
  if (cons.size() != N) throw Error("internal error: one constraint list per CP factor is needed");
  f.F.clear();
  for (std::size_t n = 0; n < N; ++n) {
    const CounterRng rng(seed, 201 + n);
    const std::size_t rows = m.rows_local(n), I = m.extent(n), i0 = m.row_offset(n);
    Tensor<double> X({rows, R});
    for (std::size_t r = 0; r < R; ++r)
      for (std::size_t i = 0; i < rows; ++i) {
        const double z = rng.normal(r * I + i0 + i);
        X[i + r * rows] = nonnegative ? std::abs(z) : z;
      }
    f.F.push_back(std::move(X));
  }
  apply_cp_constraints_once(m, f, cons);
}

template <class Model>
void apply_cp_constraints_once(const Model& m, CpFactors& f, const std::vector<ConstraintList>& cons) {
  for (std::size_t n = 0; n < m.order(); ++n) {
    const ScaleWeights w = constrain(m, f, n, cons);
    if (w.any()) scale_by(f.F[cp_compensating_factor(n)], m.rank(), w, false);
  }
}

template <class Model>
SolveResult solve_cp(const Model& m, CpFactors& f, const std::vector<ConstraintList>& cons, const SolverOptions& opts,
                     const CpSolveControl& ctl) {
  if (cons.size() != m.order() || f.F.size() != m.order())
    throw Error("internal error: the CP solver needs one factor and one constraint list per mode");
  if (opts.random_order || opts.group_by_factor || opts.recursive_random_order)
    throw ConfigError("the CP model updates its factors in mode order; random update orders are Tucker-1 options");
  if (opts.extrapolate)
    throw ConfigError("--extrapolate is a Tucker-1 option; the CP model takes --momentum with any block solver");
  if (opts.subblock) {
    if (opts.momentum) return CpSolver<Model, SubBlockStep, XuYinMomentum>(m, f, cons, opts, {}, {opts.delta}).run(ctl);
    return CpSolver<Model, SubBlockStep, NoMomentum>(m, f, cons, opts, {}, {}).run(ctl);
  }
  if (opts.momentum) return CpSolver<Model, LipschitzStep, XuYinMomentum>(m, f, cons, opts, {}, {opts.delta}).run(ctl);
  return CpSolver<Model, LipschitzStep, NoMomentum>(m, f, cons, opts, {}, {}).run(ctl);
}

template <class Model>
SolveResult solve_cp(const Model& m, CpFactors& f, const std::vector<ConstraintList>& cons, const SolverOptions& opts,
                     const IterationCallback& callback, const std::function<bool()>& stop_requested) {
  CpSolveControl ctl;
  ctl.on_iteration = callback;
  ctl.stop_requested = stop_requested;
  return solve_cp(m, f, cons, opts, ctl);
}

#define UNMIX_INSTANTIATE_CP(M)                                                                                        \
  template void init_random_cp(const M&, CpFactors&, std::uint64_t, bool, const std::vector<ConstraintList>&);         \
  template void apply_cp_constraints_once(const M&, CpFactors&, const std::vector<ConstraintList>&);                   \
  template SolveResult solve_cp(const M&, CpFactors&, const std::vector<ConstraintList>&, const SolverOptions&,        \
                                const IterationCallback&, const std::function<bool()>&);                               \
  template SolveResult solve_cp(const M&, CpFactors&, const std::vector<ConstraintList>&, const SolverOptions&,        \
                                const CpSolveControl&);
UNMIX_INSTANTIATE_CP(CP<double>)
UNMIX_INSTANTIATE_CP(CP<float>)

} // namespace unmix
