#include "unmix/srmd/spgl1.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <string>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#elif defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "scan.hpp"
#include "unmix/core/error.hpp"

namespace unmix::srmd {

const char* to_string(Spgl1Status s) {
  switch (s) {
  case Spgl1Status::running: return "running";
  case Spgl1Status::root_found: return "root found (residual = sigma)";
  case Spgl1Status::bp_solution: return "basis pursuit solution";
  case Spgl1Status::least_squares: return "least-squares solution (residual above sigma)";
  case Spgl1Status::lasso: return "LASSO solution";
  case Spgl1Status::iterations: return "iteration limit reached";
  case Spgl1Status::line_search_failed: return "line search failed";
  case Spgl1Status::suboptimal_bp: return "suboptimal basis pursuit solution";
  }
  return "unknown";
}

namespace {

using Vec = std::vector<double>;

double dot(std::span<const double> a, std::span<const double> b) {
  double s = 0;
  for (std::size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}
double norm2(std::span<const double> a) { return std::sqrt(dot(a, a)); }

// The weights of the l1 norm as a type, so the loops below are compiled once per kind: none (all 1),
// one value for all, or one per entry. w(i) is the value the reference's weight(d, i) gives.
struct UnitWeight {
  double operator()(std::size_t) const { return 1.0; }
};
struct ScalarWeight {
  double w;
  double operator()(std::size_t) const { return w; }
};
struct VectorWeight {
  const double* w;
  double operator()(std::size_t i) const { return w[i]; }
};

/// f(weights) with the weight type that fits d: empty -> 1, one value -> d[0], else d[i].
template <class F> decltype(auto) with_weights(std::span<const double> d, F&& f) {
  if (d.empty()) return f(UnitWeight{});
  if (d.size() == 1) return f(ScalarWeight{d[0]});
  return f(VectorWeight{d.data()});
}

/// The entries b_i whose ratios b_i / w_i the projection sorts: |z_i| or b_i itself.
struct AbsOf {
  const double* z;
  double operator()(std::size_t i) const { return std::abs(z[i]); }
};
struct Plain {
  const double* b;
  double operator()(std::size_t i) const { return b[i]; }
};

#if defined(__SSE2__)
// Two entries at a time: the same operations as the scalar expressions, so the same results.
inline __m128d weights2(UnitWeight, std::size_t) { return _mm_set1_pd(1.0); }
inline __m128d weights2(ScalarWeight w, std::size_t) { return _mm_set1_pd(w.w); }
inline __m128d weights2(VectorWeight w, std::size_t i) { return _mm_loadu_pd(w.w + i); }
inline __m128d ratios2(UnitWeight, __m128d b, std::size_t) { return b; } // b / 1 = b
template <class W> __m128d ratios2(W w, __m128d b, std::size_t i) { return _mm_div_pd(b, weights2(w, i)); }
inline __m128d entries2(AbsOf b, std::size_t i) { return _mm_andnot_pd(_mm_set1_pd(-0.0), _mm_loadu_pd(b.z + i)); }
inline __m128d entries2(Plain b, std::size_t i) { return _mm_loadu_pd(b.b + i); }
#endif

/// What the projection writes: see signed_output.
enum class Out { shrink, keep, zero };

#if defined(__x86_64__) && defined(__GNUC__)
#define UNMIX_SRMD_AVX2 1
bool cpu_has_avx2() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2");
}
const bool kAvx2 = cpu_has_avx2();

// Four entries at a time where the processor has AVX2 (chosen at run time). Each function does the
// whole blocks of four and returns where it stopped; the caller finishes the rest. Every value they
// produce is the one the scalar expression gives (the same IEEE operations, no fused multiply-add).
// Loops started on 32-byte boundaries (GCC): short loops then never straddle two 64-byte lines, whose
// cost would otherwise depend on where the linker places the code.
#if defined(__clang__)
#define UNMIX_SRMD_TARGET_AVX2 __attribute__((target("avx2")))
#else
#define UNMIX_SRMD_TARGET_AVX2 __attribute__((target("avx2"), optimize("align-loops=32")))
#endif
UNMIX_SRMD_TARGET_AVX2 inline __m256d weights4(UnitWeight, std::size_t) { return _mm256_set1_pd(1.0); }
UNMIX_SRMD_TARGET_AVX2 inline __m256d weights4(ScalarWeight w, std::size_t) { return _mm256_set1_pd(w.w); }
UNMIX_SRMD_TARGET_AVX2 inline __m256d weights4(VectorWeight w, std::size_t i) { return _mm256_loadu_pd(w.w + i); }
UNMIX_SRMD_TARGET_AVX2 inline __m256d ratios4(UnitWeight, __m256d b, std::size_t) { return b; }
template <class W> UNMIX_SRMD_TARGET_AVX2 inline __m256d ratios4(W w, __m256d b, std::size_t i) {
  return _mm256_div_pd(b, weights4(w, i));
}
UNMIX_SRMD_TARGET_AVX2 inline __m256d entries4(AbsOf b, std::size_t i) {
  return _mm256_andnot_pd(_mm256_set1_pd(-0.0), _mm256_loadu_pd(b.z + i));
}
UNMIX_SRMD_TARGET_AVX2 inline __m256d entries4(Plain b, std::size_t i) { return _mm256_loadu_pd(b.b + i); }

/// trial_i = x_i - c (g_step g_i), and acc += sum_i w_i |trial_i| in four running sums (an
/// approximation of the weighted l1 norm: any order will do, see total_at_least).
template <class W>
UNMIX_SRMD_TARGET_AVX2 std::size_t step_avx2(const double* x, const double* g, double c, double g_step, std::size_t n,
                                             W w, double* trial, double& acc) {
  const __m256d cv = _mm256_set1_pd(c), gv = _mm256_set1_pd(g_step), sign = _mm256_set1_pd(-0.0);
  __m256d s = _mm256_setzero_pd();
  std::size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    const __m256d t =
        _mm256_sub_pd(_mm256_loadu_pd(x + i), _mm256_mul_pd(cv, _mm256_mul_pd(gv, _mm256_loadu_pd(g + i))));
    _mm256_storeu_pd(trial + i, t);
    s = _mm256_add_pd(s, _mm256_mul_pd(weights4(w, i), _mm256_andnot_pd(sign, t)));
  }
  alignas(32) double lanes[4];
  _mm256_store_pd(lanes, s);
  acc += (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]);
  return i;
}

