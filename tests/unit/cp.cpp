// Serial checks of the CP model: the Khatri-Rao and MTTKRP kernels against direct sums, the solver's
// objective and gradients against a direct computation, and planted factors recovered.
#include <catch2/catch.hpp>

#include <cmath>

#include "../support/factor_check.hpp"
#include "../support/test_support.hpp"
#include "unmix/core/rng.hpp"
#include "unmix/kernels/mttkrp.hpp"
#include "unmix/model/cp.hpp"
#include "unmix/model/planted.hpp"
#include "unmix/solver/cp_solver.hpp"

using namespace unmix;
using unmix::test::unravel;

namespace {

/// M[i_n, r] = sum over all entries of Y[i] prod_(m != n) F_m[i_m, r], by the definition.
std::vector<double> direct_mttkrp(const std::vector<double>& Y, const Shape& shape, std::size_t n, std::size_t R,
                                  const std::vector<std::vector<double>>& F) {
  std::vector<double> M(shape[n] * R, 0.0);
  for (std::size_t k = 0; k < Y.size(); ++k) {
    const Shape idx = unravel(k, shape);
    for (std::size_t r = 0; r < R; ++r) {
      double p = Y[k];
      for (std::size_t m = 0; m < shape.size(); ++m)
        if (m != n) p *= F[m][idx[m] + r * shape[m]];
      M[idx[n] + r * shape[n]] += p;
    }
  }
  return M;
}

/// The whole model tensor sum_r prod_m F_m[i_m, r], by the definition.
std::vector<double> direct_model(const Shape& shape, std::size_t R, const std::vector<Tensor<double>>& F) {
  std::vector<double> X(shape_size(shape), 0.0);
  for (std::size_t k = 0; k < X.size(); ++k) {
    const Shape idx = unravel(k, shape);
    for (std::size_t r = 0; r < R; ++r) {
      double p = 1;
      for (std::size_t m = 0; m < shape.size(); ++m) p *= F[m](idx[m], r);
      X[k] += p;
    }
  }
  return X;
}

double direct_objective(const Tensor<double>& Y, std::size_t R, const std::vector<Tensor<double>>& F) {
  const auto X = direct_model(Y.shape(), R, F);
  double f = 0;
  for (std::size_t k = 0; k < X.size(); ++k) f += (X[k] - Y[k]) * (X[k] - Y[k]);
  return f;
}

std::vector<double> vec(const Tensor<double>& X) { return {X.span().begin(), X.span().end()}; }

} // namespace

TEST_CASE("Khatri-Rao product: mode lo fastest, columns are Kronecker products", "[cp]") {
  // F0 = [1 2; 3 4] (2 x 2), F1 = [5 6; 7 8; 9 10] (3 x 2), column-major.
  const std::vector<double> F0{1, 3, 2, 4}, F1{5, 7, 9, 6, 8, 10};
  const Shape shape{2, 3};
  const auto K = khatri_rao(shape, 0, 2, 2, {F0.data(), F1.data()});
  const std::vector<double> want{5, 15, 7, 21, 9, 27, 12, 24, 16, 32, 20, 40};
  CHECK(K == want);
  CHECK(khatri_rao(shape, 1, 1, 2, {F0.data(), F1.data()}) == std::vector<double>{1, 1});
}

TEST_CASE("Khatri-Rao rows: any slab of rows equals those rows of the whole product", "[cp]") {
  const Shape shape{4, 3, 5, 2};
  const std::size_t R = 3;
  std::vector<std::vector<double>> F;
  std::vector<const double*> ptr;
  for (std::size_t m = 0; m < shape.size(); ++m) {
    F.emplace_back(shape[m] * R);
    for (std::size_t i = 0; i < F[m].size(); ++i) F[m][i] = 1.0 + static_cast<double>((7 * i + 3 * m) % 11);
    ptr.push_back(F[m].data());
  }
  for (const auto& [lo, hi] : {std::pair<std::size_t, std::size_t>{0, 4}, {1, 4}, {2, 3}, {1, 1}}) {
    const auto K = khatri_rao(shape, lo, hi, R, ptr);
    const std::size_t rows = K.size() / R;
    for (std::size_t p0 = 0; p0 < rows; ++p0)
      for (std::size_t np : {std::size_t{1}, std::size_t{3}, rows - p0}) {
        if (p0 + np > rows) continue;
        INFO("modes " << lo << " to " << hi << ", rows " << p0 << " + " << np);
        std::vector<double> got(np * R, -1.0);
        khatri_rao_rows(shape, lo, hi, R, ptr, p0, np, got.data());
        for (std::size_t r = 0; r < R; ++r)
          for (std::size_t q = 0; q < np; ++q) REQUIRE(got[q + r * np] == K[p0 + q + r * rows]);
      }
  }
}

