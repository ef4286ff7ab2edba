// Per-iteration time of the Tucker-1 solver against the machine's limits, measured in the same run.
//
//   mpirun -n P bench_tucker1 [--shape 2000x200x100] [--rank 10] [--iters 20] [--precision double]
//                             [--targets 0.02,0.005 --inner 1,10 --hals 1 --bpp 1 --max-seconds 60]
//                             [--two-gemm 0] [--floors 0]   (skip the two-GEMM iteration or the triad
//                             and GEMM floors: their fields print as 0 or inf)
//                             [--compare ROUNDS]   (then the pass's settings compared in this process)
//                             [--compare-list "default;pf=4;rb=10;kib=192;pages=4k"]   (which ones)
//                             [--repeat N]   (the shipped solve N times: the median over all iterations;
//                             each solve followed by its own floor measurements, ratio_to_floor the
//                             median of the N ratios)
//                             [--kernels 1]   (then each tile product's cached rate per block of R)
//                             [--constraint-b l1scale_average12slices+nonnegative]   (B's constraints in
//                             the timed solves; A stays nonnegative. Setting "fused=0" of --compare-list
//                             times the two-pass iteration in the same process)
//
// Prints one line per configuration (key=value, machine-readable):
//   the median time per iteration of the default nonnegative factorization (the solver as shipped),
//     after a first solve of 12 iterations in which the pass picks its read-ahead by measurement
//     (read_ahead: the modes picked, lowest..highest over processes; tuning_ms: that solve's median;
//     tile_columns: the pass's tile width; l2_KiB: the level-2 cache the read-ahead rule assumes;
//     blas_narrower: 1 when OpenBLAS runs narrower kernels than the processor has, see bench_common.hpp;
//     baseline_MB: the largest process's resident memory before the data was made (MPI, OpenBLAS and the other
//     libraries, 16-19 MB on Debian 12), and peak_growth_over_Y_plus_factors: (peak - baseline) / (local Y +
//     factors), the part of peak_over_Y_plus_factors that the data and the solve hold);
//   the memory floor: bytes of the local Y / STREAM-triad bandwidth measured now, all processes at once,
//     on buffers as large as the local Y;
//   the compute floor: 4 I_p M_p R flops / the rate of a large square GEMM measured now on every process;
//   the ratio of the time to the larger floor; the same for a straightforward two-GEMM iteration and the
//   speed-up over it; the peak resident memory per process and its ratio to (local Y + factors).
// With --repeat N the floors are measured N times, each right after one of the N timed solves, and
// ratio_to_floor is the median over the N solves of (that solve's median iteration / the larger floor
// measured just after it): on a shared host whose speed drifts over seconds, a ratio of times taken
// minutes apart measures the drift as much as the iteration. The floors printed are the medians over the
// N measurements, ratio_unpaired is iter_ms / the larger of them, and ratio_rounds lists the N ratios.
// With --targets, also the time and iterations to reach each relative error on the planted noise-free
// problem from the same seeded start, for each number of inner steps in --inner.

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <unistd.h>

// OpenBLAS names the kernel it picked for this processor (a slow pick makes a low compute floor).
extern "C" char* openblas_get_corename(void);

#include "unmix/core/mpi.hpp"
#include "unmix/core/resources.hpp"
#include "unmix/kernels/blas.hpp"
#include "unmix/kernels/fused.hpp"
#include "unmix/kernels/tile_products.hpp"
#include "unmix/model/planted.hpp"
#include "unmix/model/tucker1.hpp"
#include "unmix/solver/solver.hpp"

#include "bench_common.hpp"

using namespace unmix;
using namespace unmix::bench;

