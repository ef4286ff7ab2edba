// Body of the tile products (kernels/tile_products.hpp), included once per instruction set by
// tile_products_<isa>.cpp with TILE_NS naming the namespace of that build. The vector width and the
// register budget follow the instruction set the including file is compiled for.
#include <cstddef>
#include <type_traits>

#if defined(__AVX2__) && !defined(__AVX512F__)
#include <immintrin.h>
#endif

#include "tile_vector.hpp"
#include "unmix/kernels/tile_products.hpp"

namespace unmix {
extern int tile_rank_block;
extern int tile_rank_block_second; // the second product's own limit (0: tile_rank_block's)
} // namespace unmix

namespace unmix::TILE_NS {

#if defined(__AVX512F__)
constexpr std::size_t vector_registers = 32;
constexpr std::size_t accumulators = 24;
#else
constexpr std::size_t vector_registers = 16;
constexpr std::size_t accumulators = 12;
#endif

// A region to bring into the caches while a product computes (the next tile of Y): `lines` cache lines
// per step of the product's inner loop, so that reading memory goes on while the multiply-adds of this
// tile run. step<L>() reads L lines, a count fixed at compile time (L = 0: `lines`).
struct Ahead {
  const char* next = nullptr;
  const char* end = nullptr;
  std::size_t lines = 2;
  template <std::size_t L = 0> inline void step() {
    if (next < end) {
      const std::size_t count = L ? L : lines;
      for (std::size_t k = 0; k < count; ++k) __builtin_prefetch(next + 64 * k, 0, 1);
      next += 64 * count;
    }
  }
};

template <class T> inline T hsum(typename Vec<T>::type v) {
  T s = 0;
  for (std::size_t l = 0; l < Vec<T>::width; ++l) s += v[l];
  return s;
}

// Columns of Y per inner step of the first product and row vectors per step of the second, for a block
// of RB columns of A (rows of B): as many as the accumulators allow, up to 8 and 4, and with 16 vector
// registers no more than leave room for the step's Y vectors and one more operand (A's vector, B's
// broadcast): 4 x 3 accumulators + 4 + 1 = 17 spilled an accumulator into every step at RB = 3 (and
// 8 + 8 + 1 at RB = 1). R = 3, 2000 x 200 x 100, one process, AVX2: 23.8 -> 19.3 ms per iteration (double).
// With AVX-512 the counts stay as measured there (24 accumulators at most).
constexpr bool step_fits(std::size_t RB, std::size_t N) {
  return N * RB <= accumulators && (vector_registers > 16 || N * RB + N + 1 <= vector_registers);
}
constexpr std::size_t yta_columns(std::size_t RB) {
  return step_fits(RB, 8) ? 8 : (step_fits(RB, 4) ? 4 : (step_fits(RB, 2) ? 2 : 1));
}
// Three row vectors only with 16 registers (RB = 3 and 4 there): at a few mixtures each chunk of rows is a pass
// over the tile, and I = 20 took three passes with two vectors (8 + 8 + 4 rows) against two with three (12 + 8).
constexpr std::size_t ybt_vectors(std::size_t RB) {
  return step_fits(RB, 4) ? 4 : (vector_registers == 16 && step_fits(RB, 3) ? 3 : (step_fits(RB, 2) ? 2 : 1));
}
// The second product's passes over the tile for I rows: chunks of NV vectors, then (NV > 2) one of two, then
// single vectors (the rows after the last whole vector are summed on their own).
constexpr std::size_t ybt_passes(std::size_t I, std::size_t NV, std::size_t W) {
  const std::size_t whole = I / (NV * W), rest = I % (NV * W) / W;
  return whole + (NV > 2 && rest >= 2 ? 1 + (rest - 2) : rest);
}

// Partial sums over rows [i0, i1) of Y^T A for NC columns of Y and RB columns of A, added to the vector
// accumulators acc (NC x RB vectors; lane l holds the rows congruent to l).
template <class T, std::size_t RB, std::size_t NC, bool Spread>
inline void yta_partial(std::size_t i0, std::size_t i1, const T* Y, std::size_t ldy, const T* A, std::size_t lda,
                        typename Vec<T>::type* acc_out, std::size_t ahead, Ahead& spread) {
  using V = typename Vec<T>::type;
  constexpr std::size_t W = Vec<T>::width;
  V acc[NC][RB];
#pragma GCC unroll 16
  for (std::size_t c = 0; c < NC; ++c)
#pragma GCC unroll 16
    for (std::size_t r = 0; r < RB; ++r) acc[c][r] = acc_out[c * RB + r];
  Ahead sp = spread;
  for (std::size_t i = i0; i < i1; i += W) {
    V y[NC];
#pragma GCC unroll 16
    for (std::size_t c = 0; c < NC; ++c) {
      y[c] = load<T>(Y + i + c * ldy);
      if (ahead) __builtin_prefetch(Y + i + c * ldy + ahead, 0, 1);
    }
    if constexpr (Spread) sp.step();
#pragma GCC unroll 16
    for (std::size_t r = 0; r < RB; ++r) {
      V a = load<T>(A + i + r * lda);
      // One load of a per row block and column group: without this the compiler folds the load into
      // every multiply-add, and the loads, not the multiply-adds, set the pace.
      __asm__("" : "+x"(a));
#pragma GCC unroll 16
      for (std::size_t c = 0; c < NC; ++c) acc[c][r] += y[c] * a;
    }
  }
#pragma GCC unroll 16
  for (std::size_t c = 0; c < NC; ++c)
#pragma GCC unroll 16
    for (std::size_t r = 0; r < RB; ++r) acc_out[c * RB + r] = acc[c][r];
  spread = sp;
}

// C = Y^T A for RB columns of A. The rows are taken in blocks whose slice of A (8 KiB) stays in the
// level-1 cache while `sub` columns of Y pass over it; the vector sums of those columns wait in a
// small buffer between row blocks. (Measured at I = 2000, R = 10: 8 columns and 8 KiB beat 4, 16 and
// 32 columns and 12 or 16 KiB, and the two products per tile took about 0.88 x the time of OpenBLAS's
// DGEMM pair.) Small RB take more columns (up to 8) per pass and more row vectors (up to 4) in the second
// product: at R = 3 that took the iteration from 32 to 26 ms.
template <class T, std::size_t RB, bool Spread>
inline void yta_block(std::size_t I, std::size_t n, const T* Y, std::size_t ldy, const T* A, std::size_t lda, T* C,
                      std::size_t ldc, std::size_t ahead, Ahead& spread) {
  using V = typename Vec<T>::type;
  constexpr std::size_t W = Vec<T>::width;
  constexpr std::size_t NC = yta_columns(RB);
  constexpr std::size_t sub = 8;
  constexpr std::size_t a_bytes = 8 * 1024;
  constexpr std::size_t rows_fit = a_bytes / (RB * sizeof(T)) / W * W;
  constexpr std::size_t row_block = rows_fit > W ? rows_fit : W;
  const std::size_t Iv = I / W * W;
  V buf[sub * RB];
  for (std::size_t j0 = 0; j0 < n; j0 += sub) {
    const std::size_t nj = n - j0 < sub ? n - j0 : sub;
    for (std::size_t k = 0; k < nj * RB; ++k) buf[k] = V{};
    for (std::size_t i0 = 0; i0 < Iv; i0 += row_block) {
      const std::size_t i1 = i0 + row_block < Iv ? i0 + row_block : Iv;
      std::size_t j = 0;
      for (; j + NC <= nj; j += NC)
        yta_partial<T, RB, NC, Spread>(i0, i1, Y + (j0 + j) * ldy, ldy, A, lda, buf + j * RB, ahead, spread);
      for (; j < nj; ++j)
        yta_partial<T, RB, 1, Spread>(i0, i1, Y + (j0 + j) * ldy, ldy, A, lda, buf + j * RB, ahead, spread);
    }
    for (std::size_t j = 0; j < nj; ++j)
      for (std::size_t r = 0; r < RB; ++r) {
        T s = hsum<T>(buf[j * RB + r]);
        for (std::size_t k = Iv; k < I; ++k) s += Y[k + (j0 + j) * ldy] * A[k + r * lda];
        C[j0 + j + r * ldc] = s;
      }
  }
}

// q[0..W) += v widened from float to double, one half of v at a time. GCC 12 lowers a whole-vector
// __builtin_convertvector to a vector twice the register width through the stack, and with AVX2 even a
// half's conversion two floats at a time; the AVX2 intrinsics give one vcvtps2pd per half. (Float Q summed
// in double, R = 10, 2000 x 200 x 100, one process: 31.3 -> 27.0 ms per iteration; R = 2: 10.1 -> 9.5.)
template <class T, class TQ> inline void add_widened(TQ* q, typename Vec<T>::type v) {
  static_assert(std::is_same_v<T, float> && std::is_same_v<TQ, double>);
#if defined(__AVX512F__)
  // (Vector extensions here: the AVX-512 intrinsics draw GCC 12's uninitialized warnings.)
  typedef float Half __attribute__((vector_size(32)));
  typedef double Wide __attribute__((vector_size(64), aligned(alignof(double)), may_alias));
  const Half lo = __builtin_shufflevector(v, v, 0, 1, 2, 3, 4, 5, 6, 7);
  const Half hi = __builtin_shufflevector(v, v, 8, 9, 10, 11, 12, 13, 14, 15);
  Wide* w = reinterpret_cast<Wide*>(q);
  w[0] = w[0] + __builtin_convertvector(lo, Wide);
  w[1] = w[1] + __builtin_convertvector(hi, Wide);
#elif defined(__AVX2__)
  const __m256 x = reinterpret_cast<__m256>(v);
  _mm256_storeu_pd(q, _mm256_add_pd(_mm256_loadu_pd(q), _mm256_cvtps_pd(_mm256_castps256_ps128(x))));
  _mm256_storeu_pd(q + 4, _mm256_add_pd(_mm256_loadu_pd(q + 4), _mm256_cvtps_pd(_mm256_extractf128_ps(x, 1))));
#else
  typedef TQ Wide __attribute__((vector_size(Vec<T>::width * sizeof(TQ)), aligned(alignof(TQ)), may_alias));
  Wide* w = reinterpret_cast<Wide*>(q);
  *w = *w + __builtin_convertvector(v, Wide);
#endif
}

// Q[i + r ldq] += sum_j Y[i + j ldy] B[r + j ldb] for RB rows of B, rows i in chunks of NV vectors. The
// sums run in T; a Q of a wider type (double for float) receives them converted.
template <class T, class TQ, std::size_t RB, std::size_t NV, bool Spread>
inline void ybt_rows(std::size_t n, const T* Y, std::size_t ldy, const T* B, std::size_t ldb, TQ* Q, std::size_t ldq,
                     Ahead& ahead) {
  using V = typename Vec<T>::type;
  constexpr std::size_t W = Vec<T>::width;
  V acc[NV][RB];
#pragma GCC unroll 16
  for (std::size_t v = 0; v < NV; ++v)
#pragma GCC unroll 16
    for (std::size_t r = 0; r < RB; ++r) acc[v][r] = V{};
  for (std::size_t j = 0; j < n; ++j) {
    V y[NV];
#pragma GCC unroll 16
    for (std::size_t v = 0; v < NV; ++v) y[v] = load<T>(Y + v * W + j * ldy);
    const T* b = B + j * ldb;
    // Spread: the count computed for this tile; otherwise two lines per step.
    ahead.step<Spread ? 0 : 2>();
#pragma GCC unroll 16
    for (std::size_t r = 0; r < RB; ++r) {
      const T br = b[r];
#pragma GCC unroll 16
      for (std::size_t v = 0; v < NV; ++v) acc[v][r] += y[v] * br;
    }
  }
  if constexpr (std::is_same_v<T, TQ>) {
#pragma GCC unroll 16
    for (std::size_t r = 0; r < RB; ++r)
#pragma GCC unroll 16
      for (std::size_t v = 0; v < NV; ++v) store<T>(Q + v * W + r * ldq, load<T>(Q + v * W + r * ldq) + acc[v][r]);
  } else {
#pragma GCC unroll 16
    for (std::size_t r = 0; r < RB; ++r)
#pragma GCC unroll 16
      for (std::size_t v = 0; v < NV; ++v) add_widened<T, TQ>(Q + v * W + r * ldq, acc[v][r]);
  }
}

template <class T, class TQ, std::size_t RB, bool Spread>
inline void ybt_block(std::size_t I, std::size_t n, const T* Y, std::size_t ldy, const T* B, std::size_t ldb, TQ* Q,
                      std::size_t ldq, Ahead& ahead) {
  constexpr std::size_t W = Vec<T>::width;
  constexpr std::size_t NV = ybt_vectors(RB);
  std::size_t i = 0;
  for (; i + NV * W <= I; i += NV * W) ybt_rows<T, TQ, RB, NV, Spread>(n, Y + i, ldy, B, ldb, Q + i, ldq, ahead);
  if constexpr (NV > 2)
    if (i + 2 * W <= I) {
      ybt_rows<T, TQ, RB, 2, Spread>(n, Y + i, ldy, B, ldb, Q + i, ldq, ahead);
      i += 2 * W;
    }
  for (; i + W <= I; i += W) ybt_rows<T, TQ, RB, 1, Spread>(n, Y + i, ldy, B, ldb, Q + i, ldq, ahead);
#if defined(__AVX512F__) || defined(__AVX2__)
  // The rows after the last whole vector (I mod W of them), all in one vector read with a mask, RB accumulators:
  // each lane sums its row over j in order with multiply-adds, as the whole vectors' rows are summed (the loop
  // below, with one row of B, did not always: R = 1 gave other bits with AVX2 than with AVX-512). Row by row they
  // took 8.9 % of an iteration at I = 20, R = 10 with AVX-512 (4 rows; bench_tucker1 --shape 20x1000x1000, perf).
  if (i < I) {
    using V = typename Vec<T>::type;
    const std::size_t k = I - i;
    V acc[RB];
#pragma GCC unroll 16
    for (std::size_t r = 0; r < RB; ++r) acc[r] = V{};
    for (std::size_t j = 0; j < n; ++j) {
      const V y = load_first<T>(Y + i + j * ldy, k);
      const T* b = B + j * ldb;
#pragma GCC unroll 16
      for (std::size_t r = 0; r < RB; ++r) acc[r] += y * b[r];
    }
    for (std::size_t r = 0; r < RB; ++r)
      for (std::size_t l = 0; l < k; ++l) Q[i + l + r * ldq] += acc[r][l];
    return;
  }
#endif
  // Without AVX2, those rows one at a time: the RB sums of a row side by side, each over j in order. One sum
  // at a time made a chain of n dependent multiply-adds per sum: at I = 20 (4 such rows), 1024-column tiles and
  // R = 10 that took 14.6 % of an iteration (bench_tucker1 --shape 20x1000x1000).
  for (; i < I; ++i) {
    T s[RB] = {};
    for (std::size_t j = 0; j < n; ++j) {
      const T y = Y[i + j * ldy];
      const T* b = B + j * ldb;
#pragma GCC unroll 16
      for (std::size_t r = 0; r < RB; ++r) s[r] += y * b[r];
    }
    for (std::size_t r = 0; r < RB; ++r) Q[i + r * ldq] += s[r];
  }
}

// R is split into blocks of at most 6 (of nearly equal size); each block calls
// kernel.template operator()<RB>(r0) with its size RB as a compile-time constant. Blocks of 5 or 6 fill
// the AVX-512 registers with 4 columns (or 4 row vectors) x RB accumulators, 9-10 loads per 20-24
// multiply-adds, against 12 per 20 for one block of 10 (2 x 10); the extra pass over the tile comes
// from the level-2 cache. Measured at I = 2000, M = 20000 on one Zen 4 core (ms per iteration, blocks
// of at most 12 -> at most 6): R = 10 44-45 -> 38-40, R = 11 48 -> 42, R = 12 50-53 -> 46, R = 20 82-88 ->
// 76, R = 40 172 -> 158-160; R = 7 and 8 unchanged within noise; blocks of 4 or 3 were slower
// (R = 11 as 4 + 4 + 3: 52-55 ms). With AVX2 (12 accumulators) 6 was already the limit and stays best
// (R = 10: 49 ms, against 61-67 with blocks of 3 or 4). UNMIX_TILE_RB=1..12 overrides it.
// one_block (the first product under mode flag 8, the second under flag 16): blocks of up to 12, so one pass
// over the tile at R <= 12.
template <class Kernel>
inline void for_rank_blocks(std::size_t R, Kernel&& kernel, bool second = false, bool one_block = false) {
  const int limit = one_block ? 12 : (second && tile_rank_block_second > 0 ? tile_rank_block_second : tile_rank_block);
  const std::size_t max_rb = limit > 0 ? static_cast<std::size_t>(limit) : 6;
  const std::size_t nb = (R + max_rb - 1) / max_rb;
  std::size_t r0 = 0;
  for (std::size_t b = 0; b < nb; ++b) {
    const std::size_t rb = (R - r0 + (nb - b) - 1) / (nb - b);
    switch (rb) {
    case 1: kernel.template operator()<1>(r0); break;
    case 2: kernel.template operator()<2>(r0); break;
    case 3: kernel.template operator()<3>(r0); break;
    case 4: kernel.template operator()<4>(r0); break;
    case 5: kernel.template operator()<5>(r0); break;
    case 6: kernel.template operator()<6>(r0); break;
    case 7: kernel.template operator()<7>(r0); break;
    case 8: kernel.template operator()<8>(r0); break;
    case 9: kernel.template operator()<9>(r0); break;
    case 10: kernel.template operator()<10>(r0); break;
    case 11: kernel.template operator()<11>(r0); break;
    case 12: kernel.template operator()<12>(r0); break;
    default: break;
    }
    r0 += rb;
  }
}

// Inner steps of the two products on an I x n tile (each step: one prefetch slot of an Ahead).
template <class T> std::size_t yta_steps(std::size_t I, std::size_t n, std::size_t R, bool one_block) {
  std::size_t steps = 0;
  for_rank_blocks(
      R,
      [&]<std::size_t RB>(std::size_t) {
        constexpr std::size_t NC = yta_columns(RB);
        const std::size_t rest = n % 8;
        steps += (I / Vec<T>::width) * (n / 8 * (8 / NC) + rest / NC + rest % NC);
      },
      false, one_block);
  return steps;
}
template <class T> std::size_t ybt_steps(std::size_t I, std::size_t n, std::size_t R, bool one_block) {
  std::size_t steps = 0;
  for_rank_blocks(
      R, [&]<std::size_t RB>(std::size_t) { steps += n * ybt_passes(I, ybt_vectors(RB), Vec<T>::width); }, true,
      one_block);
  return steps;
}

// The part [from, to) (in halves: 0..2) of `next` (count elements), read over `steps` steps.
template <class T> Ahead spread_over(const T* next, std::size_t count, int from, int to, std::size_t steps) {
  if (!next || count == 0 || steps == 0) return {};
  const char* base = reinterpret_cast<const char*>(next);
  const std::size_t bytes = count * sizeof(T);
  Ahead a{base + bytes / 2 * from, to == 2 ? base + bytes : base + bytes / 2, 1};
  const std::size_t lines = (static_cast<std::size_t>(a.end - a.next) + 63) / 64;
  a.lines = (lines + steps - 1) / steps;
  return a;
}

// The read-ahead of `next` (mode, chosen by tile_products.cpp; its flags 8 and 16 only set the first and
// the second product's blocks of R): 4: half of it during each product, spread evenly over the product's inner steps;
// otherwise bit 1: all of it during the first product's first block of R, a line for every line of this tile it reads;
// bit 2: all of it during the second product, two lines per step.
template <class T>
void yta(std::size_t I, std::size_t n, std::size_t R, const T* Y, std::size_t ldy, const T* A, T* C, const T* next,
         std::size_t next_count, int mode) {
  const int read_ahead = mode & tile_read_ahead_bits;
  const bool one_block = (mode & tile_one_block) != 0;
  Ahead spread = read_ahead == 4 ? spread_over(next, next_count, 0, 1, yta_steps<T>(I, n, R, one_block)) : Ahead{};
  for_rank_blocks(
      R,
      [&]<std::size_t RB>(std::size_t r0) {
        const bool far = r0 == 0 && (read_ahead & 1) != 0 && next;
        const std::size_t offset = far ? static_cast<std::size_t>(next - Y) : 0;
        if (spread.next)
          yta_block<T, RB, true>(I, n, Y, ldy, A + r0 * I, I, C + r0 * n, n, offset, spread);
        else
          yta_block<T, RB, false>(I, n, Y, ldy, A + r0 * I, I, C + r0 * n, n, offset, spread);
      },
      false, one_block);
}

template <class T, class TQ>
void ybt(std::size_t I, std::size_t n, std::size_t R, const T* Y, std::size_t ldy, const T* B, TQ* Q, const T* next,
         std::size_t next_count, int mode) {
  // Reading the next tile meanwhile keeps the memory busy while this tile's multiply-adds run.
  Ahead ahead;
  const int read_ahead = mode & tile_read_ahead_bits;
  const bool one_block = (mode & tile_second_one_block) != 0;
  if (read_ahead == 4)
    ahead = spread_over(next, next_count, 1, 2, ybt_steps<T>(I, n, R, one_block));
  else if (next && (read_ahead & 2) != 0)
    ahead = Ahead{reinterpret_cast<const char*>(next), reinterpret_cast<const char*>(next + next_count), 2};
  const bool spread = read_ahead == 4;
  for_rank_blocks(
      R,
      [&]<std::size_t RB>(std::size_t r0) {
        if (spread)
          ybt_block<T, TQ, RB, true>(I, n, Y, ldy, B + r0, R, Q + r0 * I, I, ahead);
        else
          ybt_block<T, TQ, RB, false>(I, n, Y, ldy, B + r0, R, Q + r0 * I, I, ahead);
      },
      true, one_block);
}

template void yta<double>(std::size_t, std::size_t, std::size_t, const double*, std::size_t, const double*, double*,
                          const double*, std::size_t, int);
template void yta<float>(std::size_t, std::size_t, std::size_t, const float*, std::size_t, const float*, float*,
                         const float*, std::size_t, int);
template void ybt<double, double>(std::size_t, std::size_t, std::size_t, const double*, std::size_t, const double*,
                                  double*, const double*, std::size_t, int);
template void ybt<float, float>(std::size_t, std::size_t, std::size_t, const float*, std::size_t, const float*, float*,
                                const float*, std::size_t, int);
template void ybt<float, double>(std::size_t, std::size_t, std::size_t, const float*, std::size_t, const float*,
                                 double*, const float*, std::size_t, int);

} // namespace unmix::TILE_NS
