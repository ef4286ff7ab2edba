// Serial checks of the Tucker model: the tensor-times-matrix kernels against direct sums, the solver's
// objective and gradients (factors and core) against a direct computation, planted tensors fitted, scaled
// normalizations absorbed by the core exactly.
#include <catch2/catch.hpp>

#include <cmath>

#include "../support/factor_check.hpp"
#include "../support/test_support.hpp"
#include "unmix/core/rng.hpp"
#include "unmix/kernels/mttkrp.hpp"
#include "unmix/model/planted.hpp"
#include "unmix/model/tucker.hpp"
#include "unmix/solver/cp_solver.hpp"

using namespace unmix;
using unmix::test::unravel;

namespace {

/// prod_m F_m[i_m, r_m], with mode `skip` left out.
double factor_product(const std::vector<Tensor<double>>& F, const Shape& i, const Shape& r,
                      std::size_t skip = std::size_t(-1)) {
  double p = 1;
  for (std::size_t m = 0; m < F.size(); ++m)
    if (m != skip) p *= F[m](i[m], r[m]);
  return p;
}

/// The whole model tensor sum_r G[r] prod_m F_m[i_m, r_m], by the definition.
std::vector<double> direct_model(const Shape& shape, const std::vector<Tensor<double>>& F, const Tensor<double>& G) {
  std::vector<double> X(shape_size(shape), 0.0);
  for (std::size_t k = 0; k < X.size(); ++k) {
    const Shape i = unravel(k, shape);
    for (std::size_t c = 0; c < G.size(); ++c) X[k] += G[c] * factor_product(F, i, unravel(c, G.shape()));
  }
  return X;
}

double direct_objective(const Tensor<double>& Y, const std::vector<Tensor<double>>& F, const Tensor<double>& G) {
  const auto X = direct_model(Y.shape(), F, G);
  double f = 0;
  for (std::size_t k = 0; k < X.size(); ++k) f += (X[k] - Y[k]) * (X[k] - Y[k]);
  return f;
}

Tensor<double> random_tensor(const Shape& shape, std::uint64_t stream) {
  const CounterRng rng(99, stream);
  Tensor<double> X(shape);
  for (std::size_t k = 0; k < X.size(); ++k) X[k] = rng.normal(k);
  return X;
}

} // namespace

TEST_CASE("multi_mode_product and contract_except equal direct sums", "[tucker]") {
  for (const Shape& shape : {Shape{4, 3, 5}, Shape{3, 2, 4, 2}, Shape{1, 5, 3}}) {
    const std::size_t N = shape.size();
    const Tensor<double> X = random_tensor(shape, 1);
    for (std::size_t skip = 0; skip <= N; ++skip) {
      INFO("shape " << shape_string(shape) << " skipping mode " << skip);
      // M_m: rows[m] x shape[m], rows[m] = m + 2.
      std::vector<Tensor<double>> M;
      std::vector<const double*> Ms(N, nullptr);
      std::vector<std::size_t> rows(N);
      Shape out_shape = shape;
      for (std::size_t m = 0; m < N; ++m) {
        rows[m] = m + 2;
        M.push_back(random_tensor({rows[m], shape[m]}, 10 + m));
        Ms[m] = M[m].data();
        if (m != skip) out_shape[m] = rows[m];
      }
      Shape got_shape = shape;
      const std::vector<double> got = multi_mode_product<double>(X.data(), got_shape, Ms, rows, skip);
      REQUIRE(got_shape == out_shape);
      std::vector<double> want(shape_size(out_shape), 0.0);
      for (std::size_t k = 0; k < X.size(); ++k) {
        const Shape i = unravel(k, shape);
        for (std::size_t o = 0; o < want.size(); ++o) {
          const Shape j = unravel(o, out_shape);
          double p = X[k];
          for (std::size_t m = 0; m < N && p != 0; ++m) p = m == skip ? (j[m] == i[m] ? p : 0.0) : p * M[m](j[m], i[m]);
          want[o] += p;
        }
      }
      CHECK(test::rel_diff(got, want) < 1e-13);
      // Into a buffer: the same values, exactly the result's size written (the sentinels after it stay).
      REQUIRE(multi_mode_product_shape(shape, rows, skip) == out_shape);
      std::vector<double> into(want.size() + 3, -7.0);
      Shape into_shape = shape;
      multi_mode_product_into<double>(X.data(), into_shape, Ms, rows, skip, static_cast<std::size_t>(-1), into.data());
      CHECK(into_shape == out_shape);
      CHECK(std::vector<double>(into.begin(), into.begin() + static_cast<std::ptrdiff_t>(want.size())) == got);
      CHECK(std::vector<double>(into.end() - 3, into.end()) == std::vector<double>(3, -7.0));
    }
    // X_(n) Z_(n)^T for Z of X's shape but 3 in mode n.
    for (std::size_t n = 0; n < N; ++n) {
      Shape zs = shape;
      zs[n] = 3;
      const Tensor<double> Z = random_tensor(zs, 20 + n);
      std::vector<double> got(shape[n] * 3), want(shape[n] * 3, 0.0);
      contract_except(X.data(), Z.data(), shape, n, 3, got.data());
      for (std::size_t k = 0; k < X.size(); ++k) {
        Shape i = unravel(k, shape);
        const std::size_t a = i[n];
        for (std::size_t b = 0; b < 3; ++b) {
          i[n] = b;
          std::size_t lin = 0, stride = 1;
          for (std::size_t m = 0; m < N; ++m) {
            lin += i[m] * stride;
            stride *= zs[m];
          }
          want[a + b * shape[n]] += X[k] * Z[lin];
        }
      }
      CHECK(test::rel_diff(got, want) < 1e-13);
    }
  }
}