/// m = max(m, max_i |x_i| / w_i).
template <class W> UNMIX_SRMD_TARGET_AVX2 std::size_t dual_norm_avx2(const double* x, std::size_t n, W w, double& m) {
  __m256d best = _mm256_set1_pd(m);
  std::size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    const __m256d v = ratios4(w, _mm256_andnot_pd(_mm256_set1_pd(-0.0), _mm256_loadu_pd(x + i)), i);
    best = _mm256_max_pd(v, best); // v > best ? v : best, as std::max(best, v)
  }
  alignas(32) double lanes[4];
  _mm256_store_pd(lanes, best);
  m = std::max(std::max(lanes[0], lanes[1]), std::max(lanes[2], lanes[3]));
  return i;
}

/// acc += sum_i w_i |z_i| in four running sums (an approximation: any order will do).
template <class W> UNMIX_SRMD_TARGET_AVX2 std::size_t abs_sum_avx2(const double* z, std::size_t n, W w, double& acc) {
  __m256d s = _mm256_setzero_pd();
  std::size_t i = 0;
  for (; i + 4 <= n; i += 4)
    s = _mm256_add_pd(s, _mm256_mul_pd(weights4(w, i), _mm256_andnot_pd(_mm256_set1_pd(-0.0), _mm256_loadu_pd(z + i))));
  alignas(32) double lanes[4];
  _mm256_store_pd(lanes, s);
  acc += (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]);
  return i;
}

template <Out kind, class W>
UNMIX_SRMD_TARGET_AVX2 std::size_t signed_output_avx2(const double* z, std::size_t n, W w, double soft, double* out) {
  const __m256d sign = _mm256_set1_pd(-0.0), zero = _mm256_setzero_pd(), sv = _mm256_set1_pd(soft);
  std::size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    const __m256d zi = _mm256_loadu_pd(z + i);
    const __m256d nonzero = _mm256_cmp_pd(zi, zero, _CMP_NEQ_OQ);
    __m256d p = zero;
    if constexpr (kind == Out::keep) p = _mm256_andnot_pd(sign, zi);
    if constexpr (kind == Out::shrink)
      p = _mm256_max_pd(_mm256_sub_pd(_mm256_andnot_pd(sign, zi), _mm256_mul_pd(sv, weights4(w, i))), zero);
    _mm256_storeu_pd(out + i, _mm256_and_pd(nonzero, _mm256_or_pd(_mm256_and_pd(sign, zi), p)));
  }
  return i;
}

/// The entries with ratio > low (low >= 0, so only entries b_i > 0 qualify) written to v[count++], and
/// outside = max(outside, the other ratios); an entry b_i <= 0 may raise outside to at most 0, which
/// only costs a look-up that finds nothing.
template <class B, class W>
UNMIX_SRMD_TARGET_AVX2 std::size_t split_avx2(B b, std::size_t n, W w, double low, std::size_t* v, std::size_t& count,
                                              double& outside) {
  const __m256d lowv = _mm256_set1_pd(low);
  __m256d best = _mm256_set1_pd(outside);
  std::size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    const __m256d ratio = ratios4(w, entries4(b, i), i);
    const __m256d above = _mm256_cmp_pd(ratio, lowv, _CMP_GT_OQ);
    int mask = _mm256_movemask_pd(above);
    while (mask != 0) {
      v[count++] = i + static_cast<std::size_t>(__builtin_ctz(static_cast<unsigned>(mask)));
      mask &= mask - 1;
    }
    // Ratios above low are larger than any below, so taking them into the maximum as well is wrong:
    // mask them to -1 first. NaN ratios are never taken (maxpd returns its second operand).
    best = _mm256_max_pd(_mm256_blendv_pd(ratio, _mm256_set1_pd(-1.0), above), best);
  }
  alignas(32) double lanes[4];
  _mm256_store_pd(lanes, best);
  outside = std::max(std::max(lanes[0], lanes[1]), std::max(lanes[2], lanes[3]));
  return i;
}
#endif

