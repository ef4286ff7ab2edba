#include "unmix/srmd/srmd.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <numeric>
#include <string>

#include "unmix/core/error.hpp"
#include "unmix/srmd/dbscan.hpp"
#include "unmix/srmd/features.hpp"

namespace unmix::srmd {

namespace {
std::string num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}
} // namespace

SrmdPlan plan_srmd(std::span<const double> t, std::span<const double> y, const SrmdOptions& opt) {
  if (t.size() != y.size())
    throw DataError("srmd: " + std::to_string(t.size()) + " time stamps for " + std::to_string(y.size()) + " samples");
  const std::size_t m = y.size();
  if (m < 2) throw DataError("srmd: the signal has " + std::to_string(m) + " sample(s); at least 2 are needed");
  for (std::size_t i = 0; i < m; ++i) {
    if (!std::isfinite(y[i])) throw DataError("srmd: sample " + std::to_string(i + 1) + " is not a finite number");
    if (!std::isfinite(t[i])) throw DataError("srmd: time stamp " + std::to_string(i + 1) + " is not finite");
    if (i > 0 && !(t[i] > t[i - 1]))
      throw DataError("srmd: time stamps must increase strictly (row " + std::to_string(i + 1) + ")");
  }
  if (!(opt.r > 0 && opt.r < 1))
    throw ConfigError("srmd: r (relative residual) must lie strictly between 0 and 1, got " + num(opt.r));
  if (!(opt.w > 0) || !std::isfinite(opt.w)) throw ConfigError("srmd: the window width w must be positive");
  if (opt.eps && !(*opt.eps > 0 && std::isfinite(*opt.eps)))
    throw ConfigError("srmd: eps (DBSCAN radius) must be positive, got " + num(*opt.eps));
  if (opt.min_samples < 1)
    throw ConfigError("srmd: min_samples must be at least 1, got " + std::to_string(opt.min_samples));
  if (opt.max_frq && !(*opt.max_frq > 0 && std::isfinite(*opt.max_frq)))
    throw ConfigError("srmd: max_frq must be positive");
  if (opt.frq_scale && !(*opt.frq_scale > 0 && std::isfinite(*opt.frq_scale)))
    throw ConfigError("srmd: frq_scale must be positive");
  if (opt.threshold && !(*opt.threshold >= 0 && *opt.threshold <= 1))
    throw ConfigError("srmd: threshold is a quantile and must lie in [0, 1]");
  if (opt.n_modes < 0) throw ConfigError("srmd: n_modes must be positive (or 0 for no limit)");
  if (opt.cutoff && !std::isfinite(*opt.cutoff)) throw ConfigError("srmd: cutoff must be a finite frequency");
  SrmdPlan p;
  p.m = m;
  p.t0 = t.front();
  p.L = t.back() - t.front();
  p.n_features = opt.n_features ? opt.n_features : 10 * m;
  p.max_frq = opt.max_frq ? *opt.max_frq : 0.5 * static_cast<double>(m + 1) / p.L;
  p.w = opt.w;
  p.r = opt.r;
  p.eps = opt.eps ? *opt.eps : 0.2 * p.L;
  p.frq_scale = opt.frq_scale ? *opt.frq_scale : p.L / p.max_frq;
  return p;
}

