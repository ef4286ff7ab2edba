// Grid maps of the multiscale solver on small exact arrays, and the constraint targets of a coarse grid.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>

#include "unmix/constraints/constraints.hpp"
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
  CHECK(c.vec() == AlignedVector<double>{0, 4, 16, 36, 64});
  y.vec() = {0, 2, 4};
  CHECK(resample(y, {0}, {5}).vec() == AlignedVector<double>{0, 1, 2, 3, 4});
  y.vec() = {1, 3, 2};
  CHECK(resample(y, {0}, {5}).vec() == AlignedVector<double>{1, 2, 3, 2.5, 2});
  // A size that is not 2^k + 1 (6 -> 4): a linear function is reproduced exactly at positions 0, 5/3, 10/3, 5.
  Tensor<double> z({6});
  for (std::size_t i = 0; i < 6; ++i) z[i] = 3.0 * static_cast<double>(i) + 1.0;
  const auto zc = resample(z, {0}, {4});
  const double want[] = {1.0, 6.0, 11.0, 16.0};
  for (std::size_t i = 0; i < 4; ++i) CHECK(zc[i] == Approx(want[i]).epsilon(1e-15));
  // 2-D, one mode only: the 2 x 5 array of columns 1 3 5 7 9 / 2 4 6 8 10 coarsened along mode 1.
  Tensor<double> m({2, 5});
  for (std::size_t i = 0; i < 10; ++i) m[i] = static_cast<double>(i + 1);
  CHECK(resample(m, {1}, {2, 3}).vec() == AlignedVector<double>{1, 2, 5, 6, 9, 10});
  // ... and interpolated along mode 1 from 3 to 5 columns: the averages of neighbours appear between.
  Tensor<double> n({2, 3}, std::vector<double>{1, 2, 3, 4, 5, 6});
  CHECK(resample(n, {1}, {2, 5}).vec() == AlignedVector<double>{1, 2, 2, 3, 3, 4, 4, 5, 5, 6});
  // Two modes at once on a 3 x 3 grid of i + 10 j: coarse corners.
  Tensor<double> g({3, 3});
  for (std::size_t j = 0; j < 3; ++j)
    for (std::size_t i = 0; i < 3; ++i) g(i, j) = static_cast<double>(i) + 10.0 * static_cast<double>(j);
  CHECK(resample(g, {0, 1}, {2, 2}).vec() == AlignedVector<double>{0, 2, 20, 22});
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

namespace {

/// A deterministic R x J x K array with entries of both signs.
std::vector<double> mixed_values(const Shape& shape) {
  std::vector<double> x(shape_size(shape));
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = std::sin(0.7 * static_cast<double>(i) + 0.3) + 0.2;
  return x;
}

/// Sums of x over the slices of a slicing (fixed modes' bits in `mask`), in column-major slice order.
std::vector<double> slice_sums(const std::vector<double>& x, const Shape& shape, unsigned mask) {
  std::size_t count = 1;
  for (std::size_t n = 0; n < shape.size(); ++n)
    if ((mask >> n) & 1u) count *= shape[n];
  std::vector<double> sums(count, 0.0);
  Shape idx(shape.size(), 0);
  for (std::size_t lin = 0; lin < x.size(); ++lin) {
    std::size_t s = 0, stride = 1;
    for (std::size_t n = 0; n < shape.size(); ++n)
      if ((mask >> n) & 1u) {
        s += idx[n] * stride;
        stride *= shape[n];
      }
    sums[s] += x[lin];
    for (std::size_t n = 0; n < shape.size(); ++n) {
      if (++idx[n] < shape[n]) break;
      idx[n] = 0;
    }
  }
  return sums;
}

/// Rounding allowed in a projected slice sum: the threshold comes from running sums of up to 25 inputs of
/// order 1, so a few tens of units in the last place of 1 (measured: at most 4.9e-15).
constexpr double kSumTol = 1e-14;

double target_of(const std::string& spec, const Shape& data, const Shape& grid) {
  const ConstraintList l = constraints_for_grid(parse_constraints(spec), data, grid);
  REQUIRE(l.items.size() == 1);
  return l.items[0].target_scale;
}

} // namespace

TEST_CASE("grid targets: projected normalizations scale by the spacing ratios of the coarsened axes they cover",
          "[multiscale]") {
  const Shape data{3, 9, 9};
  // The rule (constraints.hpp): L1 targets times prod (n' - 1) / (n - 1) over the coarsened axes among the
  // slice's free modes; L2 targets the square root of it; L-infinity targets unchanged.
  CHECK(grid_spacing_ratio(9, 5) == 0.5);
  CHECK(grid_spacing_ratio(9, 9) == 1.0);
  CHECK(grid_spacing_ratio(10, 6) == 5.0 / 9.0);
  CHECK(grid_spacing_ratio(1025, 5) == 4.0 / 1024.0);
  CHECK_THROWS_AS(grid_spacing_ratio(1, 5), DataError);
  // 1slices B[r, :, :] cover both grid axes: (4/8) (4/8) when both are coarsened, 4/8 with one.
  CHECK(target_of("simplex_1slices", data, {3, 5, 5}) == 0.25);
  CHECK(target_of("simplex_1slices", data, {3, 5, 9}) == 0.5);
  CHECK(target_of("simplex_1slices", data, {3, 9, 5}) == 0.5);
  CHECK(target_of("simplex", data, {3, 5, 5}) == 0.25); // whole: every mode is free
  CHECK(target_of("l1normalize_rows", data, {3, 5, 5}) == 0.25);
  CHECK(target_of("l2normalize_1slices", data, {3, 5, 5}) == 0.5); // sqrt(1/4)
  CHECK(target_of("linftynormalize_1slices", data, {3, 5, 5}) == 1.0);
  // 12slices B[r, j, :] are fibres along axis 2 only: they see axis 2's ratio and nothing of axis 1's.
  CHECK(target_of("simplex_12slices", data, {3, 5, 5}) == 0.5);
  CHECK(target_of("simplex_12slices", data, {3, 9, 5}) == 0.5);
  CHECK(target_of("simplex_12slices", data, {3, 5, 9}) == 1.0);
  // columns fix every mode but the rank mode, which is never coarsened: unchanged.
  CHECK(target_of("simplex_columns", data, {3, 5, 5}) == 1.0);
  // Scaled normalizations and entrywise constraints are left alone.
  CHECK(target_of("l1scale_1slices", data, {3, 5, 5}) == 1.0);
  CHECK(target_of("l1scale_average12slices", data, {3, 5, 5}) == 1.0);
  CHECK(target_of("nonnegative", data, {3, 5, 5}) == 1.0);
  // A size that is not 2^k + 1: 10 -> 6 points is 5 intervals for 9.
  CHECK(target_of("simplex_12slices", {3, 9, 10}, {3, 9, 6}) == 5.0 / 9.0);
  CHECK_THROWS_AS(constraints_for_grid(parse_constraints("simplex"), {3, 9}, {3, 5, 5}), DataError);
}