TEST_CASE("multi_mode_product by slabs of the skipped mode equals the chain of whole mode products", "[tucker]") {
  // Slabs of 2^9 values here (2^13 by default; at least 512 contiguous values): the chain runs slab by slab (gathered
  // where the slab is not contiguous, scattered where its result is not), every slab the same products as the whole
  // tensor's. Against mode_product applied to the whole tensor in the same order.
  struct Case {
    Shape shape;
    std::size_t skip, also;
  };
  const std::size_t none = static_cast<std::size_t>(-1);
  for (const Case& c : {Case{{3, 15001, 4}, 1, none}, Case{{4, 3, 15001}, 2, none}, Case{{15001, 3, 4}, 0, none},
                        Case{{3, 9001, 2, 5}, 1, 3}, Case{{2, 3, 7001, 3}, 2, none}}) {
    const std::size_t N = c.shape.size();
    INFO("shape " << shape_string(c.shape) << " skipping " << c.skip);
    const Tensor<double> X = random_tensor(c.shape, 3);
    std::vector<Tensor<double>> M;
    std::vector<const double*> Ms(N, nullptr);
    std::vector<std::size_t> rows(N);
    for (std::size_t m = 0; m < N; ++m) {
      rows[m] = m % 2 == 0 ? 2 : 3;
      M.push_back(random_tensor({rows[m], c.shape[m]}, 40 + m));
      Ms[m] = M[m].data();
    }
    // Held at once beside the result: at most half of what the whole chain's intermediates hold.
    REQUIRE(multi_mode_product_slab(std::size_t{1} << 40));
    const double at_once = multi_mode_product_values(c.shape, rows, c.skip, c.also);
    REQUIRE(multi_mode_product_slab(std::size_t{1} << 9));
    const double by_slabs = multi_mode_product_values(c.shape, rows, c.skip, c.also);
    const double result = static_cast<double>(shape_size(multi_mode_product_shape(c.shape, rows, c.skip, c.also)));
    CHECK(by_slabs - result <= 0.5 * (at_once - result));
    Shape ws = c.shape;
    std::vector<double> want(X.data(), X.data() + X.size());
    for (std::size_t m : mode_product_order(c.shape, rows, c.skip, c.also)) {
      want = mode_product<double>(want.data(), ws, m, Ms[m], rows[m]);
      ws[m] = rows[m];
    }
    Shape gs = c.shape;
    std::vector<double> got(want.size() + 2, -3.0);
    multi_mode_product_into<double>(X.data(), gs, Ms, rows, c.skip, c.also, got.data());
    CHECK(gs == ws);
    CHECK(got[want.size()] == -3.0);
    got.resize(want.size());
    CHECK(test::rel_diff(got, want) < 1e-13);
    // float data, summed in float per product as the whole chain does
    const std::vector<float> Xf(X.data(), X.data() + X.size());
    Shape fs = c.shape;
    std::vector<double> gotf(want.size());
    multi_mode_product_into<float>(Xf.data(), fs, Ms, rows, c.skip, c.also, gotf.data());
    CHECK(test::rel_diff(gotf, want) < 1e-5);
  }
  REQUIRE(multi_mode_product_slab(0));
  CHECK_FALSE(multi_mode_product_slab((std::size_t{1} << 40) + 1));
}
TEST_CASE("Tucker: objective and gradient statistics (factors and core) match a direct computation", "[tucker]") {
  const Comm& self = test::comm();
  const Shape shape{5, 4, 3};
  const std::vector<std::size_t> ranks{2, 3, 2};
  auto pl = make_planted_tucker<double>(self, shape, {3, 3, 3}, 0.2, 21); // a model too small: nonzero gradient
  Tucker<double> m(pl.Y, ranks);
  const std::vector<ConstraintList> cons(4, parse_constraints("nonnegative"));
  CpFactors f;
  init_random_cp(m, f, 4, true, cons);
  // The start's core is scaled so that the model's norm is the data's.
  {
    const auto X = direct_model(shape, f.F, f.G);
    double x2 = 0;
    for (double v : X) x2 += v * v;
    CHECK(x2 == Approx(pl.Y.norm2_squared()).epsilon(1e-12));
  }
  SolverOptions o;
  o.maxiter = 3;
  o.tol = {{Stat::stationarity, 1e-300}}; // asks for the gradient statistics, never met
  const SolveResult res = solve_cp(m, f, cons, o);
  REQUIRE(res.iterations == 3);
  const double fd = direct_objective(pl.Y.local(), f.F, f.G);
  CHECK(res.stats.back().objective == Approx(fd).epsilon(1e-12));
  CHECK(res.stats.back().rel_error == Approx(std::sqrt(fd / pl.Y.norm2_squared())).epsilon(1e-12));
  // Gradients by the definition (half the objective's): g_n[i, r_n] = sum over the entries with i_n = i of
  // (model - Y) G[r] prod_(m != n) F_m[i_m, r_m]; g_G[r] = sum over the entries of (model - Y) prod_m F_m[i_m, r_m].
  const auto X = direct_model(shape, f.F, f.G);
  std::vector<Tensor<double>> g;
  for (std::size_t n = 0; n < 3; ++n) g.emplace_back(Shape{shape[n], ranks[n]});
  Tensor<double> gG(Shape(ranks.begin(), ranks.end()));
  for (std::size_t k = 0; k < X.size(); ++k) {
    const Shape i = unravel(k, shape);
    const double e = X[k] - pl.Y.local()[k];
    for (std::size_t c = 0; c < f.G.size(); ++c) {
      const Shape r = unravel(c, f.G.shape());
      gG[c] += e * factor_product(f.F, i, r);
      for (std::size_t n = 0; n < 3; ++n) g[n](i[n], r[n]) += e * f.G[c] * factor_product(f.F, i, r, n);
    }
  }
  double g2 = 0, s2 = 0;
  auto add = [&](const Tensor<double>& gr, const Tensor<double>& V) {
    for (std::size_t k = 0; k < gr.size(); ++k) {
      g2 += gr[k] * gr[k];
      if (V[k] > 0 || gr[k] < 0) s2 += gr[k] * gr[k];
    }
  };
  for (std::size_t n = 0; n < 3; ++n) add(g[n], f.F[n]);
  add(gG, f.G);
  CHECK(res.stats.back().grad_norm == Approx(std::sqrt(g2)).epsilon(1e-10));
  CHECK(res.stats.back().stationarity == Approx(std::sqrt(s2)).epsilon(1e-10));
  // Passes over Y: one per factor and iteration, N - 1 more for the gradient statistics; without a gradient
  // tolerance none more.
  SolverOptions q;
  q.maxiter = 2;
  q.tol = {{Stat::rel_error, 1e-12}};
  const std::size_t before = m.passes();
  const SolveResult r2 = solve_cp(m, f, cons, q);
  CHECK(std::isnan(r2.stats.back().stationarity));
  CHECK(m.passes() - before == 1 + 2 * 3); // the start's objective, then one pass per factor and iteration
}

