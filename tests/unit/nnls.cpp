#include <catch2/catch.hpp>

#include <lapacke.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <vector>

#include "unmix/core/rng.hpp"
#include "unmix/kernels/nnls.hpp"

using namespace unmix;

namespace {

using Vec = std::vector<double>;

/// Random numbers from a counter-based stream.
struct Draw {
  CounterRng rng;
  std::uint64_t k = 0;
  Draw(std::uint64_t seed, std::uint64_t stream) : rng(seed, stream) {}
  double normal() { return rng.normal(k++); }
  double uniform() { return rng.uniform(k++); }
  std::size_t below(std::size_t n) { return std::min(n - 1, static_cast<std::size_t>(uniform() * double(n))); }
};

/// A least-squares problem in normal-equations form: G = C^T C (R x R), M = C^T B (R x n).
struct Problem {
  std::size_t R = 0, n = 0;
  Vec G, M;
};

/// C^T B for C (rows x R) and B (rows x n).
Vec ctb(const Vec& C, std::size_t rows, std::size_t R, const Vec& B, std::size_t n) {
  Vec M(R * n, 0.0);
  for (std::size_t j = 0; j < n; ++j)
    for (std::size_t a = 0; a < R; ++a) {
      double s = 0;
      for (std::size_t i = 0; i < rows; ++i) s += C[i + a * rows] * B[i + j * rows];
      M[a + j * R] = s;
    }
  return M;
}

/// C^T C.
Vec gram(const Vec& C, std::size_t rows, std::size_t R) { return ctb(C, rows, R, C, R); }

/// Random C (rows x R, normal or uniform) and B (rows x n, normal or uniform).
Problem random_problem(Draw& d, std::size_t R, std::size_t n, std::size_t rows, bool nonneg) {
  Vec C(rows * R), B(rows * n);
  for (auto& v : C) v = nonneg ? d.uniform() : d.normal();
  for (auto& v : B) v = nonneg ? d.uniform() : d.normal();
  return {R, n, gram(C, rows, R), ctb(C, rows, R, B, n)};
}

double objective(std::size_t R, const double* G, const double* m, const double* x) {
  double f = 0;
  for (std::size_t a = 0; a < R; ++a) {
    double gx = 0;
    for (std::size_t b = 0; b < R; ++b) gx += G[a + b * R] * x[b];
    f += x[a] * (0.5 * gx - m[a]);
  }
  return f;
}

Vec gradient(std::size_t R, const double* G, const double* m, const double* x) {
  Vec g(R);
  for (std::size_t a = 0; a < R; ++a) {
    double s = -m[a];
    for (std::size_t b = 0; b < R; ++b) s += G[a + b * R] * x[b];
    g[a] = s;
  }
  return g;
}

/// Exact minimizer by enumeration of the 2^R supports: for every support S with a numerically
/// nonsingular G_SS, the unconstrained minimizer on S is a candidate if it is nonnegative; the best
/// candidate is the minimizer (a minimizer with linearly independent support always exists).
Vec brute_force(std::size_t R, const double* G, const double* m) {
  Vec best(R, 0.0), x(R), Gs, xs;
  double best_f = 0;
  for (unsigned S = 1; S < (1u << R); ++S) {
    std::vector<std::size_t> idx;
    for (std::size_t r = 0; r < R; ++r)
      if ((S >> r) & 1u) idx.push_back(r);
    const std::size_t k = idx.size();
    Gs.assign(k * k, 0.0);
    xs.assign(k, 0.0);
    for (std::size_t a = 0; a < k; ++a) {
      xs[a] = m[idx[a]];
      for (std::size_t b = 0; b < k; ++b) Gs[a + b * k] = G[idx[a] + idx[b] * R];
    }
    const Vec diag = [&] {
      Vec dg(k);
      for (std::size_t a = 0; a < k; ++a) dg[a] = Gs[a + a * k];
      return dg;
    }();
    const auto kk = static_cast<lapack_int>(k);
    if (LAPACKE_dpotrf(LAPACK_COL_MAJOR, 'L', kk, Gs.data(), kk) != 0) continue;
    bool singular = false;
    for (std::size_t a = 0; a < k; ++a)
      if (!(Gs[a + a * k] * Gs[a + a * k] > 1e-10 * diag[a])) singular = true;
    if (singular) continue;
    if (LAPACKE_dpotrs(LAPACK_COL_MAJOR, 'L', kk, 1, Gs.data(), kk, xs.data(), kk) != 0) continue;
    if (std::any_of(xs.begin(), xs.end(), [](double v) { return v < 0; })) continue;
    std::fill(x.begin(), x.end(), 0.0);
    for (std::size_t a = 0; a < k; ++a) x[idx[a]] = xs[a];
    const double f = objective(R, G, m, x.data());
    if (f < best_f) {
      best_f = f;
      best = x;
    }
  }
  return best;
}

double max_abs(const double* v, std::size_t n) {
  double a = 0;
  for (std::size_t i = 0; i < n; ++i) a = std::max(a, std::abs(v[i]));
  return a;
}

double max_diff(const double* a, const double* b, std::size_t n) {
  double d = 0;
  for (std::size_t i = 0; i < n; ++i) d = std::max(d, std::abs(a[i] - b[i]));
  return d;
}

/// The largest violation of the KKT conditions over all columns, each term relative to the size of
/// what was summed: x < 0, a gradient entry below 0, or a nonzero gradient where x > 0.
double kkt_violation(std::size_t R, std::size_t n, const double* G, const double* M, const double* X) {
  double worst = 0;
  for (std::size_t j = 0; j < n; ++j) {
    const double* x = X + j * R;
    const double* m = M + j * R;
    for (std::size_t a = 0; a < R; ++a) {
      double g = -m[a], s = std::abs(m[a]);
      for (std::size_t b = 0; b < R; ++b) {
        g += G[a + b * R] * x[b];
        s += std::abs(G[a + b * R] * x[b]);
      }
      if (!(x[a] >= 0) || !std::isfinite(g)) return INFINITY;
      if (s == 0) continue;
      worst = std::max(worst, -g / s);
      if (x[a] > 0) worst = std::max(worst, std::abs(g) / s);
    }
  }
  return worst;
}

/// G = Q diag(lambda) Q^T with lambda from 1 down to 1 / cond (log-spaced), Q a random orthogonal
/// matrix, and M = C^T B for C = diag(sqrt(lambda)) Q^T.
Problem ill_conditioned(Draw& d, std::size_t R, std::size_t n, double cond) {
  Vec Q(R * R);
  for (auto& v : Q) v = d.normal();
  for (int pass = 0; pass < 2; ++pass) // Gram-Schmidt, twice for orthogonality to rounding
    for (std::size_t a = 0; a < R; ++a) {
      for (std::size_t b = 0; b < a; ++b) {
        double s = 0;
        for (std::size_t i = 0; i < R; ++i) s += Q[i + a * R] * Q[i + b * R];
        for (std::size_t i = 0; i < R; ++i) Q[i + a * R] -= s * Q[i + b * R];
      }
      double nrm = 0;
      for (std::size_t i = 0; i < R; ++i) nrm += Q[i + a * R] * Q[i + a * R];
      for (std::size_t i = 0; i < R; ++i) Q[i + a * R] /= std::sqrt(nrm);
    }
  Vec C(R * R); // C = diag(sqrt(lambda)) Q^T: row i is sqrt(lambda_i) q_i^T
  for (std::size_t i = 0; i < R; ++i) {
    const double lam = std::pow(cond, -double(i) / double(R - 1));
    for (std::size_t a = 0; a < R; ++a) C[i + a * R] = std::sqrt(lam) * Q[a + i * R];
  }
  Vec B(R * n);
  for (auto& v : B) v = d.normal();
  return {R, n, gram(C, R, R), ctb(C, R, R, B, n)};
}

} // namespace

