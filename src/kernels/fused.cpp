#include "unmix/kernels/fused.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <map>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "tile_isa.hpp"
#include "unmix/core/error.hpp"
#include "unmix/core/tensor.hpp"
#include "unmix/kernels/inner.hpp"
#include "unmix/kernels/nnls.hpp"
#include "unmix/kernels/tile_products.hpp"
#include "unmix/kernels/tile_step.hpp"

namespace unmix {

namespace {
// UNMIX_TILE_KIB (64-4096) sets another tile size for experiments on other machines (0: none).
std::size_t tile_bytes_from_environment() {
  const char* v = std::getenv("UNMIX_TILE_KIB");
  const long k = v ? std::atol(v) : 0;
  return k >= 64 && k <= 4096 ? static_cast<std::size_t>(k) * 1024 : 0;
}
std::size_t tile_bytes_set = tile_bytes_from_environment(); // 0: the default below

// The default tile: 384 KiB, but 256 KiB for double values with AVX2. There the products pass over a tile four
// times at R = 10 (blocks of 5 of R, 12 accumulators), and only the smaller tiles leave room in a 1 MiB level-2
// cache for the next one read during the first product (read-ahead 3, which needs both tiles, A and Q within
// 15/16 of it). Measured in-process on one Zen 4 core without AVX-512 (bench_tucker1 --shape 2000x200x100
// --compare 5, ms per iteration, median of 5 rounds): R = 10, 1 process 384 KiB read-ahead 4 (the measured pick)
// 49.3, 256 KiB 3 45.8 (128 KiB 3: 45.9); 2 processes 25.9 -> 24.2; R = 3 (3 rounds) 24.2 (best of 384 KiB) ->
// 23.0, R = 6 28.2 -> 27.7, R = 16 and 20 the same within 1 % (read-ahead 4 either way). Float kept 384 KiB (R =
// 10: 30.8 against 31.3 with 256 KiB, 2 processes 15.9 against 16.4).
std::size_t default_tile_bytes(std::size_t elem_size) {
  const bool small = elem_size == sizeof(double) && tile_isa() == TileIsa::avx2;
  return static_cast<std::size_t>(small ? 256 : 384) * 1024;
}
} // namespace

bool fused_tile_kib(int kib) {
  if (kib != 0 && (kib < 64 || kib > 4096)) return false;
  tile_bytes_set = kib ? static_cast<std::size_t>(kib) * 1024 : tile_bytes_from_environment();
  return true;
}

std::size_t fused_tile_columns(std::size_t Ip, std::size_t elem_size) {
  const std::size_t bytes = tile_bytes_set ? tile_bytes_set : default_tile_bytes(elem_size);
  const std::size_t cols = bytes / std::max<std::size_t>(1, Ip * elem_size);
  return std::clamp<std::size_t>(cols, 8, 1024);
}

namespace {

// The read-ahead of the pass, chosen by measurement. Which of the tile products' read-ahead modes
// overlaps reading memory with arithmetic best depends on the processor, its caches, how many
// processes share the memory and what else the machine runs (on a 16-core Intel host, I = 2000, R = 10,
// this chose 3 at 1 process, 4 at 2, and mostly 3 at 8 and 16, where the fixed rule gave 4 everywhere;
// on a Zen 4 core it chose 2 at R = 10 and 2-4 at R = 3, within 3 % of the best fixed mode). The sums never depend on
// the mode, so the pass measures: after kSkipPasses passes with the rule's pick, each pass over tiles of a shape takes
// the next candidate in turn, for kRounds rounds, and the mode with the smallest time per column in any one of its
// passes keeps all later passes of that shape in this process. Whole passes, because tiles measured in short blocks
// ranked the modes wrongly (the first pass of a solve runs slower for every mode, and a mode's cost through the caches
// and the hardware prefetchers takes many tiles to show); alternating passes, so that a machine whose speed drifts
// still ranks them. Measured by each process alone, the choices differed between the processes of one run (8 processes
// on the 16-core host: 3 on five, 4 on two, 12 on one) and the run was slower than with one fixed mode everywhere (121
// ms against 111 ms per iteration): an iteration waits for its slowest process, and a mix of modes is a load on the
// memory that no process measured. A model's processes therefore measure together (FusedStepInput::tuning): every pass
// of the measurement runs one mode on all of them, and the choice minimizes the slowest process's time.
constexpr std::size_t kSkipPasses = 1, kRounds = 2;

struct Tuning {
  std::vector<int> modes;               // candidates (the rule's pick first)
  std::vector<std::vector<double>> per; // per candidate: seconds per column of each pass measured with it
  std::size_t passes = 0;               // passes begun
  int chosen = -1;
};

struct TuneKey {
  std::size_t Ip, nt, R, elem;
  auto operator<=>(const TuneKey&) const = default;
};

bool tuning_enabled = [] {
  const char* v = std::getenv("UNMIX_TILE_TUNE");
  return !(v && v[0] == '0' && v[1] == '\0');
}();

// UNMIX_TILE_TUNE=alone: each process measures alone even where the caller offers a joint measurement (for
// comparisons).
bool tuning_alone = [] {
  const char* v = std::getenv("UNMIX_TILE_TUNE");
  return v && std::string_view(v) == "alone";
}();

// UNMIX_TILE_TUNE_LOG=1: each choice and its measurements on standard error.
const bool tuning_log = [] {
  const char* v = std::getenv("UNMIX_TILE_TUNE_LOG");
  return v && v[0] == '1';
}();

std::map<TuneKey, Tuning>& tunings() {
  static std::map<TuneKey, Tuning> all;
  return all;
}

// Counts fused_read_ahead_tuning calls: a joint measurement begun before one starts again.
unsigned tuning_generation = 0;

double seconds_now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// One pass's read-ahead: the mode, and while measuring, which candidate it times and since when.
struct PassTiming {
  int mode = 0;
  Tuning* tuning = nullptr;     // measured alone (null: not measured alone)
  FusedTuning* joint = nullptr; // measured with the other processes
  std::size_t candidate = 0;
  double start = 0;
};

// The line is formed first and written at once, so that the lines of several processes sharing a terminal do
// not interleave.
void log_choice(std::size_t Ip, std::size_t nt, const std::vector<int>& modes,
                const std::vector<std::vector<double>>& per, int chosen, const char* unit) {
  std::string line;
  char part[96];
  std::snprintf(part, sizeof part, "read-ahead measured on %zu x %zu tiles, %s:", Ip, nt, unit);
  line += part;
  for (std::size_t c = 0; c < modes.size(); ++c) {
    std::snprintf(part, sizeof part, " mode %d:", modes[c]);
    line += part;
    for (double x : per[c]) {
      std::snprintf(part, sizeof part, " %.1f", x);
      line += part;
    }
  }
  std::snprintf(part, sizeof part, "; chose %d\n", chosen);
  line += part;
  std::fputs(line.c_str(), stderr);
}

// The candidate whose fastest measurement is the smallest. Not the sum: what else runs on the machine only ever
// slows a pass, and so does being the first measured pass (the rule's pick, right after the untimed one: on one
// Zen 4 core without AVX-512, 2000 x 16 tiles, R = 10, read-ahead 3 took 53.1 then 45.9 ms and 4 49.3 then 49.1,
// and the sums kept 4, which ran the solve at 49.5 ms per iteration against 46.0-46.5 in the runs that kept 3).
std::size_t fastest(const std::vector<std::vector<double>>& per) {
  std::size_t best = 0;
  double best_time = std::numeric_limits<double>::infinity();
  for (std::size_t c = 0; c < per.size(); ++c)
    for (double t : per[c])
      if (t < best_time) {
        best = c;
        best_time = t;
      }
  return best;
}

// The joint measurement's pass. On its first pass every process states, through `agree`, how many candidates it
// has, whether it measures at all, whether it already holds a choice for this shape and whether it was asked to
// measure alone: all of them then start from their choices, or measure together when their candidate counts
// match, or else keep the rule's pick; if any was asked to measure alone, all of them go on alone (the first
// agreement is the only collective step, so a setting that reached only some processes cannot hang them).
// A FusedTuning still describes a measurement of these candidates (none begun again since).
bool current(const FusedTuning& t, const std::vector<int>& modes) {
  return t.generation == tuning_generation && t.modes == modes;
}

PassTiming begin_joint_pass(const FusedStepInput& in, const std::vector<int>& modes, const TuneKey& key) {
  FusedTuning& t = *in.tuning;
  if (!current(t, modes)) {
    const bool report = t.report;
    t = FusedTuning{modes, {}, 0, -1, tuning_generation, report};
  }
  PassTiming p;
  p.mode = modes.front();
  const std::size_t k = t.passes++;
  if (t.chosen >= 0) {
    p.mode = t.chosen;
    return p;
  }
  if (k == 0) {
    const auto cached = tunings().find(key);
    const int held = cached != tunings().end() && cached->second.modes == modes ? cached->second.chosen : -1;
    const double n = static_cast<double>(modes.size());
    double v[5] = {n, -n, tuning_enabled ? 0.0 : 1.0, held >= 0 ? 0.0 : 1.0, tuning_alone ? 1.0 : 0.0};
    in.agree(std::span<double>(v, 5));
    if (v[4] > 0)
      t.alone = true; // this pass: the rule's pick, untimed; the later ones: begin_pass's own measurement
    else if (v[0] != -v[1] || v[2] > 0 || modes.size() < 2)
      t.chosen = modes.front();
    else if (v[3] == 0)
      t.chosen = held;
    p.mode = t.chosen >= 0 ? t.chosen : p.mode;
    return p; // the first pass of a measurement runs the rule's pick, untimed (kSkipPasses)
  }
  p.joint = &t;
  p.candidate = (k - kSkipPasses) % modes.size();
  p.mode = modes[p.candidate];
  p.start = seconds_now();
  return p;
}

PassTiming begin_pass(const FusedStepInput& in, std::size_t Ip, std::size_t nt, std::size_t R, std::size_t elem,
                      std::size_t Mp) {
  const std::vector<int> modes = tile_read_ahead_modes(Ip, nt, Ip, R, elem);
  const TuneKey key{Ip, nt, R, elem};
  if (in.tuning && !(in.tuning->alone && current(*in.tuning, modes))) return begin_joint_pass(in, modes, key);
  PassTiming p;
  p.mode = modes.front();
  if (!tuning_enabled || modes.size() < 2 || Mp == 0) return p;
  Tuning& t = tunings()[key];
  if (t.modes != modes) t = Tuning{modes, std::vector<std::vector<double>>(modes.size())};
  const std::size_t k = t.passes++;
  if (t.chosen >= 0) {
    p.mode = t.chosen;
  } else if (k >= kSkipPasses) {
    p.tuning = &t;
    p.candidate = (k - kSkipPasses) % modes.size();
    p.mode = modes[p.candidate];
    p.start = seconds_now();
  }
  return p;
}

// Records a measured pass; after the last one, keeps the candidate with the fastest pass (alone: per column on
// this process; jointly: of the slowest process's pass times, agreed after the last measured pass).
void end_pass(const FusedStepInput& in, const PassTiming& p, std::size_t Ip, std::size_t nt, std::size_t R,
              std::size_t elem, std::size_t Mp) {
  if (p.joint) {
    FusedTuning& t = *p.joint;
    t.per_pass.push_back(seconds_now() - p.start);
    if (t.per_pass.size() != kRounds * t.modes.size()) return;
    in.agree(std::span<double>(t.per_pass));
    std::vector<std::vector<double>> per(t.modes.size());
    for (std::size_t i = 0; i < t.per_pass.size(); ++i) per[i % t.modes.size()].push_back(1e3 * t.per_pass[i]);
    t.chosen = t.modes[fastest(per)];
    // Held for later models of this shape (begin_joint_pass); the alone path would take it as its choice too.
    tunings()[TuneKey{Ip, nt, R, elem}] =
        Tuning{t.modes, std::vector<std::vector<double>>(t.modes.size()), 0, t.chosen};
    if (tuning_log && t.report) log_choice(Ip, nt, t.modes, per, t.chosen, "ms per pass at the slowest process");
    return;
  }
  if (!p.tuning) return;
  Tuning& t = *p.tuning;
  t.per[p.candidate].push_back((seconds_now() - p.start) / static_cast<double>(Mp));
  if (t.passes != kSkipPasses + kRounds * t.modes.size()) return;
  t.chosen = t.modes[fastest(t.per)];
  if (tuning_log) {
    std::vector<std::vector<double>> ns = t.per;
    for (auto& v : ns)
      for (double& x : v) x *= 1e9;
    log_choice(Ip, nt, t.modes, ns, t.chosen, "ns per column");
  }
}

} // namespace

bool fused_read_ahead_tuning(bool on) {
  const bool was = tuning_enabled;
  tuning_enabled = on;
  tunings().clear();
  ++tuning_generation;
  return was;
}

bool fused_read_ahead_alone(bool on) {
  const bool was = tuning_alone;
  tuning_alone = on;
  return was;
}

int fused_read_ahead_choice(std::size_t Ip, std::size_t R, std::size_t elem_size) {
  const auto it = tunings().find(TuneKey{Ip, fused_tile_columns(Ip, elem_size), R, elem_size});
  return it == tunings().end() ? -1 : it->second.chosen;
}

void extrapolate_solution(std::size_t n, double beta, double* __restrict X, double* __restrict X_prev) {
  for (std::size_t i = 0; i < n; ++i) {
    const double plain = X[i];
    X[i] = std::max(0.0, plain + beta * (plain - X_prev[i]));
    X_prev[i] = plain;
  }
}

template <class T>
void fused_b_step(const T* Y, std::size_t Ip, std::size_t Mp, std::size_t R, double* B, double* Bprev,
                  const FusedStepInput& in, FusedStepOutput& out) {
  const std::size_t nt_max = fused_tile_columns(Ip, sizeof(T));
  AlignedVector<T> At(std::is_same_v<T, double> ? 0 : Ip * R);
  std::vector<T> Mt(nt_max * R), Bt(std::is_same_v<T, double> ? 0 : R * nt_max);
  // A in the precision of Y (a copy only for float).
  const T* Ap = nullptr;
  if constexpr (std::is_same_v<T, double>) {
    Ap = in.A;
  } else {
    for (std::size_t i = 0; i < Ip * R; ++i) At[i] = static_cast<T>(in.A[i]);
    Ap = At.data();
  }
  if (in.keep_unprojected && (in.exact || in.inner_steps > 1))
    throw Error("internal error: the single pass keeps B unprojected only with single gradient steps");
  std::vector<double> M(R * nt_max + tile_step_padding), grad(R * nt_max + tile_step_padding),
      projected(in.keep_unprojected ? R * nt_max : 0);
  TileStepParams params;
  params.G = in.G;
  params.inv_L = in.inv_L;
  params.omega = in.omega;
  params.nonnegative_stats = in.nonnegative_stats;
  params.copy_prev = in.beta < 0;
  std::fill(out.Q, out.Q + Ip * R, 0.0);
  std::fill(out.P, out.P + R * R, 0.0);
  TileStepSums sums;
  double change2 = 0, norm2 = 0;
  for (std::size_t r = 0; r < R; ++r) params.momentum = params.momentum || in.omega[r] != 0.0;
  // The read-ahead: measured (see Tuning) unless fixed or only one mode applies.
  const PassTiming timing = begin_pass(in, Ip, nt_max, R, sizeof(T), Mp);
  const int mode = timing.mode;
  for (std::size_t j0 = 0; j0 < Mp; j0 += nt_max) {
    const std::size_t nt = std::min(nt_max, Mp - j0);
    const T* Yt = Y + j0 * Ip;
    double* Bj = B + j0 * R;
    double* Bp = Bprev + j0 * R;
    // M_t^T = Y_t^T A (nt x R); the next tile is read meanwhile (tile_products.hpp).
    const T* next_tile = j0 + nt < Mp ? Yt + nt * Ip : nullptr;
    const std::size_t next_count = next_tile ? std::min(nt_max, Mp - j0 - nt) * Ip : 0;
    // At a few mixtures M = A^T Y_t directly, by rows of A (tile_step.hpp).
    const bool by_rows = tile_aty<T>(Ip, nt, R, Yt, Ip, Ap, M.data(), next_tile, next_count);
    if (!by_rows) tile_yta<T>(Ip, nt, R, Yt, Ip, Ap, Mt.data(), next_tile, next_count, mode);
    // The statistics at the current point (of the previous iteration's end point), momentum, and the
    // gradient step at the extrapolated point.
    tile_b_step<T>(R, nt, by_rows ? nullptr : Mt.data(), params, Bj, Bp, M.data(), grad.data(), sums);
    // The values Q and P are formed from: B's tile, or its projected copy.
    double* Bq = Bj;
    if (in.keep_unprojected) {
      Bq = projected.data();
      std::copy(Bj, Bj + R * nt, Bq);
    }
    if (in.project) in.project(std::span<double>(Bq, R * nt), nt);
    if (in.exact) {
      nnls_bpp_columns(R, nt, in.G, M.data(), Bj);
      if (in.beta >= 0) extrapolate_solution(R * nt, in.beta, Bj, Bp);
    } else if (in.inner_steps > 1)
      inner_steps_columns(R, nt, in.G, M.data(), Bj, in.inv_L, in.inner_steps - 1, in.inner_tol, in.project,
                          in.hals ? InnerMethod::hals : InnerMethod::gradient);
    // The step's size and the new tile's norm, for the relative change (no pass over B and its copy for them).
    tile_change_norm(R * nt, Bj, Bp, change2, norm2);
    // Q += Y_t B_t^T and P += B_t B_t^T with the new tile, reading the next tile meanwhile.
    if constexpr (std::is_same_v<T, double>) {
      tile_ybt<double>(Ip, nt, R, Yt, Ip, Bq, out.Q, next_tile, next_count, mode);
    } else {
      // Single precision products per tile, accumulated in double across tiles.
      for (std::size_t i = 0; i < R * nt; ++i) Bt[i] = static_cast<T>(Bq[i]);
      tile_ybt_double_sum(Ip, nt, R, Yt, Ip, Bt.data(), out.Q, next_tile, next_count, mode);
    }
    tile_add_outer(R, nt, Bq, out.P);
  }
  end_pass(in, timing, Ip, nt_max, R, sizeof(T), Mp);
  out.grad2 = sums.grad2;
  out.stat2 = sums.stat2;
  out.change2 = change2;
  out.norm2 = norm2;
}

template void fused_b_step<double>(const double*, std::size_t, std::size_t, std::size_t, double*, double*,
                                   const FusedStepInput&, FusedStepOutput&);
template void fused_b_step<float>(const float*, std::size_t, std::size_t, std::size_t, double*, double*,
                                  const FusedStepInput&, FusedStepOutput&);

} // namespace unmix
