// The distributed Tucker model and solver against the serial ones, at every process count and on every
// process grid (grids that split the mixture mode, and processes that own no entries).
#include <catch2/catch.hpp>

#include "../support/factor_check.hpp"
#include "../support/test_support.hpp"
#include "unmix/model/planted.hpp"
#include "unmix/model/tucker.hpp"
#include "unmix/solver/cp_solver.hpp"

using namespace unmix;

TEST_CASE("Tucker products, start and statistics equal the serial ones on every grid", "[tucker]") {
  const Comm& comm = test::comm();
  const std::vector<std::size_t> ranks{2, 3, 2};
  Comm self = Comm::self();
  // At 3 and 4 processes, grids splitting the last mode of the second shape leave processes empty.
  for (const Shape& shape : {Shape{6, 5, 7}, Shape{5, 4, 2}, Shape{4, 3, 48}}) {
    auto serial = make_planted_tucker<double>(self, shape, {3, 3, 3}, 0.1, 31);
    Tucker<double> ms(serial.Y, ranks);
    const std::vector<ConstraintList> cons(4, parse_constraints("nonnegative"));
    CpFactors fs;
    init_random_cp(ms, fs, 17, true, cons);
    std::vector<std::vector<double>> Ws;
    for (std::size_t n = 0; n < 3; ++n) Ws.push_back(ms.gram(n, fs.F[n]));
    const Tensor<double> Bs = ms.sources_local(fs.F, fs.G);
    for (const auto& dims : test::all_grids(comm.size(), shape.size())) {
      INFO("shape " << shape_string(shape) << ", grid " << ProcessGrid(dims).to_string());
      auto dist = make_planted_tucker<double>(comm, shape, {3, 3, 3}, 0.1, 31, ProcessGrid(dims));
      const Shape off = dist.Y.offset(), box = dist.Y.local().shape();
      Tucker<double> md(dist.Y, ranks);
      CHECK(md.normY2() == Approx(ms.normY2()).epsilon(1e-14));
      CpFactors fd;
      init_random_cp(md, fd, 17, true, cons);
      CHECK(test::rel_diff(fd.G.span(), fs.G.span()) < 1e-14);
      for (std::size_t n = 0; n < 3; ++n) {
        CHECK(test::rel_diff(fd.F[n].span(), factor_rows(fs.F[n], off[n], box[n]).span()) == 0.0);
        CHECK(test::rel_diff(md.gram(n, fd.F[n]), Ws[n]) < 1e-14);
        const Tensor<double> Pd = md.partial(n, fd.F), Ps = ms.partial(n, fs.F);
        const Tensor<double> Md = md.times_core(n, Pd, fd.G), Mser = ms.times_core(n, Ps, fs.G);
        CHECK(test::rel_diff(Md.span(), factor_rows(Mser, off[n], box[n]).span()) < 1e-13);
        CHECK(test::rel_diff(md.projected(n, Pd, fd.F[n]).span(), ms.projected(n, Ps, fs.F[n]).span()) < 1e-13);
      }
      CHECK(md.exact_residual2(fd.F, fd.G) == Approx(ms.exact_residual2(fs.F, fs.G)).epsilon(1e-13));
      // The dimension tree's products equal the direct ones.
      Tucker<double> mt(dist.Y, ranks);
      if (mt.uses_tree()) {
        const Tensor<double> C = mt.contracted(fd.F[2]);
        for (std::size_t n = 0; n < 2; ++n)
          CHECK(test::rel_diff(mt.partial_from(C, n, fd.F).span(), md.partial(n, fd.F).span()) < 1e-13);
      }
      CHECK(test::rel_diff(md.sources_local(fd.F, fd.G).span(), test::box_of_sources(Bs, shape, off, box).span()) <
            1e-14);
      SolverOptions o;
      o.maxiter = 0;
      o.tol = {{Stat::stationarity, 1e-300}};
      CpFactors a = fs, b = fd;
      const auto rs = solve_cp(ms, a, cons, o), rd = solve_cp(md, b, cons, o);
      CHECK(rd.stats[0].objective == Approx(rs.stats[0].objective).epsilon(1e-13));
      CHECK(rd.stats[0].grad_norm == Approx(rs.stats[0].grad_norm).epsilon(1e-12));
      CHECK(rd.stats[0].stationarity == Approx(rs.stats[0].stationarity).epsilon(1e-12));
    }
  }
}

