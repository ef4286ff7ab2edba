// The B step's per-column arithmetic (kernels/tile_step.hpp) and the first product by rows of A against plain
// loops in long double, on every
// instruction set the processor has, for compile-time and run-time R, pairs and single columns, whole and
// partial chunks, with and without momentum; M and grad get exactly the padding the header asks for.
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "unmix/core/rng.hpp"
#include "unmix/kernels/tile_products.hpp"
#include "unmix/kernels/tile_step.hpp"

using namespace unmix;

namespace {

std::vector<double> values(std::size_t n, std::uint64_t seed, double shift) {
  CounterRng rng(seed, 0);
  std::vector<double> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = rng.uniform(i) - shift;
  return v;
}

struct Case {
  std::size_t R, n;
  bool momentum, nonnegative_stats, copy_prev;
};

// Checks one call against long double loops. Every entry's computed value may differ from the exact one
// by the roundings of its own operations: at most c u times the sum of the magnitudes that enter it
// (c = 2 R + 8 covers the R multiply-adds of a gradient, the momentum and the step); the sums over the
// tile by (count / 16 + 8) u relative (16 partial sums of positive terms, then 15 additions).
template <class T> void check_step(const Case& c) {
  const std::size_t R = c.R, n = c.n;
  const double u = std::numeric_limits<double>::epsilon() / 2;
  // G symmetric positive definite-ish, Mt in T, B with exact zeros (a quarter of the entries).
  auto A = values(3 * R * R, 11, 0.2);
  std::vector<double> G(R * R);
  for (std::size_t r = 0; r < R; ++r)
    for (std::size_t q = 0; q < R; ++q) {
      double s = 0;
      for (std::size_t i = 0; i < 3 * R; ++i) s += A[i + r * 3 * R] * A[i + q * 3 * R];
      G[r + q * R] = s;
    }
  const auto mt = values(n * R, 12, 0.1);
  std::vector<T> Mt(n * R);
  for (std::size_t i = 0; i < n * R; ++i) Mt[i] = static_cast<T>(mt[i] * static_cast<double>(R));
  auto B = values(R * n, 13, 0.25);
  for (double& b : B) b = b < 0 ? 0.0 : b;
  auto Bprev = values(R * n, 14, 0.0);
  std::vector<double> inv_L(R), omega(R);
  for (std::size_t r = 0; r < R; ++r) {
    inv_L[r] = 1.0 / (1.0 + static_cast<double>(R) * (0.5 + 0.01 * static_cast<double>(r)));
    omega[r] = 0.3 + 0.02 * static_cast<double>(r);
  }
  const std::vector<double> B0 = B, Bprev0 = Bprev;

  // The reference: the plain loops of the step in long double.
  using L = long double;
  std::vector<L> Bref(R * n), Bpref(R * n), Mref(R * n), scale(R * n);
  L grad2 = 0, stat_lo = 0, stat_hi = 0;
  const L ambiguous = 1e3L * static_cast<L>(u);
  for (std::size_t j = 0; j < n; ++j) {
    for (std::size_t r = 0; r < R; ++r) Mref[r + j * R] = static_cast<L>(Mt[j + r * n]);
    for (std::size_t r = 0; r < R; ++r) {
      L g = -Mref[r + j * R], mag = std::abs(Mref[r + j * R]);
      for (std::size_t q = 0; q < R; ++q) {
        g += static_cast<L>(G[r + q * R]) * B0[q + j * R];
        mag += std::abs(static_cast<L>(G[r + q * R]) * B0[q + j * R]);
      }
      grad2 += g * g;
      const bool counts = !c.nonnegative_stats || B0[r + j * R] > 0 || g < 0;
      // An entry whose gradient is within rounding of zero may count either way.
      const bool unsure = c.nonnegative_stats && B0[r + j * R] <= 0 && std::abs(g) <= ambiguous * mag;
      if (counts || unsure) stat_hi += g * g;
      if (counts && !unsure) stat_lo += g * g;
    }
    std::vector<L> hat(R);
    for (std::size_t r = 0; r < R; ++r) {
      const L cur = B0[r + j * R];
      hat[r] = c.momentum ? cur + static_cast<L>(omega[r]) * (cur - Bprev0[r + j * R]) : cur;
      Bpref[r + j * R] = c.momentum || c.copy_prev ? cur : static_cast<L>(Bprev0[r + j * R]);
    }
    for (std::size_t r = 0; r < R; ++r) {
      L g = -Mref[r + j * R], mag = std::abs(Mref[r + j * R]);
      for (std::size_t q = 0; q < R; ++q) {
        g += static_cast<L>(G[r + q * R]) * hat[q];
        mag += std::abs(static_cast<L>(G[r + q * R]) * hat[q]) +
               std::abs(static_cast<L>(G[r + q * R])) * (std::abs(L(B0[q + j * R])) + std::abs(L(Bprev0[q + j * R])));
      }
      Bref[r + j * R] = hat[r] - g * static_cast<L>(inv_L[r]);
      scale[r + j * R] = std::abs(hat[r]) + std::abs(L(B0[r + j * R])) + std::abs(L(Bprev0[r + j * R])) +
                         mag * static_cast<L>(inv_L[r]);
    }
  }

  std::vector<double> M(R * n + tile_step_padding, -7.0), grad(R * n + tile_step_padding, -7.0);
  TileStepParams p;
  p.G = G.data();
  p.inv_L = inv_L.data();
  p.omega = omega.data();
  p.momentum = c.momentum;
  p.nonnegative_stats = c.nonnegative_stats;
  p.copy_prev = c.copy_prev;
  TileStepSums sums;
  sums.grad2 = 0.5; // added to, not overwritten
  sums.stat2 = 0.25;
  tile_b_step<T>(R, n, Mt.data(), p, B.data(), Bprev.data(), M.data(), grad.data(), sums);

  INFO("isa " << tile_products_isa() << " R " << R << " n " << n << " momentum " << c.momentum << " nonnegative "
              << c.nonnegative_stats << " copy " << c.copy_prev << " float " << (std::is_same_v<T, float>));
  double worst_b = 0;
  std::size_t wrong_prev = 0, wrong_m = 0;
  for (std::size_t k = 0; k < R * n; ++k) {
    worst_b = std::max(worst_b, static_cast<double>(std::abs(B[k] - Bref[k]) / (scale[k] + 1e-300L)));
    if (static_cast<L>(Bprev[k]) != Bpref[k]) ++wrong_prev;
    if (static_cast<L>(M[k]) != Mref[k]) ++wrong_m;
  }
  CHECK(worst_b <= (2.0 * static_cast<double>(R) + 8) * u);
  CHECK(wrong_prev == 0);
  CHECK(wrong_m == 0);
  const double sum_bound = (static_cast<double>(R * n) / 16 + 8) * u;
  CHECK(std::abs(static_cast<L>(sums.grad2) - 0.5L - grad2) <= sum_bound * grad2 + 4 * u);
  CHECK(static_cast<L>(sums.stat2) - 0.25L >= stat_lo * (1 - sum_bound) - 4 * u);
  CHECK(static_cast<L>(sums.stat2) - 0.25L <= stat_hi * (1 + sum_bound) + 4 * u);
  if (!c.nonnegative_stats) CHECK(std::abs(sums.stat2 - 0.25 - (sums.grad2 - 0.5)) <= 4 * u * sums.grad2);
}

void check_outer_and_norms(std::size_t R, std::size_t n) {
  const double u = std::numeric_limits<double>::epsilon() / 2;
  const auto X = values(R * n, 21, 0.4);
  const auto Xp = values(R * n, 22, 0.4);
  auto P = values(R * R, 23, 0.5);
  const auto P0 = P;
  tile_add_outer(R, n, X.data(), P.data());
  INFO("isa " << tile_products_isa() << " R " << R << " n " << n);
  double worst = 0;
  for (std::size_t q = 0; q < R; ++q)
    for (std::size_t r = 0; r < R; ++r) {
      long double s = P0[r + q * R], mag = std::abs(s);
      for (std::size_t j = 0; j < n; ++j) {
        s += static_cast<long double>(X[r + j * R]) * X[q + j * R];
        mag += std::abs(static_cast<long double>(X[r + j * R]) * X[q + j * R]);
      }
      worst = std::max(worst, static_cast<double>(std::abs(P[r + q * R] - s) / mag));
    }
  CHECK(worst <= static_cast<double>(n + 2) * u);
  double change2 = 1, norm2 = 2;
  tile_change_norm(R * n, X.data(), Xp.data(), change2, norm2);
  long double c = 0, b = 0;
  for (std::size_t k = 0; k < R * n; ++k) {
    const long double d = static_cast<long double>(X[k]) - Xp[k];
    c += d * d;
    b += static_cast<long double>(X[k]) * X[k];
  }
  const double bound = (static_cast<double>(R * n) / 16 + 8) * u;
  CHECK(std::abs(change2 - 1 - c) <= bound * (c + 1));
  CHECK(std::abs(norm2 - 2 - b) <= bound * (b + 2));
}

// M = A^T Y by rows of A against plain sums: (I + 1) u sum |terms| in T (as tile_yta's bound), then exact
// conversion to double; ldy > I, a next tile to read, and the padding the header asks for.
template <class T> void check_aty(std::size_t I, std::size_t n, std::size_t R) {
  const double u = std::numeric_limits<T>::epsilon() / 2;
  const std::size_t ldy = I + 3;
  const auto y = values(ldy * (n + 2), 31, 0.3);
  const auto a = values(I * R, 32, 0.3);
  std::vector<T> Y(y.begin(), y.end()), A(a.begin(), a.end());
  std::vector<double> M(R * n + tile_step_padding, -5.0);
  REQUIRE(tile_aty<T>(I, n, R, Y.data(), ldy, A.data(), M.data(), Y.data() + n * ldy, 2 * ldy));
  INFO("isa " << tile_products_isa() << " I " << I << " n " << n << " R " << R << " float "
              << (std::is_same_v<T, float>));
  double worst = 0;
  for (std::size_t j = 0; j < n; ++j)
    for (std::size_t r = 0; r < R; ++r) {
      long double s = 0, mag = 0;
      for (std::size_t i = 0; i < I; ++i) {
        s += static_cast<long double>(Y[i + j * ldy]) * A[i + r * I];
        mag += std::abs(static_cast<long double>(Y[i + j * ldy]) * A[i + r * I]);
      }
      worst = std::max(worst, static_cast<double>(std::abs(M[r + j * R] - s) / (mag + 1e-300L)));
    }
  CHECK(worst <= static_cast<double>(I + 1) * u);
}

// tile_gradient against long double loops: its sums at X, and the step X - (G X - M) / L, on arrays with no
// padding (M and X exactly R x n).
void check_gradient(std::size_t R, std::size_t n, bool nonnegative) {
  const double u = std::numeric_limits<double>::epsilon() / 2;
  const auto gsrc = values(2 * R * R, 51, 0.3);
  std::vector<double> G(R * R, 0.0), inv_L(R);
  for (std::size_t r = 0; r < R; ++r) {
    inv_L[r] = 0.1 + 0.01 * static_cast<double>(r);
    for (std::size_t q = 0; q < R; ++q)
      for (std::size_t i = 0; i < 2 * R; ++i) G[r + q * R] += gsrc[i + r * 2 * R] * gsrc[i + q * 2 * R];
  }
  const auto M = values(R * n, 52, 0.4);
  auto X = values(R * n, 53, 0.3);
  for (double& x : X) x = x < 0 ? 0.0 : x;
  const auto X0 = X;
  using L = long double;
  L grad2 = 0, stat_lo = 0, stat_hi = 0;
  std::vector<L> want(R * n), scale(R * n);
  for (std::size_t j = 0; j < n; ++j)
    for (std::size_t r = 0; r < R; ++r) {
      L g = -static_cast<L>(M[r + j * R]), mag = std::abs(static_cast<L>(M[r + j * R]));
      for (std::size_t q = 0; q < R; ++q) {
        g += static_cast<L>(G[r + q * R]) * X0[q + j * R];
        mag += std::abs(static_cast<L>(G[r + q * R]) * X0[q + j * R]);
      }
      grad2 += g * g;
      const bool counts = !nonnegative || X0[r + j * R] > 0 || g < 0;
      const bool unsure = nonnegative && X0[r + j * R] <= 0 && std::abs(g) <= 1e3L * static_cast<L>(u) * mag;
      if (counts || unsure) stat_hi += g * g;
      if (counts && !unsure) stat_lo += g * g;
      want[r + j * R] = X0[r + j * R] - g * static_cast<L>(inv_L[r]);
      scale[r + j * R] = std::abs(static_cast<L>(X0[r + j * R])) + mag * static_cast<L>(inv_L[r]);
    }
  INFO("isa " << tile_products_isa() << " R " << R << " n " << n << " nonnegative " << nonnegative);
  TileStepSums sums;
  tile_gradient(R, n, G.data(), M.data(), X.data(), nullptr, nonnegative, &sums);
  CHECK(X == X0); // sums alone leave X as it was
  const double sum_bound = (static_cast<double>(R * n) / 16 + 8) * u;
  CHECK(std::abs(static_cast<L>(sums.grad2) - grad2) <= sum_bound * grad2);
  CHECK(static_cast<L>(sums.stat2) >= stat_lo * (1 - sum_bound));
  CHECK(static_cast<L>(sums.stat2) <= stat_hi * (1 + sum_bound));
  tile_gradient(R, n, G.data(), M.data(), X.data(), inv_L.data(), nonnegative, nullptr);
  double worst = 0;
  for (std::size_t k = 0; k < R * n; ++k)
    worst = std::max(worst, static_cast<double>(std::abs(X[k] - want[k]) / (scale[k] + 1e-300L)));
  CHECK(worst <= (2.0 * static_cast<double>(R) + 4) * u);
}

} // namespace

