#pragma once
// Scans of sparse vectors for the srmd solvers (internal to src/srmd): the entries that are not zero,
// found eight at a time where SSE2 is available, visited in increasing index order.
#include <cstddef>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace unmix::srmd::detail {

/// f(i, d) for every i < n where d = a[i] - b[i] is not zero (NaN counts as not zero), i increasing.
template <class F> inline void for_each_nonzero_difference(const double* a, const double* b, std::size_t n, F&& f) {
  std::size_t i = 0;
#if defined(__SSE2__)
  const __m128d zero = _mm_setzero_pd();
  for (; i + 8 <= n; i += 8) {
    const __m128d d0 = _mm_sub_pd(_mm_loadu_pd(a + i), _mm_loadu_pd(b + i));
    const __m128d d1 = _mm_sub_pd(_mm_loadu_pd(a + i + 2), _mm_loadu_pd(b + i + 2));
    const __m128d d2 = _mm_sub_pd(_mm_loadu_pd(a + i + 4), _mm_loadu_pd(b + i + 4));
    const __m128d d3 = _mm_sub_pd(_mm_loadu_pd(a + i + 6), _mm_loadu_pd(b + i + 6));
    unsigned mask = static_cast<unsigned>(_mm_movemask_pd(_mm_cmpneq_pd(d0, zero))) |
                    static_cast<unsigned>(_mm_movemask_pd(_mm_cmpneq_pd(d1, zero))) << 2 |
                    static_cast<unsigned>(_mm_movemask_pd(_mm_cmpneq_pd(d2, zero))) << 4 |
                    static_cast<unsigned>(_mm_movemask_pd(_mm_cmpneq_pd(d3, zero))) << 6;
    while (mask != 0) {
      const std::size_t k = i + static_cast<std::size_t>(__builtin_ctz(mask));
      f(k, a[k] - b[k]);
      mask &= mask - 1;
    }
  }
#endif
  for (; i < n; ++i) {
    const double d = a[i] - b[i];
    if (d != 0) f(i, d);
  }
}

/// f(i) for every i < n where x[i] is not zero (NaN counts as not zero), i increasing.
template <class F> inline void for_each_nonzero(const double* x, std::size_t n, F&& f) {
  std::size_t i = 0;
#if defined(__SSE2__)
  const __m128d zero = _mm_setzero_pd();
  for (; i + 8 <= n; i += 8) {
    unsigned mask = static_cast<unsigned>(_mm_movemask_pd(_mm_cmpneq_pd(_mm_loadu_pd(x + i), zero))) |
                    static_cast<unsigned>(_mm_movemask_pd(_mm_cmpneq_pd(_mm_loadu_pd(x + i + 2), zero))) << 2 |
                    static_cast<unsigned>(_mm_movemask_pd(_mm_cmpneq_pd(_mm_loadu_pd(x + i + 4), zero))) << 4 |
                    static_cast<unsigned>(_mm_movemask_pd(_mm_cmpneq_pd(_mm_loadu_pd(x + i + 6), zero))) << 6;
    while (mask != 0) {
      f(i + static_cast<std::size_t>(__builtin_ctz(mask)));
      mask &= mask - 1;
    }
  }
#endif
  for (; i < n; ++i)
    if (x[i] != 0) f(i);
}

} // namespace unmix::srmd::detail
