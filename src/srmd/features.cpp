#include "unmix/srmd/features.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numbers>
#include <string>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#endif

#include "scan.hpp"
#include "unmix/core/error.hpp"
#include "unmix/core/pcg64.hpp"

namespace unmix::srmd {

namespace {
constexpr double kTwoPi = 2 * std::numbers::pi;
inline double sgn(double v) { return v > 0 ? 1.0 : (v < 0 ? -1.0 : 0.0); }
} // namespace

double feature_value(double t, double tau, double frq, double phs, double w) {
  const double s = w / 2, u = t - tau;
  const double h = (sgn(3 * s + u) + sgn(3 * s - u)) / 2;
  if (h == 0) return 0.0;
  return std::exp(-0.5 * (u / s) * (u / s)) * h * std::sin(kTwoPi * frq * t + phs);
}

FeatureParams draw_features(std::uint64_t seed, std::size_t n_total, std::size_t begin, std::size_t end, double t0,
                            double L, double max_frq) {
  if (end > n_total || begin > end)
    throw ConfigError("draw_features: range [" + std::to_string(begin) + ", " + std::to_string(end) +
                      ") is not inside the " + std::to_string(n_total) + " features");
  FeatureParams p;
  const std::size_t n = end - begin;
  p.tau.resize(n);
  p.frq.resize(n);
  p.phs.resize(n);
  // One stream: draws [0, N) are the tau, [N, 2N) the frequencies, [2N, 3N) the phases.
  Pcg64 gen(seed);
  gen.advance(begin);
  for (std::size_t k = 0; k < n; ++k) p.tau[k] = gen.uniform() * L + t0;
  gen.advance(n_total - n);
  for (std::size_t k = 0; k < n; ++k) p.frq[k] = gen.uniform() * max_frq;
  gen.advance(n_total - n);
  for (std::size_t k = 0; k < n; ++k) p.phs[k] = gen.uniform() * kTwoPi;
  return p;
}

namespace {

/// out[j] = sum_k values[ptr[j] + k] r[start[j] + k] over column j's support, with four partial sums
/// (entry k goes to sum k mod 4, the last len mod 4 entries to sum 0) combined as (s0 + s1) + (s2 + s3):
/// the order depends only on the column, so every split and every instruction set gives the same bits.
void adjoint_columns_generic(const double* values, const std::size_t* ptr, const std::size_t* start, std::size_t n,
                             const double* r, double* out) {
  for (std::size_t j = 0; j < n; ++j) {
    const double* v = values + ptr[j];
    const double* rr = r + start[j];
    const std::size_t len = ptr[j + 1] - ptr[j];
    double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    std::size_t k = 0;
    for (; k + 4 <= len; k += 4) {
      s0 += v[k] * rr[k];
      s1 += v[k + 1] * rr[k + 1];
      s2 += v[k + 2] * rr[k + 2];
      s3 += v[k + 3] * rr[k + 3];
    }
    for (; k < len; ++k) s0 += v[k] * rr[k];
    out[j] = (s0 + s1) + (s2 + s3);
  }
}

#if defined(__x86_64__) && defined(__GNUC__)
#if defined(__clang__)
#define UNMIX_SRMD_ALIGN_LOOPS
#else
// The inner loop is a few instructions long: started on a 32-byte boundary it never straddles two
// 64-byte lines, which otherwise costs about a tenth of the product's time depending on where the
// linker happens to place the function.
#define UNMIX_SRMD_ALIGN_LOOPS optimize("align-loops=32")
#endif

/// The same sums with the four partial sums in the lanes of one AVX register (products and sums
/// rounded separately, as above: no fused multiply-add), then the last len mod 4 products into the
/// first. One column after the other, which keeps the reads of the values a single forward stream
/// (measured faster than interleaving columns, or masking the last products, for dictionaries of
/// every size here).
__attribute__((target("avx2"), UNMIX_SRMD_ALIGN_LOOPS)) void
adjoint_columns_avx2(const double* values, const std::size_t* ptr, const std::size_t* start, std::size_t n,
                     const double* r, double* out) {
  for (std::size_t j = 0; j < n; ++j) {
    const double* v = values + ptr[j];
    const double* rr = r + start[j];
    const std::size_t len = ptr[j + 1] - ptr[j], q = len & ~std::size_t{3};
    __m256d s = _mm256_setzero_pd();
    for (std::size_t k = 0; k < q; k += 4)
      s = _mm256_add_pd(s, _mm256_mul_pd(_mm256_loadu_pd(v + k), _mm256_loadu_pd(rr + k)));
    alignas(32) double a[4];
    _mm256_store_pd(a, s);
    for (std::size_t k = q; k < len; ++k) a[0] += v[k] * rr[k];
    out[j] = (a[0] + a[1]) + (a[2] + a[3]);
  }
}

bool have_avx2() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2");
}
#else
bool have_avx2() { return false; }
#endif

/// out[k] += (long long)(c v[k]) for k < len: the terms of the exact forward product.
void add_column_generic(double c, const double* v, std::size_t len, long long* out) {
  for (std::size_t k = 0; k < len; ++k) out[k] += static_cast<long long>(c * v[k]);
}

#if defined(__x86_64__) && defined(__GNUC__)
/// The same with eight products and truncations per instruction (vcvttpd2qq truncates like the scalar
/// conversion, out-of-range values included).
__attribute__((target("avx512f,avx512dq"), UNMIX_SRMD_ALIGN_LOOPS)) void
add_column_avx512(double c, const double* v, std::size_t len, long long* out) {
  const __m512d cc = _mm512_set1_pd(c);
  std::size_t k = 0;
  for (; k + 8 <= len; k += 8) {
    const __m512i q = _mm512_cvttpd_epi64(_mm512_mul_pd(cc, _mm512_loadu_pd(v + k)));
    _mm512_storeu_si512(out + k, _mm512_add_epi64(_mm512_loadu_si512(out + k), q));
  }
  if (k < len) {
    const __mmask8 mask = static_cast<__mmask8>((1u << (len - k)) - 1);
    const __m512i q = _mm512_cvttpd_epi64(_mm512_mul_pd(cc, _mm512_maskz_loadu_pd(mask, v + k)));
    _mm512_mask_storeu_epi64(out + k, mask, _mm512_add_epi64(_mm512_maskz_loadu_epi64(mask, out + k), q));
  }
}
#endif

using AddColumn = void (*)(double, const double*, std::size_t, long long*);

AddColumn pick_add_column() {
#if defined(__x86_64__) && defined(__GNUC__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq")) return add_column_avx512;
#endif
  return add_column_generic;
}

} // namespace

