#include "unmix/kernels/tile_products.hpp"

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
void yta(std::size_t, std::size_t, std::size_t, const T*, std::size_t, const T*, T*, const T*, std::size_t, bool);
template <class T, class TQ>
void ybt(std::size_t, std::size_t, std::size_t, const T*, std::size_t, const T*, TQ*, const T*, std::size_t);
} // namespace tile_avx512
namespace tile_avx2 {
template <class T>
void yta(std::size_t, std::size_t, std::size_t, const T*, std::size_t, const T*, T*, const T*, std::size_t, bool);
template <class T, class TQ>
void ybt(std::size_t, std::size_t, std::size_t, const T*, std::size_t, const T*, TQ*, const T*, std::size_t);
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

int prefetch_mode_from_environment() {
  const char* v = std::getenv("UNMIX_TILE_PREFETCH");
  if (v && v[0] >= '0' && v[0] <= '4' && v[1] == '\0') return v[0] - '0';
  return -1;
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

int tile_prefetch_mode = prefetch_mode_from_environment();
int tile_rank_block = [] {
  // UNMIX_TILE_RB=1..12 overrides the largest block of R (for experiments); anything else: the default.
  const char* v = std::getenv("UNMIX_TILE_RB");
  const int k = v ? std::atoi(v) : 0;
  return k >= 1 && k <= 12 ? k : 0;
}();

bool tile_products_rank_block(int limit) {
  if (limit < 0 || limit > 12) return false;
  tile_rank_block = limit;
  return true;
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

template <class T>
void tile_yta(std::size_t I, std::size_t n, std::size_t R, const T* Y, std::size_t ldy, const T* A, T* C, const T* next,
              std::size_t next_count) {
  // The next tile (the n columns after this one) is read during this product too when this tile, the
  // next, A and the double Q of the second product fill at most 15/16 of the level-2 cache. Measured at
  // I = 2000, M = 20000 with 384 KiB tiles on one Zen 4 core (1 MiB L2), ms per iteration without ->
  // with: R = 3 float 11.2-11.5 -> 9.3-10.9, double 18.9-19.6 -> 17.5-18.9, R = 6 27.0-28.4 ->
  // 25.3-26.2; at R = 8 (the four exactly filling the cache) 35-37 -> 33-41, so the margin.
  const bool far = (tile_prefetch_mode < 0 || tile_prefetch_mode == 1 || tile_prefetch_mode == 3) &&
                   2 * n * ldy * sizeof(T) + I * R * (sizeof(T) + sizeof(double)) <= level2_cache_bytes() / 16 * 15;
  switch (isa()) {
#if defined(__x86_64__)
  case Isa::avx512: tile_avx512::yta<T>(I, n, R, Y, ldy, A, C, next, next_count, far); return;
  case Isa::avx2: tile_avx2::yta<T>(I, n, R, Y, ldy, A, C, next, next_count, far); return;
#endif
  default: tile_baseline::yta<T>(I, n, R, Y, ldy, A, C, next, next_count, far); return;
  }
}

namespace {

// The second product of the instruction set in use; sums in T, added to a Q of type TQ.
template <class T, class TQ>
void ybt_dispatch(std::size_t I, std::size_t n, std::size_t R, const T* Y, std::size_t ldy, const T* B, TQ* Q,
                  const T* next, std::size_t next_count) {
  switch (isa()) {
#if defined(__x86_64__)
  case Isa::avx512: tile_avx512::ybt<T, TQ>(I, n, R, Y, ldy, B, Q, next, next_count); return;
  case Isa::avx2: tile_avx2::ybt<T, TQ>(I, n, R, Y, ldy, B, Q, next, next_count); return;
#endif
  default: tile_baseline::ybt<T, TQ>(I, n, R, Y, ldy, B, Q, next, next_count); return;
  }
}

} // namespace

template <class T>
void tile_ybt(std::size_t I, std::size_t n, std::size_t R, const T* Y, std::size_t ldy, const T* B, T* Q, const T* next,
              std::size_t next_count) {
  ybt_dispatch<T, T>(I, n, R, Y, ldy, B, Q, next, next_count);
}

void tile_ybt_double_sum(std::size_t I, std::size_t n, std::size_t R, const float* Y, std::size_t ldy, const float* B,
                         double* Q, const float* next, std::size_t next_count) {
  ybt_dispatch<float, double>(I, n, R, Y, ldy, B, Q, next, next_count);
}

template void tile_yta<double>(std::size_t, std::size_t, std::size_t, const double*, std::size_t, const double*,
                               double*, const double*, std::size_t);
template void tile_yta<float>(std::size_t, std::size_t, std::size_t, const float*, std::size_t, const float*, float*,
                              const float*, std::size_t);
template void tile_ybt<double>(std::size_t, std::size_t, std::size_t, const double*, std::size_t, const double*,
                               double*, const double*, std::size_t);
template void tile_ybt<float>(std::size_t, std::size_t, std::size_t, const float*, std::size_t, const float*, float*,
                              const float*, std::size_t);

} // namespace unmix
