// Serial checks of the Tucker-1 model and the block solver.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <string>

#include "../support/factor_check.hpp"
#include "../support/test_support.hpp"
#include "unmix/io/hdf5.hpp"
#include "unmix/kernels/blas.hpp"
#include "unmix/kernels/fused.hpp"
#include "unmix/kernels/tile_products.hpp"
#include "unmix/model/planted.hpp"
#include "unmix/model/tucker1.hpp"
#include "unmix/solver/solver.hpp"

using namespace unmix;

namespace {

/// Sum of row r of an R x n column-major factor.
double row_sum(const Tensor<double>& X, std::size_t R, std::size_t r) {
  double s = 0;
  for (std::size_t j = 0; j < X.size() / R; ++j) s += X[r + j * R];
  return s;
}

double direct_objective(const Tensor<double>& Y, const Tensor<double>& A, const Tensor<double>& B) {
  const std::size_t I = A.rows(), R = A.cols(), M = B.size() / R;
  double f = 0;
  for (std::size_t j = 0; j < M; ++j)
    for (std::size_t i = 0; i < I; ++i) {
      double m = 0;
      for (std::size_t r = 0; r < R; ++r) m += A(i, r) * B[r + j * R];
      f += (m - Y[i + j * I]) * (m - Y[i + j * I]);
    }
  return f;
}

} // namespace

TEST_CASE("4x3x2 Tucker-1: gradients and Lipschitz constants match a direct computation", "[tucker1]") {
  const Comm& self = test::comm();
  const std::size_t R = 2;
  auto pl = make_planted<double>(self, {4, 3, 2}, 3, 0.3, 11); // rank 3 data, rank 2 model: nonzero gradient
  Tucker1<double> m(pl.Y, R);
  Factors f;
  init_random(m, f, 5, true, {}, {});
  const Tensor<double>& Y = pl.Y.local();
  REQUIRE(f.A.shape() == Shape{4, 2});
  REQUIRE(f.B.shape() == Shape{2, 3, 2});
  // Products against loops.
  const auto G = m.gram_A(f.A);
  const auto P = m.gram_B(f.B);
  const auto AtY = m.AtY(f.A);
  const auto Q = m.YBt(f.B);
  for (std::size_t r = 0; r < R; ++r)
    for (std::size_t q = 0; q < R; ++q) {
      double g = 0, p = 0;
      for (std::size_t i = 0; i < 4; ++i) g += f.A(i, r) * f.A(i, q);
      for (std::size_t j = 0; j < 6; ++j) p += f.B[r + j * R] * f.B[q + j * R];
      CHECK(G[r + q * R] == Approx(g).epsilon(1e-14));
      CHECK(P[r + q * R] == Approx(p).epsilon(1e-14));
    }
  // Gradients of f/2 with f = ||A B - Y||^2, checked by central differences of the direct objective.
  const double h = 1e-6;
  for (std::size_t idx = 0; idx < f.B.size(); ++idx) {
    const std::size_t r = idx % R, j = idx / R;
    double g = -AtY[r + j * R];
    for (std::size_t q = 0; q < R; ++q) g += G[r + q * R] * f.B[q + j * R];
    Tensor<double> Bp = f.B, Bm = f.B;
    Bp[idx] += h;
    Bm[idx] -= h;
    const double fd = (direct_objective(Y, f.A, Bp) - direct_objective(Y, f.A, Bm)) / (4 * h);
    CHECK(g == Approx(fd).epsilon(1e-7).margin(1e-9));
  }
  for (std::size_t idx = 0; idx < f.A.size(); ++idx) {
    const std::size_t i = idx % 4, r = idx / 4;
    double g = -Q(i, r);
    for (std::size_t q = 0; q < R; ++q) g += f.A(i, q) * P[q + r * R];
    Tensor<double> Ap = f.A, Am = f.A;
    Ap[idx] += h;
    Am[idx] -= h;
    const double fd = (direct_objective(Y, Ap, f.B) - direct_objective(Y, Am, f.B)) / (4 * h);
    CHECK(g == Approx(fd).epsilon(1e-7).margin(1e-9));
  }
  // L = sigma_max of the 2 x 2 Gram matrices: closed form.
  auto eig2 = [](const std::vector<double>& S) {
    const double a = S[0], b = S[2], d = S[3];
    return 0.5 * (a + d) + std::sqrt(0.25 * (a - d) * (a - d) + b * b);
  };
  CHECK(LipschitzStep{}.constants(G, R)[0] == Approx(eig2(G)).epsilon(1e-13));
  CHECK(LipschitzStep{}.constants(P, R)[0] == Approx(eig2(P)).epsilon(1e-13));
  const auto sub = SubBlockStep{}.constants(G, R);
  CHECK(sub[1] == Approx(std::hypot(G[2], G[3])).epsilon(1e-14));
  // Objective from Gram matrices and inner products equals the direct one.
  SolverOptions o;
  o.maxiter = 0;
  Factors f0 = f;
  auto res = solve(m, f0, {}, {}, o);
  CHECK(res.stats[0].objective == Approx(direct_objective(Y, f.A, f.B)).epsilon(1e-12));
}

TEST_CASE("the exact residual equals a direct sum at every rank, in both precisions", "[tucker1]") {
  // Ranks 1-4 take the direct sum, 5 and more the model's tiles by GEMM; 37 rows leave a tail after the
  // sums' 8 lanes, and 600 columns three tiles, the last one partial.
  const Comm& self = test::comm();
  for (const std::size_t R : {1, 2, 3, 4, 5, 7}) {
    auto pl = make_planted<double>(self, {37, 30, 20}, 3, 0.2, 21);
    Tucker1<double> m(pl.Y, R);
    Factors f;
    init_random(m, f, 40 + R, true, {}, {});
    const double want = direct_objective(pl.Y.local(), f.A, f.B);
    INFO("rank " << R);
    CHECK(m.exact_residual2(f.A, f.B) == Approx(want).epsilon(1e-12));
    auto plf = make_planted<float>(self, {37, 30, 20}, 3, 0.2, 21);
    Tucker1<float> mf(plf.Y, R);
    Tensor<double> Yd(plf.Y.local().shape());
    for (std::size_t k = 0; k < Yd.size(); ++k) Yd[k] = plf.Y.local()[k];
    CHECK(mf.exact_residual2(f.A, f.B) == Approx(direct_objective(Yd, f.A, f.B)).epsilon(1e-12));
  }
}

