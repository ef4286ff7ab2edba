// Grid maps of the multiscale solver on small exact arrays.
#include <catch2/catch.hpp>

#include "unmix/core/error.hpp"
#include "unmix/multiscale/multiscale.hpp"

using namespace unmix;

TEST_CASE("coarse sizes and taps: 2^k+1 grids keep every 2^l-th point exactly", "[multiscale]") {
  CHECK(coarse_size(65, 1) == 33);
  CHECK(coarse_size(65, 3) == 9);
  CHECK(coarse_size(1025, 2) == 257);
  CHECK(coarse_size(10, 1) == 6); // ceil(9 / 2) + 1
  const auto t = resample_taps(9, 5);
  for (std::size_t c = 0; c < 5; ++c) {
    CHECK(t[c].i0 == 2 * c);
    CHECK(t[c].w == 0.0);
  }
  const auto u = resample_taps(3, 5); // fine from coarse: midpoints between coarse points
  CHECK(u[1].i0 == 0);
  CHECK(u[1].w == 0.5);
  CHECK(u[4].i0 == 2);
  CHECK(u[4].w == 0.0);
}

TEST_CASE("coarsen and interpolate reproduce small exact arrays", "[multiscale]") {
  // 1-D: every second point of 0..8; and back by piecewise linear interpolation.
  Tensor<double> x({9}), y({3});
  for (std::size_t i = 0; i < 9; ++i) x[i] = static_cast<double>(i * i);
  const auto c = resample(x, {0}, {5});
  CHECK(c.vec() == std::vector<double>{0, 4, 16, 36, 64});
  y.vec() = {0, 2, 4};
  CHECK(resample(y, {0}, {5}).vec() == std::vector<double>{0, 1, 2, 3, 4});
  y.vec() = {1, 3, 2};
  CHECK(resample(y, {0}, {5}).vec() == std::vector<double>{1, 2, 3, 2.5, 2});
  // A size that is not 2^k + 1 (6 -> 4): a linear function is reproduced exactly at positions 0, 5/3, 10/3, 5.
  Tensor<double> z({6});
  for (std::size_t i = 0; i < 6; ++i) z[i] = 3.0 * static_cast<double>(i) + 1.0;
  const auto zc = resample(z, {0}, {4});
  const double want[] = {1.0, 6.0, 11.0, 16.0};
  for (std::size_t i = 0; i < 4; ++i) CHECK(zc[i] == Approx(want[i]).epsilon(1e-15));
  // 2-D, one mode only: the 2 x 5 array of columns 1 3 5 7 9 / 2 4 6 8 10 coarsened along mode 1.
  Tensor<double> m({2, 5});
  for (std::size_t i = 0; i < 10; ++i) m[i] = static_cast<double>(i + 1);
  CHECK(resample(m, {1}, {2, 3}).vec() == std::vector<double>{1, 2, 5, 6, 9, 10});
  // ... and interpolated along mode 1 from 3 to 5 columns: the averages of neighbours appear between.
  Tensor<double> n({2, 3}, std::vector<double>{1, 2, 3, 4, 5, 6});
  CHECK(resample(n, {1}, {2, 5}).vec() == std::vector<double>{1, 2, 2, 3, 3, 4, 4, 5, 5, 6});
  // Two modes at once on a 3 x 3 grid of i + 10 j: coarse corners.
  Tensor<double> g({3, 3});
  for (std::size_t j = 0; j < 3; ++j)
    for (std::size_t i = 0; i < 3; ++i) g(i, j) = static_cast<double>(i) + 10.0 * static_cast<double>(j);
  CHECK(resample(g, {0, 1}, {2, 2}).vec() == std::vector<double>{0, 2, 20, 22});
}

TEST_CASE("levels: the mixture mode and tiny axes are refused", "[multiscale]") {
  MultiscaleOptions o;
  o.modes = {1, 2};
  CHECK(multiscale_levels({5, 65, 65}, o) == 4); // 65 -> 33 -> 17 -> 9 -> 5
  o.min_size = 9;
  CHECK(multiscale_levels({5, 65, 33}, o) == 2);
  o.levels = 1;
  CHECK(multiscale_levels({5, 65, 65}, o) == 1);
  MultiscaleOptions bad;
  bad.modes = {0};
  CHECK_THROWS_AS(multiscale_levels({5, 65, 65}, bad), ConfigError);
  bad.modes = {3};
  CHECK_THROWS_AS(multiscale_levels({5, 65, 65}, bad), ConfigError);
  bad.modes = {1};
  CHECK_THROWS_AS(multiscale_levels({5, 4, 65}, bad), ConfigError);
}