TEST_CASE("grid targets: the rescaled list projects to the grid's sums, and level 0 is the user's list bit for bit",
          "[multiscale]") {
  const Shape data{3, 9, 9};
  auto project = [](const ConstraintList& l, const Shape& shape) {
    std::vector<double> x = mixed_values(shape);
    FactorView v = local_view(x, shape);
    apply(l, v);
    return x;
  };
  auto max_dev = [](const std::vector<double>& sums, double want) {
    double d = 0;
    for (double a : sums) d = std::max(d, std::abs(a - want));
    std::printf("  largest deviation of a slice sum from %g: %.3g\n", want, d);
    return d;
  };
  SECTION("simplex on 12slices, both axes coarsened to 5 x 5: fibres along axis 2 sum to 4/8") {
    const ConstraintList user = parse_constraints("simplex_12slices");
    const Shape grid{3, 5, 5};
    const ConstraintList l = constraints_for_grid(user, data, grid);
    const std::vector<double> x = project(l, grid);
    const auto sums = slice_sums(x, grid, 3u);
    REQUIRE(sums.size() == 15);
    CHECK(max_dev(sums, 0.5) <= kSumTol);
    CHECK(*std::min_element(x.begin(), x.end()) >= 0.0);
    std::vector<double> y = x;
    FactorView v = local_view(y, grid);
    CHECK(violation(l, v) <= kSumTol);
    CHECK(violation(user, v) == Approx(0.5)); // the user's target (sum 1) is missed by half on this grid
  }
  SECTION("simplex on 1slices: (4/8) (4/8) with both axes coarsened, 4/8 with one") {
    const ConstraintList user = parse_constraints("simplex_1slices");
    for (const Shape& grid : {Shape{3, 5, 5}, Shape{3, 5, 9}, Shape{3, 9, 5}}) {
      const double want = (grid[1] == 5 ? 0.5 : 1.0) * (grid[2] == 5 ? 0.5 : 1.0);
      const std::vector<double> x = project(constraints_for_grid(user, data, grid), grid);
      const auto sums = slice_sums(x, grid, 1u);
      REQUIRE(sums.size() == 3);
      CHECK(max_dev(sums, want) <= kSumTol);
    }
  }
  SECTION("l1normalize and l2normalize reach their grid targets; columns are unchanged") {
    const Shape grid{3, 5, 5};
    std::vector<double> x = project(constraints_for_grid(parse_constraints("l1normalize_1slices"), data, grid), grid);
    std::vector<double> ax(x.size());
    for (std::size_t i = 0; i < x.size(); ++i) ax[i] = std::abs(x[i]);
    CHECK(max_dev(slice_sums(ax, grid, 1u), 0.25) <= kSumTol);
    x = project(constraints_for_grid(parse_constraints("l2normalize_1slices"), data, grid), grid);
    for (std::size_t i = 0; i < x.size(); ++i) ax[i] = x[i] * x[i];
    CHECK(max_dev(slice_sums(ax, grid, 1u), 0.25) <= kSumTol); // ||x||_2 = 1/2
    const ConstraintList cols = parse_constraints("simplex_columns");
    CHECK(project(constraints_for_grid(cols, data, grid), grid) == project(cols, grid));
  }
  SECTION("level 0 (the data's own grid) gives back the user's targets bit for bit") {
    const ConstraintList user = parse_constraints("simplex_12slices+nonnegative+l2normalize_1slices");
    const ConstraintList same = constraints_for_grid(user, data, data);
    REQUIRE(same.items.size() == user.items.size());
    for (std::size_t i = 0; i < user.items.size(); ++i) {
      CHECK(same.items[i].kind == user.items[i].kind);
      CHECK(same.items[i].slicing == user.items[i].slicing);
      CHECK(std::memcmp(&same.items[i].target_scale, &user.items[i].target_scale, sizeof(double)) == 0);
      CHECK(same.items[i].target_scale == 1.0);
    }
    CHECK(same.name() == user.name());
    const std::vector<double> a = project(same, data), b = project(user, data);
    CHECK(std::memcmp(a.data(), b.data(), a.size() * sizeof(double)) == 0);
    // ... and after going through a coarse grid's list, the data's list is the user's again (no drift).
    const ConstraintList coarse = constraints_for_grid(user, data, {3, 5, 5});
    CHECK(coarse.items[0].target_scale == 0.5);
    const ConstraintList back = constraints_for_grid(user, data, data);
    CHECK(project(back, data) == b);
  }
}