TEST_CASE("rescaling trick leaves A B(1) unchanged to rounding", "[tucker1]") {
  const Comm& self = test::comm();
  auto pl = make_planted<double>(self, {6, 5, 4}, 3, 0.0, 3);
  Tucker1<double> m(pl.Y, 3);
  Factors f;
  init_random(m, f, 9, true, {}, {});
  auto product = [&](const Factors& g) {
    Tensor<double> AB({6, 20});
    blas::gemm<double>(blas::Trans::N, blas::Trans::N, 6, 20, 3, 1.0, g.A.data(), 6, g.B.data(), 3, 0.0, AB.data(), 6);
    return AB;
  };
  const Tensor<double> before = product(f);
  for (const char* spec : {"l1scale_1slices", "l2scale_rows", "linftyscale_average12slices", "l1scale"}) {
    Factors g = f;
    apply_constraints_once(m, g, {}, parse_constraints(spec));
    const Tensor<double> after = product(g);
    CHECK(test::rel_diff(after.span(), before.span()) < 1e-14);
    CHECK(test::rel_diff(g.B.span(), f.B.span()) > 1e-3); // B really was rescaled
  }
  Factors g = f;
  apply_constraints_once(m, g, parse_constraints("l1scale_columns"), {});
  CHECK(test::rel_diff(product(g).span(), before.span()) < 1e-14);
}

TEST_CASE("momentum changes the iterates and reaches the tolerance in fewer iterations", "[tucker1]") {
  const Comm& self = test::comm();
  auto pl = make_planted<double>(self, {20, 15, 12}, 4, 0.0, 21);
  Tucker1<double> m(pl.Y, 4);
  const auto nn = parse_constraints("nonnegative");
  SolverOptions o;
  o.tol = {{Stat::rel_error, 1e-3}};
  o.maxiter = 20000;
  Factors f1, f2;
  init_random(m, f1, 4, true, nn, nn);
  f2 = f1;
  o.momentum = true;
  auto with = solve(m, f1, nn, nn, o);
  o.momentum = false;
  auto without = solve(m, f2, nn, nn, o);
  INFO("with momentum " << with.iterations << " iterations, without " << without.iterations);
  REQUIRE(with.converged);
  REQUIRE(without.converged);
  CHECK(with.iterations * 2 < without.iterations);
  // Both reach the same fixed point: run both on to a much tighter tolerance; the errors agree.
  o.tol = {{Stat::rel_error, 1e-6}};
  o.momentum = true;
  auto w2 = solve(m, f1, nn, nn, o);
  o.momentum = false;
  o.maxiter = 200000;
  auto wo2 = solve(m, f2, nn, nn, o);
  CHECK(w2.converged);
  CHECK(wo2.converged);
  CHECK(w2.stats.back().rel_error <= 1e-6);
  CHECK(wo2.stats.back().rel_error <= 1e-6);
}

TEST_CASE("reference case: column-simplex NMF 10x20 rank 3 reaches relative error below 0.01", "[tucker1]") {
  const Comm& self = test::comm();
  // Y = W H with the columns of H on the simplex.
  auto pl = make_planted<double>(self, {10, 20}, 3, 0.0, 31);
  const auto& Bt = pl.B_local; // 3 x 20
  Tensor<double> H = Bt;
  for (std::size_t j = 0; j < 20; ++j) {
    double s = 0;
    for (std::size_t r = 0; r < 3; ++r) s += H[r + j * 3];
    for (std::size_t r = 0; r < 3; ++r) H[r + j * 3] /= s;
  }
  DistTensor<double> Y(self, BlockLayout({10, 20}, ProcessGrid({1, 1})));
  blas::gemm<double>(blas::Trans::N, blas::Trans::N, 10, 20, 3, 1.0, pl.A.data(), 10, H.data(), 3, 0.0,
                     Y.local().data(), 10);
  Tucker1<double> m(Y, 3);
  const auto consA = parse_constraints("nonnegative"), consB = parse_constraints("simplex_columns");
  Factors f;
  init_random(m, f, 1, true, consA, consB);
  SolverOptions o;
  o.tol = {{Stat::rel_error, 0.01}};
  o.maxiter = 1000;
  auto res = solve(m, f, consA, consB, o);
  CHECK(res.converged);
  CHECK(res.stats.back().rel_error < 0.01);
  // The columns of B stay on the simplex.
  for (std::size_t j = 0; j < 20; ++j) {
    double s = 0;
    for (std::size_t r = 0; r < 3; ++r) {
      CHECK(f.B[r + j * 3] >= 0);
      s += f.B[r + j * 3];
    }
    CHECK(s == Approx(1.0).epsilon(1e-12));
  }
}

TEST_CASE("reference case: Tucker-1 10x11x12 rank 5 nonnegative converges within 1000 iterations", "[tucker1]") {
  const Comm& self = test::comm();
  auto pl = make_planted<double>(self, {10, 11, 12}, 5, 0.0, 41);
  Tucker1<double> m(pl.Y, 5);
  const auto nn = parse_constraints("nonnegative");
  Factors f;
  init_random(m, f, 2, true, nn, nn);
  SolverOptions o; // the reference's default rule: stationarity below 1, at most 1000 iterations
  auto res = solve(m, f, nn, nn, o);
  INFO(res.stop_reason);
  CHECK(res.converged);
  CHECK(res.iterations < 1000);
  CHECK(res.stats.back().stationarity <= 1.0);
  CHECK(res.stats.back().rel_error < res.stats.front().rel_error);
}