TEST_CASE("MTTKRP equals the direct sum for every mode, order and branch", "[cp]") {
  for (const std::size_t R : {3, 40, 200}) { // large R: pieces of the Khatri-Rao rows shorter than L
    // Orders 2 to 4; extents of 1; the slice branch (L >= Rt; 1 x 600000 x 2's last mode: one slice, Khatri-Rao
    // rows formed a piece at a time) and the branch by pieces of rows (L < Rt): several pieces (1 x 600000 x 2's
    // middle mode), or one piece with the Khatri-Rao rows formed by chunks (mode 0 of 1 x 600000 x 2 through
    // BLAS, of 300 x 50 x 100 through the tile kernel).
    for (const Shape& shape : {Shape{5, 4, 3}, Shape{3, 1, 4, 2}, Shape{6, 7}, Shape{2, 3, 4, 5}, Shape{1, 600000, 2},
                               Shape{4, 3, 1}, Shape{300, 50, 100}}) {
      const CounterRng rng(9, shape_size(shape));
      std::vector<double> Y(shape_size(shape));
      for (std::size_t k = 0; k < Y.size(); ++k) Y[k] = rng.uniform(k) - 0.3;
      std::vector<std::vector<double>> F;
      std::vector<const double*> ptr;
      for (std::size_t m = 0; m < shape.size(); ++m) {
        F.emplace_back(shape[m] * R);
        for (std::size_t i = 0; i < F[m].size(); ++i) F[m][i] = rng.uniform(1000000 + 1000 * m + i);
      }
      for (const auto& f : F) ptr.push_back(f.data());
      const std::vector<float> Yf(Y.begin(), Y.end());
      for (std::size_t n = 0; n < shape.size(); ++n) {
        INFO("shape " << shape_string(shape) << ", mode " << n << ", R " << R);
        const auto want = direct_mttkrp(Y, shape, n, R, F);
        std::vector<double> got(shape[n] * R, -1.0), gotf(shape[n] * R, -1.0);
        mttkrp<double>(Y.data(), shape, n, R, ptr, got.data());
        mttkrp<float>(Yf.data(), shape, n, R, ptr, gotf.data());
        CHECK(test::rel_diff(got, want) < 1e-13);
        CHECK(test::rel_diff(gotf, want) < 1e-5);
      }
    }
    // A block with no entries (a process owning nothing) gives zeros.
    std::vector<double> M(4 * R, 7.0), F0(0), F1(4 * R, 1.0);
    mttkrp<double>(nullptr, Shape{0, 4}, 1, R, {F0.data(), F1.data()}, M.data());
    CHECK(M == std::vector<double>(4 * R, 0.0));
  }
}