TEST_CASE("the gradient a few columns at a time equals plain loops on every instruction set", "[tile_step]") {
  const std::string original = tile_products_isa();
  for (const char* isa : {"baseline", "avx2", "avx512"}) {
    if (!tile_products_use(isa)) continue;
    for (std::size_t R : {1, 3, 8, 10, 16, 17, 30})
      for (std::size_t n : {1, 2, 31, 32, 33, 101})
        for (bool nonnegative : {false, true}) check_gradient(R, n, nonnegative);
  }
  REQUIRE(tile_products_use(original.c_str()));
}

TEST_CASE("A^T Y by rows of A equals plain sums on every instruction set, and is declined outside its sizes",
          "[tile_step]") {
  const std::string original = tile_products_isa();
  for (const char* isa : {"baseline", "avx2", "avx512"}) {
    if (!tile_products_use(isa)) continue;
    for (std::size_t R = 1; R <= 16; ++R)
      for (std::size_t I : {std::size_t{1}, std::size_t{2}, std::size_t{7}, std::size_t{20}, tile_aty_max_rows})
        for (std::size_t n : {1, 2, 5, 40}) {
          check_aty<double>(I, n, R);
          check_aty<float>(I, n, R);
        }
    std::vector<double> Y(200 * 17, 1.0), A(200 * 17, 1.0), M(17 * 4 + tile_step_padding, -5.0);
    const auto M0 = M;
    CHECK_FALSE(tile_aty<double>(tile_aty_max_rows + 1, 4, 10, Y.data(), 200, A.data(), M.data()));
    CHECK_FALSE(tile_aty<double>(20, 4, 17, Y.data(), 20, A.data(), M.data()));
    CHECK_FALSE(tile_aty<double>(20, 4, 0, Y.data(), 20, A.data(), M.data()));
    CHECK(M == M0);
  }
  REQUIRE(tile_products_use(original.c_str()));
}