TEST_CASE("NNLS by block principal pivoting equals brute force for R <= 6", "[nnls]") {
  Draw d(2024, 1);
  std::size_t columns = 0, zero_columns = 0;
  for (std::size_t R = 1; R <= 6; ++R)
    for (int trial = 0; trial < 6; ++trial) {
      const std::size_t n = 60;
      Problem p = random_problem(d, R, n, R + 2 + std::size_t(trial), trial % 2 == 1);
      // Some columns with m <= 0 (solution 0) and a column of zeros.
      for (std::size_t j = 0; j < n; j += 7)
        for (std::size_t a = 0; a < R; ++a) p.M[a + j * R] = -std::abs(p.M[a + j * R]);
      std::fill(p.M.begin() + 3 * long(R), p.M.begin() + 4 * long(R), 0.0);
      Vec X(R * n, 0.0);
      const NnlsStats st = nnls_bpp_columns(R, n, p.G.data(), p.M.data(), X.data());
      CHECK(st.columns == n);
      CHECK(st.fallbacks == 0);
      for (std::size_t j = 0; j < n; ++j) {
        const Vec want = brute_force(R, p.G.data(), p.M.data() + j * R);
        const double scale = max_abs(want.data(), R);
        if (scale == 0) ++zero_columns;
        INFO("R " << R << " trial " << trial << " column " << j);
        CHECK(max_diff(X.data() + j * R, want.data(), R) <= 1e-10 * scale);
        // The Lawson-Hanson fallback on its own.
        Vec xl(R);
        nnls_active_set_column(R, p.G.data(), p.M.data() + j * R, xl.data());
        CHECK(max_diff(xl.data(), want.data(), R) <= 1e-10 * scale);
        ++columns;
      }
    }
  CHECK(columns == 6 * 6 * 60);
  CHECK(zero_columns >= 6 * 6 * 10);
}

