// The vector type of the instruction set the including file is compiled for (GCC vector extensions), in
// namespace unmix::TILE_NS; included by tile_products_impl.hpp and tile_step_impl.hpp.
#include <cstddef>

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

} // namespace unmix::TILE_NS