FeatureDictionary::FeatureDictionary(std::span<const double> t, const FeatureParams& local, double w, std::size_t begin,
                                     std::size_t global_cols, const Reduction& reduction)
    : m_(t.size()), n_global_(global_cols), begin_(begin), red_(&reduction) {
  if (!(w > 0)) throw ConfigError("feature window width w must be positive");
  if (begin + local.size() > global_cols) throw Error("feature dictionary: local columns exceed the global count");
  const std::size_t n = local.size();
  start_.resize(n);
  ptr_.resize(n + 1);
  ptr_[0] = 0;
  // The candidate rows of each column: the window found by bisection, with one sample of slack on each
  // side against rounding. Storage for all of them is allocated once; each column's values are computed
  // once, written right after the previous column and trimmed of exact zeros at both ends.
  const double half = 3 * (w / 2), s = w / 2, three_s = 3 * s;
  std::vector<std::size_t> lo(n), hi(n);
  std::size_t untrimmed = 0;
  for (std::size_t j = 0; j < n; ++j) {
    const double tau = local.tau[j];
    std::size_t a = static_cast<std::size_t>(std::lower_bound(t.begin(), t.end(), tau - half) - t.begin());
    std::size_t b = static_cast<std::size_t>(std::upper_bound(t.begin(), t.end(), tau + half) - t.begin());
    a = a > 0 ? a - 1 : 0;
    b = std::min(m_, b + 1);
    lo[j] = a;
    hi[j] = std::max(a, b);
    untrimmed += hi[j] - lo[j];
  }
  values_.resize(untrimmed);
  std::size_t pos = 0;
  for (std::size_t j = 0; j < n; ++j) {
    // Column j's untrimmed values start at or after pos, so writing from pos overwrites nothing unread.
    double* v = values_.data() + pos;
    const std::size_t a = lo[j], len = hi[j] - lo[j];
    const double tau = local.tau[j], omega = kTwoPi * local.frq[j], phs = local.phs[j];
    for (std::size_t i = 0; i < len; ++i) {
      // feature_value, with the window h = (sgn(3 s + u) + sgn(3 s - u)) / 2 written as comparisons
      // (a floating-point sum is zero, or has a sign, exactly when the exact sum is or has).
      const double ti = t[a + i], u = ti - tau, au = std::abs(u);
      v[i] = au <= three_s
                 ? std::exp(-0.5 * (u / s) * (u / s)) * (au < three_s ? 1.0 : 0.5) * std::sin(omega * ti + phs)
                 : 0.0;
    }
    std::size_t first = 0, last = len;
    while (first < last && v[first] == 0) ++first;
    while (last > first && v[last - 1] == 0) --last;
    if (first > 0) std::copy(v + first, v + last, v);
    start_[j] = a + first;
    pos += last - first;
    ptr_[j + 1] = pos;
  }
  values_.resize(pos);
  acc_.resize(m_);
  if (red_->parts() > 1) local_.resize(n);
}

