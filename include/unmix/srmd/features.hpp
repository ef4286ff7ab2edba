#pragma once
// Random time-frequency features of SRMD and their dictionary. Feature j is
//   b_j(t) = g(t - tau_j) sin(2 pi f_j t + phi_j),  g(u) = exp(-u^2 / (2 s^2)) h(u),  s = w / 2,
// with h = 1 for |u| < 3 s = 1.5 w, 1/2 at |u| = 1.5 w and 0 beyond. Each feature is therefore
// nonzero on a short interval only: the dictionary stores every column's support and never the
// dense m x N matrix.
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "unmix/srmd/operator.hpp"

namespace unmix::srmd {

struct FeatureParams {
  std::vector<double> tau, frq, phs;
  std::size_t size() const { return tau.size(); }
};

/// Value of one feature at time t.
double feature_value(double t, double tau, double frq, double phs, double w);

/// Features [begin, end) of the n_total features drawn for `seed`: tau ~ U[t0, t0 + L],
/// f ~ U[0, max_frq], phi ~ U[0, 2 pi], drawn as NumPy's default_rng(seed) draws them (all n_total
/// tau first, then all f, then all phi: the same features as the reference implementation's for the
/// same seed). Feature j depends only on (seed, n_total, j), so every process draws the same feature j
/// whatever the split.
FeatureParams draw_features(std::uint64_t seed, std::size_t n_total, std::size_t begin, std::size_t end, double t0,
                            double L, double max_frq);

/// Contiguous block split of n columns over `parts` parts: [first(p), first(p + 1)).
inline std::size_t block_first(std::size_t n, int parts, int p) {
  const std::size_t P = static_cast<std::size_t>(parts), q = static_cast<std::size_t>(p);
  return q * (n / P) + (q < n % P ? q : n % P);
}

/// The columns [begin, begin + local count) of the feature dictionary on sample times t (ascending),
/// stored as supports. As an operator it acts on whole vectors of length `global_cols`: forward sums
/// this part's columns and combines the parts with one exact integer sum (so y is bitwise identical
/// for any split), adjoint computes this part's entries and gathers them. The products reuse scratch
/// space held by the dictionary: one dictionary must not serve two products at the same time.
class FeatureDictionary final : public LinearOperator {
public:
  FeatureDictionary(std::span<const double> t, const FeatureParams& local, double w, std::size_t begin,
                    std::size_t global_cols, const Reduction& reduction);
  std::size_t rows() const override { return m_; }
  std::size_t cols() const override { return n_global_; }
  void forward(std::span<const double> x, std::span<double> y) const override;
  void adjoint(std::span<const double> r, std::span<double> g) const override;

  std::size_t local_cols() const { return start_.size(); }
  std::size_t begin() const { return begin_; }
  /// Stored entries of this part (sum of support lengths).
  std::size_t stored() const { return values_.size(); }
  /// Column j (local index): first row and values on its support.
  std::size_t support_first(std::size_t j) const { return start_[j]; }
  std::span<const double> support_values(std::size_t j) const {
    return {values_.data() + ptr_[j], ptr_[j + 1] - ptr_[j]};
  }

private:
  std::size_t m_, n_global_, begin_;
  const Reduction* red_;
  std::vector<std::size_t> start_, ptr_;
  std::vector<double> values_; // the supports one after the other
  // Scratch space of the products, kept between calls (a dictionary serves one product at a time).
  mutable std::vector<long long> acc_;
  mutable std::vector<double> local_;
  mutable std::vector<std::size_t> nonzero_;
};

} // namespace unmix::srmd