TEST_CASE("the contraction of the last mode gives every other mode's MTTKRP (dimension tree)", "[cp]") {
  const std::size_t R = 3;
  // Blocks with one entry along the leading modes too (a process holding one row of them).
  for (const Shape& shape :
       {Shape{5, 4, 3}, Shape{3, 1, 4, 2}, Shape{2, 3, 4, 5}, Shape{4, 700, 300}, Shape{1, 4, 5}, Shape{1, 1, 3, 4}}) {
    const CounterRng rng(17, shape_size(shape));
    std::vector<double> Y(shape_size(shape));
    for (std::size_t k = 0; k < Y.size(); ++k) Y[k] = rng.uniform(k);
    std::vector<std::vector<double>> F;
    std::vector<const double*> ptr;
    for (std::size_t m = 0; m < shape.size(); ++m) {
      F.emplace_back(shape[m] * R);
      for (std::size_t i = 0; i < F[m].size(); ++i) F[m][i] = rng.uniform(2000000 + 1000 * m + i) - 0.5;
    }
    for (const auto& f : F) ptr.push_back(f.data());
    const std::size_t N = shape.size(), rows = shape_size(shape) / shape[N - 1];
    std::vector<double> C(rows * R), Cf(rows * R);
    MttkrpWorkspace<double> ws;
    MttkrpWorkspace<float> wsf;
    contract_last<double>(Y.data(), shape, R, F[N - 1].data(), C.data(), ws);
    const std::vector<float> Yf(Y.begin(), Y.end());
    contract_last<float>(Yf.data(), shape, R, F[N - 1].data(), Cf.data(), wsf);
    std::vector<double> left, right, scratch;
    for (std::size_t n = 0; n + 1 < N; ++n) {
      INFO("shape " << shape_string(shape) << ", mode " << n);
      const auto want = direct_mttkrp(Y, shape, n, R, F);
      std::vector<double> got(shape[n] * R, -1.0), gotf(shape[n] * R, -1.0);
      mttkrp_contracted(C.data(), shape, n, R, ptr, got.data(), left, right, scratch);
      mttkrp_contracted(Cf.data(), shape, n, R, ptr, gotf.data(), left, right, scratch);
      CHECK(test::rel_diff(got, want) < 1e-13);
      CHECK(test::rel_diff(gotf, want) < 1e-5);
    }
  }
}

TEST_CASE("CP: the dimension tree gives the iterates of one pass per mode, in two passes per iteration", "[cp]") {
  const Comm& self = test::comm();
  auto pl = make_planted_cp<double>(self, {6, 5, 40}, 3, 0.05, 12);
  for (const char* others : {"nonnegative", "l1scale_columns+nonnegative"}) {
    const std::vector<ConstraintList> cons{parse_constraints("nonnegative"), parse_constraints(others),
                                           parse_constraints(others)};
    CP<double> tree(pl.Y, 3), plain(pl.Y, 3, false);
    REQUIRE(tree.uses_tree());
    REQUIRE(!plain.uses_tree());
    CpFactors ft, fp;
    init_random_cp(tree, ft, 9, true, cons);
    init_random_cp(plain, fp, 9, true, cons);
    SolverOptions o;
    o.maxiter = 30;
    o.tol = {{Stat::stationarity, 1e-300}};
    const auto rt = solve_cp(tree, ft, cons, o), rp = solve_cp(plain, fp, cons, o);
    INFO("others " << others);
    for (std::size_t n = 0; n < 3; ++n) CHECK(test::rel_diff(ft.F[n].span(), fp.F[n].span()) < 1e-12);
    CHECK(rt.stats.back().stationarity == Approx(rp.stats.back().stationarity).epsilon(1e-10));
    CHECK(rt.stats.back().objective == Approx(rp.stats.back().objective).epsilon(1e-12));
    CHECK(tree.passes() == 2 + 2 * 30); // the start (contraction, last mode for its gradient), two per iteration
    CHECK(plain.passes() == 1 + 3 * 30 + (2 * 30 + 2)); // one per mode, and two more for the statistics
  }
}