void FeatureDictionary::forward(std::span<const double> x, std::span<double> y) const {
  // Exact accumulation: every term x_j b_j(t_i) is put on the fixed-point grid 2^(e - 62) with
  // 2^e > ||x||_1 >= |y_i| (|b| <= 1), so no partial sum overflows 63 bits and the integer sums are
  // the same whatever the order or the split over processes. The iterates of the sparse solvers are
  // mostly zero: the nonzero entries are listed once, and ||x||_1 summed over them in index order
  // (the zeros add nothing, so the sum is the same as over all of x).
  const double* xp = x.data();
  if (nonzero_.size() < x.size()) nonzero_.resize(x.size());
  std::size_t* const nz = nonzero_.data();
  std::size_t count = 0;
  detail::for_each_nonzero(xp, x.size(), [nz, &count](std::size_t j) { nz[count++] = j; });
  double l1 = 0;
  for (std::size_t k = 0; k < count; ++k) l1 += std::abs(xp[nz[k]]);
  std::fill(y.begin(), y.end(), 0.0);
  if (l1 == 0) return;
  int e = 0;
  std::frexp(l1, &e);
  const double scale = std::ldexp(1.0, 62 - e);
  acc_.assign(m_, 0);
  const std::size_t end = begin_ + start_.size();
  const std::size_t* it = std::lower_bound(nz, nz + count, begin_);
  static const AddColumn add_column = pick_add_column();
  for (; it != nz + count && *it < end; ++it) {
    const std::size_t jl = *it - begin_;
    add_column(xp[*it] * scale, values_.data() + ptr_[jl], ptr_[jl + 1] - ptr_[jl], acc_.data() + start_[jl]);
  }
  red_->sum(acc_);
  // acc * 2^(e - 62): a product by a normal power of two rounds as ldexp does.
  if (e - 62 >= std::numeric_limits<double>::min_exponent - 1) {
    const double unit = std::ldexp(1.0, e - 62);
    for (std::size_t i = 0; i < m_; ++i) y[i] = static_cast<double>(acc_[i]) * unit;
  } else {
    for (std::size_t i = 0; i < m_; ++i) y[i] = std::ldexp(static_cast<double>(acc_[i]), e - 62);
  }
}

void FeatureDictionary::adjoint(std::span<const double> r, std::span<double> g) const {
  const std::size_t n = start_.size();
  // One part holding every column: write g directly.
  const bool direct = red_->parts() == 1 && n == g.size();
  if (!direct) local_.resize(n);
  double* out = direct ? g.data() : local_.data();
  static const bool avx2 = have_avx2();
#if defined(__x86_64__) && defined(__GNUC__)
  if (avx2) {
    adjoint_columns_avx2(values_.data(), ptr_.data(), start_.data(), n, r.data(), out);
  } else {
    adjoint_columns_generic(values_.data(), ptr_.data(), start_.data(), n, r.data(), out);
  }
#else
  adjoint_columns_generic(values_.data(), ptr_.data(), start_.data(), n, r.data(), out);
#endif
  if (!direct) red_->gather(local_, g);
}

} // namespace unmix::srmd
