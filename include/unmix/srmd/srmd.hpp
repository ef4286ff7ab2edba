#pragma once
// Sparse Random Mode Decomposition (Richardson, Schaeffer, Tran 2024) as the authors' code computes
// it: represent y as a sparse sum of random features (basis pursuit denoise by SPGL1), cluster the kept
// features in the time-frequency plane (DBSCAN, or a frequency cutoff) and sum each cluster into a mode.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "unmix/srmd/operator.hpp"
#include "unmix/srmd/spgl1.hpp"

namespace unmix::srmd {

struct SrmdOptions {
  std::size_t n_features = 0;      // 0: 10 m
  std::optional<double> max_frq;   // default 0.5 (m + 1) / L
  double w = 0.1;                  // window width (time units); the Gaussian's s is w / 2
  double r = 0.05;                 // relative residual: ||y - B a|| <= r ||y||, 0 < r < 1
  std::optional<double> eps;       // DBSCAN radius; default 0.2 L
  std::optional<double> frq_scale; // frequency scale before clustering; default L / max_frq
  int min_samples = 4;
  std::optional<double> threshold; // keep |a| >= this quantile of the nonzero |a| (in [0, 1])
  int n_modes = 0;                 // > 0: at most this many modes (the smallest are summed)
  std::optional<double> cutoff;    // split by f < cutoff / f >= cutoff instead of DBSCAN
  std::uint64_t seed = 0;
  Spgl1Options spgl1;
};

/// Defaults filled in and every option checked (ConfigError / DataError with the fix).
struct SrmdPlan {
  std::size_t m = 0, n_features = 0;
  double t0 = 0, L = 0, max_frq = 0, w = 0, r = 0, eps = 0, frq_scale = 0;
};
SrmdPlan plan_srmd(std::span<const double> t, std::span<const double> y, const SrmdOptions& opt);

struct SrmdResult {
  std::size_t m = 0, n_modes = 0;
  std::vector<double> modes; // m x n_modes, column-major, sorted by L2 norm (largest first)
  // The kept features (nonzero weight, above the threshold), in global index order.
  std::vector<std::size_t> index;
  std::vector<double> tau, frq, phs, weight;
  std::vector<int> label; // mode index (after sorting and merging), -1 for noise
  Spgl1Status status = Spgl1Status::running;
  std::size_t iterations = 0, nonzeros = 0;
  double rnorm = 0, sigma = 0, tau_l1 = 0;
  SrmdPlan plan;
  std::span<const double> mode(std::size_t k) const { return {modes.data() + k * m, m}; }
};

/// SRMD of y sampled at ascending times t. The features are split in contiguous blocks over the parts
/// of `reduction` (one part: everything local); every part returns the same result. Throws DataError if
/// no feature gets a nonzero weight.
SrmdResult srmd(std::span<const double> t, std::span<const double> y, const SrmdOptions& opt,
                const Reduction& reduction);
inline SrmdResult srmd(std::span<const double> t, std::span<const double> y, const SrmdOptions& opt) {
  return srmd(t, y, opt, SerialReduction{});
}

/// Mode assembly alone, from kept features with weights (exposed for tests): labels from DBSCAN or
/// the cutoff, modes sorted by norm, merged to n_modes.
void assemble_modes(std::span<const double> t, const SrmdPlan& plan, const SrmdOptions& opt, SrmdResult& res);

} // namespace unmix::srmd
