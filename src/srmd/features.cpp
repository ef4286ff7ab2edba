#include "unmix/srmd/features.hpp"

#include <algorithm>
#include <cmath>
#include <numbers>
#include <string>

#include "unmix/core/error.hpp"
#include "unmix/core/rng.hpp"

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

FeatureParams draw_features(std::uint64_t seed, std::size_t begin, std::size_t end, double t0, double L,
                            double max_frq) {
  const CounterRng rt(seed, 1), rf(seed, 2), rp(seed, 3);
  FeatureParams p;
  const std::size_t n = end > begin ? end - begin : 0;
  p.tau.resize(n);
  p.frq.resize(n);
  p.phs.resize(n);
  for (std::size_t k = 0; k < n; ++k) {
    const std::uint64_t j = begin + k;
    p.tau[k] = rt.uniform(j) * L + t0;
    p.frq[k] = rf.uniform(j) * max_frq;
    p.phs[k] = rp.uniform(j) * kTwoPi;
  }
  return p;
}

FeatureDictionary::FeatureDictionary(std::span<const double> t, const FeatureParams& local, double w, std::size_t begin,
                                     std::size_t global_cols, const Reduction& reduction)
    : m_(t.size()), n_global_(global_cols), begin_(begin), red_(&reduction) {
  if (!(w > 0)) throw ConfigError("feature window width w must be positive");
  if (begin + local.size() > global_cols) throw Error("feature dictionary: local columns exceed the global count");
  const std::size_t n = local.size();
  start_.resize(n);
  ptr_.resize(n + 1);
  ptr_[0] = 0;
  // Two passes: support sizes, then values, so the storage is allocated once.
  const double half = 3 * (w / 2);
  std::vector<std::size_t> lo(n), hi(n);
  for (std::size_t j = 0; j < n; ++j) {
    const double tau = local.tau[j];
    std::size_t a = static_cast<std::size_t>(std::lower_bound(t.begin(), t.end(), tau - half) - t.begin());
    std::size_t b = static_cast<std::size_t>(std::upper_bound(t.begin(), t.end(), tau + half) - t.begin());
    // One sample of slack on each side against rounding; exact zeros are trimmed below.
    a = a > 0 ? a - 1 : 0;
    b = std::min(m_, b + 1);
    while (a < b && feature_value(t[a], tau, local.frq[j], local.phs[j], w) == 0) ++a;
    while (b > a && feature_value(t[b - 1], tau, local.frq[j], local.phs[j], w) == 0) --b;
    lo[j] = a;
    hi[j] = b;
    ptr_[j + 1] = ptr_[j] + (b - a);
  }
  values_.resize(ptr_[n]);
  for (std::size_t j = 0; j < n; ++j) {
    start_[j] = lo[j];
    double* v = values_.data() + ptr_[j];
    for (std::size_t i = lo[j]; i < hi[j]; ++i)
      v[i - lo[j]] = feature_value(t[i], local.tau[j], local.frq[j], local.phs[j], w);
  }
}

void FeatureDictionary::forward(std::span<const double> x, std::span<double> y) const {
  // Exact accumulation: every term x_j b_j(t_i) is put on the fixed-point grid 2^(e - 62) with
  // 2^e > ||x||_1 >= |y_i| (|b| <= 1), so no partial sum overflows 63 bits and the integer sums are
  // the same whatever the order or the split over processes.
  double l1 = 0;
  for (double v : x) l1 += std::abs(v);
  std::fill(y.begin(), y.end(), 0.0);
  if (l1 == 0) return;
  int e = 0;
  std::frexp(l1, &e);
  const double scale = std::ldexp(1.0, 62 - e);
  std::vector<long long> acc(m_, 0);
  for (std::size_t j = 0; j < start_.size(); ++j) {
    const double xj = x[begin_ + j];
    if (xj == 0) continue;
    const double c = xj * scale;
    const double* v = values_.data() + ptr_[j];
    long long* out = acc.data() + start_[j];
    const std::size_t len = ptr_[j + 1] - ptr_[j];
    for (std::size_t k = 0; k < len; ++k) out[k] += static_cast<long long>(c * v[k]);
  }
  red_->sum(acc);
  for (std::size_t i = 0; i < m_; ++i) y[i] = std::ldexp(static_cast<double>(acc[i]), e - 62);
}

void FeatureDictionary::adjoint(std::span<const double> r, std::span<double> g) const {
  std::vector<double> local(start_.size());
  for (std::size_t j = 0; j < start_.size(); ++j) {
    const double* v = values_.data() + ptr_[j];
    const double* rr = r.data() + start_[j];
    const std::size_t len = ptr_[j + 1] - ptr_[j];
    // Four partial sums (vectorizable); the order depends only on the column, not on the split.
    double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    std::size_t k = 0;
    for (; k + 4 <= len; k += 4) {
      s0 += v[k] * rr[k];
      s1 += v[k + 1] * rr[k + 1];
      s2 += v[k + 2] * rr[k + 2];
      s3 += v[k + 3] * rr[k + 3];
    }
    for (; k < len; ++k) s0 += v[k] * rr[k];
    local[j] = (s0 + s1) + (s2 + s3);
  }
  red_->gather(local, g);
}

} // namespace unmix::srmd
