#include "unmix/solver/cp_solver.hpp"

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <limits>

#include "loop.hpp"
#include "scaling.hpp"
#include "unmix/core/rng.hpp"
#include "unmix/io/hdf5.hpp"
#include "unmix/kernels/blas.hpp"
#include "unmix/kernels/inner.hpp"
#include "unmix/kernels/mttkrp.hpp"
#include "unmix/kernels/nnls.hpp"
#include "unmix/model/cp.hpp"
#include "unmix/model/tucker.hpp"

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

/// Multiply the mode-n slices of the core by the weights (G x_n diag(w)), or divide with invert.
void scale_core(Tensor<double>& G, std::size_t n, const ScaleWeights& w, bool invert) {
  if (G.empty()) return;
  const Shape& s = G.shape();
  std::size_t L = 1;
  for (std::size_t m = 0; m < n; ++m) L *= s[m];
  for (std::size_t k = 0; k < G.size(); ++k) {
    double f = w.scalar;
    if (!w.per_rank.empty()) f *= w.per_rank[(k / L) % s[n]];
    G[k] *= invert ? 1.0 / f : f;
  }
}

/// Factor n's scale weights absorbed exactly by the rest of the model: by another factor for CP
/// (cp_compensating_factor), by the core's mode-n slices for Tucker.
template <class Model> void absorb(const Model& m, CpFactors& f, std::size_t n, const ScaleWeights& w) {
  if constexpr (Model::has_core)
    scale_core(f.G, n, w, false);
  else
    scale_by(f.F[cp_compensating_factor(n)], m.rank(), w, false);
}