TEST_CASE("real data: geodata Y_1025_points rank 3 reaches relative error 0.12", "[tucker1]") {
  const Comm& self = test::comm();
  auto Y =
      h5::read_distributed<double>(self, test::shared_data("sediment/geodata.h5"), "Y_1025_points", 2, std::nullopt);
  REQUIRE(Y.global_shape() == Shape{20, 1025, 7});
  Tucker1<double> m(Y, 3);
  const auto consA = parse_constraints("nonnegative"), consB = parse_constraints("l1scale_average12slices+nonnegative");
  // The reference's options (no momentum, one step constant per factor, stop at 0.12). With exact
  // compensation of the rescaling the number of iterations depends on the start (77 to 542 over
  // seeds 1-6): allow 1000. With one constant per row/column (sub-blocks) it takes 33-56.
  for (bool subblock : {false, true}) {
    Factors f;
    init_random(m, f, 1, true, consA, consB);
    SolverOptions o;
    o.momentum = false;
    o.subblock = subblock;
    o.tol = {{Stat::rel_error, 0.12}};
    o.maxiter = subblock ? 200 : 1000;
    auto res = solve(m, f, consA, consB, o);
    INFO("subblock " << subblock << ": " << res.stop_reason << " after " << res.iterations << " iterations, "
                     << res.stats.back().seconds << " s");
    CHECK(res.converged);
    CHECK(res.stats.back().rel_error <= 0.12);
    // B's 1-slices sum to J1 = 1025 (average12slices on this axis order) and everything is nonnegative.
    for (double b : f.B.span()) CHECK(b >= 0);
    for (std::size_t r = 0; r < 3; ++r) CHECK(row_sum(f.B, 3, r) == Approx(1025.0).epsilon(1e-10));
    for (double a : f.A.span()) CHECK(a >= 0);
  }
}

TEST_CASE("the single-pass iteration gives the same iterates and statistics as the two-pass one", "[tucker1]") {
  const Comm& self = test::comm();
  auto pl = make_planted<double>(self, {30, 40, 9}, 4, 0.05, 8);
  Tucker1<double> m(pl.Y, 4);
  const auto nn = parse_constraints("nonnegative");
  for (bool momentum : {false, true})
    for (std::size_t iters : {1u, 2u, 7u, 40u}) {
      INFO("momentum " << momentum << ", " << iters << " iterations");
      Factors f1, f2;
      init_random(m, f1, 4, true, nn, nn);
      f2 = f1;
      SolverOptions o;
      o.tol.clear();
      o.maxiter = iters;
      o.momentum = momentum;
      o.fused = true;
      auto a = solve(m, f1, nn, nn, o);
      o.fused = false;
      auto b = solve(m, f2, nn, nn, o);
      CHECK(test::rel_diff(f1.B.span(), f2.B.span()) < 1e-12);
      CHECK(test::rel_diff(f1.A.span(), f2.A.span()) < 1e-12);
      REQUIRE(a.stats.size() == b.stats.size());
      for (std::size_t k = 0; k < a.stats.size(); ++k) {
        CHECK(a.stats[k].rel_error == Approx(b.stats[k].rel_error).epsilon(1e-10));
        CHECK(a.stats[k].stationarity == Approx(b.stats[k].stationarity).epsilon(1e-9));
        CHECK(a.stats[k].grad_norm == Approx(b.stats[k].grad_norm).epsilon(1e-9));
      }
    }
  // A gradient tolerance stops both at the same iterate.
  Factors f1, f2;
  init_random(m, f1, 4, true, nn, nn);
  f2 = f1;
  SolverOptions o;
  o.tol = {{Stat::rel_stationarity, 1e-2}};
  o.maxiter = 5000;
  o.fused = true;
  auto a = solve(m, f1, nn, nn, o);
  o.fused = false;
  auto b = solve(m, f2, nn, nn, o);
  CHECK(a.converged);
  CHECK(a.iterations == b.iterations);
  CHECK(a.stats.size() == b.stats.size());
  CHECK(test::rel_diff(f1.B.span(), f2.B.span()) < 1e-12);
}

