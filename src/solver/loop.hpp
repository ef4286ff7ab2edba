#pragma once
// The end of an iteration, the same for every solver: the per-iteration callback, the stopping rules, the
// momentum schedule, stop requests, checkpoints and the wall-clock limit, in that order.
#include <chrono>
#include <functional>
#include <string>
#include <vector>

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
