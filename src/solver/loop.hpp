#pragma once
// The end of an iteration, the same for every solver: the per-iteration callback, the stopping rules, the
// momentum schedule, stop requests, checkpoints and the wall-clock limit, in that order.
#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include "unmix/constraints/constraints.hpp"
#include "unmix/core/tensor.hpp"
#include "unmix/kernels/inner.hpp"
#include "unmix/solver/solver.hpp"

namespace unmix {

/// The solve's clock: seconds since its start, and the start of a solve resumed after `seconds` of it.
inline double solve_seconds(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}
inline std::chrono::steady_clock::time_point solve_started_ago(double seconds) {
  return std::chrono::steady_clock::now() -
         std::chrono::duration_cast<std::chrono::steady_clock::duration>(std::chrono::duration<double>(seconds));
}

/// Xu & Yin's extrapolation of one block before its step: X <- X + omega_r (X - X_prev), X_prev <- X (the
/// value before), omega_r from the block's step constants now (L) and at the previous iterate (L_last, which
/// then takes L's value; empty in the first iteration: no extrapolation). `rows`: the rank indexes the rows
/// of X (R x n, Tucker-1's B) rather than its columns (n x R). Returns whether X changed.
template <class MomentumT>
bool extrapolate_block(Tensor<double>& X, Tensor<double>& X_prev, std::vector<double>& L_last,
                       const std::vector<double>& L, std::size_t R, bool rows, const MomentumT& mom, double omega_hat) {
  std::vector<double> omega(R, 0.0);
  bool any = false;
  if (!L_last.empty())
    for (std::size_t r = 0; r < R; ++r) {
      const std::size_t q = L.size() == 1 ? 0 : r;
      omega[r] = mom.weight(omega_hat, L_last[q], L[q]);
      any = any || omega[r] != 0.0;
    }
  L_last = L;
  if (!any) {
    X_prev = X;
    return false;
  }
  const std::size_t n = X.size() / R;
  for (std::size_t idx = 0; idx < X.size(); ++idx) {
    const std::size_t r = rows ? idx % R : idx / n;
    const double cur = X[idx];
    X[idx] = cur + omega[r] * (cur - X_prev[idx]);
    X_prev[idx] = cur;
  }
  return true;
}

/// The step sizes 1/L_r of a block (one constant for all r, or one each); a zero constant gives step 1 and is
/// counted in `zero_steps` (the row or column is left unscaled).
inline std::vector<double> inverse_steps(const std::vector<double>& L, std::size_t R, std::size_t& zero_steps) {
  for (double l : L)
    if (!(l > 0)) ++zero_steps;
  std::vector<double> inv(R);
  for (std::size_t r = 0; r < R; ++r) {
    const double l = L.size() == 1 ? L[0] : L[r];
    inv[r] = l > 0 ? 1.0 / l : 1.0;
  }
  return inv;
}

/// The constraints of an entrywise list as a projection of groups of columns or rows, for the inner steps
/// (empty list: none). Holds a reference: the list must outlive it.
inline EntrywiseProjection entrywise_projection(const ConstraintList& list) {
  if (list.empty()) return {};
  return [&list](std::span<double> block, std::size_t) { apply_entrywise(list, block); };
}

/// Returns true when the run ends after iteration k (res.stop_reason and its flags set). `rules`: the
/// tolerances tested now; `max_all` gives the largest value over the processes (a collective, called only
/// with a wall-clock limit, which every process has alike); `checkpoint` writes one (asked through
/// ctl.want_checkpoint). Control is SolveControl or CpSolveControl.
template <class Control>
bool end_of_iteration(SolveResult& res, const IterationStats& s, std::size_t k, const std::vector<Tolerance>& rules,
                      const SolverOptions& opts, const Control& ctl, MomentumSchedule& sched,
                      const std::function<double(double)>& max_all, const std::function<void()>& checkpoint) {
  std::string why;
  const bool keep_going = ctl.on_iteration ? ctl.on_iteration(s) : true;
  if (tolerance_met(rules, s, &why)) {
    res.stop_reason = "converged: " + why;
    res.converged = true;
    return true;
  }
  sched.advance();
  const bool stop = !keep_going || (ctl.stop_requested && ctl.stop_requested());
  const bool out_of_time = opts.max_seconds > 0 && max_all(s.seconds) >= opts.max_seconds;
  if (ctl.write_checkpoint && ctl.want_checkpoint && ctl.want_checkpoint(k, stop || out_of_time)) checkpoint();
  if (stop) {
    res.stop_reason = "interrupted";
    res.interrupted = true;
    return true;
  }
  if (out_of_time) {
    res.stop_reason = "wall-clock limit of " + std::to_string(opts.max_seconds) + " s reached";
    return true;
  }
  return false;
}

} // namespace unmix