/// max_i |x_i| / w_i (the dual norm), with four running maxima: a maximum does not depend on the order.
template <class W> double dual_norm(std::span<const double> x, W w) {
  double m0 = 0, m1 = 0, m2 = 0, m3 = 0;
  const std::size_t n = x.size();
  std::size_t i = 0;
#if defined(UNMIX_SRMD_AVX2)
  if (kAvx2) i = dual_norm_avx2(x.data(), n, w, m0);
#endif
  for (; i + 4 <= n; i += 4) {
    m0 = std::max(m0, std::abs(x[i]) / w(i));
    m1 = std::max(m1, std::abs(x[i + 1]) / w(i + 1));
    m2 = std::max(m2, std::abs(x[i + 2]) / w(i + 2));
    m3 = std::max(m3, std::abs(x[i + 3]) / w(i + 3));
  }
  for (; i < n; ++i) m0 = std::max(m0, std::abs(x[i]) / w(i));
  return std::max(std::max(m0, m1), std::max(m2, m3));
}

/// The sign of z put back on p >= 0, as the reference does: p for z > 0, -p for z < 0, else 0.
inline double with_sign(double z, double p) { return z > 0 ? p : (z < 0 ? -p : 0.0); }

/// out_i = with_sign(z_i, p_i) with p_i = max(0, |z_i| - soft w_i) (Shrink), |z_i| (Keep) or 0 (Zero).
template <Out kind, class W> void signed_output(const double* z, std::size_t n, W w, double soft, double* out) {
  std::size_t i = 0;
#if defined(UNMIX_SRMD_AVX2)
  if (kAvx2) i = signed_output_avx2<kind>(z, n, w, soft, out);
#endif
#if defined(__SSE2__)
  // with_sign(z, p) for p >= +0 (never NaN): (z & sign bit) | p where z < 0 or z > 0, else +0.
  const __m128d sign = _mm_set1_pd(-0.0), zero = _mm_setzero_pd(), sv = _mm_set1_pd(soft);
  for (; i + 2 <= n; i += 2) {
    const __m128d zi = _mm_loadu_pd(z + i);
    const __m128d nonzero = _mm_or_pd(_mm_cmplt_pd(zi, zero), _mm_cmpgt_pd(zi, zero));
    __m128d p = zero;
    if constexpr (kind == Out::keep) p = _mm_andnot_pd(sign, zi);
    // std::max(0.0, t) is t when 0 < t, else 0: maxpd(t, 0) (t NaN gives 0 in both).
    if constexpr (kind == Out::shrink)
      p = _mm_max_pd(_mm_sub_pd(_mm_andnot_pd(sign, zi), _mm_mul_pd(sv, weights2(w, i))), zero);
    _mm_storeu_pd(out + i, _mm_and_pd(nonzero, _mm_or_pd(_mm_and_pd(sign, zi), p)));
  }
#endif
  for (; i < n; ++i) {
    if constexpr (kind == Out::keep) out[i] = with_sign(z[i], std::abs(z[i]));
    if constexpr (kind == Out::zero) out[i] = with_sign(z[i], 0.0);
    if constexpr (kind == Out::shrink) out[i] = with_sign(z[i], std::max(0.0, std::abs(z[i]) - soft * w(i)));
  }
}

/// Projection onto the weighted l1 ball {x : sum_i w_i |x_i| <= tau}, computing exactly what sorting all
/// ratios b_i / w_i (b = |z|) would: the result is max(0, b_i - soft w_i) with the sign of z_i, where soft
/// is found by walking the ratios in decreasing order (ties by index) with running sums
///   S = sum w_i b_i,  D = sum w_i^2,  alpha = (S - tau) / D,
/// until alpha >= the current ratio. Only the ratios above soft and the one after them take part in
/// that walk, so only those are sorted: a lower bound of soft (from the support of the previous
/// projection, or Condat's estimate) leaves a short list in one pass, Michelot's passes on that list
/// estimate soft, the ratios above the estimate (less a margin) are sorted and walked, the walk checks
/// that it stopped within them or at the next ratio, and a full sort is the fallback. The walk and its
/// sums are the ones over the fully sorted list, so the result is the same to the last bit; the
/// estimates only decide how much is sorted. The work space is kept between calls (no allocation once
/// it has grown), and so is the last support.
class L1Projector {
public:
  /// out = projection of z (length n); out may be z. Sign convention and special cases as project_l1.
  /// `approx`, if not NaN, is sum_i w_i |z_i| summed in any order (the caller had it at hand).
  template <class W>
  void project(const double* z, std::size_t n, W w, double tau, double* out,
               double approx = std::numeric_limits<double>::quiet_NaN()) {
    if (tau >= total_at_least(z, n, w, tau, approx)) {
      signed_output<Out::keep>(z, n, w, 0.0, out);
      return;
    }
    if (tau < std::numeric_limits<double>::epsilon()) {
      signed_output<Out::zero>(z, n, w, 0.0, out);
      return;
    }
    const double soft = threshold(AbsOf{z}, n, w, tau);
    signed_output<Out::shrink>(z, n, w, soft, out);
  }