TEST_CASE("NNLS with a zero column in C is exact and sets that variable to 0", "[nnls]") {
  // G_rr = 0 alone does not make the problem degenerate: the minimizer is unique and no shift is used.
  Draw d(78, 2);
  for (std::size_t R = 2; R <= 6; ++R) {
    const std::size_t rows = R + 4, n = 80, zero = R / 2;
    Vec C(rows * R), B(rows * n);
    for (auto& v : C) v = d.normal();
    for (auto& v : B) v = d.normal();
    for (std::size_t i = 0; i < rows; ++i) C[i + zero * rows] = 0.0;
    const Vec G = gram(C, rows, R), M = ctb(C, rows, R, B, n);
    Vec X(R * n, 1.0); // warm start with every variable passive, the zero one included
    const NnlsStats st = nnls_bpp_columns(R, n, G.data(), M.data(), X.data());
    CHECK(st.fallbacks == 0);
    for (std::size_t j = 0; j < n; ++j) {
      const Vec want = brute_force(R, G.data(), M.data() + j * R);
      INFO("R " << R << " column " << j);
      CHECK(X[zero + j * R] == 0.0);
      CHECK(max_diff(X.data() + j * R, want.data(), R) <= 1e-10 * max_abs(want.data(), R));
    }
  }
}

