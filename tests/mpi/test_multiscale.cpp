// Multiscale solves on a distributed tensor: coarsening equals the serial resampling on every process grid,
// and coarse-to-fine reaches the same final error as a single-scale solve.
#include <catch2/catch.hpp>

#include <chrono>
#include <cmath>
#include <cstdio>

#include "../support/test_support.hpp"
#include "unmix/model/planted.hpp"
#include "unmix/model/tucker1.hpp"
#include "unmix/multiscale/multiscale.hpp"

using namespace unmix;

namespace {

/// Y[i, x, y, z] = sum_r A[i, r] exp(-|p - c_r|^2 / (2 s^2)) on the unit cube: smooth sources, as a density
/// grid gives them.
DistTensor<double> smooth_planted(const Comm& comm, const Shape& shape, std::size_t R) {
  const ProcessGrid grid = ProcessGrid::default_for(shape, comm.size());
  DistTensor<double> Y(comm, BlockLayout(shape, grid));
  const Shape& off = Y.offset();
  const Shape& box = Y.local().shape();
  const double centres[4][3] = {{0.3, 0.3, 0.6}, {0.7, 0.4, 0.3}, {0.5, 0.75, 0.5}, {0.2, 0.8, 0.2}};
  auto coord = [&](std::size_t m, std::size_t i) { return static_cast<double>(i) / static_cast<double>(shape[m] - 1); };
  std::size_t lin = 0;
  for (std::size_t l = 0; l < box[3]; ++l)
    for (std::size_t k = 0; k < box[2]; ++k)
      for (std::size_t j = 0; j < box[1]; ++j)
        for (std::size_t i = 0; i < box[0]; ++i, ++lin) {
          const double x = coord(1, off[1] + j), y = coord(2, off[2] + k), z = coord(3, off[3] + l);
          double v = 0;
          for (std::size_t r = 0; r < R; ++r) {
            const double d2 =
                std::pow(x - centres[r][0], 2) + std::pow(y - centres[r][1], 2) + std::pow(z - centres[r][2], 2);
            const double a = 0.2 + static_cast<double>((7 * (off[0] + i) + 3 * r) % 5) / 5.0;
            v += a * std::exp(-d2 / (2 * 0.15 * 0.15));
          }
          Y.local()[lin] = v;
        }
  return Y;
}

} // namespace

TEST_CASE("distributed coarsening equals the serial resampling on every grid", "[multiscale]") {
  const Comm& comm = test::comm();
  Comm self = Comm::self();
  const Shape shape{3, 9, 6, 5};
  const std::vector<std::size_t> modes{1, 2};
  const Shape coarse{3, 5, 4, 5};
  auto serial = make_planted<double>(self, shape, 2, 0.0, 3);
  Tensor<double> whole(shape);
  for (std::size_t i = 0; i < whole.size(); ++i) whole[i] = serial.Y.local()[i];
  const Tensor<double> ref = resample(whole, modes, coarse);
  for (const auto& dims : test::all_grids(comm.size(), shape.size())) {
    INFO("grid " << ProcessGrid(dims).to_string());
    auto dist = make_planted<double>(comm, shape, 2, 0.0, 3, ProcessGrid(dims));
    DistTensor<double> Yc = coarsen(dist.Y, modes, coarse);
    REQUIRE(Yc.global_shape() == coarse);
    const Shape& off = Yc.offset();
    const Shape& box = Yc.local().shape();
    double worst = 0;
    std::size_t lin = 0;
    for (std::size_t l = 0; l < box[3]; ++l)
      for (std::size_t k = 0; k < box[2]; ++k)
        for (std::size_t j = 0; j < box[1]; ++j)
          for (std::size_t i = 0; i < box[0]; ++i, ++lin) {
            const Shape g{off[0] + i, off[1] + j, off[2] + k, off[3] + l};
            worst = std::max(worst, std::abs(Yc.local()[lin] - ref[ref.linear(g)]));
          }
    CHECK(worst <= 1e-15);
  }
}