  /// The threshold soft for b >= 0 when sum w_i b_i > tau >= eps (b(i): entry i).
  template <class B, class W> double threshold(B b, std::size_t n, W w, double tau) {
    // A lower bound of soft: for any set S of entries, (sum_S w_i b_i - tau) / sum_S w_i^2 <= soft, since
    // sum_S w_i (b_i - soft w_i) <= sum_i w_i max(0, b_i - soft w_i) = tau. The support of the previous
    // projection (most often nearly this one's) gives a close bound; without one, Condat's estimate.
    double low = 0;
    if (hint_n_ == n && !hint_.empty()) {
      double S = 0, D = 0;
      for (std::size_t i : hint_) {
        S += w(i) * b(i);
        D += w(i) * w(i);
      }
      const double rho = (S - tau) / D;
      // 5 % lower still, so that a few ratios below soft are listed too: the one after the support
      // is then known without another pass.
      low = rho - slack(rho, S, D, hint_.size(), tau) - 0.05 * std::abs(rho);
    }
    if (!(low > 0 && low < std::numeric_limits<double>::infinity())) {
      const double estimate = condat(b, n, w, tau);
      low = std::isfinite(estimate) && estimate > 0 ? estimate - slack_ : 0;
      if (!(low > 0)) low = 0;
    }
    // Entries with ratio > low may be in the support: v_, in index order. Of the others only the largest
    // ratio is kept (its first index is looked up if it is needed).
    const double outside = split(b, n, w, low);
    // Michelot's passes (each with fresh sums) on a copy of v_ estimate soft closely.
    vt_.assign(v_.begin(), v_.end());
    double S = 0, D = 0;
    for (std::size_t i : vt_) {
      S += w(i) * b(i);
      D += w(i) * w(i);
    }
    double rho = (S - tau) / D;
    while (!vt_.empty()) {
      std::size_t kept = 0;
      for (std::size_t i : vt_)
        if (b(i) / w(i) > rho) vt_[kept++] = i;
      if (kept == vt_.size() || kept == 0) break;
      vt_.resize(kept);
      S = 0;
      D = 0;
      for (std::size_t i : vt_) {
        S += w(i) * b(i);
        D += w(i) * w(i);
      }
      rho = (S - tau) / D;
    }
    // Sort every ratio >= cut: with cut > low, those lie in v_ and are exactly a prefix of the sorted order.
    double cut = std::nextafter(low, std::numeric_limits<double>::infinity());
    if (std::isfinite(rho)) cut = std::max(cut, rho - slack(rho, S, D, vt_.size(), tau));
    // They go first in the order of the last support (most often nearly their order now), then are sorted.
    Key next{-1.0, n}; // the first entry of v_ below cut in sorted order
    // (cand_ is written through a pointer into storage sized for every entry of v_: no growth checks.)
    if (mark_.size() != n) mark_.assign(n, 0);
    cand_.resize(v_.size());
    Key* const cand = cand_.data();
    std::size_t count = 0;
    if (hint_n_ == n) {
      for (std::size_t i : hint_) {
        const double ratio = b(i) / w(i);
        if (ratio >= cut) {
          cand[count++] = {ratio, i};
          mark_[i] = 1;
        }
      }
    }
    for (std::size_t i : v_) {
      const double ratio = b(i) / w(i);
      if (ratio >= cut) {
        if (!mark_[i]) cand[count++] = {ratio, i};
      } else if (before({ratio, i}, next)) {
        next = {ratio, i};
      }
    }
    cand_.resize(count);
    for (const Key& k : cand_) mark_[k.i] = 0;
    sort_nearly_sorted(cand_);
    Walk walk;
    std::size_t q = 0;
    for (; q < cand_.size(); ++q)
      if (walk.step(b(cand_[q].i), w(cand_[q].i), tau)) break;
    if (q == cand_.size() && next.i == n && outside >= 0) {
      // The first entry outside v_ in sorted order: every ratio in v_ exceeds `outside`.
      for (std::size_t i = 0; i < n; ++i) {
        const double bi = b(i);
        if (bi > 0 && bi / w(i) == outside) {
          next = {outside, i};
          break;
        }
      }
    }
    if (q == cand_.size() && next.i != n && !walk.step(b(next.i), w(next.i), tau)) {
      // The estimate was too high: sort every positive entry.
      cand_.clear();
      for (std::size_t i = 0; i < n; ++i) {
        const double bi = b(i);
        if (bi > 0) cand_.push_back({bi / w(i), i});
      }
      std::sort(cand_.begin(), cand_.end(), before);
      walk = Walk{};
      for (q = 0; q < cand_.size(); ++q)
        if (walk.step(b(cand_[q].i), w(cand_[q].i), tau)) break;
    }
    hint_.clear();
    for (std::size_t k = 0; k < q; ++k) hint_.push_back(cand_[k].i);
    hint_n_ = n;
    return walk.soft;
  }

private:
  struct Key {
    double ratio;
    std::size_t i;
  };
  static bool before(const Key& p, const Key& q) { return p.ratio > q.ratio || (p.ratio == q.ratio && p.i < q.i); }