TEST_CASE("NNLS with a rank-deficient G matches brute force in objective and gradient", "[nnls]") {
  // C has a zero column, a duplicated column and a column that is the sum of two others, so G is
  // singular (the solve runs on a shifted G) and the minimizer is not unique; the fit C x (hence G x)
  // and the objective are unique.
  Draw d(77, 2);
  for (std::size_t R = 3; R <= 6; ++R)
    for (int trial = 0; trial < 4; ++trial) {
      const std::size_t rows = R + 3, n = 80;
      Vec C(rows * R), B(rows * n);
      for (auto& v : C) v = trial % 2 ? d.uniform() : d.normal();
      for (auto& v : B) v = d.normal();
      for (std::size_t i = 0; i < rows; ++i) {
        C[i + 0 * rows] = 0.0;                                           // zero column: G_00 = 0
        C[i + 1 * rows] = C[i + 2 * rows];                               // duplicate
        if (R >= 5) C[i + 4 * rows] = C[i + 2 * rows] + C[i + 3 * rows]; // sum of two
      }
      const Vec G = gram(C, rows, R), M = ctb(C, rows, R, B, n);
      REQUIRE(G[0] == 0.0);
      Vec X(R * n, 0.0);
      const NnlsStats st = nnls_bpp_columns(R, n, G.data(), M.data(), X.data());
      CHECK(st.fallbacks == 0);
      for (std::size_t j = 0; j < n; ++j) {
        const double* m = M.data() + j * R;
        const double* x = X.data() + j * R;
        const Vec want = brute_force(R, G.data(), m);
        const Vec gw = gradient(R, G.data(), m, want.data()), gx = gradient(R, G.data(), m, x);
        const double fw = objective(R, G.data(), m, want.data()), fx = objective(R, G.data(), m, x);
        double scale = max_abs(m, R);
        INFO("R " << R << " trial " << trial << " column " << j);
        CHECK(x[0] == 0.0);
        CHECK(std::abs(fx - fw) <= 1e-10 * std::abs(fw) + 1e-13 * scale * max_abs(want.data(), R));
        CHECK(max_diff(gx.data(), gw.data(), R) <= 1e-10 * scale);
      }
      CHECK(kkt_violation(R, n, G.data(), M.data(), X.data()) <= 1e-10);
    }
}

TEST_CASE("NNLS solutions satisfy the KKT conditions for R = 10, 20, 40", "[nnls]") {
  Draw d(5, 3);
  const std::size_t n = 5000;
  for (const std::size_t R : {10, 20, 40}) {
    for (int kind = 0; kind < 3; ++kind) {
      Problem p = kind == 0   ? random_problem(d, R, n, 2 * R, false)
                  : kind == 1 ? random_problem(d, R, n, 3 * R, true)
                              : ill_conditioned(d, R, n, 1e8);
      Vec X(R * n, 0.0);
      const NnlsStats st = nnls_bpp_columns(R, n, p.G.data(), p.M.data(), X.data());
      const double v = kkt_violation(R, n, p.G.data(), p.M.data(), X.data());
      INFO("R " << R << " kind " << kind << " iterations " << st.iterations << " solves " << st.solves << " KKT " << v);
      CHECK(v <= 1e-10);
      CHECK(st.iterations >= 1);
      if (kind < 2) {
        CHECK(st.fallbacks == 0);
      } else {
        // Condition 1e8: the pivoting needs many single exchanges on some columns, and the default cap
        // (2 R + 20 exchange steps) hands those to Lawson-Hanson. Without the cap it terminates by itself.
        CHECK(st.fallbacks < n / 4);
        Vec X2(R * n, 0.0);
        NnlsOptions uncapped;
        uncapped.max_iterations = 1000000;
        const NnlsStats s2 = nnls_bpp_columns(R, n, p.G.data(), p.M.data(), X2.data(), uncapped);
        CHECK(s2.fallbacks == 0);
        CHECK(kkt_violation(R, n, p.G.data(), p.M.data(), X2.data()) <= 1e-10);
      }
      CHECK(st.solves < st.columns * (st.iterations + 1));
      // Some columns end with positive and zero entries mixed (the constraints are active).
      std::size_t zeros = 0, positives = 0;
      for (double a : X) (a == 0 ? zeros : positives) += 1;
      CHECK(zeros > n);
      CHECK(positives > n);
    }
  }
}

