// The tile products compiled for AVX512 (CMake adds the instruction-set flags to
// this file only).
#if defined(__x86_64__)
#define TILE_NS tile_avx512
#include "tile_products_impl.hpp"
#endif