TEST_CASE("Tucker: a planted noise-free tensor is fitted (projected gradient and exact block solves)", "[tucker]") {
  const Comm& self = test::comm();
  const Shape shape{12, 10, 8};
  const std::vector<std::size_t> ranks{3, 2, 2};
  auto pl = make_planted_tucker<double>(self, shape, ranks, 0.0, 5);
  Tucker<double> m(pl.Y, ranks);
  const std::vector<ConstraintList> cons(4, parse_constraints("nonnegative"));
  for (const bool bpp : {false, true}) {
    INFO((bpp ? "bpp" : "pg"));
    CpFactors f;
    init_random_cp(m, f, 2, true, cons);
    SolverOptions o;
    o.bpp = bpp;
    o.inner = bpp ? 5 : 1;
    o.maxiter = 20000;
    const double tol = 1e-6;
    o.tol = {{Stat::rel_error, tol}};
    const SolveResult res = solve_cp(m, f, cons, o);
    INFO(res.stop_reason << " after " << res.iterations);
    CHECK(res.converged);
    CHECK(direct_objective(pl.Y.local(), f.F, f.G) <= 1.0001 * tol * tol * pl.Y.norm2_squared());
    for (std::size_t n = 0; n < 3; ++n)
      for (double v : f.F[n].span()) CHECK(v >= 0);
    for (double v : f.G.span()) CHECK(v >= 0);
  }
}