TEST_CASE("NNLS handles R = 1, n = 0, a zero G and more than 64 variables", "[nnls]") {
  {
    const double G = 4, M[4] = {2, -1, 0, 8};
    double X[4] = {5, 5, 0, 0};
    nnls_bpp_columns(1, 4, &G, M, X);
    CHECK(X[0] == 0.5);
    CHECK(X[1] == 0.0);
    CHECK(X[2] == 0.0);
    CHECK(X[3] == 2.0);
  }
  {
    const NnlsStats st = nnls_bpp_columns(3, 0, nullptr, nullptr, nullptr);
    CHECK(st.columns == 0);
    CHECK(st.iterations == 0);
  }
  {
    const Vec G(9, 0.0), M{1, 2, 3, 0, 0, 0};
    Vec X(6, 1.0);
    nnls_bpp_columns(3, 2, G.data(), M.data(), X.data());
    CHECK(X == Vec(6, 0.0));
  }
  {
    Draw d(9, 4);
    const std::size_t R = 70, n = 300;
    Problem p = random_problem(d, R, n, 2 * R, false);
    Vec X(R * n, 0.0);
    const NnlsStats st = nnls_bpp_columns(R, n, p.G.data(), p.M.data(), X.data());
    CHECK(kkt_violation(R, n, p.G.data(), p.M.data(), X.data()) <= 1e-10);
    CHECK(st.fallbacks == 0);
  }
}

TEST_CASE("NNLS row form equals the column form on the transposed data", "[nnls]") {
  Draw d(31, 5);
  for (const std::size_t R : {4, 12}) {
    const std::size_t n = 700;
    Problem p = random_problem(d, R, n, 2 * R, false);
    Vec Q(n * R), A(n * R, 0.0), X(R * n, 0.0);
    for (std::size_t i = 0; i < n; ++i)
      for (std::size_t r = 0; r < R; ++r) Q[i + r * n] = p.M[r + i * R];
    const NnlsStats sr = nnls_bpp_rows(R, n, p.G.data(), Q.data(), A.data());
    const NnlsStats sc = nnls_bpp_columns(R, n, p.G.data(), p.M.data(), X.data());
    CHECK(sr.columns == n);
    CHECK(sr.iterations == sc.iterations);
    CHECK(sr.solves == sc.solves);
    double diff = 0;
    for (std::size_t i = 0; i < n; ++i)
      for (std::size_t r = 0; r < R; ++r) diff = std::max(diff, std::abs(A[i + r * n] - X[r + i * R]));
    CHECK(diff <= 1e-14 * max_abs(X.data(), X.size()));
    CHECK(kkt_violation(R, n, p.G.data(), p.M.data(), X.data()) <= 1e-10);
  }
}

TEST_CASE("NNLS warm starts give the cold-start answer", "[nnls]") {
  Draw d(8, 6);
  const std::size_t R = 12, n = 2000;
  Problem p = random_problem(d, R, n, 30, true);
  Vec cold(R * n, 0.0);
  const NnlsStats sc = nnls_bpp_columns(R, n, p.G.data(), p.M.data(), cold.data());
  const double scale = max_abs(cold.data(), cold.size());

  // From the solution itself: one grouped solve, no exchange.
  Vec warm = cold;
  const NnlsStats s0 = nnls_bpp_columns(R, n, p.G.data(), p.M.data(), warm.data());
  CHECK(s0.iterations == 0);
  CHECK(max_diff(warm.data(), cold.data(), warm.size()) <= 1e-12 * scale);

  // From random entries of both signs (negative entries are ignored), from all-positive entries,
  // and from the solution of a perturbed problem.
  for (int start = 0; start < 3; ++start) {
    Vec M2 = p.M;
    for (auto& v : M2) v *= 1 + 0.05 * d.normal();
    Vec near(R * n, 0.0);
    nnls_bpp_columns(R, n, p.G.data(), M2.data(), near.data());
    for (std::size_t i = 0; i < warm.size(); ++i)
      warm[i] = start == 0 ? d.normal() : start == 1 ? d.uniform() : near[i];
    const NnlsStats s = nnls_bpp_columns(R, n, p.G.data(), p.M.data(), warm.data());
    INFO("start " << start << " iterations " << s.iterations << " (cold " << sc.iterations << ")");
    CHECK(max_diff(warm.data(), cold.data(), warm.size()) <= 1e-10 * scale);
    CHECK(s.fallbacks == 0);
  }

  // Ignoring the start on request.
  Vec ignored(R * n, 1.0);
  NnlsOptions opt;
  opt.warm_start = false;
  const NnlsStats si = nnls_bpp_columns(R, n, p.G.data(), p.M.data(), ignored.data(), opt);
  CHECK(si.iterations == sc.iterations);
  CHECK(max_diff(ignored.data(), cold.data(), cold.size()) == 0.0);
}