void assemble_modes(std::span<const double> t, const SrmdPlan& plan, const SrmdOptions& opt, SrmdResult& res) {
  const std::size_t n = res.weight.size(), m = t.size();
  std::vector<int> labels(n, -1);
  if (opt.cutoff) {
    // Two groups instead of clustering: at or above the cutoff, and below it.
    for (std::size_t j = 0; j < n; ++j) labels[j] = res.frq[j] < *opt.cutoff ? 1 : 0;
  } else {
    std::vector<double> fy(n);
    for (std::size_t j = 0; j < n; ++j) fy[j] = res.frq[j] * plan.frq_scale;
    labels = dbscan(res.tau, fy, plan.eps, opt.min_samples).labels;
  }
  // Compact label ids (the cutoff may leave one group empty).
  std::map<int, std::size_t> ids;
  for (int l : labels)
    if (l >= 0) ids.emplace(l, 0);
  std::size_t K = 0;
  for (auto& [l, id] : ids) id = K++;
  if (K == 0)
    throw DataError("srmd: all " + std::to_string(n) +
                    " kept features were labelled noise by DBSCAN; increase eps or lower min_samples");
  std::vector<double> modes(m * K, 0.0);
  for (std::size_t j = 0; j < n; ++j) {
    if (labels[j] < 0) continue;
    double* col = modes.data() + ids[labels[j]] * m;
    const double half = 3 * (plan.w / 2);
    auto a = std::lower_bound(t.begin(), t.end(), res.tau[j] - half) - t.begin();
    auto b = std::upper_bound(t.begin(), t.end(), res.tau[j] + half) - t.begin();
    a = a > 0 ? a - 1 : 0;
    b = std::min<std::ptrdiff_t>(static_cast<std::ptrdiff_t>(m), b + 1);
    for (auto i = a; i < b; ++i) {
      const auto ii = static_cast<std::size_t>(i);
      col[ii] += res.weight[j] * feature_value(t[ii], res.tau[j], res.frq[j], res.phs[j], plan.w);
    }
  }
  std::vector<double> norms(K);
  for (std::size_t k = 0; k < K; ++k) {
    double s = 0;
    for (std::size_t i = 0; i < m; ++i) s += modes[k * m + i] * modes[k * m + i];
    norms[k] = std::sqrt(s);
  }
  std::vector<std::size_t> order(K);
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return norms[a] > norms[b]; });
  std::vector<std::size_t> rank(K);
  for (std::size_t k = 0; k < K; ++k) rank[order[k]] = k;
  const std::size_t keep =
      (opt.n_modes > 0 && K > static_cast<std::size_t>(opt.n_modes)) ? static_cast<std::size_t>(opt.n_modes) : K;
  res.m = m;
  res.n_modes = keep;
  res.modes.assign(m * keep, 0.0);
  for (std::size_t k = 0; k < K; ++k) {
    const std::size_t dst = std::min(k, keep - 1);
    const double* src = modes.data() + order[k] * m;
    for (std::size_t i = 0; i < m; ++i) res.modes[dst * m + i] += src[i];
  }
  res.label.assign(n, -1);
  for (std::size_t j = 0; j < n; ++j)
    if (labels[j] >= 0) res.label[j] = static_cast<int>(std::min(rank[ids[labels[j]]], keep - 1));
}

SrmdResult srmd(std::span<const double> t, std::span<const double> y, const SrmdOptions& opt,
                const Reduction& reduction) {
  const SrmdPlan plan = plan_srmd(t, y, opt);
  double ynorm = 0;
  for (double v : y) ynorm += v * v;
  ynorm = std::sqrt(ynorm);
  if (ynorm == 0) throw DataError("srmd: the signal is zero everywhere; there is nothing to decompose");
  const std::size_t N = plan.n_features;
  const int P = reduction.parts(), p = reduction.part();
  const std::size_t begin = block_first(N, P, p), end = block_first(N, P, p + 1);
  const FeatureParams local = draw_features(opt.seed, N, begin, end, plan.t0, plan.L, plan.max_frq);
  const FeatureDictionary dict(t, local, plan.w, begin, N, reduction);

  SrmdResult res;
  res.plan = plan;
  res.sigma = plan.r * ynorm;
  Spgl1Result sol = spg_bpdn(dict, y, res.sigma, opt.spgl1);
  res.status = sol.status;
  res.iterations = sol.iterations;
  res.rnorm = sol.rnorm;
  res.tau_l1 = sol.tau;

  std::vector<double> nz;
  for (double v : sol.x)
    if (v != 0) nz.push_back(std::abs(v));
  res.nonzeros = nz.size();
  if (nz.empty())
    throw DataError("srmd: no feature received a nonzero weight (SPGL1: " + std::string(to_string(sol.status)) +
                    "); try a smaller r, more features or a wider window w");
  double gate = 0;
  if (opt.threshold && *opt.threshold > 0) {
    // Quantile with linear interpolation between order statistics.
    std::sort(nz.begin(), nz.end());
    const double pos = *opt.threshold * static_cast<double>(nz.size() - 1);
    const std::size_t lo = static_cast<std::size_t>(std::floor(pos));
    const std::size_t hi = std::min(lo + 1, nz.size() - 1);
    gate = nz[lo] + (pos - static_cast<double>(lo)) * (nz[hi] - nz[lo]);
  }
  for (std::size_t j = 0; j < N; ++j) {
    const double a = sol.x[j];
    if (a == 0 || std::abs(a) < gate) continue;
    const FeatureParams f = draw_features(opt.seed, N, j, j + 1, plan.t0, plan.L, plan.max_frq);
    res.index.push_back(j);
    res.tau.push_back(f.tau[0]);
    res.frq.push_back(f.frq[0]);
    res.phs.push_back(f.phs[0]);
    res.weight.push_back(a);
  }
  assemble_modes(t, plan, opt, res);
  return res;
}

} // namespace unmix::srmd