TEST_CASE("the B step's per-column arithmetic equals plain loops on every instruction set", "[tile_step]") {
  const std::string original = tile_products_isa();
  int sets = 0;
  for (const char* isa : {"baseline", "avx2", "avx512"}) {
    if (!tile_products_use(isa)) continue;
    ++sets;
    // R = 1..16 take the compile-time paths, 17 and 23 the run-time one; n covers a single column, odd
    // and even counts (pairs and a last single column), one chunk (32), a chunk and a bit, several.
    for (std::size_t R : {1, 2, 3, 5, 8, 10, 11, 16, 17, 23})
      for (std::size_t n : {1, 2, 3, 31, 32, 33, 100}) {
        for (bool momentum : {false, true})
          for (bool nonneg : {false, true}) {
            check_step<double>({R, n, momentum, nonneg, !momentum && nonneg});
            check_step<float>({R, n, momentum, nonneg, false});
          }
        check_outer_and_norms(R, n);
      }
  }
  CHECK(sets >= 1);
  REQUIRE(tile_products_use(original.c_str()));
}

TEST_CASE("the B step's arithmetic gives the same bits on every instruction set", "[tile_step]") {
  // Compiled without contraction, each entry is rounded as in the plain loops whatever the vector width,
  // and the tile sums use the same 16 partial sums: results agree bit for bit across instruction sets.
  const std::string original = tile_products_isa();
  const std::size_t R = 10, n = 77, I = 20;
  const auto y = values(I * n, 41, 0.3), a = values(I * R, 42, 0.3), b = values(R * n, 43, 0.2),
             bp = values(R * n, 44, 0.1), gsrc = values(3 * R * R, 45, 0.2);
  std::vector<double> G(R * R, 0.0), inv_L(R, 0.05), omega(R, 0.4);
  for (std::size_t r = 0; r < R; ++r)
    for (std::size_t q = 0; q < R; ++q)
      for (std::size_t i = 0; i < 3 * R; ++i) G[r + q * R] += gsrc[i + r * 3 * R] * gsrc[i + q * 3 * R];
  struct Out {
    std::vector<double> B, Bp, M, P;
    double grad2, stat2, change2, norm2;
  };
  auto run = [&] {
    Out o{b, bp, std::vector<double>(R * n + tile_step_padding), std::vector<double>(R * R, 0.0), 0, 0, 0, 0};
    std::vector<double> grad(R * n + tile_step_padding);
    REQUIRE(tile_aty<double>(I, n, R, y.data(), I, a.data(), o.M.data()));
    TileStepParams p;
    p.G = G.data();
    p.inv_L = inv_L.data();
    p.omega = omega.data();
    p.momentum = true;
    p.nonnegative_stats = true;
    TileStepSums sums;
    tile_b_step<double>(R, n, nullptr, p, o.B.data(), o.Bp.data(), o.M.data(), grad.data(), sums);
    tile_change_norm(R * n, o.B.data(), o.Bp.data(), o.change2, o.norm2);
    tile_add_outer(R, n, o.B.data(), o.P.data());
    o.grad2 = sums.grad2;
    o.stat2 = sums.stat2;
    o.M.resize(R * n);
    return o;
  };
  REQUIRE(tile_products_use("baseline"));
  const Out base = run();
  for (const char* isa : {"avx2", "avx512"}) {
    if (!tile_products_use(isa)) continue;
    INFO("isa " << isa);
    const Out o = run();
    CHECK(o.M == base.M);
    CHECK(o.B == base.B);
    CHECK(o.Bp == base.Bp);
    CHECK(o.P == base.P);
    CHECK(o.grad2 == base.grad2);
    CHECK(o.stat2 == base.stat2);
    CHECK(o.change2 == base.change2);
    CHECK(o.norm2 == base.norm2);
  }
  REQUIRE(tile_products_use(original.c_str()));
}
