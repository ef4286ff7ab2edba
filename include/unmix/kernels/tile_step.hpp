#pragma once
// The per-column arithmetic of the single pass's B step on one column tile (kernels/fused.hpp), on
// R x n quantities after the first tile product: the gradient at the current point and its sums, the
// momentum, the gradient at the extrapolated point and the step; and the tile's step size, norm and
// B B^T; at a few mixtures the first product too (tile_aty). At a few mixtures (I near R) this costs as
// much as the products, so it is compiled per instruction set beside them and runs on the one
// tile_products_isa() names. Each entry is rounded as in the plain loops (sums over q in order, no fused
// multiply-adds); the sums over a tile run in 16 interleaved partial sums, added in a fixed order. The
// results are therefore the same, bit for bit, on every instruction set.
#include <cstddef>

namespace unmix {

struct TileStepParams {
  const double* G = nullptr;      ///< R x R, A^T A (symmetric)
  const double* inv_L = nullptr;  ///< R step sizes
  const double* omega = nullptr;  ///< R momentum weights; read when `momentum`
  bool momentum = false;          ///< B^ = B + omega (B - Bprev), Bprev <- B, then the step from B^
  bool nonnegative_stats = false; ///< stat2 counts entries with B > 0 or g < 0 only
  bool copy_prev = false;         ///< without momentum: Bprev <- B before the step
};

struct TileStepSums {
  double grad2 = 0; ///< ||G B - M||^2 at the point before the step, added to
  double stat2 = 0; ///< its normal-cone part, added to
};

/// Entries M and grad need after their R x n values: the step reads and writes them in whole vectors.
constexpr std::size_t tile_step_padding = 8;

/// For a tile of n columns: M (R x n) = Mt^T (Mt: n x R, column-major, the first product's C; null: M holds
/// it already, from tile_aty), then the
/// gradient G B - M, its sums, the momentum and B <- B^ - (G B^ - M) / L (per row of B). B, Bprev, M and
/// grad are R x n, column-major, M and grad with tile_step_padding entries more; grad is workspace (it
/// ends with the gradient at B^).
template <class T>
void tile_b_step(std::size_t R, std::size_t n, const T* Mt, const TileStepParams& p, double* B, double* Bprev,
                 double* M, double* grad, TileStepSums& sums);

/// Mixture counts up to which tile_aty forms M. Measured against tile_yta on a Zen 4 core (AVX-512, R = 10, a build
/// that still allowed fused multiply-adds here;
/// ms per iteration of the single pass, one process): I = 20 27.1 -> 17.5, 50 23.9 -> 16.8, 64 18.7 -> 14.9,
/// 100 17.9 -> 11.2, 200 9.8 -> 10.1 (R = 3: 5.4 -> 6.1; R = 16: 14.2 -> 12.9).
constexpr std::size_t tile_aty_max_rows = 128;

/// At a few mixtures (I <= tile_aty_max_rows, 1 <= R <= 16): M (R x n, column-major, tile_step_padding
/// entries more) = A^T Y for a tile of Y (I x n, leading dimension ldy) and A (I x R in T), sums in T, while
/// `next` (next_count values, may be null) is read into the caches; then tile_b_step takes Mt = nullptr.
/// Where tile_yta's sums along I leave most of each vector empty, this adds A's rows (R values) instead.
/// Returns false (nothing done) for other sizes.
template <class T>
bool tile_aty(std::size_t I, std::size_t n, std::size_t R, const T* Y, std::size_t ldy, const T* A, double* M,
              const T* next = nullptr, std::size_t next_count = 0);

/// The gradient G X - M of n columns (X, M: R x n, column-major, no padding needed), formed a chunk at a
/// time in a small buffer, never whole: with `sums`, its sums at X are added (stat2 as tile_b_step's, with
/// nonnegative_stats); then, with inv_L, X <- X - (G X - M) / L per row (the two-pass iteration's B step).
void tile_gradient(std::size_t R, std::size_t n, const double* G, const double* M, double* X, const double* inv_L,
                   bool nonnegative_stats, TileStepSums* sums);

/// change2 += ||B - Bprev||^2, norm2 += ||B||^2 over `count` entries.
void tile_change_norm(std::size_t count, const double* B, const double* Bprev, double& change2, double& norm2);

/// P += X X^T for X (R x n, column-major), P (R x R).
void tile_add_outer(std::size_t R, std::size_t n, const double* X, double* P);

} // namespace unmix
