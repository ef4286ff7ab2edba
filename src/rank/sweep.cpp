#include "unmix/rank/sweep.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>

#include "unmix/model/cp.hpp"
#include "unmix/model/tucker1.hpp"
#include "unmix/solver/cp_solver.hpp"

namespace unmix {

SweepPlan SweepPlan::make(int processes, int groups, std::span<const std::size_t> ranks) {
  if (processes < 1) throw ConfigError("a rank sweep needs at least one process");
  if (groups < 1) throw ConfigError("--groups must be at least 1 (got " + std::to_string(groups) + ")");
  if (groups > processes)
    throw ConfigError("--groups " + std::to_string(groups) + " is more than the " + std::to_string(processes) +
                      " process" + (processes > 1 ? "es" : "") + " of the job: every group needs at least one process");
  SweepPlan p;
  p.processes = processes;
  p.groups = groups;
  const BlockPartition part{static_cast<std::size_t>(processes), groups};
  for (int g = 0; g < groups; ++g) {
    p.group_size.push_back(static_cast<int>(part.size(g)));
    p.group_first.push_back(static_cast<int>(part.offset(g)));
  }
  // Largest candidates first, each to the group that would finish it earliest.
  std::vector<std::size_t> order(ranks.size());
  for (std::size_t k = 0; k < order.size(); ++k) order[k] = k;
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return ranks[a] > ranks[b]; });
  std::vector<double> load(static_cast<std::size_t>(groups), 0.0);
  p.owner.assign(ranks.size(), 0);
  for (std::size_t k : order) {
    int best = 0;
    double best_t = std::numeric_limits<double>::infinity();
    for (int g = 0; g < groups; ++g) {
      const double t =
          load[static_cast<std::size_t>(g)] + static_cast<double>(ranks[k]) / p.group_size[static_cast<std::size_t>(g)];
      if (t < best_t) {
        best_t = t;
        best = g;
      }
    }
    p.owner[k] = best;
    load[static_cast<std::size_t>(best)] = best_t;
  }
  return p;
}

int SweepPlan::group_of(int process) const {
  const BlockPartition part{static_cast<std::size_t>(processes), groups};
  return part.owner(static_cast<std::size_t>(process));
}