TEST_CASE("constraints that rescale B: one pass per iteration, the iterates of the two-pass form", "[tucker1]") {
  const Comm& self = test::comm();
  auto pl = make_planted<double>(self, {30, 40, 9}, 4, 0.05, 8);
  Tucker1<double> m(pl.Y, 4);
  const std::size_t iters = 25;
  for (const char* cA : {"nonnegative", "l1scale_columns+nonnegative"})
    for (const char* cB : {"l1scale_average12slices+nonnegative", "nonnegative+l2scale_1slices",
                           "clamp:0:2+l1scale_rows", "linftyscale+nonnegative", "nonnegative"})
      for (bool momentum : {false, true}) {
        INFO("A " << cA << ", B " << cB << ", momentum " << momentum);
        const auto consA = parse_constraints(cA), consB = parse_constraints(cB);
        Factors f1, f2;
        init_random(m, f1, 5, true, consA, consB);
        f2 = f1;
        SolverOptions o;
        o.tol.clear();
        o.maxiter = iters;
        o.momentum = momentum;
        o.fused = true;
        std::size_t before = m.passes();
        auto a = solve(m, f1, consA, consB, o);
        const std::size_t fused_passes = m.passes() - before;
        o.fused = false;
        before = m.passes();
        auto b = solve(m, f2, consA, consB, o);
        const std::size_t two_pass_passes = m.passes() - before;
        // One pass per iteration, plus Y B^T and A^T Y for the start's statistics and A^T Y for the last
        // iterate's B gradient; the two-pass form reads Y at least twice per iteration.
        CHECK(fused_passes == iters + 3);
        CHECK(two_pass_passes >= 2 * iters);
        // The same iterates to rounding (the project's 1e-10): the pass rescales Y B^T where the two-pass form
        // forms it again. Measured: 1e-15 to 8e-15, except 0.8-1.0e-12 for B under clamp:0:2+l1scale_rows
        // with A's rescaling and momentum.
        CHECK(test::rel_diff(f1.B.span(), f2.B.span()) < 1e-10);
        CHECK(test::rel_diff(f1.A.span(), f2.A.span()) < 1e-10);
        REQUIRE(a.stats.size() == b.stats.size());
        for (std::size_t k = 0; k < a.stats.size(); ++k) {
          CHECK(a.stats[k].rel_error == Approx(b.stats[k].rel_error).epsilon(1e-10));
          CHECK(a.stats[k].stationarity == Approx(b.stats[k].stationarity).epsilon(1e-9));
          CHECK(a.stats[k].rel_change == Approx(b.stats[k].rel_change).epsilon(1e-9));
        }
        // The constraints hold: rows of B at their norms (average12slices: each slice sums to J1 = 40).
        // (A's own rescaling, when it has one, moves B's scale again afterwards.)
        if (std::string(cB).starts_with("l1scale_average12") && std::string(cA) == "nonnegative")
          for (std::size_t r = 0; r < 4; ++r) CHECK(row_sum(f1.B, 4, r) == Approx(40.0).epsilon(1e-12));
      }
}

TEST_CASE("a row of B that the step leaves all <= 0 is replaced, and the single pass forms Q again", "[tucker1]") {
  const Comm& self = test::comm();
  auto pl = make_planted<double>(self, {20, 12, 5}, 3, 0.01, 4);
  Tucker1<double> m(pl.Y, 3);
  const auto nn = parse_constraints("nonnegative");
  for (const char* cB : {"nonnegative+l1scale_1slices", "l2scale_rows+nonnegative"}) {
    INFO("B " << cB);
    const auto consB = parse_constraints(cB);
    // Start at the planted A with row 0 of B at zero and the other rows far too large: the first step
    // drives every entry of row 0 below zero (its gradient is A_0^T (A B - Y) > 0 everywhere).
    Factors start;
    start.A = pl.A;
    start.B = pl.B_local;
    const double big = *std::max_element(pl.B_local.span().begin(), pl.B_local.span().end());
    for (std::size_t j = 0; j < start.B.size() / 3; ++j) {
      start.B[0 + j * 3] = 0;
      for (std::size_t r = 1; r < 3; ++r) start.B[r + j * 3] += 1000 * big;
    }
    for (std::size_t iters : {1u, 6u}) {
      INFO(iters << " iterations");
      Factors f1 = start, f2 = start;
      SolverOptions o;
      o.tol.clear();
      o.maxiter = iters;
      o.fused = true;
      std::size_t before = m.passes();
      solve(m, f1, nn, consB, o);
      const std::size_t passes = m.passes() - before;
      o.fused = false;
      solve(m, f2, nn, consB, o);
      CHECK(test::rel_diff(f1.B.span(), f2.B.span()) < 1e-12);
      CHECK(test::rel_diff(f1.A.span(), f2.A.span()) < 1e-12);
      // A replacement costs one more Y B^T in its iteration: certain in the first (by construction), and
      // possible in later ones of this degenerate start.
      if (iters == 1) {
        CHECK(passes == 1 + 3 + 1);
        CHECK(row_sum(f1.B, 3, 0) > 0); // replaced by a nonnegative row of norm 1, not left at zero
      } else {
        CHECK(passes > iters + 3);
        CHECK(passes <= 2 * iters + 3);
      }
    }
  }
}

TEST_CASE("a relative-decrease tolerance is met by a small decrease, never by a rise of the objective", "[tucker1]") {
  const std::vector<Tolerance> tol{{Stat::rel_decrease, 1e-3}};
  IterationStats row;
  row.iteration = 3;
  for (auto [decrease, met] :
       {std::pair<double, bool>{-0.2, false}, {-1e-12, false}, {0.0, true}, {5e-4, true}, {2e-3, false}}) {
    INFO("relative decrease " << decrease);
    row.rel_decrease = decrease;
    std::string why;
    CHECK(tolerance_met(tol, row, &why) == met);
  }
  // A solve whose objective rises on the way (momentum): it goes on to a small decrease.
  const Comm& self = test::comm();
  auto pl = make_planted<double>(self, {30, 40, 9}, 3, 0.01, 2);
  Tucker1<double> m(pl.Y, 3);
  const auto nn = parse_constraints("nonnegative");
  Factors f;
  init_random(m, f, 2, true, nn, nn);
  SolverOptions o;
  o.tol = {{Stat::rel_decrease, 1e-4}};
  o.maxiter = 5000;
  const auto res = solve(m, f, nn, nn, o);
  std::size_t rises = 0, first_rise = 0;
  for (std::size_t k = 1; k < res.stats.size(); ++k)
    if (res.stats[k].rel_decrease < 0 && rises++ == 0) first_rise = k;
  INFO(res.iterations << " iterations, " << rises << " with a rise (the first at " << first_rise << "), final error "
                      << res.stats.back().rel_error);
  REQUIRE(rises > 0); // (9 rises, the first at iteration 8 of 98)
  REQUIRE(res.converged);
  CHECK(res.stats.back().rel_decrease >= 0);
  CHECK(res.stats.back().rel_decrease <= 1e-4);
  // Stopping at the first rise would have left a worse fit.
  CHECK(res.stats.back().rel_error < 0.5 * res.stats[first_rise].rel_error);
}