TEST_CASE("CP: objective, relative error and gradient statistics match a direct computation", "[cp]") {
  const Comm& self = test::comm();
  const Shape shape{5, 4, 3};
  const std::size_t R = 2;
  auto pl = make_planted_cp<double>(self, shape, 3, 0.2, 21); // rank-3 data, rank-2 model: nonzero gradient
  CP<double> m(pl.Y, R);
  const std::vector<ConstraintList> cons(3, parse_constraints("nonnegative"));
  CpFactors f;
  init_random_cp(m, f, 4, true, cons);
  SolverOptions o;
  o.maxiter = 3;
  o.tol = {{Stat::stationarity, 1e-300}}; // asks for the gradient statistics, never met
  const SolveResult res = solve_cp(m, f, cons, o);
  REQUIRE(res.iterations == 3);
  const double fd = direct_objective(pl.Y.local(), R, f.F);
  CHECK(res.stats.back().objective == Approx(fd).epsilon(1e-12));
  CHECK(res.stats.back().rel_error == Approx(std::sqrt(fd / pl.Y.norm2_squared())).epsilon(1e-12));
  // Gradients by the definition: g_n = F_n H_n - M_n.
  std::vector<std::vector<double>> Fv;
  for (const auto& X : f.F) Fv.push_back(vec(X));
  const std::vector<double> Yv(pl.Y.local().span().begin(), pl.Y.local().span().end());
  double g2 = 0, s2 = 0;
  for (std::size_t n = 0; n < 3; ++n) {
    const auto M = direct_mttkrp(Yv, shape, n, R, Fv);
    for (std::size_t i = 0; i < shape[n]; ++i)
      for (std::size_t r = 0; r < R; ++r) {
        double g = -M[i + r * shape[n]];
        for (std::size_t q = 0; q < R; ++q) {
          double h = 1;
          for (std::size_t m2 = 0; m2 < 3; ++m2)
            if (m2 != n) {
              double d = 0;
              for (std::size_t k = 0; k < shape[m2]; ++k) d += f.F[m2](k, q) * f.F[m2](k, r);
              h *= d;
            }
          g += f.F[n](i, q) * h;
        }
        g2 += g * g;
        if (f.F[n](i, r) > 0 || g < 0) s2 += g * g;
      }
  }
  CHECK(res.stats.back().grad_norm == Approx(std::sqrt(g2)).epsilon(1e-10));
  CHECK(res.stats.back().stationarity == Approx(std::sqrt(s2)).epsilon(1e-10));
  CHECK(res.stats.back().rel_stationarity == Approx(res.stats.back().stationarity / res.stats[0].stationarity));
  // Without a gradient tolerance the gradient statistics are not computed (no extra passes).
  SolverOptions q;
  q.maxiter = 2;
  q.tol = {{Stat::rel_error, 1e-12}};
  const std::size_t before = m.passes();
  const SolveResult r2 = solve_cp(m, f, cons, q);
  CHECK(std::isnan(r2.stats.back().stationarity));
  CHECK(m.passes() - before == 1 + 2 * 3); // the start's objective, then one MTTKRP per factor and iteration
}

TEST_CASE("CP: planted noise-free factors are recovered (projected gradient and exact block solves)", "[cp]") {
  const Comm& self = test::comm();
  const Shape shape{12, 10, 8};
  const std::size_t R = 3;
  auto pl = make_planted_cp<double>(self, shape, R, 0.0, 5);
  CP<double> m(pl.Y, R);
  const std::vector<ConstraintList> cons(3, parse_constraints("nonnegative"));
  for (const bool bpp : {false, true}) {
    INFO((bpp ? "bpp" : "pg"));
    CpFactors f;
    init_random_cp(m, f, 2, true, cons);
    SolverOptions o;
    o.bpp = bpp;
    o.maxiter = 20000;
    // Projected gradient crawls through the swamp of these strongly collinear factors (U(0,1) columns):
    // 4e-3 after 1000 iterations, 3e-8 after 20000; block principal pivoting gets to 1e-9 in about 460.
    const double tol = bpp ? 1e-9 : 1e-6;
    o.tol = {{Stat::rel_error, tol}};
    const SolveResult res = solve_cp(m, f, cons, o);
    INFO(res.stop_reason << " after " << res.iterations);
    CHECK(res.converged);
    CHECK(direct_objective(pl.Y.local(), R, f.F) <= 1.0001 * tol * tol * pl.Y.norm2_squared());
    for (std::size_t n = 0; n < 3; ++n)
      CHECK(test::matched_column_error(vec(f.F[n]), vec(pl.F[n]), shape[n], R) < 10 * tol);
  }
}

TEST_CASE("CP: momentum changes the iterates and saves iterations to the same fit", "[cp]") {
  const Comm& self = test::comm();
  auto pl = make_planted_cp<double>(self, {15, 12, 10}, 4, 0.0, 8);
  CP<double> m(pl.Y, 4);
  const std::vector<ConstraintList> cons(3, parse_constraints("nonnegative"));
  std::size_t iters[2];
  for (const bool mom : {false, true}) {
    CpFactors f;
    init_random_cp(m, f, 3, true, cons);
    SolverOptions o;
    o.momentum = mom;
    o.maxiter = 30000;
    o.tol = {{Stat::rel_error, 1e-4}};
    const SolveResult res = solve_cp(m, f, cons, o);
    CHECK(res.converged);
    iters[mom] = res.iterations;
  }
  INFO("without momentum " << iters[0] << ", with " << iters[1]);
  CHECK(iters[1] * 2 < iters[0]);
}

