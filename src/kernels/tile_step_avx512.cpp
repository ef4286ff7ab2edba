// The B step's per-column arithmetic compiled for AVX-512 (CMake adds the instruction-set flags to this file only).
#if defined(__x86_64__)
#define TILE_NS step_avx512
#include "tile_step_impl.hpp"
#endif