namespace {

/// Read-only bandwidth: the sum of the local Y, all processes at once (bytes/s per process, median).
template <class T> double read_bandwidth(const Comm& comm, const T* y, std::size_t n) {
  std::vector<double> rates;
  double keep = 0;
  for (int rep = 0; rep < 3; ++rep) {
    comm.barrier();
    const double t0 = now();
    T s[8] = {};
    std::size_t i = 0;
    for (; i + 8 <= n; i += 8)
      for (int k = 0; k < 8; ++k) s[k] += y[i + k];
    for (; i < n; ++i) s[0] += y[i];
    const double t = comm.allreduce(now() - t0, Op::max);
    for (int k = 0; k < 8; ++k) keep += s[k];
    rates.push_back(sizeof(T) * static_cast<double>(n) / t);
  }
  volatile double sink = keep;
  (void)sink;
  return median(rates);
}

/// Rate of the pass's tile products on one tile that stays in the caches (the pass's tile width; flop/s
/// per process, all processes at once): the arithmetic alone, without reading Y from memory. `which`:
/// 0 both products, 1 the first (Y^T A), 2 the second (Y B^T).
template <class T> double cached_tile_rate(const Comm& comm, const T* y, std::size_t Ip, std::size_t R, int which = 0) {
  const std::size_t nt = fused_tile_columns(Ip, sizeof(T));
  AlignedVector<T> A(Ip * R, T(0.5)), C(nt * R), B(R * nt, T(0.25)), Q(Ip * R, T(0)); // as the pass's
  const int reps = 40;
  std::vector<double> rates;
  for (int round = 0; round < 4; ++round) {
    comm.barrier();
    const double t0 = now();
    for (int k = 0; k < reps; ++k) {
      if (which != 2) tile_yta<T>(Ip, nt, R, y, Ip, A.data(), C.data());
      if (which != 1) tile_ybt<T>(Ip, nt, R, y, Ip, B.data(), Q.data());
    }
    const double t = comm.allreduce(now() - t0, Op::max);
    if (round > 0) rates.push_back((which ? 2.0 : 4.0) * static_cast<double>(Ip * nt * R) * reps / t);
  }
  volatile T sink = Q[0] + C[0];
  (void)sink;
  return median(rates);
}

/// The cached-tile rates of each product for each limit on the blocks of R (tile_products.hpp), so that
/// one short run on another machine shows how its cores take the kernels. One line per limit.
template <class T>
void kernel_rates(const Comm& comm, const T* y, std::size_t Ip, std::size_t R, const Shape& shape, double gemm) {
  for (int limit : {0, 3, 4, 5, 6, 8, 10, 12}) {
    if (limit > static_cast<int>(R) + 2) continue;
    tile_products_rank_block(limit);
    const double first = cached_tile_rate(comm, y, Ip, R, 1), second = cached_tile_rate(comm, y, Ip, R, 2);
    if (comm.rank() == 0)
      std::printf("bench=tucker1_kernels procs=%d shape=%s R=%zu precision=%s rank_block=%s yta_GFLOPs=%.1f "
                  "ybt_GFLOPs=%.1f gemm_GFLOPs=%.1f tile_isa=%s\n",
                  comm.size(), shape_string(shape).c_str(), R, sizeof(T) == 8 ? "double" : "float",
                  limit ? std::to_string(limit).c_str() : "default", first / 1e9, second / 1e9, gemm / 1e9,
                  tile_products_isa());
  }
  tile_products_rank_block(0);
}

/// The straightforward iteration: two GEMMs with Y as stored (A^T Y and Y B^T), projected gradient
/// steps with the Lipschitz constants, allreduce of the pieces. Returns the median seconds per iteration.
template <class T> double two_gemm_iteration(const Tucker1<T>& m, Factors f, int iters) {
  const std::size_t R = m.rank(), Ip = m.rows_local(), Mp = m.cols_local();
  std::vector<double> times;
  const Comm& comm = m.data().comm();
  std::vector<T> Af(Ip * R), Bf(R * Mp), AtY(R * Mp), Q(Ip * R);
  for (int it = 0; it < iters; ++it) {
    comm.barrier();
    const double t0 = now();
    const auto G = m.gram_A(f.A);
    const double LB = blas::sym_max_eig(G.data(), R);
    std::copy(f.A.span().begin(), f.A.span().end(), Af.begin());
    blas::gemm<T>(blas::Trans::T, blas::Trans::N, R, Mp, Ip, T(1), Af.data(), Ip, m.data().local().data(), Ip, T(0),
                  AtY.data(), R);
    Tensor<double> grad({R, Mp});
    for (std::size_t i = 0; i < grad.size(); ++i) grad[i] = -static_cast<double>(AtY[i]);
    blas::gemm<double>(blas::Trans::N, blas::Trans::N, R, Mp, R, 1.0, G.data(), R, f.B.data(), R, 1.0, grad.data(), R);
    for (std::size_t i = 0; i < grad.size(); ++i) f.B[i] = std::max(0.0, f.B[i] - grad[i] / LB);
    const auto P = m.gram_B(f.B);
    const double LA = blas::sym_max_eig(P.data(), R);
    std::copy(f.B.span().begin(), f.B.span().end(), Bf.begin());
    blas::gemm<T>(blas::Trans::N, blas::Trans::T, Ip, R, Mp, T(1), m.data().local().data(), Ip, Bf.data(), R, T(0),
                  Q.data(), Ip);
    std::vector<double> Qd(Q.begin(), Q.end());
    comm.allreduce(std::span<double>(Qd));
    Tensor<double> gA({Ip, R});
    for (std::size_t i = 0; i < gA.size(); ++i) gA[i] = -Qd[i];
    blas::gemm<double>(blas::Trans::N, blas::Trans::N, Ip, R, R, 1.0, f.A.data(), Ip, P.data(), R, 1.0, gA.data(), Ip);
    for (std::size_t i = 0; i < gA.size(); ++i) f.A[i] = std::max(0.0, f.A[i] - gA[i] / LA);
    times.push_back(comm.allreduce(now() - t0, Op::max));
  }
  times.erase(times.begin()); // warm-up
  return median(times);
}

/// B's constraints in the timed solves (--constraint-b; A is nonnegative).
ConstraintList bench_consB; // set in main

/// Per-iteration times of one or more solves: this process's (`per`) and, each the slowest process's, their
/// median, smallest and largest; the final relative error, and how many times the (first) solve read the local Y
/// (model passes, start and end included).
struct SolverTiming {
  double seconds = 0, fastest = 0, slowest = 0, rel_error = 0;
  std::size_t passes = 0;
  std::vector<double> per; // this process's per-iteration seconds
  /// seconds, fastest and slowest from `per` (collective).
  void summarize(const Comm& comm) {
    seconds = comm.allreduce(median(per), Op::max);
    fastest = comm.allreduce(*std::min_element(per.begin(), per.end()), Op::max);
    slowest = comm.allreduce(*std::max_element(per.begin(), per.end()), Op::max);
  }
};

/// `iters` iterations of the default nonnegative factorization from `start` (B constrained by bench_consB), the
/// first iteration left out of the times. `fused` false: the two-pass form.
template <class T>
SolverTiming solver_iteration(const Tucker1<T>& m, const Factors& start, int iters, bool fused = true) {
  const auto nn = parse_constraints("nonnegative");
  SolverTiming t;
  Factors f = start;
  SolverOptions o;
  o.tol.clear();
  o.maxiter = static_cast<std::size_t>(iters);
  o.fused = fused;
  const std::size_t before = m.passes();
  const auto res = solve(m, f, nn, bench_consB, o);
  t.passes = m.passes() - before;
  for (std::size_t i = 2; i < res.stats.size(); ++i) t.per.push_back(res.stats[i].seconds - res.stats[i - 1].seconds);
  t.rel_error = res.stats.back().rel_error;
  t.summarize(m.data().comm());
  return t;
}

/// The floors measured now (seconds per iteration for the local Y): memory (STREAM triad, all processes at
/// once, on buffers as large as the local Y) and compute (4 I_p M_p R flops at a large square GEMM's rate).
struct Floors {
  double bandwidth = 0, rate = 0, memory = 0, compute = 0;
  double larger() const { return std::max(memory, compute); }
};
template <class T> Floors measure_floors(const Comm& comm, std::size_t Ip, std::size_t Mp, std::size_t R) {
  Floors f;
  f.bandwidth = triad_bandwidth(comm, Ip * Mp);
  f.rate = gemm_rate<T>(comm, 2000);
  f.memory = static_cast<double>(Ip * Mp * sizeof(T)) / f.bandwidth;
  f.compute = 4.0 * static_cast<double>(Ip) * static_cast<double>(Mp) * static_cast<double>(R) / f.rate;
  return f;
}

/// One setting of the pass for the in-process comparison: "default", or comma-separated key=value
/// pairs among pf (the read-ahead mode with its flags, 0-4, 8-12, 16-20 or 24-28), rb (the block limit of R), rb2 (the
/// second product's own limit), kib (the tile size), pages=4k (Y on 4 KiB pages) and fused=0 (the two-pass iteration).
struct PassSetting {
  std::string name;
  int prefetch = -1, rank_block = 0, rank_block_second = 0, kib = 0;
  bool small_pages = false, two_pass = false;
  std::vector<double> t;
};

PassSetting parse_setting(const std::string& text) {
  PassSetting s;
  s.name = text;
  if (text == "default") return s;
  std::size_t pos = 0;
  while (pos <= text.size()) {
    const std::size_t comma = std::min(text.find(',', pos), text.size());
    const std::string item = text.substr(pos, comma - pos);
    const std::size_t eq = item.find('=');
    if (eq == std::string::npos) throw std::invalid_argument("--compare-list: expected key=value, got '" + item + "'");
    const std::string k = item.substr(0, eq), v = item.substr(eq + 1);
    if (k == "pf")
      s.prefetch = std::stoi(v);
    else if (k == "rb")
      s.rank_block = std::stoi(v);
    else if (k == "rb2")
      s.rank_block_second = std::stoi(v);
    else if (k == "kib")
      s.kib = std::stoi(v);
    else if (k == "pages" && v == "4k")
      s.small_pages = true;
    else if (k == "fused" && (v == "0" || v == "1"))
      s.two_pass = v == "0";
    else
      throw std::invalid_argument("--compare-list: unknown setting '" + item + "'");
    pos = comma + 1;
  }
  return s;
}

/// Applies a setting to the tile products (and back to the defaults with PassSetting{}).
void apply(const PassSetting& s) {
  if (!tile_products_prefetch(s.prefetch) || !tile_products_rank_block(s.rank_block, s.rank_block_second) ||
      !fused_tile_kib(s.kib))
    throw std::invalid_argument("--compare-list: a value out of range in '" + s.name + "'");
}

/// In-process comparison of the pass's settings on the same data, alternating `rounds` times (machines
/// whose speed drifts between runs by tens of percent still rank settings this way): by default the
/// tile products' prefetch modes, and Y on 4 KiB pages (a plain copy) instead of the 2 MiB pages it is
/// allocated with; `list` (';'-separated settings, parse_setting) names others. One line per setting: the
/// median over rounds of the median time per iteration.
template <class T>
void compare_settings(const Comm& comm, const DistTensor<T>& Y, std::size_t R, const Factors& start, int iters,
                      int rounds, const Shape& shape, const std::string& list) {
  std::vector<PassSetting> settings;
  const std::string text = list.empty() ? "default;pf=0;pf=2;pf=3;pf=4;pages=4k" : list;
  for (std::size_t pos = 0; pos <= text.size();) {
    const std::size_t semi = std::min(text.find(';', pos), text.size());
    settings.push_back(parse_setting(text.substr(pos, semi - pos)));
    pos = semi + 1;
  }
  for (const auto& s : settings) apply(s); // refuse a bad list before any timing
  apply(PassSetting{});
  bool any_small = false;
  for (const auto& s : settings) any_small = any_small || s.small_pages;
  std::optional<DistTensor<T>> Y_small_pages; // a plain copy
  std::optional<Tucker1<T>> m4k;
  if (any_small) {
    Y_small_pages.emplace(Y);
    m4k.emplace(*Y_small_pages, R);
  }
  const Tucker1<T> m(Y, R);
  for (int round = 0; round < rounds; ++round)
    for (auto& s : settings) {
      apply(s);
      s.t.push_back(solver_iteration(s.small_pages ? *m4k : m, start, iters, !s.two_pass).seconds);
    }
  apply(PassSetting{});
  for (const auto& s : settings)
    if (comm.rank() == 0)
      std::printf("bench=tucker1_settings procs=%d shape=%s R=%zu precision=%s setting=%s rounds=%d iter_ms=%.2f "
                  "min_ms=%.2f max_ms=%.2f\n",
                  comm.size(), shape_string(shape).c_str(), R, sizeof(T) == 8 ? "double" : "float", s.name.c_str(),
                  rounds, 1e3 * median(s.t), 1e3 * *std::min_element(s.t.begin(), s.t.end()),
                  1e3 * *std::max_element(s.t.begin(), s.t.end()));
}

/// Time and iterations to reach each relative error in `targets` from the same seeded start.
template <class T>
void time_to_accuracy(const Comm& comm, const Tucker1<T>& m, const Factors& start, const std::vector<double>& targets,
                      std::size_t inner, const std::string& method, double max_seconds, const Shape& shape) {
  const auto nn = parse_constraints("nonnegative");
  for (double target : targets) {
    Factors f = start;
    SolverOptions o;
    o.tol = {{Stat::rel_error, target}};
    o.maxiter = 1000000;
    o.max_seconds = max_seconds;
    o.inner = inner;
    o.hals = method == "hals";
    o.bpp = method == "bpp" || method == "bpp-extrapolated";
    o.extrapolate = method == "bpp-extrapolated";
    const auto res = solve(m, f, nn, nn, o);
    const double t = comm.allreduce(res.stats.back().seconds, Op::max);
    if (comm.rank() == 0)
      std::printf("bench=tucker1_accuracy procs=%d shape=%s R=%zu inner=%zu method=%s target=%g reached=%s "
                  "seconds=%.3f iterations=%zu rel_error=%.4g\n",
                  comm.size(), shape_string(shape).c_str(), m.rank(), inner, method.c_str(), target,
                  res.converged ? "yes" : "no", t, res.iterations, res.stats.back().rel_error);
  }
}

template <class T>
void run(const Comm& comm, const Shape& shape, std::size_t R, int iters, const std::vector<double>& targets,
         const std::vector<std::size_t>& inners, bool hals, bool bpp, double max_seconds, bool two_gemm, bool floors,
         int compare_rounds, const std::string& compare_list, bool kernels, int repeat) {
  // The process before the data (MPI, OpenBLAS and the other libraries): what the peak holds besides the solve.
  const double baseline = comm.allreduce(static_cast<double>(peak_resident_bytes()), Op::max);
  auto pl = make_planted<T>(comm, shape, R, 0.0, 1);
  Tucker1<T> m(pl.Y, R);
  const std::size_t Ip = m.rows_local(), Mp = m.cols_local();
  const double ybytes = static_cast<double>(Ip * Mp * sizeof(T));
  // The solver as shipped: the default nonnegative factorization, fixed iteration count.
  const auto nn = parse_constraints("nonnegative");
  Factors f0;
  init_random(m, f0, 1, true, nn, bench_consB);
  // The pass picks its read-ahead by timing its first passes (fused.hpp: one pass, then two rounds over
  // the candidates): one solve long enough for that first (at least 12 iterations), so that the timed
  // ones run as a long solve would after them (its median: tuning_ms).
  const std::size_t candidates = tile_read_ahead_modes(Ip, fused_tile_columns(Ip, sizeof(T)), Ip, R, sizeof(T)).size();
  const SolverTiming tuning = solver_iteration(m, f0, static_cast<int>(std::max<std::size_t>(12, 2 * candidates + 4)));
  // The timed solves, each followed by its own floors (the larger floor of the moment beside the
  // iteration of the moment; see the header).
  std::vector<double> ratios, memory_floors, compute_floors, bandwidths, rates;
  SolverTiming shipped;
  double peak = 0;
  for (int k = 0; k < repeat; ++k) {
    const SolverTiming round = solver_iteration(m, f0, iters);
    if (k == 0) {
      shipped = round;
      // Peak memory of the solve (before the floor measurements allocate their own buffers).
      peak = comm.allreduce(static_cast<double>(peak_resident_bytes()), Op::max);
    } else
      shipped.per.insert(shipped.per.end(), round.per.begin(), round.per.end());
    shipped.rel_error = round.rel_error;
    if (!floors) continue;
    const Floors fl = measure_floors<T>(comm, Ip, Mp, R);
    ratios.push_back(round.seconds / fl.larger());
    memory_floors.push_back(fl.memory);
    compute_floors.push_back(fl.compute);
    bandwidths.push_back(fl.bandwidth);
    rates.push_back(fl.rate);
  }
  shipped.summarize(comm); // over all the timed solves
  // The read-ahead the pass chose by measurement on each process (-1: none measured; see fused.hpp).
  const double chosen = fused_read_ahead_choice(Ip, R, sizeof(T));
  const double chosen_lo = comm.allreduce(chosen, Op::min), chosen_hi = comm.allreduce(chosen, Op::max);
  const double t_solver = shipped.seconds;
  const double t_two = two_gemm ? two_gemm_iteration(m, f0, std::min(iters, 10) + 1) : 0.0;
  const double bw = median(bandwidths), rate = median(rates);
  const double read_bw = read_bandwidth(comm, m.data().local().data(), Ip * Mp);
  const double tile_rate =
      Mp >= fused_tile_columns(Ip, sizeof(T)) ? cached_tile_rate(comm, m.data().local().data(), Ip, R) : 0;
  const double mem_floor = floors ? median(memory_floors) : INFINITY;
  const double flop_floor = floors ? median(compute_floors) : INFINITY;
  const double floor = std::max(mem_floor, flop_floor);
  const double ratio = floors ? median(ratios) : 0.0;
  std::string ratio_rounds;
  for (double r : ratios) {
    char text[32];
    std::snprintf(text, sizeof text, "%s%.2f", ratio_rounds.empty() ? "" : ",", r);
    ratio_rounds += text;
  }
  if (ratio_rounds.empty()) ratio_rounds = "none";

  const double factors_bytes = static_cast<double>((Ip + Mp) * R * sizeof(double));
  if (comm.rank() == 0)
    std::printf("bench=tucker1 procs=%d shape=%s R=%zu precision=%s local_Y_MB=%.1f iter_ms=%.2f two_gemm_ms=%.2f "
                "speedup=%.2f mem_floor_ms=%.2f compute_floor_ms=%.2f ratio_to_floor=%.2f two_gemm_ratio=%.2f "
                "triad_GBps_per_proc=%.1f gemm_GFLOPs_per_proc=%.1f peak_MB=%.1f peak_over_Y_plus_factors=%.2f "
                "final_rel_error=%.4g read_GBps_per_proc=%.1f tile_GFLOPs_cached=%.1f tile_isa=%s blas_core=%s "
                "iter_ms_fastest=%.2f iter_ms_slowest=%.2f repeat=%d read_ahead=%.0f..%.0f tuning_ms=%.2f "
                "constraint_B=%s y_passes=%zu iters=%d ratio_unpaired=%.2f ratio_rounds=%s tile_columns=%zu "
                "l2_KiB=%ld blas_narrower=%d baseline_MB=%.1f peak_growth_over_Y_plus_factors=%.2f\n",
                comm.size(), shape_string(shape).c_str(), R, sizeof(T) == 8 ? "double" : "float", ybytes / 1e6,
                1e3 * t_solver, 1e3 * t_two, t_two / t_solver, 1e3 * mem_floor, 1e3 * flop_floor, ratio, t_two / floor,
                bw / 1e9, rate / 1e9, peak / 1e6, peak / (ybytes + factors_bytes), shipped.rel_error, read_bw / 1e9,
                tile_rate / 1e9, tile_products_isa(), openblas_get_corename(), 1e3 * shipped.fastest,
                1e3 * shipped.slowest, repeat, chosen_lo, chosen_hi, 1e3 * tuning.seconds, bench_consB.name().c_str(),
                shipped.passes, iters, floors ? t_solver / floor : 0.0, ratio_rounds.c_str(),
                fused_tile_columns(Ip, sizeof(T)), std::max(0L, ::sysconf(_SC_LEVEL2_CACHE_SIZE)) / 1024,
                blas_core_narrower(openblas_get_corename()) ? 1 : 0, baseline / 1e6,
                (peak - baseline) / (ybytes + factors_bytes));
  if (comm.rank() == 0 && floors) warn_blas_core(openblas_get_corename());
  if (kernels && Mp >= fused_tile_columns(Ip, sizeof(T)))
    kernel_rates(comm, m.data().local().data(), Ip, R, shape, floors ? rate : gemm_rate<T>(comm, 2000));
  if (compare_rounds > 0) compare_settings(comm, pl.Y, R, f0, iters, compare_rounds, shape, compare_list);
  for (std::size_t inner : inners) time_to_accuracy(comm, m, f0, targets, inner, "pg", max_seconds, shape);
  if (hals)
    for (std::size_t inner : inners)
      if (inner > 1) time_to_accuracy(comm, m, f0, targets, inner, "hals", max_seconds, shape);
  if (bpp && !targets.empty()) {
    time_to_accuracy(comm, m, f0, targets, 1, "bpp", max_seconds, shape);
    time_to_accuracy(comm, m, f0, targets, 1, "bpp-extrapolated", max_seconds, shape);
  }
}

} // namespace