  /// v_ = the entries with b_i > 0 and ratio > low, in index order; returns the largest ratio of the
  /// other entries with b_i > 0 (-1 if there is none).
  template <class B, class W> double split(B b, std::size_t n, W w, double low) {
    // The indices go to a buffer of length n first: no reallocation (and no call) inside the loops.
    if (idx_.size() < n) idx_.resize(n);
    std::size_t* const v = idx_.data();
    std::size_t count = 0;
    double outside = -1.0;
    std::size_t i = 0;
#if defined(UNMIX_SRMD_AVX2)
    if (kAvx2) i = split_avx2(b, n, w, low, v, count, outside);
#endif
#if defined(__SSE2__)
    const __m128d lowv = _mm_set1_pd(low), zero = _mm_setzero_pd(), none = _mm_set1_pd(-1.0);
    __m128d best = _mm_set1_pd(outside);
    for (; i + 2 <= n; i += 2) {
      const __m128d bi = entries2(b, i);
      const __m128d ratio = ratios2(w, bi, i);
      const __m128d positive = _mm_cmpgt_pd(bi, zero);
      const __m128d above = _mm_cmpgt_pd(ratio, lowv);
      const int mask = _mm_movemask_pd(_mm_and_pd(positive, above));
      if (mask & 1) v[count++] = i;
      if (mask & 2) v[count++] = i + 1;
      // Ratios of positive entries at or below low (NaN ratios excluded), else -1; maxpd keeps the larger.
      const __m128d keep = _mm_andnot_pd(above, _mm_and_pd(positive, _mm_cmpord_pd(ratio, ratio)));
      best = _mm_max_pd(_mm_or_pd(_mm_and_pd(keep, ratio), _mm_andnot_pd(keep, none)), best);
    }
    alignas(16) double lanes[2];
    _mm_store_pd(lanes, best);
    outside = std::max(lanes[0], lanes[1]);
#endif
    for (; i < n; ++i) {
      const double bi = b(i);
      if (!(bi > 0)) continue;
      const double ratio = bi / w(i);
      if (ratio > low) {
        v[count++] = i;
      } else if (ratio > outside) {
        outside = ratio;
      }
    }
    v_.assign(v, v + count);
    return outside;
  }

  /// Sorts by `before` (a strict total order, so the result is unique): by insertion while that moves
  /// few entries, else by std::sort.
  static void sort_nearly_sorted(std::vector<Key>& a) {
    const std::size_t n = a.size(), budget = 8 * n + 64;
    std::size_t moves = 0;
    for (std::size_t i = 1; i < n; ++i) {
      const Key k = a[i];
      std::size_t j = i;
      for (; j > 0 && before(k, a[j - 1]); --j) a[j] = a[j - 1];
      a[j] = k;
      moves += i - j;
      if (moves > budget) {
        std::sort(a.begin(), a.end(), before);
        return;
      }
    }
  }

  /// The walk along the sorted ratios (the reference's loop): step() takes the next entry and says
  /// whether the walk stops there; soft is the last alpha before the stop (0 before the first entry).
  struct Walk {
    double csdb = 0, csd2 = 0, soft = 0;
    bool step(double bi, double di, double tau) {
      csdb += di * bi;
      csd2 += di * di;
      const double alpha1 = (csdb - tau) / csd2, alpha2 = bi / di;
      if (alpha1 >= alpha2) return true;
      soft = alpha1;
      return false;
    }
  };

  /// Whether tau >= sum_i w_i |z_i| summed in index order, decided from a four-way sum where its error
  /// bound allows (the terms are >= 0, so both sums lie within 2 n u of the exact one), else summed in order.
  /// Returns the sum to compare tau with.
  template <class W> static double total_at_least(const double* z, std::size_t n, W w, double tau, double approx) {
    if (std::isnan(approx)) {
      double a0 = 0, a1 = 0, a2 = 0, a3 = 0;
      std::size_t i = 0;
#if defined(UNMIX_SRMD_AVX2)
      if (kAvx2) i = abs_sum_avx2(z, n, w, a0);
#endif
      for (; i + 4 <= n; i += 4) {
        a0 += w(i) * std::abs(z[i]);
        a1 += w(i + 1) * std::abs(z[i + 1]);
        a2 += w(i + 2) * std::abs(z[i + 2]);
        a3 += w(i + 3) * std::abs(z[i + 3]);
      }
      for (; i < n; ++i) a0 += w(i) * std::abs(z[i]);
      approx = (a0 + a1) + (a2 + a3);
    }
    const double margin = static_cast<double>(n + 4) * 0x1p-50 * approx; // 8 (n + 4) u approx
    if (approx < 1e300 && std::abs(tau - approx) > margin) return approx;
    double total = 0;
    for (std::size_t k = 0; k < n; ++k) total += w(k) * std::abs(z[k]);
    return total;
  }

  /// Condat's estimate of soft ("Fast projection onto the simplex and the l1 ball", 2016), weighted:
  /// a running set of entries whose alpha exceeds the ratio of each, then removal of the entries at or
  /// below alpha until none is left. Sets slack_ to a bound on its rounding error.
  template <class B, class W> double condat(B b, std::size_t n, W w, double tau) {
    v_.clear();
    vt_.clear();
    double S = 0, D = 0, rho = -std::numeric_limits<double>::infinity();
    for (std::size_t i = 0; i < n; ++i) {
      const double bi = b(i);
      if (!(bi > 0)) continue;
      const double wi = w(i), ratio = bi / wi;
      if (!(ratio > rho)) continue;
      const double wb = wi * bi, ww = wi * wi;
      const double rho1 = (S + wb - tau) / (D + ww), alone = (wb - tau) / ww;
      if (rho1 > alone) {
        v_.push_back(i);
        S += wb;
        D += ww;
        rho = rho1;
      } else {
        vt_.insert(vt_.end(), v_.begin(), v_.end());
        v_.assign(1, i);
        S = wb;
        D = ww;
        rho = alone;
      }
    }
    for (std::size_t i : vt_) {
      const double bi = b(i), wi = w(i);
      if (bi / wi > rho) {
        v_.push_back(i);
        S += wi * bi;
        D += wi * wi;
        rho = (S - tau) / D;
      }
    }
    // Michelot's passes, each with fresh sums.
    while (true) {
      std::size_t kept = 0;
      for (std::size_t i : v_)
        if (b(i) / w(i) > rho) v_[kept++] = i;
      if (kept == v_.size() || kept == 0) break;
      v_.resize(kept);
      S = 0;
      D = 0;
      for (std::size_t i : v_) {
        S += w(i) * b(i);
        D += w(i) * w(i);
      }
      rho = (S - tau) / D;
    }
    slack_ = slack(rho, S, D, v_.size(), tau);
    return rho;
  }