TEST_CASE("a run stopped and resumed from its state reaches bit-identical factors", "[tucker1]") {
  const Comm& self = test::comm();
  auto pl = make_planted<double>(self, {12, 9, 8}, 3, 0.02, 14);
  Tucker1<double> m(pl.Y, 3);
  for (const char* cB : {"nonnegative", "l1scale_1slices+nonnegative"})
    for (bool fused : {true, false})
      for (bool random : {false, true}) {
        INFO("B " << cB << ", fused " << fused << ", random order " << random);
        const auto consA = parse_constraints("nonnegative"), consB = parse_constraints(cB);
        SolverOptions o;
        o.tol.clear();
        o.maxiter = 40;
        o.fused = fused;
        o.random_order = random;
        Factors straight;
        init_random(m, straight, 6, true, consA, consB);
        Factors part = straight;
        auto full = solve(m, straight, consA, consB, o);
        SolveControl ctl;
        Factors saved;
        SolverState state;
        std::size_t seen = 0;
        ctl.on_iteration = [&](const IterationStats&) { return ++seen < 17; }; // stop after iteration 17
        ctl.want_checkpoint = [](std::size_t, bool stopping) { return stopping; };
        ctl.write_checkpoint = [&](const Factors& f, const SolverState& st) {
          saved = f;
          state = st;
        };
        auto first = solve(m, part, consA, consB, o, ctl);
        CHECK(first.interrupted);
        CHECK(state.iteration == 17);
        SolveControl resume;
        resume.resume = &state;
        Factors cont = saved;
        auto second = solve(m, cont, consA, consB, o, resume);
        CHECK(second.iterations == full.iterations);
        CHECK(second.stats.size() == full.stats.size());
        CHECK(cont.A.vec() == straight.A.vec()); // bit-identical
        CHECK(cont.B.vec() == straight.B.vec());
        CHECK(second.stats.back().rel_error == full.stats.back().rel_error);
        CHECK(second.stats[10].stationarity == full.stats[10].stationarity);
      }
}

TEST_CASE("inner steps and HALS sweeps: fewer passes, same semantics in both iteration forms", "[tucker1]") {
  const Comm& self = test::comm();
  auto pl = make_planted<double>(self, {25, 30, 8}, 4, 0.0, 19);
  Tucker1<double> m(pl.Y, 4);
  const auto nn = parse_constraints("nonnegative");
  Factors start;
  init_random(m, start, 12, true, nn, nn);
  std::size_t its[5] = {0, 0, 0, 0, 0};
  int v = 0;
  for (auto [inner, hals] : {std::pair<std::size_t, bool>{1, false}, {8, false}, {8, true}, {8, true}, {1, false}}) {
    INFO("inner " << inner << ", hals " << hals);
    SolverOptions o;
    o.momentum = v < 3; // the last two without momentum
    o.inner = inner;
    o.hals = hals;
    o.tol = {{Stat::rel_error, 1e-4}};
    o.maxiter = 50000;
    Factors f1 = start, f2 = start;
    o.fused = true;
    auto a = solve(m, f1, nn, nn, o);
    o.fused = false;
    auto b = solve(m, f2, nn, nn, o);
    CHECK(a.converged);
    CHECK(a.iterations == b.iterations);
    CHECK(test::rel_diff(f1.B.span(), f2.B.span()) < 1e-9);
    CHECK(test::rel_diff(f1.A.span(), f2.A.span()) < 1e-9);
    for (double x : f1.B.span()) CHECK(x >= 0);
    its[v++] = a.iterations;
  }
  INFO("iterations to 1e-4: single step " << its[0] << ", 8 gradient steps " << its[1] << ", 8 HALS sweeps " << its[2]
                                          << ", without momentum: 8 HALS sweeps " << its[3] << ", single step "
                                          << its[4]);
  CHECK(its[1] < its[0]);
  CHECK(its[3] < its[4]); // HALS sweeps help where momentum is off (with momentum, gradient steps did better)
  // Entrywise constraints other than nonnegativity hold after the extra steps.
  const auto box = parse_constraints("clamp:0:0.5");
  Factors f = start;
  apply_constraints_once(m, f, box, box);
  SolverOptions o;
  o.inner = 6;
  o.hals = true;
  o.maxiter = 30;
  o.tol.clear();
  solve(m, f, box, box, o);
  for (double x : f.A.span()) CHECK((x >= 0 && x <= 0.5));
  for (double x : f.B.span()) CHECK((x >= 0 && x <= 0.5));
}