std::vector<std::size_t> parse_rank_list(const std::string& text) {
  auto bad = [&](const std::string& why) {
    return ConfigError("--ranks '" + text + "': " + why +
                       " (write a range FIRST:LAST or FIRST:LAST:STEP, or a list 2,3,5)");
  };
  auto number = [&](const std::string& s) -> long {
    if (s.empty() || s.find_first_not_of("0123456789-+") != std::string::npos) throw bad("'" + s + "' is not a number");
    try {
      return std::stol(s);
    } catch (const std::exception&) {
      throw bad("'" + s + "' is not a number");
    }
  };
  std::vector<long> vals;
  if (text.find(':') != std::string::npos) {
    std::vector<std::string> parts;
    std::size_t pos = 0;
    while (true) {
      const std::size_t c = text.find(':', pos);
      parts.push_back(text.substr(pos, c == std::string::npos ? std::string::npos : c - pos));
      if (c == std::string::npos) break;
      pos = c + 1;
    }
    if (parts.size() > 3) throw bad("too many ':'");
    const long a = number(parts[0]), b = number(parts[1]), s = parts.size() == 3 ? number(parts[2]) : 1;
    if (s < 1) throw bad("the step must be at least 1");
    if (a < 1) throw bad("ranks start at 1");
    if (b < a) throw bad("the last rank is below the first");
    // Counted before filling, so a huge range is refused instead of exhausting memory (or overflowing r).
    constexpr long kMaxCandidates = 100000;
    const long count = (b - a) / s + 1;
    if (count > kMaxCandidates)
      throw bad("the range holds " + std::to_string(count) + " candidate ranks, more than " +
                std::to_string(kMaxCandidates));
    for (long k = 0; k < count; ++k) vals.push_back(a + k * s);
  } else {
    std::size_t pos = 0;
    while (true) {
      const std::size_t c = text.find(',', pos);
      vals.push_back(number(text.substr(pos, c == std::string::npos ? std::string::npos : c - pos)));
      if (c == std::string::npos) break;
      pos = c + 1;
    }
  }
  std::vector<std::size_t> out;
  for (long v : vals) {
    if (v < 1) throw bad("ranks start at 1");
    out.push_back(static_cast<std::size_t>(v));
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

int default_group_count(int processes, std::size_t candidates, double bytes_Y, double bytes_per_process) {
  int g = std::max(1, std::min(processes, static_cast<int>(std::min<std::size_t>(candidates, 1u << 20))));
  while (g > 1) {
    const double group_procs = std::floor(static_cast<double>(processes) / g);
    if (bytes_Y / group_procs <= bytes_per_process) break;
    --g;
  }
  return g;
}

namespace {

using Clock = std::chrono::steady_clock;

IterationStats stats_from_row(std::span<const double> r) {
  IterationStats s;
  double* f[] = {&s.iteration,    &s.objective,        &s.rel_error,  &s.grad_norm, &s.stationarity, &s.obj_ratio,
                 &s.rel_decrease, &s.rel_stationarity, &s.rel_change, &s.L_A,       &s.L_B,          &s.seconds,
                 &s.scale};
  for (std::size_t i = 0; i < std::size(f) && i < r.size(); ++i) *f[i] = r[i];
  return s;
}

} // namespace

template <class T>
RankSweepResult rank_sweep(const Comm& comm, const RankSweepOptions& opts, const GroupLoader<T>& load) {
  if (opts.ranks.empty()) throw ConfigError("no candidate ranks to try");
  RankSweepResult res;
  res.plan = SweepPlan::make(comm.size(), opts.groups, opts.ranks);
  const int g = res.plan.group_of(comm.rank());
  Comm group = comm.split(g, comm.rank());
  const std::size_t K = opts.ranks.size();
  constexpr std::size_t NV = 5; // rel_error, iterations, seconds, converged, core consistency
  std::vector<double> vals(K * NV, 0.0);
  std::vector<std::vector<IterationStats>> stats(K);
  std::vector<std::string> reasons(K);
  res.factors.resize(K);
  std::string grid;

  collective_try(comm, [&] {
    DistTensor<T> Y = load(group);
    grid = Y.grid().to_string();
    const Shape& shape = Y.global_shape();
    if (shape.size() < 2) throw DataError("the data has 1 axis; Tucker-1 needs at least 2 (mixtures x the rest)");
    const std::size_t I = shape[0], M = shape_size(shape) / std::max<std::size_t>(I, 1);
    const std::size_t rmax = std::min(I, M);
    const bool cp = opts.model == "cp";
    if (!cp && opts.ranks.back() > rmax)
      throw ConfigError("--ranks: rank " + std::to_string(opts.ranks.back()) +
                        " is larger than the tensor allows: with " + std::to_string(I) + " mixtures and " +
                        std::to_string(M) + " entries per mixture the rank can be at most " + std::to_string(rmax));
    bool y_nonneg = true;
    for (std::size_t k = 0; k < K; ++k) {
      if (res.plan.owner[k] != g) continue;
      const std::size_t r = opts.ranks[k];
      // The data checks every model shares; whether the data is nonnegative decides the random start.
      auto check = [&](const auto& model) {
        if (model.y_nonfinite() > 0)
          throw DataError("the data has NaN or infinite entries; remove or impute them first");
        if (model.normY2() == 0) throw DataError("the data is all zeros: there is nothing to factorize");
        const double tiny = 1e-12 * std::max(std::abs(model.y_max()), std::abs(model.y_min()));
        y_nonneg = model.y_min() >= -tiny;
      };
      IterationCallback cb;
      const bool report = group.rank() == 0 && opts.on_iteration;
      if (opts.progress || report)
        cb = [&](const IterationStats& s) {
          if (report) opts.on_iteration(r, s);
          return opts.progress ? opts.progress(r, s) : true;
        };
      const auto t0 = Clock::now();
      CandidateFactors& cf = res.factors[k];
      SolveResult sr;
      double cc = std::numeric_limits<double>::quiet_NaN();
      if (cp) {
        CP<T> model(Y, r);
        check(model);
        std::vector<ConstraintList> cons(shape.size(), opts.consB);
        cons[0] = opts.consA;
        CpFactors f;
        init_random_cp(model, f, opts.solver.seed, y_nonneg, cons);
        sr = solve_cp(model, f, cons, opts.solver, cb);
        const std::vector<double> core = model.least_squares_core(f.F);
        if (!core.empty()) cc = core_consistency(core, r, shape.size());
        cf.b_global = model.b_global_shape();
        cf.a_offset = {model.row_offset(0), 0};
        cf.b_offset = model.b_offset();
        cf.owns_A = model.owns(0);
        cf.owns_B = model.owns_B();
        cf.b_local = model.b_local_shape();
        cf.f.A = std::move(f.F[0]);
        cf.cp_factors = std::move(f.F);
      } else {
        Tucker1<T> model(Y, r);
        check(model);
        Factors f;
        init_random(model, f, opts.solver.seed, y_nonneg, opts.consA, opts.consB);
        sr = solve(model, f, opts.consA, opts.consB, opts.solver, cb);
        cf.b_global = model.b_global_shape();
        cf.a_offset = {model.row_offset(), 0};
        cf.b_offset = model.b_offset();
        cf.owns_A = model.owns_A();
        cf.owns_B = model.owns_B();
        cf.f = std::move(f);
        cf.b_local = cf.f.B.shape();
      }
      const double secs = group.allreduce(std::chrono::duration<double>(Clock::now() - t0).count(), Op::max);
      if (group.rank() == 0) {
        vals[k * NV + 0] = sr.stats.back().rel_error;
        vals[k * NV + 1] = static_cast<double>(sr.iterations);
        vals[k * NV + 2] = secs;
        vals[k * NV + 3] = sr.converged ? 1.0 : 0.0;
        vals[k * NV + 4] = cc;
        if (opts.on_finished) {
          RankCandidate done;
          done.rank = r;
          done.rel_error = vals[k * NV + 0];
          done.iterations = vals[k * NV + 1];
          done.seconds = secs;
          done.converged = vals[k * NV + 3];
          done.core_consistency = cc;
          done.group = g;
          done.stop_reason = sr.stop_reason;
          opts.on_finished(done);
        }
      }
      stats[k] = std::move(sr.stats);
      reasons[k] = sr.stop_reason;
      cf.mine = true;
      cf.I = I;
    }
  });

  // Every process learns every candidate's numbers and statistics (only group leaders contribute).
  comm.allreduce(std::span<double>(vals));
  const std::size_t ncol = IterationStats::columns().size();
  res.candidates.resize(K);
  for (std::size_t k = 0; k < K; ++k) {
    RankCandidate& c = res.candidates[k];
    c.rank = opts.ranks[k];
    c.rel_error = vals[k * NV + 0];
    c.iterations = vals[k * NV + 1];
    c.seconds = vals[k * NV + 2];
    c.converged = vals[k * NV + 3];
    c.core_consistency = vals[k * NV + 4];
    c.group = res.plan.owner[k];
    std::vector<double> flat;
    if (c.group == g && group.rank() == 0)
      for (const auto& s : stats[k]) {
        const auto row = s.row();
        flat.insert(flat.end(), row.begin(), row.end());
      }
    const auto all = comm.allgatherv<double>(flat);
    for (std::size_t i = 0; i + ncol <= all.size(); i += ncol)
      c.stats.push_back(stats_from_row(std::span<const double>(all).subspan(i, ncol)));
  }
  // Stop reasons, from the group leaders ("k\x1freason\x1e" records).
  {
    std::string mine;
    if (group.rank() == 0)
      for (std::size_t k = 0; k < K; ++k)
        if (res.plan.owner[k] == g) mine += std::to_string(k) + '\x1f' + reasons[k] + '\x1e';
    const auto all = comm.allgatherv<char>(std::span<const char>(mine.data(), mine.size()));
    const std::string s(all.begin(), all.end());
    std::size_t pos = 0;
    while (pos < s.size()) {
      const std::size_t u = s.find('\x1f', pos), e = s.find('\x1e', pos);
      res.candidates[std::stoul(s.substr(pos, u - pos))].stop_reason = s.substr(u + 1, e - u - 1);
      pos = e + 1;
    }
  }
  // The grid of every group, from its leader.
  {
    std::string mine = group.rank() == 0 ? grid + ";" : std::string();
    const auto all = comm.allgatherv<char>(std::span<const char>(mine.data(), mine.size()));
    std::string s(all.begin(), all.end());
    std::size_t pos = 0;
    while (pos < s.size()) {
      const std::size_t c = s.find(';', pos);
      res.group_grids.push_back(s.substr(pos, c - pos));
      pos = c + 1;
    }
  }
  std::vector<double> e(K);
  for (std::size_t k = 0; k < K; ++k) e[k] = res.candidates[k].rel_error;
  res.curvature = standard_curvature(e, opts.method);
  res.chosen_index = argmax_index(res.curvature);
  res.chosen_rank = opts.ranks[res.chosen_index];
  if (opts.ranks.front() != 1)
    res.warnings.push_back("the candidate ranks do not start at 1: the curvature assumes the error curve starts at 1 "
                           "one step before the first candidate");
  return res;
}

template RankSweepResult rank_sweep(const Comm&, const RankSweepOptions&, const GroupLoader<float>&);
template RankSweepResult rank_sweep(const Comm&, const RankSweepOptions&, const GroupLoader<double>&);

} // namespace unmix