TEST_CASE("Tucker: momentum changes the iterates and saves iterations to the same fit", "[tucker]") {
  const Comm& self = test::comm();
  const std::vector<std::size_t> ranks{3, 3, 2};
  auto pl = make_planted_tucker<double>(self, {15, 12, 10}, ranks, 0.0, 8);
  Tucker<double> m(pl.Y, ranks);
  const std::vector<ConstraintList> cons(4, parse_constraints("nonnegative"));
  std::size_t iters[2];
  for (const bool mom : {false, true}) {
    CpFactors f;
    init_random_cp(m, f, 3, true, cons);
    SolverOptions o;
    o.momentum = mom;
    o.maxiter = 30000;
    o.tol = {{Stat::rel_error, 1e-3}};
    const SolveResult res = solve_cp(m, f, cons, o);
    INFO("momentum " << mom << ": " << res.stop_reason << " at " << res.stats.back().rel_error);
    CHECK(res.converged);
    iters[mom] = res.iterations;
  }
  INFO("without momentum " << iters[0] << ", with " << iters[1]);
  CHECK(iters[1] * 4 < iters[0]);
}

TEST_CASE("Tucker: scaled normalizations of the factors are absorbed by the core exactly", "[tucker]") {
  const Comm& self = test::comm();
  const Shape shape{10, 8, 6};
  const std::vector<std::size_t> ranks{3, 2, 2};
  auto pl = make_planted_tucker<double>(self, shape, ranks, 0.01, 13);
  Tucker<double> m(pl.Y, ranks);
  const ConstraintList scaled = parse_constraints("l1scale_columns+nonnegative");
  std::vector<ConstraintList> cons{scaled, scaled, scaled, parse_constraints("nonnegative")};
  CpFactors f;
  init_random_cp(m, f, 6, true, cons);
  SolverOptions o;
  o.maxiter = 300;
  o.tol.clear();
  const SolveResult res = solve_cp(m, f, cons, o);
  // Every factor has columns summing to 1, and the objective the solver reports is the model's.
  for (std::size_t n = 0; n < 3; ++n)
    for (std::size_t r = 0; r < ranks[n]; ++r) {
      double s = 0;
      for (std::size_t i = 0; i < shape[n]; ++i) s += f.F[n](i, r);
      CHECK(s == Approx(1.0).epsilon(1e-12));
    }
  CHECK(res.stats.back().objective == Approx(direct_objective(pl.Y.local(), f.F, f.G)).epsilon(1e-10));
  CHECK(res.stats.back().rel_error < 0.03);
}