TEST_CASE("Tucker: the same seed gives the same iterates at any process count and grid", "[tucker]") {
  const Comm& comm = test::comm();
  const std::vector<std::size_t> ranks{3, 2, 2};
  Comm self = Comm::self();
  struct Case {
    const char *a, *others, *core;
    bool bpp;
    std::size_t inner;
    bool subblock = false;
    bool hals = false;
  };
  const Case pg[] = {Case{"nonnegative", "nonnegative", "nonnegative", false, 1},
                     Case{"nonnegative", "l1scale_columns+nonnegative", "nonnegative", false, 1},
                     Case{"simplex_rows", "nonnegative", "nonnegative", false, 3},
                     Case{"nonnegative", "nonnegative", "none", false, 4, true, true}};
  const Case bpp{"nonnegative", "nonnegative", "nonnegative", true, 4, true};
  // From this start on the first shape, exact block solves leave H_0 singular after the first iteration
  // (measured: smallest eigenvalue 0 to rounding); its least-squares solves are then not unique and the iterates
  // follow rounding (a 1e-14 change of the start moves the core by 2e-8 in 3 iterations, serially). On the second
  // shape they stay unique, and every grid must agree as for the gradient steps.
  std::vector<std::pair<Case, Shape>> runs;
  for (const Case& c : pg)
    for (const Shape& shape : {Shape{7, 6, 5}, Shape{5, 2, 9}, Shape{4, 3, 48}}) runs.emplace_back(c, shape);
  runs.emplace_back(bpp, Shape{5, 2, 9});
  // The second shape leaves processes without entries at 3 and 4 processes (its mode 1 has 2); the third uses
  // the dimension tree on the grids that leave its last mode 24 or more per process.
  for (const auto& [c, shape] : runs) {
    std::vector<ConstraintList> cons{parse_constraints(c.a), parse_constraints(c.others), parse_constraints(c.others),
                                     parse_constraints(c.core)};
    auto serial = make_planted_tucker<double>(self, shape, {3, 2, 2}, 0.02, 9);
    Tucker<double> ms(serial.Y, ranks);
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
      INFO("A " << c.a << ", others " << c.others << ", core " << c.core << (c.bpp ? ", bpp" : "") << ", inner "
                << c.inner << (c.hals ? ", hals" : "") << ", shape " << shape_string(shape) << ", grid "
                << ProcessGrid(dims).to_string());
      auto dist = make_planted_tucker<double>(comm, shape, {3, 2, 2}, 0.02, 9, ProcessGrid(dims));
      Tucker<double> md(dist.Y, ranks);
      CpFactors fd;
      init_random_cp(md, fd, 5, true, cons);
      const auto rd = solve_cp(md, fd, cons, o);
      const Shape off = dist.Y.offset(), box = dist.Y.local().shape();
      CHECK(rd.iterations == rs.iterations);
      for (std::size_t n = 0; n < 3; ++n)
        CHECK(test::rel_diff(fd.F[n].span(), factor_rows(fs.F[n], off[n], box[n]).span()) < 1e-10);
      CHECK(test::rel_diff(fd.G.span(), fs.G.span()) < 1e-10);
      CHECK(rd.stats.back().rel_error == Approx(rs.stats.back().rel_error).epsilon(1e-10));
      CHECK(rd.stats.back().rel_error < rd.stats[0].rel_error);
      const BlockPartition& last = dist.Y.layout().partition(2);
      std::size_t shortest = last.extent;
      for (int k = 0; k < last.parts; ++k) shortest = std::min(shortest, last.size(k));
      CHECK(md.uses_tree() == Tucker<double>::tree_pays(3, ranks[2], shortest));
      // The core is the same on every process.
      std::vector<double> lo(fd.G.span().begin(), fd.G.span().end()), hi = lo;
      comm.allreduce(std::span<double>(lo), Op::min);
      comm.allreduce(std::span<double>(hi), Op::max);
      CHECK(lo == hi);
    }
  }
}

TEST_CASE("Tucker: a planted noise-free tensor is fitted by the distributed solver", "[tucker]") {
  const Comm& comm = test::comm();
  const Shape shape{14, 11, 9};
  const std::vector<std::size_t> ranks{4, 3, 2};
  auto pl = make_planted_tucker<double>(comm, shape, ranks, 0.0, 44);
  Tucker<double> m(pl.Y, ranks);
  const std::vector<ConstraintList> cons(4, parse_constraints("nonnegative"));
  CpFactors f;
  init_random_cp(m, f, 1, true, cons);
  SolverOptions o;
  o.bpp = true;
  o.inner = 5;
  o.maxiter = 5000;
  o.tol = {{Stat::rel_error, 1e-6}};
  const auto res = solve_cp(m, f, cons, o);
  INFO(res.stop_reason << " after " << res.iterations);
  CHECK(res.converged);
  CHECK(m.exact_residual2(f.F, f.G) <= 1.0001e-12 * pl.Y.norm2_squared());
}
