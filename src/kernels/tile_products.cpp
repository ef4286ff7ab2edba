#include "unmix/kernels/tile_products.hpp"
#include "tile_isa.hpp"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <string>

#include <unistd.h>

#define TILE_NS tile_baseline
#include "tile_products_impl.hpp"

namespace unmix {

#if defined(__x86_64__)
namespace tile_avx512 {
template <class T>
void yta(std::size_t, std::size_t, std::size_t, const T*, std::size_t, const T*, T*, const T*, std::size_t, int);
template <class T, class TQ>
void ybt(std::size_t, std::size_t, std::size_t, const T*, std::size_t, const T*, TQ*, const T*, std::size_t, int);
} // namespace tile_avx512
namespace tile_avx2 {
template <class T>
void yta(std::size_t, std::size_t, std::size_t, const T*, std::size_t, const T*, T*, const T*, std::size_t, int);
template <class T, class TQ>
void ybt(std::size_t, std::size_t, std::size_t, const T*, std::size_t, const T*, TQ*, const T*, std::size_t, int);
} // namespace tile_avx2
#endif

namespace {

enum class Isa { baseline, avx2, avx512 };

bool supported(Isa want) {
#if defined(__x86_64__)
  __builtin_cpu_init();
  if (want == Isa::avx512)
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
           __builtin_cpu_supports("avx512dq");
  if (want == Isa::avx2) return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#endif
  return want == Isa::baseline;
}

bool parse_isa(const char* name, Isa& out) {
  const std::string s = name ? name : "";
  if (s == "avx512")
    out = Isa::avx512;
  else if (s == "avx2")
    out = Isa::avx2;
  else if (s == "baseline")
    out = Isa::baseline;
  else
    return false;
  return true;
}

constexpr int block_flags = tile_one_block | tile_second_one_block;

bool valid_mode(int mode) { return mode >= 0 && mode <= (block_flags | 4) && (mode & tile_read_ahead_bits) <= 4; }

int prefetch_mode_from_environment() {
  const char* v = std::getenv("UNMIX_TILE_PREFETCH");
  if (!v || !*v) return -1;
  char* end = nullptr;
  const long m = std::strtol(v, &end, 10);
  return *end == '\0' && valid_mode(static_cast<int>(m)) ? static_cast<int>(m) : -1;
}

Isa detect() {
  Isa forced{};
  if (parse_isa(std::getenv("UNMIX_TILE_ISA"), forced) && supported(forced)) return forced;
  for (Isa c : {Isa::avx512, Isa::avx2})
    if (supported(c)) return c;
  return Isa::baseline;
}

std::atomic<Isa>& current() {
  static std::atomic<Isa> chosen{detect()};
  return chosen;
}

Isa isa() { return current().load(std::memory_order_relaxed); }

} // namespace

int tile_prefetch_mode = prefetch_mode_from_environment(); // -1: chosen per call (read_ahead_mode)
int tile_rank_block = [] {
  // UNMIX_TILE_RB=1..12 overrides the largest block of R (for experiments); anything else: the default.
  const char* v = std::getenv("UNMIX_TILE_RB");
  const int k = v ? std::atoi(v) : 0;
  return k >= 1 && k <= 12 ? k : 0;
}();

int tile_rank_block_second = [] {
  // UNMIX_TILE_RB_SECOND=1..12: the second product's (Y B^T) own limit (for experiments).
  const char* v = std::getenv("UNMIX_TILE_RB_SECOND");
  const int k = v ? std::atoi(v) : 0;
  return k >= 1 && k <= 12 ? k : 0;
}();

bool tile_products_prefetch(int mode) {
  if (mode != -1 && !valid_mode(mode)) return false;
  tile_prefetch_mode = mode;
  return true;
}

bool tile_products_rank_block(int limit, int second) {
  if (limit < 0 || limit > 12 || second < 0 || second > 12) return false;
  tile_rank_block = limit;
  tile_rank_block_second = second;
  return true;
}

TileIsa tile_isa() {
  switch (isa()) {
  case Isa::avx512: return TileIsa::avx512;
  case Isa::avx2: return TileIsa::avx2;
  default: return TileIsa::baseline;
  }
}

const char* tile_products_isa() {
  switch (isa()) {
  case Isa::avx512: return "avx512";
  case Isa::avx2: return "avx2";
  default: return "baseline";
  }
}

bool tile_products_use(const char* name) {
  Isa want{};
  if (!parse_isa(name, want) || !supported(want)) return false;
  current().store(want);
  return true;
}

std::size_t level2_cache_bytes() {
  static const std::size_t bytes = [] {
    const long v = ::sysconf(_SC_LEVEL2_CACHE_SIZE);
    return v > 0 ? static_cast<std::size_t>(v) : std::size_t{1} << 20;
  }();
  return bytes;
}

namespace {

// The mode `m` as the rule runs it: flag 16 (the second product in one block of R) joined to it for double
// values on AVX-512 when something is read ahead.
int with_rule_flags(int m, std::size_t elem) {
  const bool second = elem == sizeof(double) && isa() == Isa::avx512 && (m & tile_read_ahead_bits) != 0;
  return second ? m | tile_second_one_block : m;
}

// The read-ahead of the next tile for a tile of n columns (ldy apart) of I rows, R columns of A in T and
// a double Q (see tile_products_impl.hpp for the modes). Unless UNMIX_TILE_PREFETCH chose one: spread
// over both products (4) when both tiles, A and Q take at most 60 % of the level-2 cache; otherwise
// the whole next tile during the second product (2), and during the first product as well (3) when all
// of it fits 15/16 of the cache. Measured, in-process comparisons at I = 2000, R = 10, double (bench
// --compare): on a 16-core Intel Xeon (2 MiB L2: 53 %; 2000 x 400 x 800) spread against 3, ms per
// iteration, 1 process 834 vs 1070, 8: 134 vs 137, 16: 103 vs 120, 2: 493 vs 457 (ranges overlapping);
// on a Zen 4 core (1 MiB L2, 2000 x 200 x 100) spread against the default: R = 10 (over 100 %) 38.2 vs
// 35.3 (1 process), 23.6 vs 18.0 (2); R = 6 (94 %) 23.2 vs 22.5, 12.1 vs 11.9; R = 3 (84 %) 15.2 vs 16.2,
// 9.4 vs 8.5. A fixed mode with a fill check still applies the check to bit 1; flags 8 and 16 are kept as
// asked.
//
// Flag 16 (the second product in one block of R) is added for double values on AVX-512 whenever the next
// tile is read ahead. Measured in-process (bench --compare, ms per iteration, I = 2000, R = 10, each fixed
// read-ahead without -> with the flag): on a Zen 4 core at 2000 x 200 x 100, 1 process 3: 28.9 -> 25.5,
// 4: 29.7 -> 25.4, 11: 31.5 -> 26.2, 12: 28.8 -> 27.1, but 0 (no read-ahead): 28.3 -> 29.2; 2 processes
// 16.2 -> 15.3, 16.9 -> 16.1, 16.8 -> 15.0, 16.6 -> 15.3, 0: 16.6 -> 17.4. On the 16-core Intel host at
// 2000 x 400 x 800, the shipped candidates without -> with it: 4 processes 231 -> 215 (pf=4 with it: 187),
// 1 process 545 -> 545, 16 processes 78.6 -> 78.8 (pf=12 with it: 66.7). In float it was mixed (16.3 ->
// 17.5 with 3, 18.7 -> 17.9 with 11 on Zen 4), so float keeps blocks of 6.
// `next`: whether the call has a next tile (without one the rule leaves flag 16 out: the products of the
// other models read no tile ahead; 2000 x 100 x 40 Tucker, ranks 10, 100 iterations, whole-process medians of
// 9 runs against the build before flag 16: 2.64 s against 2.41 with the flag there, 2.45 against 2.37 without).
int read_ahead_mode(std::size_t I, std::size_t n, std::size_t ldy, std::size_t R, std::size_t elem, int asked,
                    bool next = true) {
  const std::size_t resident = 2 * n * ldy * elem + I * R * (elem + sizeof(double));
  const std::size_t l2 = level2_cache_bytes();
  const bool fits = resident <= l2 / 16 * 15;
  const int fixed = asked >= 0 ? asked : tile_prefetch_mode;
  if (fixed >= 0) {
    const int base = fixed & tile_read_ahead_bits;
    return (fits || base == 4 ? base : base & 2) | (fixed & block_flags);
  }
  const int mode = resident <= l2 / 10 * 6 ? 4 : (fits ? 3 : 2);
  return next ? with_rule_flags(mode, elem) : mode;
}

} // namespace

std::vector<int> tile_read_ahead_modes(std::size_t I, std::size_t n, std::size_t ldy, std::size_t R, std::size_t elem) {
  std::vector<int> modes{read_ahead_mode(I, n, ldy, R, elem, -1)};
  if (tile_prefetch_mode >= 0) return modes;
  const auto add = [&](int asked) {
    const int effective = read_ahead_mode(I, n, ldy, R, elem, asked);
    if (std::find(modes.begin(), modes.end(), effective) == modes.end()) modes.push_back(effective);
  };
  // The first product in one block of R (flag 8) with the whole next tile read during it (3) or spread (4):
  // on the 16-core Intel host (I = 2000, R = 10, 2000 x 400 x 800), 8 | 3 against 4 and the shipped
  // choice, ms per iteration (in-process, 2 rounds): 1 process 701 / 692 / 703, 2: 345 / 388 / 375,
  // 4: 185 / 181 / 209, 8: 117 / 132 / 127, 16: 69 / 88 / 87; ten minutes later, with 8|3 among the
  // candidates: 1 process 681 / 685 / 758, 2: 448 / 349 / 359, 4: 221 / 223 / 211, 8: 125 / 111 / 121,
  // 16: 80 / 88 / 83. The host's drift is the size of the differences: candidates to measure, not a rule.
  // Only with AVX-512: with 16 vector registers a block of 10 takes one column per step, 11 loads per 10
  // multiply-adds, and the first product ran at 32.6 GFLOP/s against 38.9 in blocks of 5 (cached tile, one
  // Zen 4 core without AVX-512, bench --kernels 1); yet the measurement picked 8 | 4 in one of three runs
  // there (55 ms per iteration against 48-49 with 4).
  const bool one_block_candidates = isa() == Isa::avx512;
  for (int m : {0, 2, 3, 4, tile_one_block | 3, tile_one_block | 4}) {
    if ((m & tile_one_block) && !one_block_candidates) continue;
    add(with_rule_flags(m, elem));
  }
  // Float on AVX-512: the second product in one block of R as a candidate beside each read-ahead (flag 16 is not
  // in float's rule: mixed on a Zen 4 core, see above). On a Zen 5 core (2000 x 200 x 100, R = 10, bench --compare 5,
  // ms per iteration, medians of 5 alternating rounds, min-max), 1 process: 2 -> 16|2 16.99 (16.2-18.2) -> 14.67
  // (13.0-15.2), 3 (there as 2) -> 16|3 17.42 -> 14.46, 4 -> 16|4 16.71 -> 16.77, the measured pick without them (0)
  // 17.69; 2 processes: 8.96 (8.90-9.33) -> 8.10 (7.41-8.37), 9.09 -> 8.03 (7.82-8.22), 9.37 -> 9.09, pick (2) 9.05.
  if (elem == sizeof(float) && isa() == Isa::avx512)
    for (int m : {2, 3, 4}) add(m | tile_second_one_block);
  return modes;
}

template <class T>
void tile_yta(std::size_t I, std::size_t n, std::size_t R, const T* Y, std::size_t ldy, const T* A, T* C, const T* next,
              std::size_t next_count, int read_ahead) {
  // (Bit 1 measured at I = 2000, M = 20000 with 384 KiB tiles on one Zen 4 core (1 MiB L2), ms per
  // iteration without -> with: R = 3 float 11.2-11.5 -> 9.3-10.9, double 18.9-19.6 -> 17.5-18.9, R = 6
  // 27.0-28.4 -> 25.3-26.2; at R = 8 (the four exactly filling the cache) 35-37 -> 33-41, so the margin.)
  const int mode = read_ahead_mode(I, n, ldy, R, sizeof(T), read_ahead, next != nullptr);
  switch (isa()) {
#if defined(__x86_64__)
  case Isa::avx512: tile_avx512::yta<T>(I, n, R, Y, ldy, A, C, next, next_count, mode); return;
  case Isa::avx2: tile_avx2::yta<T>(I, n, R, Y, ldy, A, C, next, next_count, mode); return;
#endif
  default: tile_baseline::yta<T>(I, n, R, Y, ldy, A, C, next, next_count, mode); return;
  }
}

namespace {

// The second product of the instruction set in use; sums in T, added to a Q of type TQ.
template <class T, class TQ>
void ybt_dispatch(std::size_t I, std::size_t n, std::size_t R, const T* Y, std::size_t ldy, const T* B, TQ* Q,
                  const T* next, std::size_t next_count, int read_ahead) {
  const int mode = read_ahead_mode(I, n, ldy, R, sizeof(T), read_ahead, next != nullptr);
  switch (isa()) {
#if defined(__x86_64__)
  case Isa::avx512: tile_avx512::ybt<T, TQ>(I, n, R, Y, ldy, B, Q, next, next_count, mode); return;
  case Isa::avx2: tile_avx2::ybt<T, TQ>(I, n, R, Y, ldy, B, Q, next, next_count, mode); return;
#endif
  default: tile_baseline::ybt<T, TQ>(I, n, R, Y, ldy, B, Q, next, next_count, mode); return;
  }
}

} // namespace

template <class T>
void tile_ybt(std::size_t I, std::size_t n, std::size_t R, const T* Y, std::size_t ldy, const T* B, T* Q, const T* next,
              std::size_t next_count, int read_ahead) {
  ybt_dispatch<T, T>(I, n, R, Y, ldy, B, Q, next, next_count, read_ahead);
}

void tile_ybt_double_sum(std::size_t I, std::size_t n, std::size_t R, const float* Y, std::size_t ldy, const float* B,
                         double* Q, const float* next, std::size_t next_count, int read_ahead) {
  ybt_dispatch<float, double>(I, n, R, Y, ldy, B, Q, next, next_count, read_ahead);
}

template void tile_yta<double>(std::size_t, std::size_t, std::size_t, const double*, std::size_t, const double*,
                               double*, const double*, std::size_t, int);
template void tile_yta<float>(std::size_t, std::size_t, std::size_t, const float*, std::size_t, const float*, float*,
                              const float*, std::size_t, int);
template void tile_ybt<double>(std::size_t, std::size_t, std::size_t, const double*, std::size_t, const double*,
                               double*, const double*, std::size_t, int);
template void tile_ybt<float>(std::size_t, std::size_t, std::size_t, const float*, std::size_t, const float*, float*,
                              const float*, std::size_t, int);

} // namespace unmix