TEST_CASE("Tucker: the sources are the core times the other factors", "[tucker]") {
  const Comm& self = test::comm();
  const Shape shape{6, 5, 4};
  const std::vector<std::size_t> ranks{2, 3, 2};
  auto pl = make_planted_tucker<double>(self, shape, ranks, 0.0, 3);
  Tucker<double> m(pl.Y, ranks);
  const Tensor<double> B = m.sources_local(pl.F, pl.G);
  REQUIRE(B.shape() == Shape{2, 5, 4});
  // A B_(1) is the data.
  for (std::size_t k = 0; k < pl.Y.local().size(); ++k) {
    const Shape i = unravel(k, shape);
    double v = 0;
    for (std::size_t r = 0; r < 2; ++r) v += pl.F[0](i[0], r) * B[r + 2 * (i[1] + 5 * i[2])];
    CHECK(v == Approx(pl.Y.local()[k]).epsilon(1e-12));
  }
  CHECK(m.exact_residual2(pl.F, pl.G) < 1e-24 * pl.Y.norm2_squared());
}

TEST_CASE("Tucker: the residual formed in slabs and the sources formed by boxes match direct computations",
          "[tucker]") {
  const Comm& self = test::comm();
  // 600 x 1000 x 3: a slab of the last mode is 2^20 / 600000 -> 1 index, three slabs.
  const Shape shape{600, 1000, 3};
  const std::vector<std::size_t> ranks{2, 3, 2};
  auto pl = make_planted_tucker<double>(self, shape, ranks, 0.0, 19);
  Tucker<double> m(pl.Y, ranks);
  Tensor<double> G = pl.G;
  for (std::size_t i = 0; i < G.size(); ++i) G[i] += 0.05 * static_cast<double>(i % 3); // off the data
  const Tensor<double> B = m.sources_local(pl.F, G);
  double want = 0;
  const std::size_t cols = shape_size(shape) / 600;
  for (std::size_t j = 0; j < cols; ++j)
    for (std::size_t i = 0; i < 600; ++i) {
      double v = 0;
      for (std::size_t r = 0; r < 2; ++r) v += pl.F[0](i, r) * B[r + 2 * j];
      want += (pl.Y.local()[i + 600 * j] - v) * (pl.Y.local()[i + 600 * j] - v);
    }
  REQUIRE(want > 0);
  CHECK(m.exact_residual2(pl.F, G) == Approx(want).epsilon(1e-10));
  for (const auto& [at, count] :
       {std::pair<Shape, Shape>{{0, 0, 0}, {2, 1000, 3}}, {{1, 17, 1}, {1, 40, 2}}, {{0, 999, 2}, {2, 1, 1}}}) {
    const Tensor<double> part = m.sources_box(pl.F, G, at, count);
    REQUIRE(part.shape() == count);
    std::size_t wrong = 0;
    for (std::size_t k = 0; k < part.size(); ++k) {
      const Shape i = unravel(k, count);
      const double b = B[(at[0] + i[0]) + B.extent(0) * ((at[1] + i[1]) + B.extent(1) * (at[2] + i[2]))];
      wrong += std::abs(part[k] - b) > 1e-14 * std::abs(b) ? 1 : 0;
    }
    CHECK(wrong == 0);
  }
}

TEST_CASE("Tucker in float32 storage fits a planted tensor as well as float64", "[tucker]") {
  const Comm& self = test::comm();
  const Shape shape{12, 10, 8};
  const std::vector<std::size_t> ranks{3, 2, 2};
  auto pd = make_planted_tucker<double>(self, shape, ranks, 0.0, 5);
  auto pf = make_planted_tucker<float>(self, shape, ranks, 0.0, 5);
  const std::vector<ConstraintList> cons(4, parse_constraints("nonnegative"));
  Tucker<double> md(pd.Y, ranks);
  Tucker<float> mf(pf.Y, ranks);
  CpFactors fd, ff;
  init_random_cp(md, fd, 2, true, cons);
  init_random_cp(mf, ff, 2, true, cons);
  SolverOptions o;
  o.bpp = true;
  o.inner = 5;
  o.maxiter = 3000;
  o.tol = {{Stat::rel_error, 1e-4}};
  const auto rd = solve_cp(md, fd, cons, o), rf = solve_cp(mf, ff, cons, o);
  CHECK(rd.converged);
  CHECK(rf.converged);
  CHECK(rf.iterations <= rd.iterations + 5);
  // The error reported in float is the model's (the products' float rounding does not hide it).
  CHECK(direct_objective(pd.Y.local(), ff.F, ff.G) <= 1.01e-8 * pd.Y.norm2_squared());
}