  /// A margin for the rounding of alpha = (S - tau) / D summed over k entries.
  static double slack(double alpha, double S, double D, std::size_t k, double tau) {
    return 1e-6 * std::abs(alpha) + 16 * static_cast<double>(k + 1) * 0x1p-53 * (std::abs(S) + tau) / D;
  }

  std::vector<Key> cand_;
  std::vector<std::size_t> v_, vt_, idx_, hint_; // hint_: support of the last projection of length hint_n_
  std::vector<char> mark_;
  std::size_t hint_n_ = 0;
  double slack_ = 0;
};

/// The operator with product counters.
struct Counted {
  const LinearOperator& A;
  std::size_t n_a = 0, n_at = 0;
  /// r = b - A x
  void residual(std::span<const double> b, std::span<const double> x, Vec& r) {
    r.resize(b.size());
    A.forward(x, r);
    for (std::size_t i = 0; i < r.size(); ++i) r[i] = b[i] - r[i];
    ++n_a;
  }
  /// g = -A^T r
  void gradient(std::span<const double> r, Vec& g) {
    g.resize(A.cols());
    A.adjoint(r, g);
    for (double& v : g) v = -v;
    ++n_at;
  }
};

struct LineResult {
  double f;
  int err; // 0 converged, 1 no descent, 2 too many iterations
  std::size_t iters;
};

constexpr double kGamma = 1e-4;
constexpr std::size_t kMaxLineIters = 10;

// The sums over s = x_new - x below skip the entries where s is zero: there s_i * v = +-0 for finite v,
// and adding a zero to a sum that starts at +0 leaves it unchanged, so the sums are the same as over
// every entry. The iterates are sparse, so these sums cost little.

/// Projected backtracking along the projection arc: x_new = P(x - step * scale * g_step * g).
template <class W>
LineResult line_curvy(Counted& op, std::span<const double> b, const Vec& x, const Vec& g, double g_step, double fmax,
                      W w, double tau, L1Projector& proj, Vec& trial, Vec& x_new, Vec& r_new) {
  const std::size_t n = x.size();
  double step = 1, s_norm = 0, scale = 1;
  int n_safe = 0;
  std::size_t it = 0;
  trial.resize(n);
  x_new.resize(n);
  while (true) {
    const double c = step * scale;
    std::size_t i0 = 0;
    double total = 0; // sum_i w_i |trial_i| in any order, for the projection's first test
#if defined(UNMIX_SRMD_AVX2)
    if (kAvx2) i0 = step_avx2(x.data(), g.data(), c, g_step, n, w, trial.data(), total);
#endif
    for (std::size_t i = i0; i < n; ++i) {
      trial[i] = x[i] - c * (g_step * g[i]);
      total += w(i) * std::abs(trial[i]);
    }
    proj.project(trial.data(), n, w, tau, x_new.data(), total);
    op.residual(b, x_new, r_new);
    const double f_new = dot(r_new, r_new) / 2;
    double gs_s = 0, s_s = 0; // (g_step g)^T s and s^T s
    detail::for_each_nonzero_difference(x_new.data(), x.data(), n, [&](std::size_t i, double si) {
      gs_s += (g_step * g[i]) * si;
      s_s += si * si;
    });
    const double gts = scale * gs_s;
    if (gts >= 0) return {f_new, 1, it};
    if (f_new < fmax + kGamma * step * gts) return {f_new, 0, it};
    if (it >= kMaxLineIters) return {f_new, 2, it};
    ++it;
    step /= 2;
    // When the step bound is huge, damped directions may project to the same point: if two trials
    // moved equally far, shrink the direction itself.
    const double s_norm_old = s_norm;
    s_norm = std::sqrt(s_s) / std::sqrt(static_cast<double>(n));
    if (std::abs(s_norm - s_norm_old) <= 1e-6 * s_norm) {
      double gg = 0;
      for (std::size_t i = 0; i < n; ++i) gg += (g_step * g[i]) * (g_step * g[i]);
      const double g_norm = std::sqrt(gg) / std::sqrt(static_cast<double>(n));
      scale = s_norm / g_norm / std::ldexp(1.0, n_safe);
      ++n_safe;
    }
  }
}

