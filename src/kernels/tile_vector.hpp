// The vector type of the instruction set the including file is compiled for (GCC vector extensions), in
// namespace unmix::TILE_NS; included by tile_products_impl.hpp and tile_step_impl.hpp.
#include <cstddef>

#if defined(__AVX512F__) || defined(__AVX2__)
#include <immintrin.h>
#endif

namespace unmix::TILE_NS {

#if defined(__AVX512F__)
constexpr std::size_t vector_bytes = 64;
#elif defined(__AVX2__)
constexpr std::size_t vector_bytes = 32;
#else
constexpr std::size_t vector_bytes = 16;
#endif

template <class T> struct Vec {
  typedef T type __attribute__((vector_size(vector_bytes), aligned(alignof(T)), may_alias));
  static constexpr std::size_t width = vector_bytes / sizeof(T);
};

template <class T> inline typename Vec<T>::type load(const T* p) {
  return *reinterpret_cast<const typename Vec<T>::type*>(p);
}
template <class T> inline void store(T* p, typename Vec<T>::type v) {
  *reinterpret_cast<typename Vec<T>::type*>(p) = v;
}

#if defined(__AVX512F__) || defined(__AVX2__)
/// The first k values at p (0 < k < width) in the first k lanes, zeros in the others; nothing past p + k is
/// read (a masked load: no fault beyond the end of an array).
template <class T> inline typename Vec<T>::type load_first(const T* p, std::size_t k) {
  using V = typename Vec<T>::type;
#if defined(__AVX512F__)
  if constexpr (sizeof(T) == 8)
    return reinterpret_cast<V>(_mm512_maskz_loadu_pd(static_cast<__mmask8>((1u << k) - 1), p));
  else
    return reinterpret_cast<V>(_mm512_maskz_loadu_ps(static_cast<__mmask16>((1u << k) - 1), p));
#else
  if constexpr (sizeof(T) == 8) {
    const __m256i lanes = _mm256_setr_epi64x(0, 1, 2, 3);
    const __m256i mask = _mm256_cmpgt_epi64(_mm256_set1_epi64x(static_cast<long long>(k)), lanes);
    return reinterpret_cast<V>(_mm256_maskload_pd(reinterpret_cast<const double*>(p), mask));
  } else {
    const __m256i lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256i mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(k)), lanes);
    return reinterpret_cast<V>(_mm256_maskload_ps(reinterpret_cast<const float*>(p), mask));
  }
#endif
}
#endif

} // namespace unmix::TILE_NS