TEST_CASE("Tucker: with scaled normalizations the momentum histories stay the previous iterates' models", "[tucker]") {
  // The rescaling trick moves every factor's history to its new scale and the core's history to the inverse
  // one: the model of (prev, core_prev) must stay the previous iterate's model, that of (last, core_last) the
  // current one, whichever factor was normalized.
  const Comm& self = test::comm();
  const Shape shape{7, 6, 5};
  const std::vector<std::size_t> ranks{3, 2, 2};
  auto pl = make_planted_tucker<double>(self, shape, ranks, 0.05, 17);
  Tucker<double> m(pl.Y, ranks);
  const ConstraintList scaled = parse_constraints("l1scale_columns+nonnegative");
  const std::vector<ConstraintList> cons{parse_constraints("l2scale_columns+nonnegative"), scaled, scaled,
                                         parse_constraints("nonnegative")};
  CpFactors f;
  init_random_cp(m, f, 8, true, cons);
  std::vector<double> previous = direct_model(shape, f.F, f.G);
  std::size_t checked = 0;
  CpSolveControl ctl;
  ctl.want_checkpoint = [](std::size_t, bool) { return true; };
  ctl.write_checkpoint = [&](const CpFactors& now, const CpSolverState& st) {
    const std::vector<double> current = direct_model(shape, now.F, now.G);
    CHECK(test::rel_diff(direct_model(shape, st.last, st.core_last), current) < 1e-13);
    CHECK(test::rel_diff(direct_model(shape, st.prev, st.core_prev), previous) < 1e-13);
    previous = current;
    ++checked;
  };
  SolverOptions o;
  o.maxiter = 12;
  o.tol.clear();
  const SolveResult res = solve_cp(m, f, cons, o, ctl);
  CHECK(checked == 12);
  // Without momentum the objective never rises: every block step is a descent step of the same model.
  CpFactors g;
  init_random_cp(m, g, 8, true, cons);
  o.momentum = false;
  o.maxiter = 60;
  const SolveResult plain = solve_cp(m, g, cons, o);
  for (std::size_t k = 1; k < plain.stats.size(); ++k)
    CHECK(plain.stats[k].objective <= plain.stats[k - 1].objective * (1 + 1e-12));
  CHECK(res.stats.back().rel_error < res.stats.front().rel_error);
}

