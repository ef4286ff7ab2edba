#pragma once
// Curvature of a sampled error curve e(1..n), used to pick a rank (ALGORITHMS.md section 7). MPI-free.
//
// Every method sees the n samples as y(x_i) at x_i = i / n, i = 1..n, with the curve assumed to pass
// through (0, 1) (rank 0: nothing explained) and to be 0 one step after the last sample; y is divided by
// y_max = max(1, max y) so the curve lives in the unit box ("standard curvature").
//   finite_differences  y' = n (y(i+1) - y(i-1)) / (2 y_max), y'' = n^2 (y(i-1) - 2 y(i) + y(i+1)) / y_max
//                       on the padded samples, k = y'' / (1 + y'^2)^(3/2)
//   splines             the same formula with y', y'' of the interpolating cubic spline (not-a-knot ends)
//                       through the padded, scaled samples
//   circles             signed inverse radius of the circle through three neighbouring (padded, scaled)
//                       samples; positive where the curve is convex (the middle point below the chord)
//   breakpoints         not a curvature: 1 / (squared error of the best two-line fit broken at x_i);
//                       the argmax is the best breakpoint
//   kneedle             not a curvature: the Kneedle difference curve (Satopaa et al. 2011) of the
//                       normalized decreasing convex curve, (1 - y_norm) - x_norm; the argmax is the knee
#include <cstddef>
#include <span>
#include <string>
#include <vector>

namespace unmix {

enum class CurvatureMethod { finite_differences, splines, circles, breakpoints, kneedle };

/// "finite-differences" (or finite_differences), "splines", "circles", "breakpoints", "kneedle".
CurvatureMethod parse_curvature_method(const std::string& name);
std::string curvature_method_name(CurvatureMethod m);

/// One value per sample (n >= 1; breakpoints and kneedle need n >= 2 for a meaningful answer).
std::vector<double> standard_curvature(std::span<const double> y, CurvatureMethod method);

/// Index (0-based) of the largest value; the first one in a tie; NaNs are skipped.
std::size_t argmax_index(std::span<const double> k);

/// Least-squares fit of f(x) = a + b (min(x, z) - z) + c (max(x, z) - z) to the points (xs, ys): two lines
/// meeting at x = z. Returns {a, b, c}.
std::vector<double> breakpoint_coefficients(std::span<const double> xs, std::span<const double> ys, double z);

/// Signed inverse radius of the circle through three points with x0 < x1 < x2: positive when (x1, y1)
/// lies below the chord of the outer two, 0 for collinear points.
double signed_circle_curvature(double x0, double y0, double x1, double y1, double x2, double y2);

} // namespace unmix