TEST_CASE("NNLS recovers a planted sparse nonnegative solution", "[nnls]") {
  // b = C x_true exactly: the residual at the optimum is 0, so every gradient entry is 0 there and the
  // zeros of x_true are degenerate; rounding noise in the gradient must not derail the pivoting.
  Draw d(13, 7);
  for (const std::size_t R : {6, 10, 25}) {
    const std::size_t rows = 4 * R, n = 1500;
    Vec C(rows * R), Xt(R * n, 0.0), B(rows * n, 0.0);
    for (auto& v : C) v = d.uniform();
    for (std::size_t j = 1; j < n; ++j) { // column 0 stays zero
      const std::size_t k = 1 + d.below(std::min<std::size_t>(R, 6));
      for (std::size_t t = 0; t < k; ++t) Xt[d.below(R) + j * R] = 0.5 + 1.5 * d.uniform();
    }
    for (std::size_t j = 0; j < n; ++j)
      for (std::size_t a = 0; a < R; ++a)
        for (std::size_t i = 0; i < rows; ++i) B[i + j * rows] += C[i + a * rows] * Xt[a + j * R];
    const Vec G = gram(C, rows, R), M = ctb(C, rows, R, B, n);
    Vec X(R * n, 0.0);
    const NnlsStats st = nnls_bpp_columns(R, n, G.data(), M.data(), X.data());
    INFO("R " << R << " iterations " << st.iterations);
    CHECK(max_diff(X.data(), Xt.data(), X.size()) <= 1e-10 * max_abs(Xt.data(), Xt.size()));
    CHECK(st.fallbacks == 0);
    // The row form on the same data (A = X^T).
    Vec Q(n * R), A(n * R, 0.0);
    for (std::size_t i = 0; i < n; ++i)
      for (std::size_t r = 0; r < R; ++r) Q[i + r * n] = M[r + i * R];
    nnls_bpp_rows(R, n, G.data(), Q.data(), A.data());
    double diff = 0;
    for (std::size_t i = 0; i < n; ++i)
      for (std::size_t r = 0; r < R; ++r) diff = std::max(diff, std::abs(A[i + r * n] - Xt[r + i * R]));
    CHECK(diff <= 1e-10 * max_abs(Xt.data(), Xt.size()));
  }
}

TEST_CASE("NNLS falls back to Lawson-Hanson when the iteration cap is hit", "[nnls]") {
  Draw d(21, 8);
  const std::size_t R = 6, n = 400;
  Problem p = random_problem(d, R, n, 9, false);
  Vec X(R * n, 0.0), ref(R * n, 0.0);
  NnlsOptions opt;
  opt.max_iterations = 1;
  const NnlsStats st = nnls_bpp_columns(R, n, p.G.data(), p.M.data(), X.data(), opt);
  CHECK(st.fallbacks > 0);
  CHECK(st.iterations == 1);
  for (std::size_t j = 0; j < n; ++j) {
    const Vec want = brute_force(R, p.G.data(), p.M.data() + j * R);
    CHECK(max_diff(X.data() + j * R, want.data(), R) <= 1e-10 * max_abs(want.data(), R));
  }
}