TEST_CASE("CP: a scaled normalization of the other factors is absorbed by factor 0 exactly", "[cp]") {
  const Comm& self = test::comm();
  const Shape shape{10, 8, 6};
  auto pl = make_planted_cp<double>(self, shape, 3, 0.01, 13);
  CP<double> m(pl.Y, 3);
  std::vector<ConstraintList> cons{parse_constraints("nonnegative"), parse_constraints("l1scale_columns+nonnegative"),
                                   parse_constraints("l1scale_columns+nonnegative")};
  CpFactors f;
  init_random_cp(m, f, 6, true, cons);
  SolverOptions o;
  o.maxiter = 200;
  o.tol.clear();
  const SolveResult res = solve_cp(m, f, cons, o);
  // Factors 1 and 2 have columns summing to 1, and the objective the solver reports is the model's.
  for (std::size_t n = 1; n < 3; ++n)
    for (std::size_t r = 0; r < 3; ++r) {
      double s = 0;
      for (std::size_t i = 0; i < shape[n]; ++i) s += f.F[n](i, r);
      CHECK(s == Approx(1.0).epsilon(1e-12));
    }
  CHECK(res.stats.back().objective == Approx(direct_objective(pl.Y.local(), 3, f.F)).epsilon(1e-10));
  for (std::size_t k = 1; k < res.stats.size(); ++k)
    CHECK(res.stats[k].objective <= res.stats[k - 1].objective * (1 + 1e-12));
  CHECK(res.stats.back().rel_error < 0.03);
}

TEST_CASE("CP in float32 storage fits a planted tensor as well as float64", "[cp]") {
  const Comm& self = test::comm();
  const Shape shape{12, 10, 8};
  auto pd = make_planted_cp<double>(self, shape, 3, 0.0, 5);
  auto pf = make_planted_cp<float>(self, shape, 3, 0.0, 5);
  const std::vector<ConstraintList> cons(3, parse_constraints("nonnegative"));
  CP<double> md(pd.Y, 3);
  CP<float> mf(pf.Y, 3);
  CpFactors fd, ff;
  init_random_cp(md, fd, 2, true, cons);
  init_random_cp(mf, ff, 2, true, cons);
  SolverOptions o;
  o.bpp = true;
  o.maxiter = 300;
  o.tol = {{Stat::rel_error, 1e-5}};
  const auto rd = solve_cp(md, fd, cons, o), rf = solve_cp(mf, ff, cons, o);
  CHECK(rd.converged);
  CHECK(rf.converged);
  CHECK(rf.iterations <= rd.iterations + 2);
  // The error reported in float is the model's (the products' float rounding does not hide it).
  CHECK(direct_objective(pd.Y.local(), 3, ff.F) <= 1.01e-10 * pd.Y.norm2_squared());
}