TEST_CASE("exact block solves (BPP): each step is the block's NNLS minimizer, same in both iteration forms",
          "[tucker1]") {
  const Comm& self = test::comm();
  auto pl = make_planted<double>(self, {25, 30, 8}, 4, 0.0, 19);
  Tucker1<double> m(pl.Y, 4);
  const auto nn = parse_constraints("nonnegative");
  Factors start;
  init_random(m, start, 12, true, nn, nn);
  SolverOptions o;
  o.tol = {{Stat::rel_error, 1e-4}};
  o.maxiter = 50000;
  o.momentum = false;
  Factors pg = start;
  const auto plain = solve(m, pg, nn, nn, o); // the reference's single step, without extrapolation
  o.bpp = true;
  Factors f1 = start, f2 = start;
  o.fused = true;
  const auto a = solve(m, f1, nn, nn, o);
  o.fused = false;
  const auto b = solve(m, f2, nn, nn, o);
  // (Extrapolation is not applied to an exact solve: its result does not depend on the point it starts from.)
  INFO("iterations to 1e-4 without extrapolation: projected gradient " << plain.iterations << ", BPP " << a.iterations);
  CHECK(a.converged);
  CHECK(a.iterations == b.iterations);
  CHECK(test::rel_diff(f1.B.span(), f2.B.span()) < 1e-9);
  CHECK(test::rel_diff(f1.A.span(), f2.A.span()) < 1e-9);
  CHECK(a.iterations < plain.iterations);

  // One iteration from the start: B is the NNLS minimizer for the start's A, and A the one for that B
  // (KKT conditions of both block problems, checked from the Gram matrices and products with Y).
  Factors one = start;
  SolverOptions o1;
  o1.bpp = true;
  o1.maxiter = 1;
  o1.tol.clear();
  solve(m, one, nn, nn, o1);
  auto kkt = [](const std::vector<double>& G, const Tensor<double>& Mt, std::span<const double> X, std::size_t R,
                std::size_t n, bool rows) {
    double worst = 0, scale = 0;
    for (double x : Mt.span()) scale = std::max(scale, std::abs(x));
    for (std::size_t j = 0; j < n; ++j)
      for (std::size_t r = 0; r < R; ++r) {
        double g = -(rows ? Mt[j + r * n] : Mt[r + j * R]);
        for (std::size_t q = 0; q < R; ++q) g += G[r + q * R] * (rows ? X[j + q * n] : X[q + j * R]);
        const double x = rows ? X[j + r * n] : X[r + j * R];
        CHECK(x >= 0);
        worst = std::max(worst, x > 0 ? std::abs(g) : std::max(0.0, -g));
      }
    return worst / scale;
  };
  // B was solved with the start's A, then A with the new B.
  const std::size_t R = 4, nb = one.B.size() / R, na = one.A.size() / R;
  CHECK(kkt(m.gram_A(start.A), m.AtY(start.A), one.B.vec(), R, nb, false) < 1e-10);
  CHECK(kkt(m.gram_B(one.B), m.YBt(one.B), one.A.vec(), R, na, true) < 1e-10);

  // Blocks with other constraints keep the projected gradient step: same iterates as without bpp.
  const auto box = parse_constraints("clamp:0:0.5");
  Factors c1 = start, c2 = start;
  apply_constraints_once(m, c1, box, box);
  apply_constraints_once(m, c2, box, box);
  SolverOptions ob;
  ob.maxiter = 20;
  ob.tol.clear();
  solve(m, c1, box, box, ob);
  ob.bpp = true;
  solve(m, c2, box, box, ob);
  CHECK(c1.A.vec() == c2.A.vec());
  CHECK(c1.B.vec() == c2.B.vec());
}

TEST_CASE("extrapolation after exact solves: fewer iterations, same in both forms, feasible, resumable", "[tucker1]") {
  const Comm& self = test::comm();
  auto pl = make_planted<double>(self, {25, 30, 8}, 4, 0.0, 19);
  Tucker1<double> m(pl.Y, 4);
  const auto nn = parse_constraints("nonnegative");
  Factors start;
  init_random(m, start, 12, true, nn, nn);
  SolverOptions o;
  o.tol = {{Stat::rel_error, 1e-4}};
  o.maxiter = 50000;
  o.bpp = true;
  Factors plain_f = start;
  const auto plain = solve(m, plain_f, nn, nn, o);
  o.extrapolate = true;
  Factors f1 = start, f2 = start;
  o.fused = true;
  const auto a = solve(m, f1, nn, nn, o);
  o.fused = false;
  const auto b = solve(m, f2, nn, nn, o);
  INFO("iterations to 1e-4 with exact solves: plain " << plain.iterations << ", extrapolated " << a.iterations);
  REQUIRE(plain.converged);
  REQUIRE(a.converged);
  CHECK(a.stats.back().rel_error <= 1e-4);
  // Both iteration forms run the same arithmetic: the same iterates.
  CHECK(a.iterations == b.iterations);
  CHECK(test::rel_diff(f1.A.span(), f2.A.span()) < 1e-9);
  CHECK(test::rel_diff(f1.B.span(), f2.B.span()) < 1e-9);
  // The point of it: at most half the passes of plain alternating exact solves on this planted problem.
  CHECK(2 * a.iterations <= plain.iterations);
  // The returned factors are feasible, and their error is the one reported.
  for (double x : f1.A.span()) CHECK(x >= 0);
  for (double x : f1.B.span()) CHECK(x >= 0);
  const double y2 = m.normY2();
  CHECK(std::abs(std::sqrt(m.exact_residual2(f1.A, f1.B) / y2) - a.stats.back().rel_error) < 1e-9);
  // The error rises now and then (the restarts), so the weight is adapted in both directions.
  std::size_t rises = 0;
  for (std::size_t k = 1; k < a.stats.size(); ++k) rises += a.stats[k].objective > a.stats[k - 1].objective;
  INFO("iterations whose error rose: " << rises);
  CHECK(rises < a.iterations / 2);

  // Stopped after iteration 9 and resumed from its state: bit-identical to the straight run.
  for (bool fused : {true, false}) {
    INFO("fused " << fused);
    SolverOptions r;
    r.tol.clear();
    r.maxiter = 30;
    r.bpp = r.extrapolate = true;
    r.fused = fused;
    Factors straight = start, part = start;
    const auto full = solve(m, straight, nn, nn, r);
    SolveControl ctl;
    Factors saved;
    SolverState state;
    std::size_t seen = 0;
    ctl.on_iteration = [&](const IterationStats&) { return ++seen < 9; };
    ctl.want_checkpoint = [](std::size_t, bool stopping) { return stopping; };
    ctl.write_checkpoint = [&](const Factors& f, const SolverState& st) {
      saved = f;
      state = st;
    };
    solve(m, part, nn, nn, r, ctl);
    REQUIRE(state.iteration == 9);
    SolveControl resume;
    resume.resume = &state;
    Factors cont = saved;
    const auto second = solve(m, cont, nn, nn, r, resume);
    CHECK(second.iterations == full.iterations);
    CHECK(cont.A.vec() == straight.A.vec());
    CHECK(cont.B.vec() == straight.B.vec());
  }
}