/// Backtracking along a feasible direction dx with safeguarded quadratic interpolation.
LineResult line_feasible(Counted& op, std::span<const double> b, double f, const Vec& x, const Vec& dx, double gtd,
                         double fmax, Vec& x_new, Vec& r_new) {
  const std::size_t n = x.size();
  double step = 1;
  std::size_t it = 0;
  gtd = -std::abs(gtd);
  x_new.resize(n);
  while (true) {
    for (std::size_t i = 0; i < n; ++i) x_new[i] = x[i] + step * dx[i];
    op.residual(b, x_new, r_new);
    const double f_new = dot(r_new, r_new) / 2;
    if (f_new < fmax + kGamma * step * gtd) return {f_new, 0, it};
    if (it >= kMaxLineIters) return {f_new, 2, it};
    ++it;
    if (step <= 0.1) {
      step /= 2;
    } else {
      double tmp = (-gtd * step * step) / (2 * (f_new - f - step * gtd));
      if (tmp < 0.1 || tmp > 0.9 * step || std::isnan(tmp)) tmp = step / 2;
      step = tmp;
    }
  }
}

template <class W>
Spgl1Result spgl1_weighted(const LinearOperator& A, std::span<const double> b, double tau, double sigma,
                           std::span<const double> x0, const Spgl1Options& opt, W w) {
  const std::size_t m = A.rows(), n = A.cols();
  Counted op{A};
  bool single_tau = tau != 0;
  const std::size_t iter_lim = opt.iter_lim ? opt.iter_lim : 10 * m;
  const std::size_t n_prev = std::max<std::size_t>(1, opt.n_prev_vals);
  double step_max = opt.step_max;
  int line_errors_left = opt.max_line_errors;
  Vec last_fv(n_prev, -std::numeric_limits<double>::infinity());

  const double bnorm = norm2(b);
  if (bnorm <= sigma) {
    tau = 0;
    single_tau = true;
  }

  Spgl1Result res;
  L1Projector proj;
  Vec x = x0.empty() ? Vec(n, 0.0) : Vec(x0.begin(), x0.end());
  proj.project(x.data(), n, w, tau, x.data());
  Vec r, g;
  op.residual(b, x, r);
  op.gradient(r, g);
  double f = dot(r, r) / 2;
  last_fv[0] = f;
  double f_best = f, f_old = f;
  // The best iterate is returned only for a fixed tau.
  Vec x_best;
  if (single_tau) x_best = x;

  Vec tmp(n), dx(n);
  for (std::size_t i = 0; i < n; ++i) tmp[i] = x[i] - g[i];
  proj.project(tmp.data(), n, w, tau, dx.data());
  double dx_norm = 0;
  for (std::size_t i = 0; i < n; ++i) dx_norm = std::max(dx_norm, std::abs(dx[i] - x[i]));
  double g_step = dx_norm < 1 / step_max ? step_max : std::min(step_max, std::max(opt.step_min, 1 / dx_norm));

  Spgl1Status stat = Spgl1Status::running;
  bool test_update_tau = false;
  std::size_t iter = 0, n_newton = 0, n_line = 0;
  double gnorm = 0, rnorm = 0, rgap = 0;
  // x, r, f change only when a line search succeeds; then x_old and g_old take the previous x and g
  // (by swapping buffers, not copying).
  Vec x_old(n), g_old(n), x_new(n), r_new(m);

  while (true) {
    gnorm = dual_norm(g, w);
    // ||r||^2 and r^T (r - b), each summed in order, in one loop (two independent chains).
    double rr = 0, gap = 0;
    for (std::size_t i = 0; i < m; ++i) {
      rr += r[i] * r[i];
      gap += r[i] * (r[i] - b[i]);
    }
    rnorm = std::sqrt(rr);
    gap += tau * gnorm;
    rgap = std::abs(gap) / std::max(1.0, f);
    const double aerror1 = rnorm - sigma, aerror2 = f - sigma * sigma / 2;
    const double rerror1 = std::abs(aerror1) / std::max(1.0, rnorm);
    const double rerror2 = std::abs(aerror2) / std::max(1.0, f);

    if (single_tau) {
      if (rgap <= opt.opt_tol || rnorm < opt.opt_tol * bnorm) stat = Spgl1Status::lasso;
    } else {
      if (gnorm <= opt.ls_tol * rnorm) stat = Spgl1Status::least_squares;
      if (rgap <= std::max(opt.opt_tol, rerror2) || rerror1 <= opt.opt_tol) {
        if (rnorm <= sigma) stat = Spgl1Status::suboptimal_bp;
        if (rerror1 <= opt.opt_tol) stat = Spgl1Status::root_found;
        if (rnorm <= opt.bp_tol * bnorm) stat = Spgl1Status::bp_solution;
      }
      const bool change1 = std::abs(f - f_old) <= opt.dec_tol * f;
      const bool change2 = std::abs(f - f_old) <= 1e-1 * f * std::abs(rnorm - sigma);
      test_update_tau = ((change1 && rnorm > 2 * sigma) || (change2 && rnorm <= 2 * sigma)) &&
                        stat == Spgl1Status::running && !test_update_tau;
      if (test_update_tau) {
        // Newton step on the Pareto curve phi(tau) = ||r(tau)||: phi' = -||A^T r||_dual / ||r||.
        const double tau_old = tau;
        tau = std::max(0.0, tau + (rnorm * aerror1) / gnorm);
        ++n_newton;
        if (tau < tau_old) {
          // The ball shrank: project the iterate back into it and start the history afresh.
          proj.project(x.data(), n, w, tau, x.data());
          op.residual(b, x, r);
          op.gradient(r, g);
          f = dot(r, r) / 2;
          std::fill(last_fv.begin(), last_fv.end(), -std::numeric_limits<double>::infinity());
          last_fv[0] = f;
        }
      }
    }
    if (stat == Spgl1Status::running && iter >= iter_lim) stat = Spgl1Status::iterations;
    if (stat != Spgl1Status::running) break;

    ++iter;
    f_old = f;
    const double fmax = *std::max_element(last_fv.begin(), last_fv.end());
    LineResult ls = line_curvy(op, b, x, g, g_step, fmax, w, tau, proj, tmp, x_new, r_new);
    n_line += ls.iters;
    if (ls.err != 0) {
      // The projected search failed: retry along the feasible direction P(x - step g) - x.
      for (std::size_t i = 0; i < n; ++i) tmp[i] = x[i] - g_step * g[i];
      proj.project(tmp.data(), n, w, tau, dx.data());
      double gtd = 0;
      for (std::size_t i = 0; i < n; ++i) {
        dx[i] -= x[i];
        if (dx[i] != 0) gtd += g[i] * dx[i];
      }
      ls = line_feasible(op, b, f_old, x, dx, gtd, fmax, x_new, r_new);
      n_line += ls.iters;
    }
    if (ls.err != 0) {
      // Failed again: keep x, r and f, and damp the largest spectral step.
      if (line_errors_left <= 0) {
        stat = Spgl1Status::line_search_failed;
      } else {
        step_max /= 10;
        --line_errors_left;
      }
      g_step = std::min(step_max, g_step);
    } else {
      x_old.swap(x);
      x.swap(x_new);
      r.swap(r_new);
      f = ls.f;
      g_old.swap(g);
      op.gradient(r, g);
      double sts = 0, sty = 0;
      detail::for_each_nonzero_difference(x.data(), x_old.data(), n, [&](std::size_t i, double s) {
        sts += s * s;
        sty += s * (g[i] - g_old[i]);
      });
      g_step = sty <= 0 ? step_max : std::min(step_max, std::max(opt.step_min, sts / sty));
    }
    if (single_tau || f > sigma * sigma / 2) {
      last_fv[iter % n_prev] = f;
      if (f_best > f) {
        f_best = f;
        if (single_tau) x_best = x;
      }
    }
  }

  if (single_tau && f > f_best) {
    x = x_best;
    op.residual(b, x, r);
    op.gradient(r, g);
    gnorm = dual_norm(g, w);
    rnorm = norm2(r);
  }
  res.x = std::move(x);
  res.r = std::move(r);
  res.g = std::move(g);
  res.tau = tau;
  res.rnorm = rnorm;
  res.gnorm = gnorm;
  res.rgap = rgap;
  res.status = stat;
  res.iterations = iter;
  res.n_newton = n_newton;
  res.n_prod_a = op.n_a;
  res.n_prod_at = op.n_at;
  res.n_line = n_line;
  return res;
}

} // namespace

