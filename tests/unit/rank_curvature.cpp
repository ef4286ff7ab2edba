// Curvature methods of the rank estimate against closed forms.
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>

#include "unmix/core/error.hpp"
#include "unmix/rank/curvature.hpp"
#include "unmix/rank/sweep.hpp"

using namespace unmix;

namespace {

/// Mean absolute percentage error; where the true value is (nearly) 0 the error is taken relative to the
/// smallest true value that is not.
double mape(const std::vector<double>& est, const std::vector<double>& truth) {
  double floor = std::numeric_limits<double>::infinity();
  for (double t : truth)
    if (std::abs(t) >= 1e-8) floor = std::min(floor, std::abs(t));
  double s = 0;
  for (std::size_t i = 0; i < est.size(); ++i) {
    const double d = std::abs(truth[i]) >= 1e-8 ? std::abs(truth[i]) : floor;
    s += std::abs(est[i] - truth[i]) / d;
  }
  return s / static_cast<double>(est.size());
}

} // namespace

TEST_CASE("standard curvature of (x-1)^4 at 19 points is within 3 % of the exact curvature", "[rank_curvature]") {
  // f(0) = 1 and f(1) = 0, as the padding assumes; samples at x = i/19, i = 1..19.
  const std::size_t n = 19;
  std::vector<double> y(n), k(n);
  for (std::size_t i = 0; i < n; ++i) {
    const double x = static_cast<double>(i + 1) / static_cast<double>(n);
    y[i] = std::pow(x - 1, 4);
    const double d1 = 4 * std::pow(x - 1, 3), d2 = 12 * std::pow(x - 1, 2);
    k[i] = d2 / std::pow(1 + d1 * d1, 1.5);
  }
  const double e_fd = mape(standard_curvature(y, CurvatureMethod::finite_differences), k);
  const double e_sp = mape(standard_curvature(y, CurvatureMethod::splines), k);
  const double e_ci = mape(standard_curvature(y, CurvatureMethod::circles), k);
  INFO("MAPE finite differences " << e_fd << ", splines " << e_sp << ", circles " << e_ci);
  CHECK(e_fd < 0.03);
  CHECK(e_sp < 0.03);
  CHECK(e_ci < 0.03);
  // The exact curvature peaks at the same sample as every estimate.
  const std::size_t peak = argmax_index(k);
  CHECK(argmax_index(standard_curvature(y, CurvatureMethod::finite_differences)) == peak);
  CHECK(argmax_index(standard_curvature(y, CurvatureMethod::splines)) == peak);
  CHECK(argmax_index(standard_curvature(y, CurvatureMethod::circles)) == peak);
}

TEST_CASE("finite differences follow the padded formula exactly", "[rank_curvature]") {
  const std::vector<double> y{0.5, 0.2, 0.1};
  const auto k = standard_curvature(y, CurvatureMethod::finite_differences);
  // Padded: 1, 0.5, 0.2, 0.1, 0 with n = 3 and y_max = 1.
  const double p[] = {1, 0.5, 0.2, 0.1, 0};
  for (int i = 1; i <= 3; ++i) {
    const double d1 = 3 * (p[i + 1] - p[i - 1]) / 2, d2 = 9 * (p[i - 1] - 2 * p[i] + p[i + 1]);
    CHECK(k[static_cast<std::size_t>(i - 1)] == Approx(d2 / std::pow(1 + d1 * d1, 1.5)).epsilon(1e-14));
  }
  // y_max > 1 scales the curve into the unit box.
  const auto k2 = standard_curvature(std::vector<double>{4.0, 2.0, 1.0}, CurvatureMethod::finite_differences);
  const auto k1 = standard_curvature(std::vector<double>{1.0, 0.5, 0.25}, CurvatureMethod::finite_differences);
  // Same shape except the left pad (1 vs 1/4 after scaling): the last sample does not see the pad.
  CHECK(k2[2] == Approx(k1[2]).epsilon(1e-14));
}

TEST_CASE("circle curvature: radius of known circles, sign by convexity", "[rank_curvature]") {
  // The circle through (1,2), (2,1), (5,2) has radius sqrt(5) (centre (3,3)); the middle point is below the chord.
  CHECK(signed_circle_curvature(1, 2, 2, 1, 5, 2) == Approx(1 / std::sqrt(5.0)).epsilon(1e-14));
  CHECK(signed_circle_curvature(1, -2, 2, -1, 5, -2) == Approx(-1 / std::sqrt(5.0)).epsilon(1e-14));
  CHECK(signed_circle_curvature(0, 0, 1, 1, 2, 2) == 0.0);
}

TEST_CASE("two-line breakpoint fit and its pick", "[rank_curvature]") {
  const std::vector<double> xs{0, 1, 2, 3, 4, 5, 6, 7}, ys{13, 10, 5, 4.5, 4, 3.6, 3, 2.5};
  const auto c = breakpoint_coefficients(xs, ys, 2);
  // Within 1 % of [5.2, -4.1, -0.5] in the Euclidean norm of the coefficient vector.
  const double d = std::hypot(c[0] - 5.2, c[1] + 4.1, c[2] + 0.5), ref = std::hypot(5.2, 4.1, 0.5);
  INFO("a " << c[0] << " b " << c[1] << " c " << c[2]);
  CHECK(d / ref < 0.01);
  // Exactly two lines meeting at the 4th sample: that sample is picked, with (nearly) zero error.
  const std::vector<double> y{1.0, 0.7, 0.4, 0.1, 0.09, 0.08, 0.07, 0.06};
  CHECK(argmax_index(standard_curvature(y, CurvatureMethod::breakpoints)) == 3);
}

TEST_CASE("every method picks the elbow of an error curve", "[rank_curvature]") {
  // A typical relative-error curve of a rank-3 problem: steep to r = 3, flat after.
  const std::vector<double> e{0.55, 0.3, 0.02, 0.018, 0.016, 0.015, 0.014, 0.013};
  for (auto m : {CurvatureMethod::finite_differences, CurvatureMethod::splines, CurvatureMethod::circles,
                 CurvatureMethod::breakpoints, CurvatureMethod::kneedle}) {
    INFO(curvature_method_name(m));
    CHECK(argmax_index(standard_curvature(e, m)) == 2);
  }
  CHECK(parse_curvature_method("finite-differences") == CurvatureMethod::finite_differences);
  CHECK_THROWS_AS(parse_curvature_method("wiggles"), ConfigError);
}

TEST_CASE("candidate rank ranges that cannot be held are refused", "[rank_curvature]") {
  CHECK_THROWS_AS(unmix::parse_rank_list("3:220233330"), unmix::ConfigError);
  CHECK_THROWS_AS(unmix::parse_rank_list("1:9223372036854775807"), unmix::ConfigError);
  CHECK_THROWS_AS(unmix::parse_rank_list("0:4"), unmix::ConfigError);
  CHECK(unmix::parse_rank_list("2:8:3") == std::vector<std::size_t>{2, 5, 8});
}