/// One solver for the models with a factor per mode (CP, and Tucker with its core as one more block, updated
/// first in each iteration). For factor n it needs H_n (R_n x R_n) and M_n (the data's product), from the
/// model: Hadamard products of Gram matrices and MTTKRPs for CP, the core's contractions for Tucker.
template <class Model, class StepRuleT, class MomentumT> class CpSolver {
public:
  CpSolver(const Model& m, CpFactors& f, const std::vector<ConstraintList>& cons, const SolverOptions& o,
           StepRuleT step, MomentumT mom)
      : m_(m), f_(f), cons_(cons), opts_(o), step_(step), mom_(mom), N_(m.order()) {
    for (const auto& t : opts_.tol) need_grad_ = need_grad_ || is_gradient_stat(t.stat);
    for (const auto& c : cons_) nonneg_.push_back(implies_nonnegative(c));
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
      if constexpr (Model::has_core) {
        P_ = m_.partial(N_ - 1, f_.F);
        Z_ = m_.projected(N_ - 1, P_, f_.F[N_ - 1]);
      }
      if (m_.uses_tree()) contract();
    } else {
      prev_ = f_.F;
      last_ = f_.F;
      L_last_.assign(N_, {});
      L_cur_.assign(N_, 0.0);
      core_prev_ = core_last_ = f_.G;
      if constexpr (Model::has_core) {
        n_last_ = N_ - 1;
        P_ = m_.partial(n_last_, f_.F);
        M_last_ = m_.times_core(n_last_, P_, f_.G);
        Z_ = m_.projected(n_last_, P_, f_.F[n_last_]);
        if (m_.uses_tree()) contract();
      } else if (m_.uses_tree()) {
        contract();
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
      if constexpr (Model::has_core) update_core();
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
    st.core_prev = core_prev_;
    st.core_last = core_last_;
    st.core_L_last = core_L_last_;
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
    core_prev_ = st.core_prev;
    core_last_ = st.core_last;
    core_L_last_ = st.core_L_last;
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

  /// C_, the data contracted with the current last factor (dimension tree), in its kept storage.
  void contract() { m_.contracted(f_.F[N_ - 1], C_); }

  /// M_n at the current factors: for Tucker from one pass (kept as P_ for the core's product when n is the
  /// last mode); for CP from the contraction of the last mode where the model keeps one (kept current:
  /// recomputed whenever the last factor changes), else one pass over Y.
  Tensor<double> product(std::size_t n) {
    if constexpr (Model::has_core) {
      Tensor<double> P = m_.uses_tree() && n + 1 < N_ ? m_.partial_from(C_, n, f_.F) : m_.partial(n, f_.F);
      Tensor<double> M = m_.times_core(n, P, f_.G);
      if (n == N_ - 1) P_ = std::move(P);
      return M;
    } else {
      if (m_.uses_tree() && n + 1 < N_) return m_.mttkrp_from(C_, n, f_.F);
      return m_.mttkrp(n, f_.F);
    }
  }

  /// H_n: for CP the Hadamard product of the Gram matrices of every factor but n; for Tucker the core's
  /// contraction with them.
  std::vector<double> gram_except(std::size_t n) const {
    if constexpr (Model::has_core) {
      return m_.gram_except(n, f_.G, G_);
    } else {
      const std::size_t R = m_.rank();
      std::vector<double> H(R * R, 1.0);
      for (std::size_t m = 0; m < N_; ++m)
        if (m != n)
          for (std::size_t i = 0; i < R * R; ++i) H[i] *= G_[m][i];
      return H;
    }
  }

  /// grad = F H - M for a factor's local rows (R columns).
  static Tensor<double> gradient(const Tensor<double>& F, const std::vector<double>& H, const Tensor<double>& M,
                                 std::size_t R) {
    Tensor<double> g = M;
    const std::size_t rows = F.size() / R;
    if (rows > 0)
      blas::gemm<double>(blas::Trans::N, blas::Trans::N, rows, R, R, 1.0, F.data(), rows, H.data(), R, -1.0, g.data(),
                         rows);
    return g;
  }

  /// The core's gradient G x_0 F_0^T F_0 ... - Z (Tucker).
  Tensor<double> core_gradient() const {
    Tensor<double> g = m_.core_times(f_.G, G_, N_);
    for (std::size_t i = 0; i < g.size(); ++i) g[i] -= Z_[i];
    return g;
  }

  /// The core's step (Tucker): momentum, a projected gradient step with L = prod_n sigma_max(F_n^T F_n), and
  /// --inner - 1 more steps from the same Z (the whole core is one block; they stop when a step moves it by
  /// less than inner_tol times the first extra step, squared lengths). Local: the core is the same everywhere.
  void update_core() {
    if constexpr (Model::has_core) {
      double L = 1;
      for (std::size_t n = 0; n < N_; ++n) L *= LipschitzStep{}.constants(G_[n], m_.rank(n))[0];
      const std::vector<double> inv = inverse_steps({L}, 1, zero_steps_);
      core_L_ = L;
      Tensor<double>& G = f_.G;
      extrapolate_block(G, core_prev_, core_L_last_, {L}, 1, false, mom_, sched_.omega_hat);
      const ConstraintList& cons = cons_[N_];
      double first = 0;
      for (std::size_t step = 0; step < std::max<std::size_t>(opts_.inner, 1); ++step) {
        const Tensor<double> g = core_gradient();
        const Tensor<double> before = G;
        for (std::size_t i = 0; i < G.size(); ++i) G[i] -= g[i] * inv[0];
        if (!cons.empty()) apply_entrywise(cons, G.span());
        double moved = 0;
        for (std::size_t i = 0; i < G.size(); ++i) moved += (G[i] - before[i]) * (G[i] - before[i]);
        if (step == 1) first = moved;
        if (step > 1 && moved <= opts_.inner_tol * first) break;
      }
    }
  }

  void update(std::size_t n) {
    const std::size_t R = m_.rank(n);
    const std::vector<double> H = gram_except(n);
    const std::vector<double> L = step_.constants(H, R);
    const std::vector<double> inv = inverse_steps(L, R, zero_steps_);
    L_cur_[n] = *std::max_element(L.begin(), L.end());
    Tensor<double>& X = f_.F[n];
    extrapolate_block(X, prev_[n], L_last_[n], L, R, false, mom_, sched_.omega_hat);
    Tensor<double> M = product(n);
    const Tensor<double> g = gradient(X, H, M, R);
    const std::size_t rows = X.size() / R;
    for (std::size_t r = 0; r < R; ++r)
      for (std::size_t i = 0; i < rows; ++i) X[i + r * rows] -= g[i + r * rows] * inv[r];
    if (opts_.bpp && is_only_nonnegative(cons_[n])) {
      if (rows > 0) nnls_bpp_rows(R, rows, H.data(), M.data(), X.data());
    } else if (opts_.inner > 1 && is_entrywise_only(cons_[n]) && rows > 0) {
      const EntrywiseProjection proj = entrywise_projection(cons_[n]);
      if (proj) proj(X.span(), R);
      inner_steps_rows(R, rows, H.data(), M.data(), X.data(), inv.data(), opts_.inner - 1, opts_.inner_tol, proj,
                       opts_.hals ? InnerMethod::hals : InnerMethod::gradient);
    }
    const ScaleWeights w = constrain(m_, f_, n, cons_);
    G_[n] = m_.gram(n, X);
    M_last_ = std::move(M);
    n_last_ = n;
    if (w.any()) {
      // The rescaling trick: the rest of the model absorbs the weights (its history follows); factor n's
      // history moves to the new scale. M_n and the Gram matrices follow without recomputation.
      for (Tensor<double>* Z : {&prev_[n], &last_[n]}) scale_by(*Z, R, w, true);
      scale_by(M_last_, R, w, false);
      if constexpr (Model::has_core) {
        for (Tensor<double>* Z : {&f_.G, &core_prev_, &core_last_}) scale_core(*Z, n, w, false);
      } else {
        const std::size_t c = cp_compensating_factor(n);
        for (Tensor<double>* Z : {&f_.F[c], &prev_[c], &last_[c]}) scale_by(*Z, R, w, false);
        scale_gram(G_[c], R, w);
        if (m_.uses_tree() && c == N_ - 1) scale_by(C_, R, w, false); // C is linear in the last factor
      }
    }
    if constexpr (Model::has_core)
      if (n == N_ - 1) Z_ = m_.projected(n, P_, f_.F[n]);
    if (m_.uses_tree() && n == N_ - 1) contract();
  }

  IterationStats stats(double k) {
    IterationStats s;
    s.iteration = k;
    const double y2 = m_.normY2();
    const std::vector<double> H = gram_except(n_last_);
    double hg = 0;
    for (std::size_t i = 0; i < H.size(); ++i) hg += H[i] * G_[n_last_][i];
    double fval = y2 - 2.0 * m_.dot(n_last_, f_.F[n_last_], M_last_) + hg;
    // The Gram formula cancels when the error is tiny: form the residual instead.
    if (fval < Model::exact_below * y2) {
      if constexpr (Model::has_core)
        fval = m_.exact_residual2(f_.F, f_.G);
      else
        fval = m_.exact_residual2(f_.F);
    }
    s.objective = std::max(fval, 0.0);
    s.rel_error = y2 > 0 ? std::sqrt(s.objective / y2) : 0.0;
    s.grad_norm = s.stationarity = s.rel_stationarity = std::numeric_limits<double>::quiet_NaN();
    if (need_grad_) {
      double g2 = 0, st2 = 0;
      auto add = [](const Tensor<double>& g, const Tensor<double>& X, bool nonneg, double& a, double& b) {
        for (std::size_t i = 0; i < g.size(); ++i) {
          a += g[i] * g[i];
          if (!nonneg || X[i] > 0 || g[i] < 0) b += g[i] * g[i];
        }
      };
      for (std::size_t n = 0; n < N_; ++n) {
        const Tensor<double> M = n == n_last_ ? M_last_ : product(n);
        double a = 0, b = 0;
        add(gradient(f_.F[n], gram_except(n), M, m_.rank(n)), f_.F[n], nonneg_[n], a, b);
        g2 += m_.sum_rows(n, a);
        st2 += m_.sum_rows(n, b);
      }
      if constexpr (Model::has_core) add(core_gradient(), f_.G, nonneg_[N_], g2, st2); // the same everywhere
      s.grad_norm = std::sqrt(g2);
      s.stationarity = std::sqrt(st2);
      if (k == 0) stat0_ = s.stationarity;
      s.rel_stationarity = stat0_ > 0 ? s.stationarity / stat0_ : 0.0;
    }
    double d2 = 0, x2 = 0;
    auto change = [](const Tensor<double>& X, const Tensor<double>& last, double& d, double& x) {
      for (std::size_t i = 0; i < X.size(); ++i) {
        const double v = X[i], dv = v - last[i];
        d += dv * dv;
        x += v * v;
      }
    };
    for (std::size_t n = 0; n < N_; ++n) {
      double d = 0, x = 0;
      change(f_.F[n], last_[n], d, x);
      d2 += m_.sum_rows(n, d);
      x2 += m_.sum_rows(n, x);
    }
    if constexpr (Model::has_core) change(f_.G, core_last_, d2, x2);
    s.rel_change = x2 > 0 ? std::sqrt(d2 / x2) : 0.0;
    if (k > 0) {
      s.obj_ratio = s.objective > 0 ? f_prev_ / s.objective : std::numeric_limits<double>::infinity();
      s.rel_decrease = f_prev_ > 0 ? (f_prev_ - s.objective) / f_prev_ : 0.0;
    }
    f_prev_ = s.objective;
    s.L_A = L_cur_[0];
    s.L_B = N_ > 1 ? *std::max_element(L_cur_.begin() + 1, L_cur_.end()) : 0.0;
    if constexpr (Model::has_core) s.L_B = std::max(s.L_B, core_L_);
    s.seconds = solve_seconds(t0_);
    last_ = f_.F;
    core_last_ = f_.G;
    return s;
  }

  const Model& m_;
  CpFactors& f_;
  const std::vector<ConstraintList>& cons_;
  SolverOptions opts_;
  StepRuleT step_;
  MomentumT mom_;
  std::size_t N_;
  bool need_grad_ = false;
  std::vector<bool> nonneg_; // per factor, and the core last (Tucker)
  MomentumSchedule sched_;
  std::vector<std::vector<double>> G_;
  std::vector<Tensor<double>> prev_, last_;
  std::vector<std::vector<double>> L_last_;
  std::vector<double> L_cur_;
  Tensor<double> M_last_;
  Tensor<double> C_;     // the data with its last mode contracted by the current last factor (dimension tree)
  Tensor<double> P_, Z_; // Tucker: the last mode's partial product; the data times every factor's transpose
  Tensor<double> core_prev_, core_last_;
  std::vector<double> core_L_last_;
  double core_L_ = 0;
  std::size_t n_last_ = 0;
  double f_prev_ = 0, stat0_ = 0;
  std::size_t zero_steps_ = 0;
  std::chrono::steady_clock::time_point t0_;
};

} // namespace

/// The number of constraint lists a model takes: one per factor, and one for the core (Tucker).
template <class Model> std::size_t constraint_lists(const Model& m) { return m.order() + (Model::has_core ? 1 : 0); }

template <class Model>
void init_random_cp(const Model& m, CpFactors& f, std::uint64_t seed, bool nonnegative,
                    const std::vector<ConstraintList>& cons) {
  const std::size_t N = m.order();
  if (cons.size() != constraint_lists(m)) throw Error("internal error: one constraint list per block is needed");
  auto draw = [nonnegative](const CounterRng& rng, std::uint64_t k) {
    const double z = rng.normal(k);
    return nonnegative ? std::abs(z) : z;
  };
  f.F.clear();
  for (std::size_t n = 0; n < N; ++n) {
    const CounterRng rng(seed, 201 + n);
    const std::size_t R = m.rank(n), rows = m.rows_local(n), I = m.extent(n), i0 = m.row_offset(n);
    Tensor<double> X({rows, R});
    for (std::size_t r = 0; r < R; ++r)
      for (std::size_t i = 0; i < rows; ++i) X[i + r * rows] = draw(rng, r * I + i0 + i);
    f.F.push_back(std::move(X));
  }
  if constexpr (Model::has_core) {
    const CounterRng rng(seed, 200);
    f.G = Tensor<double>(m.core_shape());
    for (std::size_t k = 0; k < f.G.size(); ++k) f.G[k] = draw(rng, k);
  }
  apply_cp_constraints_once(m, f, cons);
  if constexpr (Model::has_core) {
    // The core scaled so that the model's norm is the data's: ||model||^2 = <G, G x_0 F_0^T F_0 ...>.
    std::vector<std::vector<double>> W;
    for (std::size_t n = 0; n < N; ++n) W.push_back(m.gram(n, f.F[n]));
    const Tensor<double> GW = m.core_times(f.G, W, N);
    double mm = 0;
    for (std::size_t k = 0; k < GW.size(); ++k) mm += GW[k] * f.G[k];
    if (mm > 0 && m.normY2() > 0) scale_all(f.G, std::sqrt(m.normY2() / mm));
    if (!cons[N].empty()) apply_entrywise(cons[N], f.G.span());
  }
}

template <class Model>
void apply_cp_constraints_once(const Model& m, CpFactors& f, const std::vector<ConstraintList>& cons) {
  for (std::size_t n = 0; n < m.order(); ++n) {
    const ScaleWeights w = constrain(m, f, n, cons);
    if (w.any()) absorb(m, f, n, w);
  }
  if constexpr (Model::has_core)
    if (!cons[m.order()].empty()) apply_entrywise(cons[m.order()], f.G.span());
}

template <class Model>
SolveResult solve_cp(const Model& m, CpFactors& f, const std::vector<ConstraintList>& cons, const SolverOptions& opts,
                     const CpSolveControl& ctl) {
  if (cons.size() != constraint_lists(m) || f.F.size() != m.order())
    throw Error("internal error: the solver needs one factor per mode and one constraint list per block");
  if constexpr (Model::has_core) {
    if (f.G.shape() != m.core_shape()) throw Error("internal error: the Tucker core's shape differs from the ranks");
    if (!is_entrywise_only(cons.back()))
      throw ConfigError("the Tucker core takes entrywise constraints only (nonnegative, clamp, binary or none)");
  }
  if (opts.random_order || opts.group_by_factor || opts.recursive_random_order)
    throw ConfigError("the CP and Tucker models update their blocks in mode order; random update orders are "
                      "Tucker-1 options");
  if (opts.extrapolate)
    throw ConfigError("--extrapolate is a Tucker-1 option; the CP and Tucker models take --momentum with any block "
                      "solver");
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
UNMIX_INSTANTIATE_CP(Tucker<double>)
UNMIX_INSTANTIATE_CP(Tucker<float>)

namespace {} // namespace

double mode_factors_solve_bytes(const ModeFactorsFootprint& fp) {
  const Shape& box = fp.box;
  const std::size_t N = box.size();
  if (N < 2 || fp.ranks.size() != N) return 0;
  const double d = 8.0, t = static_cast<double>(fp.value_bytes), V = static_cast<double>(shape_size(box));
  const std::size_t L = N - 1;
  double factors = 0, core = 1; // values
  for (std::size_t n = 0; n < N; ++n) {
    factors += static_cast<double>(box[n]) * static_cast<double>(fp.ranks[n]);
    core *= static_cast<double>(fp.ranks[n]);
  }
  if (!fp.core) core = 0;
  // Kept through the solve: the factors, their previous and last iterates and the last product (4 copies); the
  // core's four arrays (it, its previous and last iterates, its product with the data).
  double kept = 4 * factors * d + 4 * core * d;
  // A factor's update: its Gram matrices, gradient, step and projection (4 copies more); the core's 3.
  const double update = 4 * factors * d + 3 * core * d;
  double products = 0; // the products' own memory at their peak
  if (!fp.core) {
    const std::size_t R = fp.ranks[0];
    // mttkrp's buffers, kept between calls: the largest each reaches over the modes it serves (the kernels
    // report their own sizes); with the tree, contract_last's too and the contraction itself (kept in its
    // storage), and mttkrp_contracted's vectors, kept by the model.
    MttkrpBufferValues ws, from;
    if (fp.tree) {
      ws = mttkrp_buffer_values(box, L, R);
      ws.widen(contract_last_buffer_values(box, R));
      for (std::size_t n = 0; n < L; ++n) from.widen(mttkrp_contracted_values(box, n, R));
      products = V / static_cast<double>(std::max<std::size_t>(box[L], 1)) * static_cast<double>(R) * d;
    } else {
      for (std::size_t n = 0; n < N; ++n) ws.widen(mttkrp_buffer_values(box, n, R));
    }
    products +=
        (ws.left + ws.right + ws.scratch + from.left + from.right + from.scratch) * d + (ws.operand + ws.partial) * t;
  } else {
    // A partial product: the chain of mode products from Y (or from the tree's contraction), formed into its
    // result (multi_mode_product_into).
    auto partial_peak = [&](const Shape& from, std::size_t skip, std::size_t also) {
      return multi_mode_product_values(from, fp.ranks, skip, also);
    };
    double peak = 0;
    if (fp.tree) {
      // contracted: the product of the last mode, formed in the contraction's kept storage.
      Shape cs = box;
      cs[L] = fp.ranks[L];
      kept += static_cast<double>(shape_size(cs)) * d;
      for (std::size_t n = 0; n < L; ++n) peak = std::max(peak, partial_peak(cs, n, L));
      peak = std::max(peak, partial_peak(box, L, N));
    } else {
      for (std::size_t n = 0; n < N; ++n) peak = std::max(peak, partial_peak(box, n, N));
    }
    // P_ (the last mode's partial, kept) beside the product being formed.
    Shape p = fp.ranks;
    p[L] = box[L];
    kept += static_cast<double>(shape_size(p)) * d;
    products = peak * d;
  }
  // Occasional transients: the residual formed in slabs (when the Gram formula cancels), CP's least-squares
  // core (at the end, R^N values at most 2^24), writing B (h5::write_generated: within one read piece), a
  // checkpoint's copies.
  double occasional = static_cast<double>(h5::io_piece_bytes());
  if (!fp.core) {
    const double R = static_cast<double>(fp.ranks[0]), I0 = static_cast<double>(std::max<std::size_t>(box[0], 1));
    const double slab = static_cast<double>(residual_slab(box[0]));
    occasional = std::max(occasional, (slab * R + slab * I0) * d);
    const double Rn = std::pow(R, static_cast<double>(N));
    if (Rn <= 16777216.0) occasional = std::max(occasional, (multi_mode_product_values(box, fp.ranks, N, N) + Rn) * d);
  } else {
    const double head = V / static_cast<double>(std::max<std::size_t>(box[L], 1));
    const double nt =
        static_cast<double>(std::min(box[L], residual_slab(shape_size(box) / std::max<std::size_t>(box[L], 1))));
    Shape cs = fp.ranks;
    cs[L] = static_cast<std::size_t>(nt);
    Shape rows = box;
    rows[L] = cs[L];
    occasional = std::max(occasional, (multi_mode_product_values(cs, rows, L, N) + head * nt) * d);
  }
  if (fp.checkpoints) occasional = std::max(occasional, 2 * (factors + core) * d);
  // CP's Khatri-Rao buffers stay allocated beside the occasional arrays; Tucker's chains are gone by then.
  return kept + std::max(update + products, occasional + (fp.core ? 0.0 : products));
}

} // namespace unmix
