#include "unmix/srmd/dbscan.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <string>

#include "unmix/core/error.hpp"

namespace unmix::srmd {

namespace {

/// Points bucketed in square cells slightly wider than eps, sorted by cell: every neighbour of a point
/// lies in its own cell or one of the eight around it.
class Grid {
public:
  Grid(std::span<const double> x, std::span<const double> y, double eps) : x_(x), y_(y), eps2_(eps * eps) {
    const std::size_t n = x.size();
    const double side = eps * (1 + 1e-9);
    const double x0 = *std::min_element(x.begin(), x.end()), y0 = *std::min_element(y.begin(), y.end());
    cx_.resize(n);
    cy_.resize(n);
    for (std::size_t i = 0; i < n; ++i) {
      cx_[i] = static_cast<std::int64_t>(std::floor((x[i] - x0) / side));
      cy_[i] = static_cast<std::int64_t>(std::floor((y[i] - y0) / side));
    }
    order_.resize(n);
    std::iota(order_.begin(), order_.end(), std::size_t{0});
    std::sort(order_.begin(), order_.end(), [&](std::size_t a, std::size_t b) {
      return cx_[a] != cx_[b] ? cx_[a] < cx_[b] : (cy_[a] != cy_[b] ? cy_[a] < cy_[b] : a < b);
    });
  }

  /// Calls f(j) for every j with |p_i - p_j| <= eps (i itself included).
  template <class F> void neighbours(std::size_t i, F&& f) const {
    for (std::int64_t dx = -1; dx <= 1; ++dx)
      for (std::int64_t dy = -1; dy <= 1; ++dy) {
        const std::int64_t kx = cx_[i] + dx, ky = cy_[i] + dy;
        auto lo = std::lower_bound(order_.begin(), order_.end(), 0,
                                   [&](std::size_t a, int) { return cx_[a] != kx ? cx_[a] < kx : cy_[a] < ky; });
        for (auto it = lo; it != order_.end() && cx_[*it] == kx && cy_[*it] == ky; ++it) {
          const std::size_t j = *it;
          const double ddx = x_[i] - x_[j], ddy = y_[i] - y_[j];
          if (ddx * ddx + ddy * ddy <= eps2_) f(j);
        }
      }
  }

private:
  std::span<const double> x_, y_;
  double eps2_;
  std::vector<std::int64_t> cx_, cy_;
  std::vector<std::size_t> order_;
};

} // namespace

DbscanResult dbscan(std::span<const double> x, std::span<const double> y, double eps, int min_samples) {
  if (!(eps > 0) || !std::isfinite(eps))
    throw ConfigError("DBSCAN: eps must be a positive number (got " + std::to_string(eps) + ")");
  if (min_samples < 1)
    throw ConfigError("DBSCAN: min_samples must be at least 1 (got " + std::to_string(min_samples) + ")");
  if (x.size() != y.size()) throw DataError("DBSCAN: the two coordinate arrays differ in length");
  const std::size_t n = x.size();
  for (std::size_t i = 0; i < n; ++i)
    if (!std::isfinite(x[i]) || !std::isfinite(y[i]))
      throw DataError("DBSCAN: point " + std::to_string(i) + " has a non-finite coordinate");
  DbscanResult res;
  res.labels.assign(n, -1);
  res.core.assign(n, 0);
  if (n == 0) return res;
  const Grid grid(x, y, eps);
  for (std::size_t i = 0; i < n; ++i) {
    std::size_t count = 0;
    grid.neighbours(i, [&](std::size_t) { ++count; });
    res.core[i] = count >= static_cast<std::size_t>(min_samples) ? 1 : 0;
  }
  int label = 0;
  std::vector<std::size_t> stack;
  for (std::size_t i = 0; i < n; ++i) {
    if (res.labels[i] != -1 || !res.core[i]) continue;
    // Depth-first growth from core point i; border points are labelled but not expanded.
    std::size_t k = i;
    while (true) {
      if (res.labels[k] == -1) {
        res.labels[k] = label;
        if (res.core[k])
          grid.neighbours(k, [&](std::size_t j) {
            if (res.labels[j] == -1) stack.push_back(j);
          });
      }
      if (stack.empty()) break;
      k = stack.back();
      stack.pop_back();
    }
    ++label;
  }
  res.clusters = label;
  return res;
}

} // namespace unmix::srmd