int main(int argc, char** argv) {
  Environment env(argc, argv);
  Comm comm = Comm::world();
  std::string shape = "2000x200x100", precision = "double";
  std::size_t R = 10;
  int iters = 20;
  std::vector<double> targets;
  std::vector<std::size_t> inners{1};
  double max_seconds = 60;
  bool hals = false, bpp = false, two_gemm = true, floors = true;
  int compare_rounds = 0;
  std::string compare_list;
  int repeat = 1;
  bool kernels = false;
  std::string constraint_b = "nonnegative";
  const Args args(argc, argv,
                  "usage: mpirun -n P bench_tucker1 [--shape 2000x200x100] [--rank 10] [--iters 20]\n"
                  "         [--precision double|float] [--repeat N] [--two-gemm 0] [--floors 0]\n"
                  "         [--targets 0.02,0.005 --inner 1,10 --hals 1 --bpp 1 --max-seconds 60]\n"
                  "         [--compare ROUNDS] [--compare-list \"default;pf=4;rb=10;kib=192;pages=4k;fused=0\"]\n"
                  "         [--kernels 1] [--constraint-b l1scale_average12slices+nonnegative]\n"
                  "One line per configuration, key=value; the fields are described at the top of\n"
                  "tests/bench/bench_tucker1.cpp.\n",
                  {"--shape", "--rank", "--iters", "--precision", "--targets", "--inner", "--hals", "--bpp",
                   "--two-gemm", "--kernels", "--compare", "--compare-list", "--repeat", "--floors", "--max-seconds",
                   "--constraint-b"},
                  comm.rank() == 0);
  if (args.stop() >= 0) return args.stop();
  for (const auto& [k, v] : args.values()) {
    if (k == "--shape")
      shape = v;
    else if (k == "--rank")
      R = std::stoul(v);
    else if (k == "--iters")
      iters = std::stoi(v);
    else if (k == "--precision")
      precision = v;
    else if (k == "--targets" || k == "--inner") {
      std::vector<double> vals;
      std::size_t pos = 0;
      while (pos < v.size()) {
        const std::size_t c = v.find(',', pos);
        vals.push_back(std::stod(v.substr(pos, c == std::string::npos ? std::string::npos : c - pos)));
        if (c == std::string::npos) break;
        pos = c + 1;
      }
      if (k == "--targets")
        targets = vals;
      else
        inners.assign(vals.begin(), vals.end());
    } else if (k == "--hals")
      hals = v == "1" || v == "yes";
    else if (k == "--bpp")
      bpp = v == "1" || v == "yes";
    else if (k == "--two-gemm")
      two_gemm = v != "0" && v != "no";
    else if (k == "--kernels")
      kernels = v == "1" || v == "yes";
    else if (k == "--compare")
      compare_rounds = std::stoi(v);
    else if (k == "--compare-list")
      compare_list = v;
    else if (k == "--repeat")
      repeat = std::max(1, std::stoi(v));
    else if (k == "--floors")
      floors = v != "0" && v != "no";
    else if (k == "--max-seconds")
      max_seconds = std::stod(v);
    else if (k == "--constraint-b")
      constraint_b = v;
  }
  if (!compare_list.empty() && compare_rounds == 0) compare_rounds = 3;
  try {
    bench_consB = parse_constraints(constraint_b);
    if (precision == "float")
      run<float>(comm, parse_shape(shape), R, iters, targets, inners, hals, bpp, max_seconds, two_gemm, floors,
                 compare_rounds, compare_list, kernels, repeat);
    else
      run<double>(comm, parse_shape(shape), R, iters, targets, inners, hals, bpp, max_seconds, two_gemm, floors,
                  compare_rounds, compare_list, kernels, repeat);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