TEST_CASE("the pass's measured choice of read-ahead leaves the factors bit-identical", "[tucker1]") {
  // 96 x 1200 with 64 KiB tiles (85 columns): 15 tiles a pass. Measuring takes one pass and then two per
  // candidate (at most 9 passes), so most of the 60 iterations run with the mode it chose.
  const Comm& self = test::comm();
  auto pl = make_planted<double>(self, {96, 40, 30}, 5, 0.02, 3);
  Tucker1<double> m(pl.Y, 5);
  const auto nn = parse_constraints("nonnegative");
  REQUIRE(fused_tile_kib(64));
  const auto modes = tile_read_ahead_modes(96, fused_tile_columns(96, sizeof(double)), 96, 5, sizeof(double));
  REQUIRE(modes.size() >= 2); // 0, 2 and 4 are always candidates unless a mode is fixed
  // 8 | 4 among them on AVX-512 only (tile_products.hpp)
  CHECK((std::find_if(modes.begin(), modes.end(), [](int mode) {
           return (mode & ~tile_second_one_block) == (tile_one_block | 4);
         }) != modes.end()) == (std::string(tile_products_isa()) == "avx512"));
  auto run = [&](int fixed, bool tune) {
    REQUIRE(tile_products_prefetch(fixed));
    fused_read_ahead_tuning(tune);
    Factors f;
    init_random(m, f, 2, true, nn, nn);
    SolverOptions o;
    o.tol.clear();
    o.maxiter = 60;
    o.fused = true;
    solve(m, f, nn, nn, o);
    return f;
  };
  const Factors tuned = run(-1, true);
  const int chosen = fused_read_ahead_choice(96, 5, sizeof(double));
  CHECK(std::find(modes.begin(), modes.end(), chosen) != modes.end());
  for (int fixed : {0, 2, 3, 4, tile_one_block | 3, tile_one_block | 4, tile_second_one_block | 3,
                    tile_second_one_block | tile_one_block | 4}) {
    INFO("read-ahead " << fixed);
    const Factors f = run(fixed, true);
    CHECK(fused_read_ahead_choice(96, 5, sizeof(double)) == -1); // a fixed mode is not measured
    CHECK(f.A.vec() == tuned.A.vec());
    CHECK(f.B.vec() == tuned.B.vec());
  }
  const Factors rule = run(-1, false);
  CHECK(fused_read_ahead_choice(96, 5, sizeof(double)) == -1);
  CHECK(rule.A.vec() == tuned.A.vec());
  CHECK(rule.B.vec() == tuned.B.vec());
  fused_read_ahead_tuning(true);
  REQUIRE(fused_tile_kib(0));
}

TEST_CASE("a joint read-ahead measurement keeps the mode that is fastest at the slowest process", "[tucker1]") {
  // The pass itself, with `agree` standing in for the other processes: one that was slow with every candidate
  // but the last. 96 x 1200 with 64 KiB tiles: 15 tiles a pass.
  const std::size_t Ip = 96, Mp = 1200, R = 5;
  REQUIRE(fused_tile_kib(64));
  REQUIRE(tile_products_prefetch(-1));
  fused_read_ahead_tuning(true); // forgets earlier choices
  const auto modes = tile_read_ahead_modes(Ip, fused_tile_columns(Ip, sizeof(double)), Ip, R, sizeof(double));
  const std::size_t n = modes.size();
  REQUIRE(n >= 2);
  std::vector<double> Y(Ip * Mp), A(Ip * R), G(R * R, 0.0), inv_L(R, 1e-3), omega(R, 0.0);
  for (std::size_t i = 0; i < Y.size(); ++i) Y[i] = static_cast<double>((i * 7919) % 101) / 101.0;
  for (std::size_t i = 0; i < A.size(); ++i) A[i] = static_cast<double>((i * 31) % 17) / 17.0;
  blas::gemm<double>(blas::Trans::T, blas::Trans::N, R, R, Ip, 1.0, A.data(), Ip, A.data(), Ip, 0.0, G.data(), R);
  std::vector<double> B(R * Mp, 0.5), Bprev(R * Mp, 0.5), Q(Ip * R), P(R * R);
  std::vector<std::size_t> sizes; // of each agreement
  std::size_t state_count = n;    // the candidate count the other process reports
  bool other_measures = true;
  bool other_alone = false; // the other process was asked to measure alone
  FusedStepInput in;
  in.A = A.data();
  in.G = G.data();
  in.inv_L = inv_L.data();
  in.omega = omega.data();
  in.agree = [&](std::span<double> v) {
    sizes.push_back(v.size());
    if (v.size() == 5) {
      v[0] = std::max(v[0], static_cast<double>(state_count));
      v[1] = std::max(v[1], -static_cast<double>(state_count));
      v[2] = std::max(v[2], other_measures ? 0.0 : 1.0);
      v[4] = std::max(v[4], other_alone ? 1.0 : 0.0);
      return;
    }
    for (std::size_t i = 0; i < v.size(); ++i)
      if (i % n != n - 1) v[i] = std::max(v[i], 1.0); // a second per pass
  };
  auto passes = [&](FusedTuning& t, std::size_t count) {
    in.tuning = &t;
    for (std::size_t k = 0; k < count; ++k) {
      FusedStepOutput out;
      out.Q = Q.data();
      out.P = P.data();
      fused_b_step<double>(Y.data(), Ip, Mp, R, B.data(), Bprev.data(), in, out);
    }
  };
  // One pass with the rule's pick, then two rounds over the candidates; the choice is agreed after the last.
  FusedTuning first;
  passes(first, 2 * n);
  CHECK(first.chosen == -1);
  CHECK(fused_read_ahead_choice(Ip, R, sizeof(double)) == -1);
  passes(first, 1);
  CHECK(first.chosen == modes[n - 1]);
  CHECK(sizes == std::vector<std::size_t>{5, 2 * n});
  CHECK(fused_read_ahead_choice(Ip, R, sizeof(double)) == modes[n - 1]);
  passes(first, 3);
  CHECK(sizes.size() == 2); // no more agreements
  // A later model whose processes all hold a choice starts with it, after one agreement.
  sizes.clear();
  FusedTuning second;
  passes(second, 1);
  CHECK(second.chosen == modes[n - 1]);
  passes(second, 2 * n);
  CHECK(sizes == std::vector<std::size_t>{5});
  // Processes that disagree on the candidates, or one that does not measure: the rule's pick, nothing measured.
  sizes.clear();
  state_count = n + 1;
  FusedTuning third;
  passes(third, 2 * n + 2);
  CHECK(third.chosen == modes.front());
  CHECK(sizes == std::vector<std::size_t>{5});
  state_count = n;
  other_measures = false;
  fused_read_ahead_tuning(true);
  FusedTuning fourth;
  passes(fourth, 2 * n + 2);
  CHECK(fourth.chosen == modes.front());
  CHECK(fused_read_ahead_choice(Ip, R, sizeof(double)) == -1);
  // fused_read_ahead_tuning begins a measurement again, even in a FusedTuning that had chosen.
  other_measures = true;
  sizes.clear();
  fused_read_ahead_tuning(true);
  passes(fourth, 2 * n + 1);
  CHECK(fourth.chosen == modes[n - 1]);
  CHECK(sizes == std::vector<std::size_t>{5, 2 * n});
  // Another process asked to measure alone: after the first agreement every process measures alone (one
  // untimed pass, then two rounds over the candidates, timed on this process only), with no further agreement.
  other_alone = true;
  sizes.clear();
  fused_read_ahead_tuning(true);
  FusedTuning fifth;
  passes(fifth, 1);
  CHECK(fifth.alone);
  passes(fifth, 1 + 2 * n - 1);
  CHECK(fused_read_ahead_choice(Ip, R, sizeof(double)) == -1);
  passes(fifth, 1);
  const int alone_choice = fused_read_ahead_choice(Ip, R, sizeof(double));
  CHECK(std::find(modes.begin(), modes.end(), alone_choice) != modes.end());
  CHECK(fifth.chosen == -1); // the joint measurement chose nothing
  passes(fifth, 3);
  CHECK(sizes == std::vector<std::size_t>{5});
  // This process asked to: the same, whatever the other one says.
  other_alone = false;
  sizes.clear();
  const bool was_alone = fused_read_ahead_alone(true);
  fused_read_ahead_tuning(true);
  FusedTuning sixth;
  passes(sixth, 2 + 2 * n);
  CHECK(sixth.alone);
  CHECK(sizes == std::vector<std::size_t>{5});
  CHECK(fused_read_ahead_choice(Ip, R, sizeof(double)) >= 0);
  fused_read_ahead_alone(was_alone);
  fused_read_ahead_tuning(true);
  REQUIRE(fused_tile_kib(0));
}

