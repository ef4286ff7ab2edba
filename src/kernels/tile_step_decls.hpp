// The kernels of one instruction set's build of the B step's arithmetic (tile_step_impl.hpp), in namespace
// unmix::TILE_NS; included by that build and, once per other build, by tile_step.cpp, which picks one.
// No include guard: each inclusion declares another namespace.
#include <cstddef>

#include "unmix/kernels/tile_step.hpp"

namespace unmix::TILE_NS {
template <class T>
void b_step(std::size_t R, std::size_t n, const T* Mt, const TileStepParams& p, double* B, double* Bprev, double* M,
            double* grad, TileStepSums& sums);
template <class T>
bool aty(std::size_t I, std::size_t n, std::size_t R, const T* Y, std::size_t ldy, const T* A, double* M, const T* next,
         std::size_t next_count);
void gradient(std::size_t R, std::size_t n, const double* G, const double* M, double* X, const double* inv_L,
              bool nonnegative, TileStepSums* sums);
void change_norm(std::size_t count, const double* B, const double* Bprev, double& change2, double& norm2);
void add_outer(std::size_t R, std::size_t n, const double* X, double* P);
} // namespace unmix::TILE_NS
