#include "unmix/solver/solver.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <optional>

#include "loop.hpp"
#include "scaling.hpp"
#include "unmix/core/rng.hpp"
#include "unmix/kernels/blas.hpp"
#include "unmix/kernels/fused.hpp"
#include "unmix/kernels/inner.hpp"
#include "unmix/kernels/nnls.hpp"
#include "unmix/kernels/tile_step.hpp"
#include "unmix/model/planted.hpp"
#include "unmix/model/tucker1.hpp"

namespace unmix {

namespace {

/// Extrapolation after exact solves applies (SolverOptions::extrapolate): with exact block solves and both
/// factors only nonnegative.
bool extrapolates(const SolverOptions& o, const ConstraintList& consA, const ConstraintList& consB) {
  return o.extrapolate && o.bpp && is_only_nonnegative(consA) && is_only_nonnegative(consB);
}

enum class Block { B, A };
enum class Step { momentum, gradient, project };
struct Update {
  Block block;
  Step step;
};

template <class Model, class StepRuleT, class MomentumT> class BlockSolver {
public:
  BlockSolver(const Model& m, Factors& f, const ConstraintList& consA, const ConstraintList& consB,
              const SolverOptions& o, StepRuleT step, MomentumT mom)
      : m_(m), f_(f), consA_(consA), consB_(consB), opts_(o), step_(step), mom_(mom), R_(m.rank()),
        rng_(o.seed ^ 0x5eed), nnA_(implies_nonnegative(consA)), nnB_(implies_nonnegative(consB)) {
    for (const auto& t : opts_.tol) (is_gradient_stat(t.stat) ? gradient_rules_ : immediate_rules_).push_back(t);
  }

  SolveResult run(const SolveControl& ctl) {
    SolveResult res;
    // B's constraints either act entrywise (applied tile by tile) or end in a rescaling of whole rows that A
    // absorbs: then the pass applies their entrywise part to its tiles and the rescaling follows it
    // (complete_b_projection).
    tile_consB_ = entrywise_before_rescaling(consB_, m_.b_global_shape().size(), 0);
    fused_ = tucker1_single_pass(opts_, consB_, m_.b_global_shape().size(), m_.mixture_split());
    rescale_B_ = fused_ && tile_consB_.has_value();
    ext_ = extrapolates(opts_, consA_, consB_);
    std::size_t k0 = 1;
    std::string why;
    if (ctl.resume) {
      restore(*ctl.resume);
      res.stats = ctl.resume->stats;
      res.iterations = ctl.resume->iteration;
      k0 = ctl.resume->iteration + 1;
    } else {
      t0_ = std::chrono::steady_clock::now();
      A_prev_ = f_.A;
      B_prev_ = f_.B;
      A_last_ = f_.A;
      if (!b_last_is_prev()) B_last_ = f_.B;
      IterationStats s = stats(0, true);
      res.stats.push_back(s);
      if (tolerance_met(opts_.tol, s, &why)) {
        res.stop_reason = "converged at the start: " + why;
        res.converged = true;
        return finish(res);
      }
    }
    for (std::size_t k = k0; k <= opts_.maxiter; ++k) {
      if (ext_) extrapolate_A();
      if (fused_) {
        fused_b_pass();
        // The pass measured the B gradient at the previous iterate: complete its statistics, and stop
        // there (restoring it) if a gradient tolerance is met.
        complete_row(res.stats.back(), delayed_gb2_, delayed_sb2_);
        if (k >= 2 && tolerance_met(gradient_rules_, res.stats.back(), &why)) {
          f_.B = last_B();
          ++b_ver_;
          res.iterations = k - 1;
          res.stop_reason = "converged: " + why;
          res.converged = true;
          return finish(res);
        }
        if (rescale_B_) complete_b_projection();
        for (const Update& u : order())
          if (u.block == Block::A) apply(u);
      } else {
        for (const Update& u : order()) apply(u);
      }
      const double f_before = f_prev_;
      IterationStats s = stats(static_cast<double>(k), !fused_);
      res.stats.push_back(s);
      if (ext_) adapt_beta(s.objective, f_before);
      res.iterations = k;
      if (end_of_iteration(
              res, s, k, fused_ ? immediate_rules_ : opts_.tol, opts_, ctl, sched_,
              [&](double v) { return m_.max_all(v); }, [&] { ctl.write_checkpoint(f_, snapshot(res, k)); }))
        return finish(res);
    }
    res.stop_reason = "reached the iteration limit (" + std::to_string(opts_.maxiter) + ")";
    return finish(res);
  }

  SolverState snapshot(const SolveResult& res, std::size_t k) const {
    SolverState st;
    st.iteration = k;
    st.A_prev = A_prev_;
    st.B_prev = B_prev_;
    st.A_last = A_last_;
    st.B_last = b_last_is_prev() ? f_.B : B_last_; // after stats, B_last_ would hold B
    st.LA_last = LA_last_;
    st.LB_last = LB_last_;
    st.LA_cur = LA_cur_;
    st.LB_cur = LB_cur_;
    st.f_prev = f_prev_;
    st.stat0 = stat0_;
    st.pending_ga2 = pending_ga2_;
    st.pending_sa2 = pending_sa2_;
    st.t = sched_.t;
    st.omega_hat = sched_.omega_hat;
    st.seconds = solve_seconds(t0_);
    st.rng_state = rng_.state();
    st.zero_steps = zero_steps_;
    st.beta = beta_;
    st.beta_bar = beta_bar_;
    st.restart = restart_;
    st.stats = res.stats;
    return st;
  }

  void restore(const SolverState& st) {
    A_prev_ = st.A_prev;
    B_prev_ = st.B_prev;
    A_last_ = st.A_last;
    if (!b_last_is_prev()) B_last_ = st.B_last;
    LA_last_ = st.LA_last;
    LB_last_ = st.LB_last;
    LA_cur_ = st.LA_cur;
    LB_cur_ = st.LB_cur;
    f_prev_ = st.f_prev;
    stat0_ = st.stat0;
    pending_ga2_ = st.pending_ga2;
    pending_sa2_ = st.pending_sa2;
    sched_.t = st.t;
    sched_.omega_hat = st.omega_hat;
    rng_.set_state(st.rng_state);
    zero_steps_ = st.zero_steps;
    beta_ = st.beta;
    beta_bar_ = st.beta_bar;
    restart_ = st.restart;
    t0_ = solve_started_ago(st.seconds);
  }

private:
  SolveResult finish(SolveResult& r) {
    // In the single-pass mode the last row still lacks its B gradient: one more product completes it.
    IterationStats& last = r.stats.back();
    if (std::isnan(last.grad_norm)) {
      const auto [gb2, sb2] = b_gradient_sums();
      complete_row(last, gb2, sb2);
    }
    r.zero_step_warnings = zero_steps_;
    return r;
  }

  /// Start of an iteration with extrapolation: the B solve is made against A^ = max(0, A + beta (A -
  /// A_prev)) (after an iteration that raised the error, against the plain A); A_prev keeps the plain A.
  void extrapolate_A() {
    if (restart_)
      A_prev_ = f_.A;
    else
      extrapolate_solution(f_.A.size(), beta_, f_.A.data(), A_prev_.data());
    ++a_ver_;
  }

  /// Ang & Gillis's rule for the weight, from the error of this iteration against the previous one.
  void adapt_beta(double f_now, double f_before) {
    if (f_now > f_before) {
      restart_ = true;
      beta_bar_ = beta_;
      beta_ /= 1.5;
    } else {
      restart_ = false;
      beta_ = std::min(beta_bar_, 1.01 * beta_);
      beta_bar_ = std::min(1.0, 1.005 * beta_bar_);
    }
  }

  static bool only_nonnegative(const ConstraintList& list) { return is_only_nonnegative(list); }
  static bool entrywise_only(const ConstraintList& list) { return is_entrywise_only(list); }

  /// The B step as one pass over Y (momentum, gradient step, entrywise projection), which also
  /// leaves Q = Y B^T and P = B B^T for the A step and the B gradient of the previous iterate.
  void fused_b_pass() {
    const std::vector<double>& Gm = G();
    const std::vector<double> L = step_.constants(Gm, R_);
    std::vector<double> omega(R_, 0.0);
    if (!LB_last_.empty() && !ext_)
      for (std::size_t r = 0; r < R_; ++r) {
        const std::size_t q = L.size() == 1 ? 0 : r;
        omega[r] = mom_.weight(sched_.omega_hat, LB_last_[q], L[q]);
      }
    LB_last_ = L;
    const std::vector<double> inv = inverse_steps(L, R_, zero_steps_);
    LB_cur_ = *std::max_element(L.begin(), L.end());
    FusedStepInput in;
    in.A = f_.A.data();
    in.G = Gm.data();
    in.inv_L = inv.data();
    in.omega = omega.data();
    in.nonnegative_stats = nnB_;
    const ConstraintList& tile_list = rescale_B_ ? *tile_consB_ : consB_;
    if (!tile_list.empty())
      in.project = [&tile_list](std::span<double> tile, std::size_t) { apply_entrywise(tile_list, tile); };
    in.keep_unprojected = rescale_B_;
    // As in gradient_B: extra steps only where every constraint of B acts entrywise.
    in.inner_steps = rescale_B_ ? 1 : opts_.inner;
    in.inner_tol = opts_.inner_tol;
    in.hals = opts_.hals;
    in.exact = opts_.bpp && only_nonnegative(consB_);
    if (ext_) in.beta = beta_;
    const auto sums = m_.fused_b_step(f_.B, B_prev_, in, Q_, P_);
    delayed_gb2_ = sums.grad2;
    delayed_sb2_ = sums.stat2;
    // The pass's sums give the relative change unless B moves again before the statistics (a rescaling), or
    // B_prev_ holds something else than B before the step (extrapolation).
    pass_change2_ = sums.change2;
    pass_norm2_ = sums.norm2;
    pass_change_valid_ = !ext_ && !rescale_B_;
    ++b_ver_;
    q_ver_ = p_ver_ = b_ver_;
  }

  /// After a pass that kept B at its gradient step (rescale_B_): B's whole constraint list, applied to all of
  /// B exactly as the two-pass iteration applies it, A absorbing the weights; Q and P, formed by the pass
  /// from the entrywise part, follow the rescaling on I x R and R x R quantities. A slice the nonnegative
  /// fallback replaced is not a rescaling of what the pass saw: Q and P are then formed again from B.
  void complete_b_projection() {
    const bool current = q_ver_ == b_ver_ && p_ver_ == b_ver_;
    const ScaleWeights w = project(Block::B);
    if (!current || w.replaced) return;
    rescale_b_products(w, true);
    q_ver_ = p_ver_ = b_ver_;
  }

  /// Q = Y B^T and P = B B^T after B's rows were multiplied by the weights (divided with `invert`).
  void rescale_b_products(const ScaleWeights& w, bool invert) {
    std::vector<double> f(R_, 1.0);
    for (std::size_t r = 0; r < R_; ++r) {
      const double wr = (w.per_rank.empty() ? 1.0 : w.per_rank[r]) * w.scalar;
      f[r] = invert ? 1.0 / wr : wr;
    }
    scale_columns(Q_, R_, f, false);
    for (std::size_t q = 0; q < R_; ++q)
      for (std::size_t r = 0; r < R_; ++r) P_[r + q * R_] *= f[r] * f[q];
  }

  /// ||G B - A^T Y||^2 and its normal-cone part at the current point (one product with Y).
  std::pair<double, double> b_gradient_sums() {
    const std::vector<double>& Gm = G();
    const std::size_t nb = f_.B.size() / R_;
    // The single pass never needs A^T Y itself: formed here a tile of columns at a time for this sum alone,
    // never whole (at a small mixture count A^T Y, R x M_p, is half of Y or more). The two-pass step reuses
    // it: kept. The gradient itself is formed a few columns at a time (tile_gradient), never whole.
    TileStepSums s;
    if (fused_) {
      m_.AtY_by_tiles(f_.A, [&](std::size_t c0, std::size_t n, const double* M) {
        tile_gradient(R_, n, Gm.data(), M, f_.B.data() + R_ * c0, nullptr, nnB_, &s);
      });
    } else {
      tile_gradient(R_, nb, Gm.data(), AtY().data(), f_.B.data(), nullptr, nnB_, &s);
    }
    return {m_.sum_B(s.grad2), m_.sum_B(s.stat2)};
  }

  /// Fills the gradient statistics of a row from its A parts (kept in the row) and the B sums.
  void complete_row(IterationStats& s, double gb2, double sb2) {
    if (!std::isnan(s.grad_norm)) return;
    s.grad_norm = std::sqrt(pending_ga2_ + gb2);
    s.stationarity = std::sqrt(pending_sa2_ + sb2);
    if (s.iteration == 0) stat0_ = s.stationarity;
    s.rel_stationarity = stat0_ > 0 ? s.stationarity / stat0_ : 0.0;
  }

  // ---- cached collective products, keyed by the version of the factor they depend on ----
  const std::vector<double>& G() {
    if (g_ver_ != a_ver_) {
      G_ = m_.gram_A(f_.A);
      g_ver_ = a_ver_;
    }
    return G_;
  }
  const Tensor<double>& AtY() {
    if (aty_ver_ != a_ver_) {
      m_.AtY(f_.A, AtY_); // into the old one's storage
      aty_ver_ = a_ver_;
    }
    return AtY_;
  }
  const std::vector<double>& P() {
    if (p_ver_ != b_ver_) {
      P_ = m_.gram_B(f_.B);
      p_ver_ = b_ver_;
    }
    return P_;
  }
  const Tensor<double>& Q() {
    if (q_ver_ != b_ver_) {
      Q_ = m_.YBt(f_.B);
      q_ver_ = b_ver_;
    }
    return Q_;
  }

  std::vector<Update> order() {
    std::vector<std::vector<Update>> groups = {
        {{Block::B, Step::momentum}, {Block::B, Step::gradient}, {Block::B, Step::project}},
        {{Block::A, Step::momentum}, {Block::A, Step::gradient}, {Block::A, Step::project}}};
    auto shuffle = [&](auto& v) {
      for (std::size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[rng_.below(i)]);
    };
    if (opts_.recursive_random_order) {
      shuffle(groups);
      for (auto& g : groups) shuffle(g);
    } else if (opts_.random_order && opts_.group_by_factor) {
      shuffle(groups);
    }
    std::vector<Update> out;
    for (auto& g : groups) out.insert(out.end(), g.begin(), g.end());
    if (opts_.random_order && !opts_.group_by_factor && !opts_.recursive_random_order) shuffle(out);
    return out;
  }

  void apply(const Update& u) {
    if (u.block == Block::B) {
      switch (u.step) {
      case Step::momentum:
        if (!ext_) momentum(f_.B, B_prev_, LB_last_, step_.constants(G(), R_), true, b_ver_);
        break;
      case Step::gradient: gradient_B(); break;
      case Step::project: project(Block::B); break;
      }
    } else {
      switch (u.step) {
      case Step::momentum:
        if (!ext_) momentum(f_.A, A_prev_, LA_last_, step_.constants(P(), R_), false, a_ver_);
        break;
      case Step::gradient: gradient_A(); break;
      case Step::project: project(Block::A); break;
      }
    }
  }

  /// Xu & Yin's extrapolation of X before its step (extrapolate_block); its products are then stale.
  void momentum(Tensor<double>& X, Tensor<double>& X_prev, std::vector<double>& L_last, const std::vector<double>& L,
                bool rows, std::uint64_t& ver) {
    if (extrapolate_block(X, X_prev, L_last, L, R_, rows, mom_, sched_.omega_hat)) ++ver;
  }

  void gradient_B() {
    const std::vector<double>& Gm = G();
    const Tensor<double>& M = AtY();
    const std::vector<double> L = step_.constants(Gm, R_);
    const std::vector<double> inv = inverse_steps(L, R_, zero_steps_);
    LB_cur_ = *std::max_element(L.begin(), L.end());
    const std::size_t n = f_.B.size() / R_;
    // B <- B - (G B - AtY) / L per row, the gradient formed a few columns at a time.
    tile_gradient(R_, n, Gm.data(), M.data(), f_.B.data(), inv.data(), false, nullptr);
    if (opts_.bpp && only_nonnegative(consB_)) {
      nnls_bpp_columns(R_, n, Gm.data(), M.data(), f_.B.data());
      if (ext_) extrapolate_solution(f_.B.size(), beta_, f_.B.data(), B_prev_.data());
    } else if (opts_.inner > 1 && entrywise_only(consB_)) {
      const auto proj = entrywise_projection(consB_);
      if (proj) proj(f_.B.span(), n);
      inner_steps_columns(R_, n, Gm.data(), M.data(), f_.B.data(), inv.data(), opts_.inner - 1, opts_.inner_tol, proj,
                          opts_.hals ? InnerMethod::hals : InnerMethod::gradient);
    }
    ++b_ver_;
  }

  void gradient_A() {
    const std::vector<double>& Pm = P();
    const Tensor<double>& Qm = Q();
    const std::vector<double> L = step_.constants(Pm, R_);
    const std::vector<double> inv = inverse_steps(L, R_, zero_steps_);
    LA_cur_ = *std::max_element(L.begin(), L.end());
    const std::size_t n = f_.A.size() / R_;
    Tensor<double> grad = Qm;
    blas::gemm<double>(blas::Trans::N, blas::Trans::N, n, R_, R_, 1.0, f_.A.data(), n, Pm.data(), R_, -1.0, grad.data(),
                       n);
    for (std::size_t r = 0; r < R_; ++r)
      for (std::size_t i = 0; i < n; ++i) f_.A[i + r * n] -= grad[i + r * n] * inv[r];
    if (opts_.bpp && only_nonnegative(consA_)) {
      nnls_bpp_rows(R_, n, Pm.data(), Qm.data(), f_.A.data());
    } else if (opts_.inner > 1 && entrywise_only(consA_)) {
      const auto proj = entrywise_projection(consA_);
      if (proj) {
        FactorView v = local_view(f_.A.span(), Shape{n, R_}, 1);
        unmix::apply(consA_, v);
      }
      inner_steps_rows(R_, n, Pm.data(), Qm.data(), f_.A.data(), inv.data(), opts_.inner - 1, opts_.inner_tol, proj,
                       opts_.hals ? InnerMethod::hals : InnerMethod::gradient);
    }
    ++a_ver_;
  }

  /// A block's constraint list, the other factor absorbing its weights (returned).
  ScaleWeights project(Block b) {
    ScaleWeights w;
    if (b == Block::B) {
      if (consB_.empty()) return w;
      FactorView v = m_.view_B(f_.B);
      w = unmix::apply(consB_, v);
      ++b_ver_;
      compensate(w, Block::A);
    } else {
      if (consA_.empty()) return w;
      FactorView v = m_.view_A(f_.A);
      w = unmix::apply(consA_, v);
      ++a_ver_;
      compensate(w, Block::B);
    }
    return w;
  }

  /// The rescaling trick: the factor `other` absorbs the weights so that A B(1) is unchanged. The
  /// scaled factor's momentum and history copies are moved to the new scale as well.
  void compensate(const ScaleWeights& w, Block other) {
    if (!w.any()) return;
    pass_change_valid_ = false;
    if (other == Block::A) {
      for (Tensor<double>* X : {&f_.A, &A_prev_, &A_last_}) {
        if (!w.per_rank.empty()) scale_columns(*X, R_, w.per_rank, false);
        if (w.scalar != 1.0) scale_all(*X, w.scalar);
      }
      for (Tensor<double>* X : {&B_prev_, &B_last_}) {
        if (X == &B_last_ && b_last_is_prev()) continue;
        if (!w.per_rank.empty()) scale_rows(*X, R_, w.per_rank, true);
        if (w.scalar != 1.0) scale_all(*X, 1.0 / w.scalar);
      }
      ++a_ver_;
    } else {
      for (Tensor<double>* X : {&f_.B, &B_prev_, &B_last_}) {
        if (X == &B_last_ && b_last_is_prev()) continue;
        if (!w.per_rank.empty()) scale_rows(*X, R_, w.per_rank, false);
        if (w.scalar != 1.0) scale_all(*X, w.scalar);
      }
      for (Tensor<double>* X : {&A_prev_, &A_last_}) {
        if (!w.per_rank.empty()) scale_columns(*X, R_, w.per_rank, true);
        if (w.scalar != 1.0) scale_all(*X, 1.0 / w.scalar);
      }
      // Q = Y B^T and P = B B^T, if formed for B before the rescaling, follow it (no pass over Y for them).
      const bool current = q_ver_ == b_ver_ && p_ver_ == b_ver_;
      ++b_ver_;
      if (current) {
        rescale_b_products(w, false);
        q_ver_ = p_ver_ = b_ver_;
      }
    }
  }

  IterationStats stats(double k, bool with_b_grad) {
    IterationStats s;
    s.iteration = k;
    const std::vector<double>& Gm = G();
    const std::vector<double>& Pm = P();
    const Tensor<double>& Qm = Q();
    const double y2 = m_.normY2();
    double gp = 0;
    for (std::size_t i = 0; i < R_ * R_; ++i) gp += Gm[i] * Pm[i];
    double fval = y2 - 2.0 * m_.dot_A(f_.A, Qm) + gp;
    // The Gram formula cancels when the error is tiny: form the residual instead.
    if (fval < 1e-9 * y2) fval = m_.exact_residual2(f_.A, f_.B);
    s.objective = std::max(fval, 0.0);
    s.rel_error = y2 > 0 ? std::sqrt(s.objective / y2) : 0.0;
    // g_A = A P - Q at the current point; g_B = G B - A^T Y now, or (single pass) in the next pass.
    const std::size_t na = f_.A.size() / R_;
    Tensor<double> gA = Qm;
    blas::gemm<double>(blas::Trans::N, blas::Trans::N, na, R_, R_, 1.0, f_.A.data(), na, Pm.data(), R_, -1.0, gA.data(),
                       na);
    double ga2 = 0, sa2 = 0;
    for (std::size_t i = 0; i < gA.size(); ++i) {
      const double g = gA[i];
      ga2 += g * g;
      if (!nnA_ || f_.A[i] > 0 || g < 0) sa2 += g * g;
    }
    double dA2 = 0, dB2 = 0, nA2 = 0, nB2 = 0;
    for (std::size_t i = 0; i < f_.A.size(); ++i) {
      dA2 += (f_.A[i] - A_last_[i]) * (f_.A[i] - A_last_[i]);
      nA2 += f_.A[i] * f_.A[i];
    }
    const bool from_pass = pass_change_valid_ && k > 0;
    pass_change_valid_ = false;
    const Tensor<double>& Bl = last_B();
    for (std::size_t i = 0; !from_pass && i < f_.B.size(); ++i) {
      dB2 += (f_.B[i] - Bl[i]) * (f_.B[i] - Bl[i]);
      nB2 += f_.B[i] * f_.B[i];
    }
    pending_ga2_ = m_.sum_A(ga2);
    pending_sa2_ = m_.sum_A(sa2);
    const double an = m_.sum_A(nA2), da = m_.sum_A(dA2);
    const double bn = from_pass ? pass_norm2_ : m_.sum_B(nB2), db = from_pass ? pass_change2_ : m_.sum_B(dB2);
    s.rel_change = (an + bn) > 0 ? std::sqrt(da + db) / std::sqrt(an + bn) : 0.0;
    s.grad_norm = s.stationarity = s.rel_stationarity = std::numeric_limits<double>::quiet_NaN();
    if (with_b_grad) {
      const auto [gb2, sb2] = b_gradient_sums();
      complete_row(s, gb2, sb2);
    }
    if (k > 0) {
      s.obj_ratio = s.objective > 0 ? f_prev_ / s.objective : std::numeric_limits<double>::infinity();
      s.rel_decrease = f_prev_ > 0 ? (f_prev_ - s.objective) / f_prev_ : 0.0;
    }
    f_prev_ = s.objective;
    s.L_A = LA_cur_;
    s.L_B = LB_cur_;
    s.seconds = solve_seconds(t0_);
    A_last_ = f_.A;
    if (!b_last_is_prev()) B_last_ = f_.B;
    return s;
  }

  /// In the single pass without extrapolation, B_prev_ is always what B_last_ would be (the pass sets it to each
  /// tile's value before the step, and every rescaling moves both alike): B_last_ is then neither copied nor kept
  /// (at the sizes where the factors rival Y, a copy of B per iteration cost as much as reading Y).
  bool b_last_is_prev() const { return fused_ && !ext_; }
  const Tensor<double>& last_B() const { return b_last_is_prev() ? B_prev_ : B_last_; }

  const Model& m_;
  Factors& f_;
  const ConstraintList& consA_;
  const ConstraintList& consB_;
  SolverOptions opts_;
  StepRuleT step_;
  MomentumT mom_;
  std::size_t R_;
  SeqRng rng_;
  bool nnA_, nnB_;
  MomentumSchedule sched_;
  std::uint64_t a_ver_ = 1, b_ver_ = 1;
  std::uint64_t g_ver_ = 0, aty_ver_ = 0, p_ver_ = 0, q_ver_ = 0;
  std::vector<double> G_, P_;
  Tensor<double> AtY_, Q_;
  Tensor<double> A_prev_, B_prev_, A_last_, B_last_;
  std::vector<double> LA_last_, LB_last_;
  double LA_cur_ = 0, LB_cur_ = 0, f_prev_ = 0, stat0_ = 0;
  bool fused_ = false;
  bool rescale_B_ = false;                   // the pass keeps B unprojected; complete_b_projection follows
  std::optional<ConstraintList> tile_consB_; // the entrywise part of B's list before its rescaling
  std::vector<Tolerance> gradient_rules_, immediate_rules_;
  double pending_ga2_ = 0, pending_sa2_ = 0, delayed_gb2_ = 0, delayed_sb2_ = 0;
  double pass_change2_ = 0, pass_norm2_ = 0; // the last pass's ||B - B_prev||^2 and ||B||^2 (over all processes)
  bool pass_change_valid_ = false;           // they still describe B and the B before the step
  std::size_t zero_steps_ = 0;
  bool ext_ = false;                   // extrapolation after exact solves (SolverOptions::extrapolate)
  double beta_ = 0.5, beta_bar_ = 1.0; // its weight and the weight's ceiling
  bool restart_ = false;               // the last iteration raised the error: no A extrapolation next
  std::chrono::steady_clock::time_point t0_;
};

template <class Model>
void compensate_once(const Model& m, Factors& f, const ConstraintList& consA, const ConstraintList& consB) {
  const std::size_t R = m.rank();
  if (!consB.empty()) {
    FactorView v = m.view_B(f.B);
    const ScaleWeights w = unmix::apply(consB, v);
    if (w.any()) {
      if (!w.per_rank.empty()) scale_columns(f.A, R, w.per_rank, false);
      if (w.scalar != 1.0) scale_all(f.A, w.scalar);
    }
  }
  if (!consA.empty()) {
    FactorView v = m.view_A(f.A);
    const ScaleWeights w = unmix::apply(consA, v);
    if (w.any()) {
      if (!w.per_rank.empty()) scale_rows(f.B, R, w.per_rank, false);
      if (w.scalar != 1.0) scale_all(f.B, w.scalar);
    }
  }
}

} // namespace

template <class Model>
void apply_constraints_once(const Model& m, Factors& f, const ConstraintList& consA, const ConstraintList& consB) {
  compensate_once(m, f, consA, consB);
}

template <class Model>
void init_random(const Model& m, Factors& f, std::uint64_t seed, bool nonnegative, const ConstraintList& consA,
                 const ConstraintList& consB) {
  const std::size_t R = m.rank(), I = m.mixtures();
  const CounterRng rb(seed, 101), ra(seed, 102);
  const Shape bshape = m.b_local_shape(), boff = m.b_offset(), bglob = m.b_global_shape();
  f.B = Tensor<double>(bshape);
  Shape yglob = bglob, ybox = bshape;
  const std::size_t n = f.B.size() / R;
  for (std::size_t j = 0; j < n; ++j) {
    const std::size_t gj = global_column(yglob, boff, ybox, j);
    for (std::size_t r = 0; r < R; ++r) {
      const double z = rb.normal(gj * R + r);
      f.B[r + j * R] = nonnegative ? std::abs(z) : z;
    }
  }
  f.A = Tensor<double>({m.rows_local(), R});
  for (std::size_t r = 0; r < R; ++r)
    for (std::size_t i = 0; i < m.rows_local(); ++i) {
      const double z = ra.normal(r * I + m.row_offset() + i);
      f.A(i, r) = nonnegative ? std::abs(z) : z;
    }
  compensate_once(m, f, consA, consB);
}

bool tucker1_single_pass(const SolverOptions& o, const ConstraintList& consB, std::size_t b_axes, bool mixture_split) {
  return o.fused && !o.random_order && !o.recursive_random_order && !mixture_split &&
         (is_entrywise_only(consB) || entrywise_before_rescaling(consB, b_axes, 0).has_value());
}

double tucker1_solve_bytes(const Tucker1Footprint& fp, const ConstraintList& consA, const ConstraintList& consB,
                           const SolverOptions& o) {
  const double b = 8.0 * static_cast<double>(fp.R) * static_cast<double>(fp.Mp); // one copy of B
  const bool single = tucker1_single_pass(o, consB, fp.b_axes, fp.mixture_split);
  const bool ext = extrapolates(o, consA, consB);
  // Kept through the solve: B, its momentum history; the previous iterate unless the single pass without
  // extrapolation stands the history in for it; A^T Y in the two-pass iteration.
  const double kept = single ? (ext ? 3 : 2) : 4;
  // The largest transient beside them. The single pass: none (A^T Y for the B gradient's statistics is formed
  // a tile at a time, AtY_by_tiles). The two-pass iteration forms A^T Y in its kept place (in float a tile at a
  // time) and its gradients a few columns at a time, so: a projection of B that is not entrywise (the sorted
  // projections copy B whole) or the exact solves' per-column state (masks, counters, sort buffers: about 96
  // bytes a column), whichever is larger. A checkpoint's two copies of B in either.
  double transient = 0;
  if (!single)
    transient = std::max(is_entrywise_only(consB) ? 0.0 : b, o.bpp ? 96.0 * static_cast<double>(fp.Mp) : 0.0);
  if (fp.checkpoints) transient = std::max(transient, 2 * b);
  // A, its history and products (I x R), and the pass's tile buffers: small beside B unless Mp is small.
  const double a_side = 16.0 * 8.0 * static_cast<double>(fp.Ip) * static_cast<double>(fp.R);
  return kept * b + transient + a_side;
}

template <class Model>
SolveResult solve(const Model& m, Factors& f, const ConstraintList& consA, const ConstraintList& consB,
                  const SolverOptions& opts, const SolveControl& ctl) {
  if (opts.subblock) {
    if (opts.momentum)
      return BlockSolver<Model, SubBlockStep, XuYinMomentum>(m, f, consA, consB, opts, {}, {opts.delta}).run(ctl);
    return BlockSolver<Model, SubBlockStep, NoMomentum>(m, f, consA, consB, opts, {}, {}).run(ctl);
  }
  if (opts.momentum)
    return BlockSolver<Model, LipschitzStep, XuYinMomentum>(m, f, consA, consB, opts, {}, {opts.delta}).run(ctl);
  return BlockSolver<Model, LipschitzStep, NoMomentum>(m, f, consA, consB, opts, {}, {}).run(ctl);
}

template <class Model>
SolveResult solve(const Model& m, Factors& f, const ConstraintList& consA, const ConstraintList& consB,
                  const SolverOptions& opts, const IterationCallback& callback) {
  SolveControl ctl;
  ctl.on_iteration = callback;
  return solve(m, f, consA, consB, opts, ctl);
}

#define UNMIX_INSTANTIATE(M)                                                                                           \
  template void init_random(const M&, Factors&, std::uint64_t, bool, const ConstraintList&, const ConstraintList&);    \
  template void apply_constraints_once(const M&, Factors&, const ConstraintList&, const ConstraintList&);              \
  template SolveResult solve(const M&, Factors&, const ConstraintList&, const ConstraintList&, const SolverOptions&,   \
                             const IterationCallback&);                                                                \
  template SolveResult solve(const M&, Factors&, const ConstraintList&, const ConstraintList&, const SolverOptions&,   \
                             const SolveControl&);
UNMIX_INSTANTIATE(Tucker1<double>)
UNMIX_INSTANTIATE(Tucker1<float>)

} // namespace unmix
