#pragma once
// The two skinny products of the single-pass iteration on one column tile of Y (I x n, column-major,
// leading dimension ldy), written for R in the tens, where BLAS spends its time packing operands:
//   tile_yta:  C = Y^T A       (n x R, leading dimension n), A is I x R (leading dimension I)
//   tile_ybt:  Q += Y B^T      (I x R, leading dimension I), B is R x n (leading dimension R)
// Register-blocked loops over the contiguous I direction; one pass over the tile per block of up to
// 12 columns of A or rows of B. Compiled for AVX-512, AVX2 and baseline x86-64 and chosen at run time.
// Sums run in T; callers that want double accumulation across tiles add the per-tile result in double.
#include <cstddef>
#include <vector>

namespace unmix {

/// `next` (next_count elements, may be null) is brought into the caches while the products run: the
/// caller passes the next tile (the n columns after this one), so that reading memory overlaps the
/// multiply-adds of this tile. `read_ahead` (a mode as UNMIX_TILE_PREFETCH below) says how; -1: as set
/// by UNMIX_TILE_PREFETCH or tile_products_prefetch, else by the rule below. The sums do not depend on it.
template <class T>
void tile_yta(std::size_t I, std::size_t n, std::size_t R, const T* Y, std::size_t ldy, const T* A, T* C,
              const T* next = nullptr, std::size_t next_count = 0, int read_ahead = -1);

template <class T>
void tile_ybt(std::size_t I, std::size_t n, std::size_t R, const T* Y, std::size_t ldy, const T* B, T* Q,
              const T* next = nullptr, std::size_t next_count = 0, int read_ahead = -1);

/// Q += Y B^T with single-precision Y and B and a double Q: the tile's sums run in float (as tile_ybt's)
/// and are added to Q in double, without a float copy of Q per tile.
void tile_ybt_double_sum(std::size_t I, std::size_t n, std::size_t R, const float* Y, std::size_t ldy, const float* B,
                         double* Q, const float* next = nullptr, std::size_t next_count = 0, int read_ahead = -1);

/// The distinct read-ahead modes worth trying on tiles of this shape (elem: bytes per value of Y), the one
/// the rule below picks first; only that one when UNMIX_TILE_PREFETCH or tile_products_prefetch fixed it.
/// Modes with flag 8 are candidates only with AVX-512 (with 16 vector registers its blocks are slower); so are,
/// for float values, modes with flag 16 beside each read-ahead (double has it by the rule there).
std::vector<int> tile_read_ahead_modes(std::size_t I, std::size_t n, std::size_t ldy, std::size_t R, std::size_t elem);

/// The instruction set in use: "avx512", "avx2" or "baseline". The best one the processor has, unless
/// the environment variable UNMIX_TILE_ISA names another one it has.
const char* tile_products_isa();

/// UNMIX_TILE_PREFETCH (0-4, 8-12, 16-20, 24-28) fixes the software prefetching of `next` for experiments on other
/// machines: bit 1 reads the next tile during the first product as well, when both tiles, A and a double
/// Q fill at most 15/16 of the level-2 cache; bit 2 reads it during the second product; 4 reads half of
/// it during each product, spread evenly over the product's inner steps (the rate the memory can serve
/// one core, instead of bursts that fill the load buffers). Flag 8 (tile_one_block) makes the first
/// product take up to 12 columns of A per pass over the tile instead of 6 (one pass at R <= 12), so
/// that with bit 1 the next tile is read during a pass that does half the tile's arithmetic instead of
/// a quarter. Unset: 4 when both tiles, A and Q take at most 60 % of the level-2 cache (2 MiB caches at
/// R = 10), else 1|2 (3, with bit 1's check), as measured on the two machines named in
/// tile_products.cpp. That rule is only the first guess of the single-pass iteration, which times the
/// candidates (tile_read_ahead_modes) on its first passes and keeps the fastest (fused.hpp).
constexpr int tile_one_block = 8;
/// Flag 16 (tile_second_one_block) makes the second product take up to 12 rows of B per pass over the
/// tile instead of 6 (one pass at R <= 12: the tile leaves the level-2 cache for the registers once,
/// not twice). The rule adds it for double values on AVX-512 to calls that read a next tile with a
/// read-ahead mode other than 0, where it was measured faster (see tile_products.cpp); the candidates
/// keep it as the rule gives it.
constexpr int tile_second_one_block = 16;
/// The read-ahead part of a mode (0-4), without the flags: mode & tile_read_ahead_bits.
constexpr int tile_read_ahead_bits = 7;

/// Sets the prefetch mode (0-4, 8-12, 16-20 or 24-28 as UNMIX_TILE_PREFETCH; -1: chosen per call as when unset) for
/// later calls; false (nothing changes) for any other value. For comparisons.
bool tile_products_prefetch(int mode);

/// R is split into blocks of at most 6 columns (the register budget; see tile_products_impl.hpp).
/// UNMIX_TILE_RB (1-12) sets another limit for experiments, and UNMIX_TILE_RB_SECOND one for the second
/// product alone; so does this call (0: the default; `second` 0: the same as the first), which returns
/// false and changes nothing for a value outside 0..12. For tests and comparisons.
bool tile_products_rank_block(int limit, int second = 0);

/// Switches to the named instruction set for later calls; false (nothing changes) when the name is
/// unknown or the processor lacks it. For tests and comparisons.
bool tile_products_use(const char* isa);

} // namespace unmix
