// The distributed Tucker-1 model and solver against the serial ones, at every process count and on
// several process grids (including grids that split the mixture mode and processes that own nothing).
#include <catch2/catch.hpp>

#include "../support/factor_check.hpp"
#include "../support/test_support.hpp"
#include "unmix/kernels/fused.hpp"
#include "unmix/kernels/tile_products.hpp"
#include "unmix/model/planted.hpp"
#include "unmix/model/tucker1.hpp"
#include "unmix/solver/solver.hpp"

using namespace unmix;

TEST_CASE("distributed products and gradients equal the serial ones on every grid", "[dist]") {
  const Comm& comm = test::comm();
  const Shape shape{5, 4, 3};
  const std::size_t R = 3;
  Comm self = Comm::self();
  auto serial = make_planted<double>(self, shape, 4, 0.1, 77);
  Tucker1<double> ms(serial.Y, R);
  Factors fs;
  init_random(ms, fs, 13, true, {}, {});
  for (const auto& dims : test::all_grids(comm.size(), shape.size())) {
    INFO("grid " << ProcessGrid(dims).to_string());
    auto dist = make_planted<double>(comm, shape, 4, 0.1, 77, ProcessGrid(dims));
    // Same tensor: the local box equals the serial tensor's box.
    const Shape off = dist.Y.offset(), box = dist.Y.local().shape();
    Tucker1<double> md(dist.Y, R);
    Factors fd;
    init_random(md, fd, 13, true, {}, {});
    CHECK(test::rel_diff(fd.A.span(), factor_rows(fs.A, off[0], box[0]).span()) == 0.0);
    CHECK(test::rel_diff(fd.B.span(), test::box_of_sources(fs.B, shape, off, box).span()) == 0.0);
    const auto Gs = ms.gram_A(fs.A), Gd = md.gram_A(fd.A);
    const auto Ps = ms.gram_B(fs.B), Pd = md.gram_B(fd.B);
    CHECK(test::rel_diff(Gd, Gs) < 1e-14);
    CHECK(test::rel_diff(Pd, Ps) < 1e-14);
    const auto AtYs = ms.AtY(fs.A), AtYd = md.AtY(fd.A);
    CHECK(test::rel_diff(AtYd.span(), test::box_of_sources(AtYs, shape, off, box).span()) < 1e-14);
    const auto Qs = ms.YBt(fs.B), Qd = md.YBt(fd.B);
    CHECK(test::rel_diff(Qd.span(), factor_rows(Qs, off[0], box[0]).span()) < 1e-14);
    CHECK(md.normY2() == Approx(ms.normY2()).epsilon(1e-14));
    // The exact residual: rank 3 by the direct sum, rank 5 by the model's tiles.
    CHECK(md.exact_residual2(fd.A, fd.B) == Approx(ms.exact_residual2(fs.A, fs.B)).epsilon(1e-13));
    Tucker1<double> ms5(serial.Y, 5), md5(dist.Y, 5);
    Factors fs5, fd5;
    init_random(ms5, fs5, 14, true, {}, {});
    init_random(md5, fd5, 14, true, {}, {});
    CHECK(md5.exact_residual2(fd5.A, fd5.B) == Approx(ms5.exact_residual2(fs5.A, fs5.B)).epsilon(1e-13));
    // The statistics of the starting point (objective, gradient norms) agree.
    SolverOptions o;
    o.maxiter = 0;
    Factors a = fs, b = fd;
    const auto rs = solve(ms, a, {}, {}, o), rd = solve(md, b, {}, {}, o);
    CHECK(rd.stats[0].objective == Approx(rs.stats[0].objective).epsilon(1e-13));
    CHECK(rd.stats[0].grad_norm == Approx(rs.stats[0].grad_norm).epsilon(1e-13));
  }
}