TEST_CASE("A^T Y by tiles, and the float products a tile at a time, equal the whole products", "[tucker1]") {
  const Comm& self = test::comm();
  const std::size_t I = 20, M = 9000, R = 16; // tiles of 2^16 / 16 = 4096 columns: three, the last of 808
  auto pl = make_planted<double>(self, {I, M}, R, 0.1, 3);
  Tucker1<double> m(pl.Y, R);
  Factors f;
  init_random(m, f, 2, true, {}, {});
  const Tensor<double> whole = m.AtY(f.A);
  std::vector<double> tiled(whole.size(), std::nan(""));
  std::vector<std::size_t> firsts, counts;
  m.AtY_by_tiles(f.A, [&](std::size_t c0, std::size_t n, const double* Mt) {
    firsts.push_back(c0);
    counts.push_back(n);
    std::copy(Mt, Mt + R * n, tiled.begin() + static_cast<std::ptrdiff_t>(R * c0));
  });
  CHECK(firsts == std::vector<std::size_t>{0, 4096, 8192});
  CHECK(counts == std::vector<std::size_t>{4096, 4096, 808});
  CHECK(test::rel_diff(std::span<const double>(tiled), whole.span()) < 1e-14);
  // Y stored in float: A^T Y and Y B^T (B cast a tile at a time, the tiles' sums added in double) against sums in
  // double of the same float values.
  Tensor<float> yf(pl.Y.local().shape());
  for (std::size_t i = 0; i < yf.size(); ++i) yf[i] = static_cast<float>(pl.Y.local()[i]);
  const DistTensor<float> Yf(self, pl.Y.layout(), std::move(yf));
  Tucker1<float> mf(Yf, R);
  std::vector<double> aty(R * M, 0.0), ybt(I * R, 0.0);
  for (std::size_t j = 0; j < M; ++j)
    for (std::size_t r = 0; r < R; ++r)
      for (std::size_t i = 0; i < I; ++i) {
        const double y = Yf.local()[i + I * j];
        aty[r + R * j] += static_cast<double>(static_cast<float>(f.A(i, r))) * y;
        ybt[i + I * r] += y * static_cast<double>(static_cast<float>(f.B[r + R * j]));
      }
  CHECK(test::rel_diff(mf.AtY(f.A).span(), std::span<const double>(aty)) < 1e-6);
  CHECK(test::rel_diff(mf.YBt(f.B).span(), std::span<const double>(ybt)) < 1e-6);
  std::vector<double> tiled_f(R * M);
  mf.AtY_by_tiles(f.A, [&](std::size_t c0, std::size_t n, const double* Mt) {
    std::copy(Mt, Mt + R * n, tiled_f.begin() + static_cast<std::ptrdiff_t>(R * c0));
  });
  CHECK(test::rel_diff(std::span<const double>(tiled_f), mf.AtY(f.A).span()) == 0);
}