std::vector<double> project_nonneg_weighted_l1(std::span<const double> b, std::span<const double> d, double tau) {
  const std::size_t n = b.size();
  if (d.size() > 1 && d.size() != n) throw ConfigError("l1 projection: weights and vector differ in length");
  return with_weights(d, [&](auto w) {
    Vec x(n, 0.0);
    double total = 0;
    for (std::size_t i = 0; i < n; ++i) total += w(i) * b[i];
    if (tau >= total) return Vec(b.begin(), b.end());
    if (tau < std::numeric_limits<double>::epsilon()) return x;
    // Only positive entries can stay nonzero.
    L1Projector proj;
    const double soft = proj.threshold(Plain{b.data()}, n, w, tau);
    for (std::size_t i = 0; i < n; ++i) x[i] = std::max(0.0, b[i] - soft * w(i));
    return x;
  });
}

std::vector<double> project_l1(std::span<const double> x, std::span<const double> d, double tau) {
  const std::size_t n = x.size();
  if (d.size() > 1 && d.size() != n) throw ConfigError("l1 projection: weights and vector differ in length");
  Vec p(n);
  with_weights(d, [&](auto w) {
    L1Projector proj;
    proj.project(x.data(), n, w, tau, p.data());
  });
  return p;
}

Spgl1Result spgl1(const LinearOperator& A, std::span<const double> b, double tau, double sigma,
                  std::span<const double> x0, const Spgl1Options& opt) {
  const std::size_t m = A.rows(), n = A.cols();
  if (b.size() != m)
    throw DataError("spgl1: right-hand side has " + std::to_string(b.size()) + " entries, the operator " +
                    std::to_string(m) + " rows");
  if (!x0.empty() && x0.size() != n) throw DataError("spgl1: starting point has the wrong length");
  const std::span<const double> d = opt.weights;
  if (d.size() > 1 && d.size() != n) throw ConfigError("spgl1: give one weight or one per column");
  for (double v : d)
    if (!std::isfinite(v) || v <= 0) throw ConfigError("spgl1: weights must be finite and strictly positive");
  if (!(sigma >= 0) || !(tau >= 0)) throw ConfigError("spgl1: sigma and tau must be nonnegative");
  return with_weights(d, [&](auto w) { return spgl1_weighted(A, b, tau, sigma, x0, opt, w); });
}

} // namespace unmix::srmd