TEST_CASE("the same seed gives the same iterates at any process count and grid", "[dist]") {
  const Comm& comm = test::comm();
  const Shape shape{6, 7, 5};
  const std::size_t R = 3;
  Comm self = Comm::self();
  for (const char* cB : {"nonnegative", "l1scale_average12slices+nonnegative", "simplex_1slices"}) {
    const auto consA = parse_constraints("nonnegative"), consB = parse_constraints(cB);
    auto serial = make_planted<double>(self, shape, R, 0.01, 5);
    Tucker1<double> ms(serial.Y, R);
    Factors fs;
    init_random(ms, fs, 3, true, consA, consB);
    SolverOptions o;
    o.maxiter = 60;
    o.tol.clear();
    auto rs = solve(ms, fs, consA, consB, o);
    for (const auto& dims : test::all_grids(comm.size(), shape.size())) {
      INFO("B constraint " << cB << ", grid " << ProcessGrid(dims).to_string());
      auto dist = make_planted<double>(comm, shape, R, 0.01, 5, ProcessGrid(dims));
      Tucker1<double> md(dist.Y, R);
      Factors fd;
      init_random(md, fd, 3, true, consA, consB);
      auto rd = solve(md, fd, consA, consB, o);
      const Shape off = dist.Y.offset(), box = dist.Y.local().shape();
      CHECK(rd.iterations == rs.iterations);
      CHECK(test::rel_diff(fd.A.span(), factor_rows(fs.A, off[0], box[0]).span()) < 1e-10);
      CHECK(test::rel_diff(fd.B.span(), test::box_of_sources(fs.B, shape, off, box).span()) < 1e-10);
      CHECK(rd.stats.back().rel_error == Approx(rs.stats.back().rel_error).epsilon(1e-10));
    }
  }
}

TEST_CASE("planted noise-free factors are recovered up to permutation and scaling", "[dist]") {
  const Comm& comm = test::comm();
  for (std::size_t R : {3u, 5u}) {
    const Shape shape{12, 10, 9};
    auto pl = make_planted<double>(comm, shape, R, 0.0, 100 + R, std::nullopt, true);
    Tucker1<double> m(pl.Y, R);
    const auto nn = parse_constraints("nonnegative");
    Factors f;
    init_random(m, f, 7, true, nn, nn);
    SolverOptions o;
    o.tol = {{Stat::rel_error, 1e-10}};
    o.maxiter = 50000;
    auto res = solve(m, f, nn, nn, o);
    INFO("rank " << R << ": " << res.stop_reason << " after " << res.iterations);
    CHECK(res.converged);
    CHECK(res.stats.back().rel_error < 1e-6);
    // Gather the whole A (it is whole on every process with the default grid) and compare columns.
    const std::vector<double> Aest(f.A.span().begin(), f.A.span().end()), Atrue(pl.A.span().begin(), pl.A.span().end());
    CHECK(test::matched_column_error(Aest, Atrue, shape[0], R) < 1e-6);
  }
}

TEST_CASE("the processes measure the pass's read-ahead together and keep one choice", "[dist]") {
  // 96 x 40 x 30 with 64 KiB tiles (85 columns), the other modes split: every process runs the single pass.
  const Comm& comm = test::comm();
  auto pl = make_planted<double>(comm, {96, 40, 30}, 5, 0.02, 3);
  Tucker1<double> m(pl.Y, 5);
  REQUIRE_FALSE(m.mixture_split());
  const auto nn = parse_constraints("nonnegative");
  REQUIRE(fused_tile_kib(64));
  auto run = [&](bool tune) {
    fused_read_ahead_tuning(tune);
    Tucker1<double> fresh(pl.Y, 5); // a new model measures again
    Factors f;
    init_random(fresh, f, 2, true, nn, nn);
    SolverOptions o;
    o.tol.clear();
    o.maxiter = 40;
    o.fused = true;
    solve(fresh, f, nn, nn, o);
    return f;
  };
  const Factors tuned = run(true);
  const double chosen = fused_read_ahead_choice(96, 5, sizeof(double));
  const auto modes = tile_read_ahead_modes(96, fused_tile_columns(96, sizeof(double)), 96, 5, sizeof(double));
  CHECK(std::find(modes.begin(), modes.end(), static_cast<int>(chosen)) != modes.end());
  CHECK(comm.allreduce(chosen, Op::min) == comm.allreduce(chosen, Op::max));
  const Factors rule = run(false);
  CHECK(rule.A.vec() == tuned.A.vec());
  CHECK(rule.B.vec() == tuned.B.vec());
  // One process asked to measure alone (the last): every process measures alone, none waits for an agreement
  // the others do not make, and the factors are still the same.
  const bool was_alone = fused_read_ahead_alone(comm.rank() == comm.size() - 1);
  const Factors alone = run(true);
  fused_read_ahead_alone(was_alone);
  const double mine = fused_read_ahead_choice(96, 5, sizeof(double));
  CHECK(std::find(modes.begin(), modes.end(), static_cast<int>(mine)) != modes.end());
  CHECK(rule.A.vec() == alone.A.vec());
  CHECK(rule.B.vec() == alone.B.vec());
  fused_read_ahead_tuning(true);
  REQUIRE(fused_tile_kib(0));
}