TEST_CASE("Tucker products over several slabs: planted data, mode-0 products and the exact residual", "[tucker]") {
  const Comm& self = test::comm();
  // 16 x 16 x 4200: the planted block and the exact residual each take several slabs of the last mode, and the
  // mode-0 product of the 256 x 4200 unfolding by a 70-row matrix more than one slab of columns.
  const Shape shape{16, 16, 4200};
  const std::vector<std::size_t> ranks{2, 3, 2};
  auto pl = make_planted_tucker<double>(self, shape, ranks, 0.0, 23);
  Tucker<double> m(pl.Y, ranks);
  for (const std::size_t k : {std::size_t{0}, std::size_t{16 * 16 * 1500 + 37}, pl.Y.local().size() - 1}) {
    std::size_t rest = k;
    const std::size_t i = rest % 16, j = (rest /= 16) % 16, l = rest / 16;
    double v = 0;
    for (std::size_t c = 0; c < pl.G.size(); ++c) {
      const std::size_t a = c % 2, b = (c / 2) % 3, e = c / 6;
      v += pl.G[c] * pl.F[0](i, a) * pl.F[1](j, b) * pl.F[2](l, e);
    }
    CHECK(pl.Y.local()[k] == Approx(v).epsilon(1e-13));
  }
  CHECK(m.exact_residual2(pl.F, pl.G) < 1e-26 * pl.Y.norm2_squared());
  Tensor<double> F2 = pl.F[2];
  F2[100] += 1.0; // one changed entry of the last factor: the residual is exactly that change times the rest
  const std::vector<Tensor<double>> moved{pl.F[0], pl.F[1], F2};
  double want = 0;
  {
    // d model[i, j, 100] = sum G[a, b, 0] F0[i, a] F1[j, b] (the column 0 entry 100 of F2 moved by 1).
    for (std::size_t i = 0; i < 16; ++i)
      for (std::size_t j = 0; j < 16; ++j) {
        double dv = 0;
        for (std::size_t a = 0; a < 2; ++a)
          for (std::size_t b = 0; b < 3; ++b) dv += pl.G[a + 2 * b] * pl.F[0](i, a) * pl.F[1](j, b);
        want += dv * dv;
      }
  }
  CHECK(m.exact_residual2(moved, pl.G) == Approx(want).epsilon(1e-10));
  // The mode-0 product in slabs: the block as 256 x 4200 (its first two modes merged) times a 70 x 256 matrix.
  const Shape s{256, 4200};
  const Tensor<double> M = random_tensor({70, 256}, 5);
  const double* Y0 = pl.Y.local().data();
  const std::vector<double> got = mode_product<double>(Y0, s, 0, M.data(), 70);
  for (const std::size_t col : {std::size_t{0}, std::size_t{3744}, std::size_t{4199}})
    for (const std::size_t r : {std::size_t{0}, std::size_t{69}}) {
      double v = 0;
      for (std::size_t q = 0; q < 256; ++q) v += M(r, q) * Y0[q + 256 * col];
      CHECK(got[r + 70 * col] == Approx(v).epsilon(1e-12));
    }
  // With 10 rows the tile kernels take mode 0 (256 contiguous values) and mode 2 (256 x 4200 slices), in
  // double and in float; BLAS mode 1 (16 contiguous values).
  const Shape s3{16, 16, 4200};
  const std::vector<float> Yf(Y0, Y0 + pl.Y.local().size());
  for (std::size_t n = 0; n < 3; ++n) {
    const Tensor<double> Mn = random_tensor({10, s3[n]}, 30 + n);
    const std::vector<double> gd = mode_product<double>(Y0, s3, n, Mn.data(), 10);
    const std::vector<double> gf = mode_product<float>(Yf.data(), s3, n, Mn.data(), 10);
    Shape os = s3;
    os[n] = 10;
    for (const std::size_t o : {std::size_t{0}, gd.size() / 3, gd.size() / 2 + 7, gd.size() - 1}) {
      const Shape idx = unravel(o, os);
      double v = 0;
      for (std::size_t q = 0; q < s3[n]; ++q) {
        Shape at = idx;
        at[n] = q;
        v += Mn(idx[n], q) * Y0[at[0] + 16 * (at[1] + 16 * at[2])];
      }
      INFO("mode " << n << ", entry " << o);
      CHECK(gd[o] == Approx(v).epsilon(1e-12));
      CHECK(gf[o] == Approx(v).epsilon(1e-4));
    }
  }
}

TEST_CASE("Tucker: the dimension tree gives the iterates of one pass per mode, in two passes per iteration",
          "[tucker]") {
  const Comm& self = test::comm();
  const std::vector<std::size_t> ranks{3, 2, 3};
  auto pl = make_planted_tucker<double>(self, {6, 5, 40}, ranks, 0.05, 12);
  for (const char* others : {"nonnegative", "l1scale_columns+nonnegative"}) {
    const std::vector<ConstraintList> cons{parse_constraints("nonnegative"), parse_constraints(others),
                                           parse_constraints(others), parse_constraints("nonnegative")};
    Tucker<double> tree(pl.Y, ranks), plain(pl.Y, ranks, false);
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
    CHECK(test::rel_diff(ft.G.span(), fp.G.span()) < 1e-12);
    CHECK(rt.stats.back().stationarity == Approx(rp.stats.back().stationarity).epsilon(1e-10));
    CHECK(rt.stats.back().objective == Approx(rp.stats.back().objective).epsilon(1e-12));
    CHECK(tree.passes() == 2 + 2 * 30); // the start (the last mode's product, the contraction), two per iteration
    CHECK(plain.passes() == 1 + 3 * 30 + (2 * 30 + 2)); // one per mode, and two more for the statistics
  }
  // The rule: the shortest block of the last mode at least 12 times its rank for three modes.
  CHECK(Tucker<double>::tree_pays(3, 3, 36));
  CHECK(!Tucker<double>::tree_pays(3, 3, 35));
}
