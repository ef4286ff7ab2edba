#pragma once
// DBSCAN with scikit-learn's semantics, on points in the plane, with a grid index (cells of side eps):
// the neighbourhood of a point is every point at distance <= eps, itself included; a point is core when
// its neighbourhood has >= min_samples points; clusters are grown from the core points in index order
// and numbered in that order; a border point reachable from two clusters joins the first one grown;
// points reached by no cluster are noise (-1).
#include <cstddef>
#include <span>
#include <vector>

namespace unmix::srmd {

struct DbscanResult {
  std::vector<int> labels; // cluster index from 0, or -1 for noise
  std::vector<char> core;  // 1 for core points
  int clusters = 0;
};

/// x and y are the two coordinates of each point. Throws ConfigError for eps <= 0 or min_samples < 1.
DbscanResult dbscan(std::span<const double> x, std::span<const double> y, double eps, int min_samples);

} // namespace unmix::srmd