TEST_CASE("core consistency: 100 for the CP model's own factors, lower for a core off the superdiagonal", "[cp]") {
  // The arithmetic: the superdiagonal of ones scores 100, an off-diagonal 0.5 costs 0.25 / R.
  std::vector<double> G(27, 0.0);
  for (std::size_t r = 0; r < 3; ++r) G[r * (1 + 3 + 9)] = 1.0;
  CHECK(core_consistency(G, 3, 3) == Approx(100.0));
  G[1 + 3 * 2] = 0.5;
  CHECK(core_consistency(G, 3, 3) == Approx(100.0 * (1 - 0.25 / 3)));
  // A mode product against the definition: (X x_1 M)[i, q, k] = sum_j X[i, j, k] M[q, j].
  const Shape xs{2, 3, 2};
  std::vector<double> X(12), M(4 * 3);
  for (std::size_t k = 0; k < X.size(); ++k) X[k] = 0.5 + static_cast<double>(k);
  for (std::size_t k = 0; k < M.size(); ++k) M[k] = 1.0 / (1.0 + static_cast<double>(k));
  const auto P = mode_product<double>(X.data(), xs, 1, M.data(), 4);
  REQUIRE(P.size() == 2 * 4 * 2);
  for (std::size_t i = 0; i < 2; ++i)
    for (std::size_t q = 0; q < 4; ++q)
      for (std::size_t k = 0; k < 2; ++k) {
        double want = 0;
        for (std::size_t j = 0; j < 3; ++j) want += X[i + 2 * (j + 3 * k)] * M[q + 4 * j];
        CHECK(P[i + 2 * (q + 4 * k)] == Approx(want).epsilon(1e-14));
      }
  // The least-squares core of noise-free CP data with its own factors is the superdiagonal of ones,
  // whatever the scaling of the columns (the pseudo-inverses undo it).
  const Comm& self = test::comm();
  auto pl = make_planted_cp<double>(self, {9, 7, 6, 5}, 3, 0.0, 3);
  CP<double> m(pl.Y, 3);
  auto F = pl.F;
  for (std::size_t i = 0; i < F[1].rows(); ++i) F[1](i, 2) *= 4.0;
  for (std::size_t i = 0; i < F[3].rows(); ++i) F[3](i, 2) *= 0.25;
  const auto core = m.least_squares_core(F);
  REQUIRE(core.size() == 81);
  CHECK(core_consistency(core, 3, 4) == Approx(100.0).epsilon(1e-10));
  // One factor column replaced by another direction: the core leaves the superdiagonal.
  for (std::size_t i = 0; i < F[0].rows(); ++i) F[0](i, 1) = F[0](i, 1) + F[0](i, 0);
  CHECK(core_consistency(m.least_squares_core(F), 3, 4) < 99.0);
}

TEST_CASE("CP: the residual formed in slabs and the sources formed by boxes match direct computations", "[cp]") {
  const Comm& self = test::comm();
  // I_0 = 2: a slab is 2^19 columns, so 2 x 1000 x 600 takes two (the second partial).
  const Shape shape{2, 1000, 600};
  auto pl = make_planted_cp<double>(self, shape, 3, 0.0, 17);
  CP<double> m(pl.Y, 3);
  std::vector<Tensor<double>> F = pl.F;
  for (std::size_t i = 0; i < F[1].size(); ++i) F[1][i] *= 1.0 + 0.01 * static_cast<double>(i % 7); // off the data
  const Tensor<double> B = m.sources_local(F);
  double want = 0;
  const std::size_t cols = shape_size(shape) / 2;
  for (std::size_t j = 0; j < cols; ++j)
    for (std::size_t i = 0; i < 2; ++i) {
      double v = 0;
      for (std::size_t r = 0; r < 3; ++r) v += F[0](i, r) * B[r + 3 * j];
      want += (pl.Y.local()[i + 2 * j] - v) * (pl.Y.local()[i + 2 * j] - v);
    }
  REQUIRE(want > 0);
  CHECK(m.exact_residual2(F) == Approx(want).epsilon(1e-10));
  // B[r, j1, j2] = F_1[j1, r] F_2[j2, r], and any box of it formed alone is that box.
  for (std::size_t k = 0; k < B.size(); k += 997) {
    const Shape i = unravel(k, B.shape());
    CHECK(B[k] == F[1](i[1], i[0]) * F[2](i[2], i[0]));
  }
  for (const auto& [at, count] :
       {std::pair<Shape, Shape>{{0, 0, 0}, {3, 1000, 600}}, {{1, 17, 5}, {2, 40, 9}}, {{2, 999, 599}, {1, 1, 1}}}) {
    const Tensor<double> part = m.sources_box(F, at, count);
    REQUIRE(part.shape() == count);
    std::size_t wrong = 0;
    for (std::size_t k = 0; k < part.size(); ++k) {
      const Shape i = unravel(k, count);
      const double b = B[(at[0] + i[0]) + B.extent(0) * ((at[1] + i[1]) + B.extent(1) * (at[2] + i[2]))];
      wrong += part[k] != b ? 1 : 0;
    }
    CHECK(wrong == 0);
  }
}
