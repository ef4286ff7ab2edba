#pragma once
// SRMD accuracy: the relative L2 error of each true mode under the assignment of distinct recovered
// modes that minimizes the sum (a true mode may stay unassigned and is then compared with zero: error 1).
// Header-only, for the tests and the benchmarks.
#include <cmath>
#include <vector>

#include "unmix/srmd/srmd.hpp"

namespace unmix::test {

inline std::vector<double> matched_mode_errors(const std::vector<std::vector<double>>& truth,
                                               const srmd::SrmdResult& r) {
  const std::size_t K = truth.size(), M = r.n_modes, m = r.m;
  // err[k][j]: true mode k against recovered mode j (j == M: against zero).
  std::vector<std::vector<double>> err(K, std::vector<double>(M + 1, 1.0));
  for (std::size_t k = 0; k < K; ++k) {
    double den = 0;
    for (double v : truth[k]) den += v * v;
    for (std::size_t j = 0; j < M; ++j) {
      double num = 0;
      for (std::size_t i = 0; i < m; ++i) num += (r.mode(j)[i] - truth[k][i]) * (r.mode(j)[i] - truth[k][i]);
      err[k][j] = std::sqrt(num / den);
    }
  }
  std::vector<double> best(K, 1.0), cur(K);
  double best_sum = INFINITY;
  std::vector<char> used(M, 0);
  auto search = [&](auto&& self, std::size_t k, double sum) -> void {
    if (k == K) {
      if (sum < best_sum) {
        best_sum = sum;
        best = cur;
      }
      return;
    }
    for (std::size_t j = 0; j <= M; ++j) {
      if (j < M && used[j]) continue;
      if (j < M) used[j] = 1;
      cur[k] = err[k][j];
      self(self, k + 1, sum + cur[k]);
      if (j < M) used[j] = 0;
    }
  };
  search(search, 0, 0.0);
  return best;
}

} // namespace unmix::test
