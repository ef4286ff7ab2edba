// The distributed CP model and solver against the serial ones, at every process count and on every
// process grid (grids that split the mixture mode, and processes that own no entries).
#include <catch2/catch.hpp>

#include "../support/factor_check.hpp"
#include "../support/test_support.hpp"
#include "unmix/model/cp.hpp"
#include "unmix/model/planted.hpp"
#include "unmix/solver/cp_solver.hpp"

using namespace unmix;

TEST_CASE("CP products, start and statistics equal the serial ones on every grid", "[cp]") {
  const Comm& comm = test::comm();
  const std::size_t R = 3;
  Comm self = Comm::self();
  // At 4 processes, grids splitting the last mode 4 ways leave a process empty; the second shape's last
  // mode is long enough for the dimension tree.
  for (const Shape& shape : {Shape{6, 5, 3}, Shape{5, 3, 40}}) {
    auto serial = make_planted_cp<double>(self, shape, 4, 0.1, 31);
    CP<double> ms(serial.Y, R);
    const std::vector<ConstraintList> cons(3, parse_constraints("nonnegative"));
    CpFactors fs;
    init_random_cp(ms, fs, 17, true, cons);
    const Tensor<double> Bs = ms.sources_local(fs.F);
    for (const auto& dims : test::all_grids(comm.size(), shape.size())) {
      INFO("grid " << ProcessGrid(dims).to_string());
      auto dist = make_planted_cp<double>(comm, shape, 4, 0.1, 31, ProcessGrid(dims));
      const Shape off = dist.Y.offset(), box = dist.Y.local().shape();
      CP<double> md(dist.Y, R);
      CHECK(md.normY2() == Approx(ms.normY2()).epsilon(1e-14));
      CpFactors fd;
      init_random_cp(md, fd, 17, true, cons);
      for (std::size_t n = 0; n < 3; ++n) {
        CHECK(test::rel_diff(fd.F[n].span(), factor_rows(fs.F[n], off[n], box[n]).span()) == 0.0);
        CHECK(test::rel_diff(md.gram(n, fd.F[n]), ms.gram(n, fs.F[n])) < 1e-14);
        const Tensor<double> Md = md.mttkrp(n, fd.F), Mser = ms.mttkrp(n, fs.F);
        CHECK(test::rel_diff(Md.span(), factor_rows(Mser, off[n], box[n]).span()) < 1e-14);
      }
      CHECK(md.exact_residual2(fd.F) == Approx(ms.exact_residual2(fs.F)).epsilon(1e-13));
      CHECK(test::rel_diff(md.least_squares_core(fd.F), ms.least_squares_core(fs.F)) < 1e-12);
      CHECK(test::rel_diff(md.sources_local(fd.F).span(), test::box_of_sources(Bs, shape, off, box).span()) == 0.0);
      SolverOptions o;
      o.maxiter = 0;
      o.tol = {{Stat::stationarity, 1e-300}};
      CpFactors a = fs, b = fd;
      const auto rs = solve_cp(ms, a, cons, o), rd = solve_cp(md, b, cons, o);
      CHECK(rd.stats[0].objective == Approx(rs.stats[0].objective).epsilon(1e-13));
      CHECK(rd.stats[0].grad_norm == Approx(rs.stats[0].grad_norm).epsilon(1e-12));
      CHECK(rd.stats[0].stationarity == Approx(rs.stats[0].stationarity).epsilon(1e-12));
      if (md.uses_tree()) {
        // The contraction of the last mode and the MTTKRPs from it, against the serial ones.
        const Tensor<double> Cs = ms.contracted(fs.F[2]), Cd = md.contracted(fd.F[2]);
        for (std::size_t n = 0; n < 2; ++n) {
          const Tensor<double> Mser = ms.mttkrp_from(Cs, n, fs.F), Md = md.mttkrp_from(Cd, n, fd.F);
          CHECK(test::rel_diff(Md.span(), factor_rows(Mser, off[n], box[n]).span()) < 1e-14);
        }
      }
    }
  }
}

