// The B step's per-column arithmetic (kernels/tile_step.hpp): the baseline x86-64 build, and the choice of
// the build for the instruction set the tile products use (tile_products_isa()).
#define TILE_NS step_baseline
#include "tile_step_impl.hpp"
#undef TILE_NS

#include "tile_isa.hpp"

#if defined(__x86_64__)
#define TILE_NS step_avx512
#include "tile_step_decls.hpp"
#undef TILE_NS
#define TILE_NS step_avx2
#include "tile_step_decls.hpp"
#undef TILE_NS
#endif

namespace unmix {

template <class T>
void tile_b_step(std::size_t R, std::size_t n, const T* Mt, const TileStepParams& p, double* B, double* Bprev,
                 double* M, double* grad, TileStepSums& sums) {
  switch (tile_isa()) {
#if defined(__x86_64__)
  case TileIsa::avx512: step_avx512::b_step<T>(R, n, Mt, p, B, Bprev, M, grad, sums); return;
  case TileIsa::avx2: step_avx2::b_step<T>(R, n, Mt, p, B, Bprev, M, grad, sums); return;
#endif
  default: step_baseline::b_step<T>(R, n, Mt, p, B, Bprev, M, grad, sums); return;
  }
}

template <class T>
bool tile_aty(std::size_t I, std::size_t n, std::size_t R, const T* Y, std::size_t ldy, const T* A, double* M,
              const T* next, std::size_t next_count) {
  switch (tile_isa()) {
#if defined(__x86_64__)
  case TileIsa::avx512: return step_avx512::aty<T>(I, n, R, Y, ldy, A, M, next, next_count);
  case TileIsa::avx2: return step_avx2::aty<T>(I, n, R, Y, ldy, A, M, next, next_count);
#endif
  default: return step_baseline::aty<T>(I, n, R, Y, ldy, A, M, next, next_count);
  }
}

void tile_gradient(std::size_t R, std::size_t n, const double* G, const double* M, double* X, const double* inv_L,
                   bool nonnegative_stats, TileStepSums* sums) {
  switch (tile_isa()) {
#if defined(__x86_64__)
  case TileIsa::avx512: step_avx512::gradient(R, n, G, M, X, inv_L, nonnegative_stats, sums); return;
  case TileIsa::avx2: step_avx2::gradient(R, n, G, M, X, inv_L, nonnegative_stats, sums); return;
#endif
  default: step_baseline::gradient(R, n, G, M, X, inv_L, nonnegative_stats, sums); return;
  }
}

void tile_change_norm(std::size_t count, const double* B, const double* Bprev, double& change2, double& norm2) {
  switch (tile_isa()) {
#if defined(__x86_64__)
  case TileIsa::avx512: step_avx512::change_norm(count, B, Bprev, change2, norm2); return;
  case TileIsa::avx2: step_avx2::change_norm(count, B, Bprev, change2, norm2); return;
#endif
  default: step_baseline::change_norm(count, B, Bprev, change2, norm2); return;
  }
}

void tile_add_outer(std::size_t R, std::size_t n, const double* X, double* P) {
  switch (tile_isa()) {
#if defined(__x86_64__)
  case TileIsa::avx512: step_avx512::add_outer(R, n, X, P); return;
  case TileIsa::avx2: step_avx2::add_outer(R, n, X, P); return;
#endif
  default: step_baseline::add_outer(R, n, X, P); return;
  }
}

template bool tile_aty<double>(std::size_t, std::size_t, std::size_t, const double*, std::size_t, const double*,
                               double*, const double*, std::size_t);
template bool tile_aty<float>(std::size_t, std::size_t, std::size_t, const float*, std::size_t, const float*, double*,
                              const float*, std::size_t);
template void tile_b_step<double>(std::size_t, std::size_t, const double*, const TileStepParams&, double*, double*,
                                  double*, double*, TileStepSums&);
template void tile_b_step<float>(std::size_t, std::size_t, const float*, const TileStepParams&, double*, double*,
                                 double*, double*, TileStepSums&);

} // namespace unmix