// Timing (prints, asserts nothing about time): unmix_unit_tests "[nnls_timing]".
TEST_CASE("NNLS timing for R = 10, n = 20000", "[.][nnls_timing]") {
  const std::size_t R = 10, rows = 2000, n = 20000;
  Draw d(1, 9);
  Vec C(rows * R);
  for (auto& v : C) v = d.uniform();
  // The next outer iteration of an alternating solve: the other factor moved by about 1%.
  Vec C2 = C;
  for (auto& v : C2) v *= 1 + 0.01 * d.normal();

  auto time_solve = [&](const char* label, const Vec& G, const Vec& M, const Vec& start, bool warm) {
    double best = INFINITY;
    NnlsStats st;
    NnlsOptions opt;
    opt.warm_start = warm;
    for (int rep = 0; rep < 7; ++rep) {
      Vec X = start;
      const auto t0 = std::chrono::steady_clock::now();
      st = nnls_bpp_columns(R, n, G.data(), M.data(), X.data(), opt);
      const auto t1 = std::chrono::steady_clock::now();
      best = std::min(best, std::chrono::duration<double>(t1 - t0).count());
    }
    std::printf("  %-40s %7.2f ms %7.1f ns/column  max iterations %zu  factorizations %5zu  fallbacks %zu\n", label,
                1e3 * best, 1e9 * best / double(n), st.iterations, st.solves, st.fallbacks);
  };
  // M = C^T D for data D (rows x n) drawn column by column from a fixed stream.
  auto make_M = [&](const Vec& CC, int which) {
    Draw dd(2, 10 + std::uint64_t(which));
    Vec M(R * n), col(rows);
    for (std::size_t j = 0; j < n; ++j) {
      if (which == 0) { // uniform nonnegative data
        for (auto& v : col) v = dd.uniform();
      } else { // planted: D = C x + noise, x nonnegative with 3 nonzeros
        Vec xt(R, 0.0);
        for (int t = 0; t < 3; ++t) xt[dd.below(R)] = dd.uniform();
        for (std::size_t i = 0; i < rows; ++i) {
          double v = 0.05 * std::abs(dd.normal());
          for (std::size_t a = 0; a < R; ++a) v += C[i + a * rows] * xt[a];
          col[i] = v;
        }
      }
      for (std::size_t a = 0; a < R; ++a) {
        double s = 0;
        for (std::size_t i = 0; i < rows; ++i) s += CC[i + a * rows] * col[i];
        M[a + j * R] = s;
      }
    }
    return M;
  };
  const Vec G = gram(C, rows, R), G2 = gram(C2, rows, R);
  const Vec zero(R * n, 0.0);
  Vec rnd(R * n);
  for (auto& v : rnd) v = d.uniform();
  for (int which = 0; which < 3; ++which) {
    const char* name = which == 0   ? "M = C^T D, D uniform random (2000 x 20000)"
                       : which == 1 ? "M = C^T D, D = C X + |noise|, X sparse nonnegative"
                                    : "M uniform random (10 x 20000)";
    Vec M, M2;
    if (which < 2) {
      M = make_M(C, which);
      M2 = make_M(C2, which);
    } else {
      M.resize(R * n);
      for (auto& v : M) v = d.uniform();
      M2 = M;
    }
    std::printf("%s\n", name);
    time_solve("cold start (X = 0)", G, M, zero, false);
    time_solve("warm start, random positive X", G, M, rnd, true);
    Vec sol = zero;
    nnls_bpp_columns(R, n, G.data(), M.data(), sol.data());
    time_solve("warm start from the solution", G, M, sol, true);
    time_solve("C moved 1%: cold start", G2, M2, zero, false);
    time_solve("C moved 1%: warm start from the old X", G2, M2, sol, true);
  }
  CHECK(true);
}