TEST_CASE("CP: the same seed gives the same iterates at any process count and grid", "[cp]") {
  const Comm& comm = test::comm();
  const std::size_t R = 3;
  Comm self = Comm::self();
  struct Case {
    const char *a, *others;
    bool bpp;
    std::size_t inner;
    bool subblock = false;
    bool hals = false;
  };
  for (const Case& c :
       {Case{"nonnegative", "nonnegative", false, 1}, Case{"nonnegative", "l1scale_columns+nonnegative", false, 1},
        Case{"l2scale+nonnegative", "nonnegative", false, 1, true}, Case{"simplex_rows", "nonnegative", false, 3},
        Case{"nonnegative", "nonnegative", true, 1}, Case{"nonnegative", "nonnegative", false, 3, false, true}})
    // The second shape has the dimension tree on most grids; the third leaves processes without entries at
    // 3 and 4 processes (its mode 1 has 2).
    for (const Shape& shape : {Shape{7, 6, 5}, Shape{5, 4, 40}, Shape{5, 2, 40}}) {
      const std::vector<ConstraintList> cons{parse_constraints(c.a), parse_constraints(c.others),
                                             parse_constraints(c.others)};
      auto serial = make_planted_cp<double>(self, shape, R, 0.02, 9);
      CP<double> ms(serial.Y, R);
      CpFactors fs;
      init_random_cp(ms, fs, 5, true, cons);
      SolverOptions o;
      o.maxiter = 40;
      o.tol.clear();
      o.bpp = c.bpp;
      o.inner = c.inner;
      o.subblock = c.subblock;
      o.hals = c.hals;
      const auto rs = solve_cp(ms, fs, cons, o);
      for (const auto& dims : test::all_grids(comm.size(), shape.size())) {
        INFO("A " << c.a << ", others " << c.others << (c.bpp ? ", bpp" : "") << ", inner " << c.inner
                  << (c.subblock ? ", subblock" : "") << (c.hals ? ", hals" : "") << ", shape " << shape_string(shape)
                  << ", grid " << ProcessGrid(dims).to_string());
        auto dist = make_planted_cp<double>(comm, shape, R, 0.02, 9, ProcessGrid(dims));
        CP<double> md(dist.Y, R);
        CpFactors fd;
        init_random_cp(md, fd, 5, true, cons);
        const auto rd = solve_cp(md, fd, cons, o);
        const Shape off = dist.Y.offset(), box = dist.Y.local().shape();
        CHECK(rd.iterations == rs.iterations);
        for (std::size_t n = 0; n < 3; ++n)
          CHECK(test::rel_diff(fd.F[n].span(), factor_rows(fs.F[n], off[n], box[n]).span()) < 1e-10);
        CHECK(rd.stats.back().rel_error == Approx(rs.stats.back().rel_error).epsilon(1e-10));
        CHECK(rd.stats.back().rel_error < rd.stats[0].rel_error);
        const BlockPartition& last = dist.Y.layout().partition(2);
        std::size_t shortest = last.extent;
        for (int k = 0; k < last.parts; ++k) shortest = std::min(shortest, last.size(k));
        CHECK(md.uses_tree() == CP<double>::tree_pays(3, R, shortest));
      }
    }
}

TEST_CASE("CP: planted noise-free factors are recovered by the distributed solver", "[cp]") {
  const Comm& comm = test::comm();
  const Shape shape{14, 11, 9};
  const std::size_t R = 4;
  auto pl = make_planted_cp<double>(comm, shape, R, 0.0, 44);
  CP<double> m(pl.Y, R);
  const std::vector<ConstraintList> cons(3, parse_constraints("nonnegative"));
  CpFactors f;
  init_random_cp(m, f, 1, true, cons);
  SolverOptions o;
  o.bpp = true;
  o.maxiter = 3000;
  o.tol = {{Stat::rel_error, 1e-10}}; // the factors' error is about 12 times the relative error here
  const auto res = solve_cp(m, f, cons, o);
  INFO(res.stop_reason << " after " << res.iterations);
  CHECK(res.converged);
  // Factor 0 is whole on every process with the default grid (the mixture mode is never split).
  REQUIRE(f.F[0].rows() == shape[0]);
  const std::vector<double> est(f.F[0].span().begin(), f.F[0].span().end()),
      truth(pl.F[0].span().begin(), pl.F[0].span().end());
  CHECK(test::matched_column_error(est, truth, shape[0], R) < 1e-8);
}

TEST_CASE("CP in float32 storage: the distributed solve fits a planted tensor as the serial one does", "[cp]") {
  const Comm& comm = test::comm();
  const Shape shape{9, 8, 40};
  const std::size_t R = 3;
  Comm self = Comm::self();
  const std::vector<ConstraintList> cons(3, parse_constraints("nonnegative"));
  SolverOptions o;
  o.bpp = true;
  o.maxiter = 2000;
  o.tol = {{Stat::rel_error, 1e-4}};
  auto serial = make_planted_cp<float>(self, shape, R, 0.0, 21);
  CP<float> ms(serial.Y, R);
  CpFactors fs;
  init_random_cp(ms, fs, 2, true, cons);
  const auto rs = solve_cp(ms, fs, cons, o);
  REQUIRE(rs.converged);
  for (const auto& dims : test::all_grids(comm.size(), shape.size())) {
    INFO("grid " << ProcessGrid(dims).to_string());
    auto dist = make_planted_cp<float>(comm, shape, R, 0.0, 21, ProcessGrid(dims));
    CP<float> md(dist.Y, R);
    CpFactors fd;
    init_random_cp(md, fd, 2, true, cons);
    const auto rd = solve_cp(md, fd, cons, o);
    // Sums in single precision differ with the blocks: the fits agree to float rounding, not bit for bit.
    CHECK(rd.converged);
    CHECK(rd.stats[5].rel_error == Approx(rs.stats[5].rel_error).epsilon(1e-4));
  }
}