TEST_CASE("multiscale reaches the single-scale final error on a smooth planted 5x33x33x33 problem", "[multiscale]") {
  const Comm& comm = test::comm();
  const Shape shape{5, 33, 33, 33};
  const std::size_t R = 3;
  DistTensor<double> Y = smooth_planted(comm, shape, R);
  const ConstraintList consA = parse_constraints("nonnegative"), consB = parse_constraints("nonnegative");
  SolverOptions opts;
  opts.maxiter = 3000;
  opts.tol = {{Stat::rel_error, 1e-3}};
  opts.seed = 5;
  using Clock = std::chrono::steady_clock;

  Tucker1<double> model(Y, R);
  Factors fs;
  init_random(model, fs, opts.seed, true, consA, consB);
  auto t0 = Clock::now();
  SolveResult single = solve(model, fs, consA, consB, opts);
  const double t_single = comm.allreduce(std::chrono::duration<double>(Clock::now() - t0).count(), Op::max);

  MultiscaleOptions ms;
  ms.modes = {1, 2, 3};
  Factors fm;
  t0 = Clock::now();
  MultiscaleResult multi = solve_multiscale(Y, R, fm, consA, consB, opts, true, ms);
  const double t_multi = comm.allreduce(std::chrono::duration<double>(Clock::now() - t0).count(), Op::max);

  const double e_single = single.stats.back().rel_error, e_multi = multi.result.stats.back().rel_error;
  if (comm.rank() == 0) {
    std::printf("5x33x33x33 rank 3 on %d process(es): single %zu iterations %.3f s, e = %.6g; multiscale %.3f s, "
                "e = %.6g, levels:",
                comm.size(), single.iterations, t_single, e_single, t_multi, e_multi);
    for (std::size_t l = 0; l < multi.shapes.size(); ++l)
      std::printf(" %s: %zu it %.3f s;", shape_string(multi.shapes[l]).c_str(), multi.iterations[l], multi.seconds[l]);
    std::printf("\n");
  }
  CHECK(single.converged);
  CHECK(multi.result.converged);
  // Both stop at the first iterate at or below the tolerance; the multiscale one is no more than 1 % worse.
  CHECK(e_single <= 1e-3);
  CHECK(e_multi <= 1e-3);
  CHECK(e_multi <= 1.01 * e_single);
  // The factors returned live on the data's own grid and reproduce its error.
  CHECK(fm.B.shape() == model.b_local_shape());
  // Every row records its level; the last level is the data's grid (scale 0), the first the coarsest.
  CHECK(multi.result.stats.front().scale == static_cast<double>(multi.shapes.size() - 1));
  CHECK(multi.result.stats.back().scale == 0.0);
  CHECK(multi.shapes.back() == shape);
}

// Timing only (hidden; run by hand with "[.multiscale_timing]"): the 5x65x65x65 problem of the reference.
TEST_CASE("multiscale timing on a smooth planted 5x65x65x65 problem", "[.multiscale_timing]") {
  const Comm& comm = test::comm();
  const Shape shape{5, 65, 65, 65};
  const std::size_t R = 3;
  DistTensor<double> Y = smooth_planted(comm, shape, R);
  const ConstraintList consA = parse_constraints("nonnegative"), consB = parse_constraints("nonnegative");
  SolverOptions opts;
  opts.maxiter = 5000;
  opts.tol = {{Stat::rel_error, 1e-3}};
  opts.seed = 5;
  using Clock = std::chrono::steady_clock;
  Tucker1<double> model(Y, R);
  Factors fs;
  auto t0 = Clock::now();
  init_random(model, fs, opts.seed, true, consA, consB);
  SolveResult single = solve(model, fs, consA, consB, opts);
  const double t_single = comm.allreduce(std::chrono::duration<double>(Clock::now() - t0).count(), Op::max);
  MultiscaleOptions ms;
  ms.modes = {1, 2, 3};
  Factors fm;
  t0 = Clock::now();
  MultiscaleResult multi = solve_multiscale(Y, R, fm, consA, consB, opts, true, ms);
  const double t_multi = comm.allreduce(std::chrono::duration<double>(Clock::now() - t0).count(), Op::max);
  const double e_single = single.stats.back().rel_error, e_multi = multi.result.stats.back().rel_error;
  if (comm.rank() == 0) {
    std::printf("5x65x65x65 rank 3 on %d process(es): single %zu iterations %.3f s, e = %.6g; multiscale %.3f s, "
                "e = %.6g (%.2fx), levels:",
                comm.size(), single.iterations, t_single, e_single, t_multi, e_multi, t_single / t_multi);
    for (std::size_t l = 0; l < multi.shapes.size(); ++l)
      std::printf(" %s: %zu it %.3f s;", shape_string(multi.shapes[l]).c_str(), multi.iterations[l], multi.seconds[l]);
    std::printf("\n");
  }
  CHECK(e_multi <= 1.01 * e_single);
}
