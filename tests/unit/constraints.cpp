#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "unmix/constraints/constraints.hpp"
#include "unmix/core/rng.hpp"

using namespace unmix;

namespace {

using Vec = std::vector<double>;

/// Apply a constraint spec to an array seen whole; returns the weights.
ScaleWeights run(const std::string& spec, Vec& data, const Shape& shape, std::size_t rank_mode = 0) {
  FactorView v = local_view(data, shape, rank_mode);
  return apply(parse_constraints(spec), v);
}

double viol(const std::string& spec, Vec& data, const Shape& shape, std::size_t rank_mode = 0) {
  FactorView v = local_view(data, shape, rank_mode);
  return violation(parse_constraints(spec), v);
}

double max_diff(const Vec& a, const Vec& b) {
  REQUIRE(a.size() == b.size());
  double d = 0;
  for (std::size_t i = 0; i < a.size(); ++i) d = std::max(d, std::abs(a[i] - b[i]));
  return d;
}

/// Projection onto the simplex by brute force: every support S gives the candidate y - t on S (t fixed
/// by sum = 1) and 0 elsewhere; among the nonnegative candidates (all lie in the simplex) the nearest to
/// y is the projection, since the projection is one of them.
Vec brute_simplex(const Vec& y) {
  const std::size_t n = y.size();
  Vec best;
  double best_d = INFINITY;
  for (unsigned S = 1; S < (1u << n); ++S) {
    double sum = 0;
    int count = 0;
    for (std::size_t i = 0; i < n; ++i)
      if ((S >> i) & 1u) {
        sum += y[i];
        ++count;
      }
    const double t = (sum - 1.0) / count;
    Vec x(n, 0.0);
    bool ok = true;
    for (std::size_t i = 0; i < n; ++i)
      if ((S >> i) & 1u) {
        x[i] = y[i] - t;
        if (x[i] < 0) ok = false;
      }
    if (!ok) continue;
    double d = 0;
    for (std::size_t i = 0; i < n; ++i) d += (x[i] - y[i]) * (x[i] - y[i]);
    if (d < best_d) {
      best_d = d;
      best = x;
    }
  }
  return best;
}

/// B[r, j, k] = 1 + r + 2 j + 6 k for a 2 x 3 x 2 tensor: the column-major values 1, 2, ..., 12.
Vec iota12() {
  Vec v(12);
  for (std::size_t i = 0; i < 12; ++i) v[i] = static_cast<double>(i + 1);
  return v;
}

} // namespace

TEST_CASE("reference values of the simplex and L1 projections", "[constraints]") {
  Vec z(10, 0.0);
  project_simplex(z);
  for (double a : z) CHECK(a == 0.1);

  Vec y{0.5, 0.6};
  project_simplex(y);
  CHECK(y[0] == Approx(0.45).margin(1e-15));
  CHECK(y[1] == Approx(0.55).margin(1e-15));

  Vec r{1, 2, 3, 4, 5};
  project_l1_sphere(r);
  CHECK(r == Vec{0, 0, 0, 0, 1});

  Vec s{1, -1, 1, 1};
  project_l1_sphere(s);
  CHECK(s == Vec{0.25, -0.25, 0.25, 0.25});

  // Rows of the 3 x 4 matrix reshape(1:12, 3, 4) all go to (0, 0, 0, 1).
  Vec m(12);
  for (std::size_t i = 0; i < 12; ++i) m[i] = static_cast<double>(i + 1);
  run("l1normalize_rows", m, {3, 4});
  CHECK(m == Vec{0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1});

  CHECK(simplex_threshold({}) == 0.0);
  CHECK(simplex_threshold({5, 4, 3, 2, 1}) == 4.0);
  CHECK(simplex_threshold({0, 0}, 2.0) == -1.0);
}

TEST_CASE("the simplex threshold equals the sorted walk's on long vectors", "[constraints]") {
  // Michelot's passes against the walk over the sorted values (the definition), on vectors as long as a
  // factor's slice: spread, clustered, tied, all kept, geometric, with radii small and large.
  CounterRng rng(21, 5);
  std::uint64_t k = 0;
  auto walk = [](Vec y, double radius) {
    std::sort(y.begin(), y.end());
    const std::size_t n = y.size();
    long double suffix = 0;
    for (std::size_t i = n - 1; i >= 1; --i) {
      suffix += y[i];
      const long double t = (suffix - radius) / static_cast<long double>(n - i);
      if (t >= y[i - 1]) return static_cast<double>(t);
    }
    return static_cast<double>((suffix + y[0] - radius) / static_cast<long double>(n));
  };
  for (std::size_t n : {1000u, 140000u})
    for (int kind = 0; kind < 5; ++kind)
      for (double radius : {1e-3, 1.0, 50.0}) {
        Vec y(n);
        for (std::size_t i = 0; i < n; ++i) {
          switch (kind) {
          case 0: y[i] = rng.normal(k++); break;
          case 1: y[i] = 1e-3 * rng.uniform(k++); break;                         // all close together
          case 2: y[i] = std::floor(8.0 * rng.uniform(k++)) / 8.0; break;        // many ties
          case 3: y[i] = 1.0 + 1e-9 * rng.normal(k++); break;                    // every entry in the support at 50
          default: y[i] = std::pow(0.999, static_cast<double>(i % 5000)); break; // geometric runs
          }
        }
        const double want = walk(y, radius);
        const double got = simplex_threshold(y, radius);
        double scale = radius;
        for (double a : y) scale = std::max(scale, std::abs(a));
        INFO("n " << n << " kind " << kind << " radius " << radius);
        CHECK(std::abs(got - want) <= 1e-12 * scale);
        // The projection's entries sum to the radius.
        long double total = 0;
        for (double a : y) total += std::max(a - got, 0.0);
        CHECK(std::abs(static_cast<double>(total) - radius) <= 1e-9 * std::max(radius, 1.0));
      }
}

TEST_CASE("simplex projection equals the brute-force projection on random vectors", "[constraints]") {
  CounterRng rng(11, 3);
  std::uint64_t k = 0;
  int checked = 0;
  for (std::size_t n = 1; n <= 8; ++n)
    for (int trial = 0; trial < 300; ++trial) {
      Vec y(n);
      for (auto& a : y) {
        switch (trial % 4) {
        case 0: a = rng.normal(k++); break;
        case 1: a = 5.0 * rng.uniform(k++) - 1.0; break;
        case 2: a = std::floor(4.0 * rng.uniform(k++)) / 4.0; break; // many ties
        default: a = 0.01 * rng.normal(k++); break;                  // well inside: all entries kept
        }
      }
      const Vec want = brute_simplex(y);
      Vec got = y;
      project_simplex(got);
      CHECK(max_diff(got, want) <= 1e-12);
      // The L1 sphere projection is sign(y) * simplex(|y|) with zero entries counted positive.
      Vec ay(n), l1 = y;
      for (std::size_t i = 0; i < n; ++i) ay[i] = std::abs(y[i]);
      Vec p = brute_simplex(ay);
      for (std::size_t i = 0; i < n; ++i) p[i] *= y[i] < 0 ? -1.0 : 1.0;
      project_l1_sphere(l1);
      CHECK(max_diff(l1, p) <= 1e-12);
      ++checked;
    }
  CHECK(checked == 2400);
}

TEST_CASE("L1 sphere projection keeps zero entries in play", "[constraints]") {
  Vec a{0.5, 0.0};
  project_l1_sphere(a);
  CHECK(a[0] == Approx(0.75).margin(1e-15));
  CHECK(a[1] == Approx(0.25).margin(1e-15));
  Vec b{-0.2, 0.1, 0.0};
  project_l1_sphere(b);
  CHECK(b[0] == Approx(-0.2 - 0.7 / 3).margin(1e-15));
  CHECK(b[1] == Approx(0.1 + 0.7 / 3).margin(1e-15));
  CHECK(b[2] == Approx(0.7 / 3).margin(1e-15));
  CHECK(std::abs(b[0]) + b[1] + b[2] == Approx(1.0).margin(1e-15));
}

TEST_CASE("entrywise constraints: nonnegative, clamp, binary", "[constraints]") {
  Vec x{-1, 0, 0.7, 2.5};
  run("nonnegative", x, {4});
  CHECK(x == Vec{0, 0, 0.7, 2.5});
  Vec c{-1, 0, 0.7, -0.25};
  run("clamp:-0.5:0.5", c, {2, 2});
  CHECK(c == Vec{-0.5, 0, 0.5, -0.25});
  Vec b{0.49, 0.5, -3, 2};
  run("binary", b, {4});
  CHECK(b == Vec{0, 1, 0, 1});
  Vec v{-0.5, 0.2, 3};
  CHECK(viol("nonnegative", v, {3}) == 0.5);
  CHECK(viol("clamp:0:1", v, {3}) == 2.0);
  CHECK(viol("binary", v, {3}) == 2.0); // 3 is 2 away from 1
}

TEST_CASE("L2 and L-infinity projected normalizations", "[constraints]") {
  Vec a{3, 4};
  project_l2_sphere(a);
  CHECK(a[0] == Approx(0.6).margin(1e-15));
  CHECK(a[1] == Approx(0.8).margin(1e-15));
  Vec z(4, 0.0);
  project_l2_sphere(z);
  CHECK(z == Vec(4, 0.5));
  // Rows of a 2 x 2 matrix (column-major): row 0 = (3, 4), row 1 = (0, 0).
  Vec m{3, 0, 4, 0};
  run("l2normalize_rows", m, {2, 2});
  CHECK(m[0] == Approx(0.6).margin(1e-15));
  CHECK(m[2] == Approx(0.8).margin(1e-15));
  CHECK(m[1] == Approx(1 / std::sqrt(2.0)).margin(1e-15));
  CHECK(m[3] == Approx(1 / std::sqrt(2.0)).margin(1e-15));

  Vec l{0.5, -0.8, 0.8, 0.1};
  project_linf_sphere(l);
  CHECK(l == Vec{0.5, -1, 0.8, 0.1}); // the first entry of largest magnitude moves to its sign
  Vec big{2, -3, 0.5};
  project_linf_sphere(big);
  CHECK(big == Vec{1, -1, 0.5});
  Vec zero(3, 0.0);
  project_linf_sphere(zero);
  CHECK(zero == Vec{1, 0, 0});
  Vec one{1, 0.2, -1};
  project_linf_sphere(one);
  CHECK(one == Vec{1, 0.2, -1});
  // linftynormalize is the Euclidean projection: no point of the sphere on a grid is nearer.
  Vec y{0.3, -0.6, 0.2};
  Vec p = y;
  project_linf_sphere(p);
  double dp = 0;
  for (std::size_t i = 0; i < 3; ++i) dp += (p[i] - y[i]) * (p[i] - y[i]);
  for (int i = -10; i <= 10; ++i)
    for (int j = -10; j <= 10; ++j)
      for (int face = 0; face < 6; ++face) {
        Vec q{i / 10.0, j / 10.0, 0};
        const std::size_t f = static_cast<std::size_t>(face / 2);
        q.insert(q.begin() + static_cast<std::ptrdiff_t>(f), face % 2 ? 1.0 : -1.0);
        q.pop_back();
        double dq = 0;
        for (std::size_t n = 0; n < 3; ++n) dq += (q[n] - y[n]) * (q[n] - y[n]);
        CHECK(dq >= dp - 1e-15);
      }
  project_one_hot(y);
  CHECK(y == Vec{1, 0, 0});
}

TEST_CASE("slicings of a 2 x 3 x 2 tensor with hand-computed results", "[constraints]") {
  const Shape sh{2, 3, 2};
  SECTION("l1scale_1slices and rows: sums 36 and 42") {
    for (const char* spec : {"l1scale_1slices", "l1scale_rows"}) {
      Vec b = iota12();
      const ScaleWeights w = run(spec, b, sh);
      CHECK(w.per_rank == Vec{36, 42});
      CHECK(w.scalar == 1.0);
      for (std::size_t i = 0; i < 12; ++i)
        CHECK(b[i] == Approx((static_cast<double>(i) + 1.0) / (i % 2 ? 42 : 36)).margin(1e-15));
      CHECK(viol(spec, b, sh) <= 1e-15);
    }
  }
  SECTION("l1scale_average12slices: each 1-slice sums to J1 = 3") {
    Vec b = iota12();
    const ScaleWeights w = run("l1scale_average12slices", b, sh);
    CHECK(w.per_rank == Vec{12, 14});
    for (std::size_t i = 0; i < 12; ++i)
      CHECK(b[i] == Approx((static_cast<double>(i) + 1.0) / (i % 2 ? 14 : 12)).margin(1e-15));
    double s0 = 0;
    for (std::size_t i = 0; i < 12; i += 2) s0 += b[i];
    CHECK(s0 == Approx(3.0).margin(1e-14));
    CHECK(viol("l1scale_average12slices", b, sh) <= 1e-15);
    CHECK(viol("l1scale_1slices", b, sh) == Approx(2.0));
  }
  SECTION("l1scale_12slices: fibres (r, j) sum to 1, not compensable, no weights") {
    Vec b = iota12();
    const ScaleWeights w = run("l1scale_12slices", b, sh);
    CHECK_FALSE(w.any());
    for (std::size_t r = 0; r < 2; ++r)
      for (std::size_t j = 0; j < 3; ++j) {
        const double s = 8.0 + 2.0 * static_cast<double>(r) + 4.0 * static_cast<double>(j);
        CHECK(b[r + 2 * j] == Approx((1.0 + static_cast<double>(r + 2 * j)) / s).margin(1e-15));
        CHECK(b[r + 2 * j + 6] == Approx((7.0 + static_cast<double>(r + 2 * j)) / s).margin(1e-15));
      }
  }
  SECTION("simplex_columns: every column (a, a + 1) goes to (0, 1)") {
    Vec b = iota12();
    run("simplex_columns", b, sh);
    for (std::size_t i = 0; i < 12; ++i) CHECK(b[i] == (i % 2 ? 1.0 : 0.0));
    Vec c = iota12();
    run("simplex_cols", c, sh);
    CHECK(c == b);
  }
  SECTION("simplex_rows: one-hot at the largest entry of each 1-slice") {
    Vec b = iota12();
    run("simplex_rows", b, sh);
    Vec want(12, 0.0);
    want[10] = 1; // B[0, 2, 1] = 11
    want[11] = 1; // B[1, 2, 1] = 12
    CHECK(b == want);
  }
  SECTION("whole: l2scale returns one scalar weight") {
    Vec b = iota12();
    const ScaleWeights w = run("l2scale", b, sh);
    CHECK(w.per_rank.empty());
    CHECK(w.scalar == Approx(std::sqrt(650.0)).margin(1e-13));
    for (std::size_t i = 0; i < 12; ++i)
      CHECK(b[i] == Approx((static_cast<double>(i) + 1.0) / std::sqrt(650.0)).margin(1e-15));
  }
  SECTION("linftyscale_1slices: maxima 11 and 12") {
    Vec b = iota12();
    const ScaleWeights w = run("linftyscale_1slices", b, sh);
    CHECK(w.per_rank == Vec{11, 12});
    CHECK(b[10] == 1.0);
    CHECK(b[11] == 1.0);
  }
  SECTION("l2normalize_12slices: fibres (1, 7), (2, 8), ...") {
    Vec b = iota12();
    run("l2normalize_12slices", b, sh);
    CHECK(b[0] == Approx(1 / std::sqrt(50.0)).margin(1e-15));
    CHECK(b[6] == Approx(7 / std::sqrt(50.0)).margin(1e-15));
    CHECK(b[5] == Approx(6 / std::sqrt(36.0 + 144.0)).margin(1e-15));
  }
  SECTION("two scaled normalizations multiply their weights") {
    Vec b = iota12();
    const ScaleWeights w = run("l1scale_1slices+linftyscale_1slices+l1scale", b, sh);
    // After l1scale each slice sums to 1; its maxima are 11/36 and 12/42; then the whole sums to
    // 1/(11/36) + 1/(12/42) = 36/11 + 42/12.
    REQUIRE(w.per_rank.size() == 2);
    CHECK(w.per_rank[0] == Approx(36.0 * 11.0 / 36.0).margin(1e-13));
    CHECK(w.per_rank[1] == Approx(42.0 * 12.0 / 42.0).margin(1e-13));
    CHECK(w.scalar == Approx(36.0 / 11.0 + 42.0 / 12.0).margin(1e-13));
  }
}

TEST_CASE("scaled normalizations on a matrix factor A (rank mode 1)", "[constraints]") {
  // A is 3 x 2: column 0 = (1, 2, 3), column 1 = (4, 0, 4).
  Vec a{1, 2, 3, 4, 0, 4};
  const ScaleWeights w = run("l1scale_columns", a, {3, 2}, 1);
  CHECK(w.per_rank == Vec{6, 8});
  CHECK(a[4] == 0.0);
  CHECK(a[5] == 0.5);
  // Rows of A are not compensable: no weights, rows sum to 1.
  Vec b{1, 2, 3, 4, 0, 4};
  const ScaleWeights wr = run("l1scale_rows", b, {3, 2}, 1);
  CHECK_FALSE(wr.any());
  CHECK(b == Vec{0.2, 1, 3.0 / 7, 0.8, 0, 4.0 / 7});
}

TEST_CASE("scaled normalization of a zero slice leaves it and returns weight 1", "[constraints]") {
  Vec m{0, 1, 0, 3}; // rows (0, 0) and (1, 3)
  const ScaleWeights w = run("l1scale_rows", m, {2, 2});
  CHECK(w.per_rank == Vec{1, 4});
  CHECK(m == Vec{0, 0.25, 0, 0.75});
}

TEST_CASE("nonnegative with a scaled normalization: ReLU first, zero slices replaced", "[constraints]") {
  SECTION("L1: a slice all <= 0 becomes the simplex projection of its values") {
    // 2 x 3: row 0 = (1, -2, 3), row 1 = (-1, -0.5, -3).
    for (const char* spec : {"nonnegative+l1scale_1slices", "l1scale_1slices+nonnegative"}) {
      Vec b{1, -1, -2, -0.5, 3, -3};
      const ScaleWeights w = run(spec, b, {2, 3});
      CHECK(w.per_rank == Vec{4, 1});
      CHECK(w.replaced);
      CHECK(b == Vec{0.25, 0.25, 0, 0.75, 0.75, 0});
      Vec kept{1, 1, -2, 0.5, 3, -3}; // both rows have a positive entry: rescaled, nothing replaced
      CHECK_FALSE(run(spec, kept, {2, 3}).replaced);
    }
  }
  SECTION("average12slices: the replaced slice is scaled to sum J1") {
    // 2 x 2 x 2: slice r = 0 = (1, 2, 3, 4) (j fastest), slice r = 1 = (-1, -2, -3, -4).
    Vec b{1, -1, 2, -2, 3, -3, 4, -4};
    const ScaleWeights w = run("l1scale_average12slices+nonnegative", b, {2, 2, 2});
    CHECK(w.per_rank == Vec{5, 0.5});
    CHECK(b == Vec{0.2, 2, 0.4, 0, 0.6, 0, 0.8, 0});
  }
  SECTION("L2: one-hot at the first largest entry") {
    Vec b{-3, 2, -1, -4, -1, 0}; // row 0 = (-3, -1, -1), row 1 = (2, -4, 0)
    const ScaleWeights w = run("nonnegative+l2scale_1slices", b, {2, 3});
    REQUIRE(w.per_rank.size() == 2);
    CHECK(w.per_rank[0] == 1.0);
    CHECK(w.per_rank[1] == 2.0);
    CHECK(b == Vec{0, 1, 1, 0, 0, 0});
  }
  SECTION("L-infinity on the columns of A") {
    Vec a{-1, -2, -1, 2, -1, 4};
    const ScaleWeights w = run("nonnegative+linftyscale_columns", a, {3, 2}, 1);
    CHECK(w.per_rank == Vec{1, 4});
    CHECK(a == Vec{1, 0, 0, 0.5, 0, 1});
  }
  SECTION("a nonnegative that is not next to a scaled normalization applies in order") {
    Vec b{-1, -2};
    run("nonnegative+clamp:-1:1+l1scale", b, {2});
    CHECK(b == Vec{0, 0}); // zero after the ReLU; the scaling leaves a zero slice alone
  }
}

TEST_CASE("linear constraint: C X = b and the Euclidean projection", "[constraints]") {
  // C = [1 1 0 0; 0 1 1 1]; its null space is spanned by n1 = (1, -1, 1, 0), n2 = (1, -1, 0, 1).
  const Vec C{1, 0, 1, 1, 0, 1, 0, 1}; // 2 x 4 column-major
  const Vec n1{1, -1, 1, 0}, n2{1, -1, 0, 1};
  CounterRng rng(5, 9);
  for (int trial = 0; trial < 20; ++trial) {
    const bool broadcast = trial % 2 == 1;
    const std::size_t cols = 6, m = broadcast ? 1 : cols;
    Vec X(4 * cols), b(2 * m);
    for (std::size_t i = 0; i < X.size(); ++i) X[i] = rng.normal(static_cast<std::uint64_t>(trial * 100) + i);
    for (std::size_t i = 0; i < b.size(); ++i) b[i] = rng.normal(static_cast<std::uint64_t>(trial * 100 + 50) + i);
    ConstraintList list = parse_constraints("linear");
    set_linear(list, C, 2, 4, b, m);
    Vec P = X;
    FactorView v = local_view(P, {4, 2, 3}); // a 4 x 2 x 3 tensor: 6 columns in the unfolding
    apply(list, v);
    for (std::size_t j = 0; j < cols; ++j) {
      const double* p = P.data() + 4 * j;
      const double* x = X.data() + 4 * j;
      const double* bj = b.data() + 2 * (broadcast ? 0 : j);
      CHECK(std::abs(p[0] + p[1] - bj[0]) <= 1e-12);
      CHECK(std::abs(p[1] + p[2] + p[3] - bj[1]) <= 1e-12);
      // X - P is orthogonal to the null space of C: P is the nearest point of {C X = b}.
      double d1 = 0, d2 = 0;
      for (std::size_t i = 0; i < 4; ++i) {
        d1 += (x[i] - p[i]) * n1[i];
        d2 += (x[i] - p[i]) * n2[i];
      }
      CHECK(std::abs(d1) <= 1e-12);
      CHECK(std::abs(d2) <= 1e-12);
    }
    CHECK(violation(list, v) <= 1e-12);
  }
  // Errors: no data attached, C of the wrong width, b of the wrong width, dependent rows.
  Vec X(8, 1.0);
  FactorView v = local_view(X, {4, 2});
  ConstraintList bare = parse_constraints("linear");
  CHECK_THROWS_AS(apply(bare, v), ConfigError);
  ConstraintList wide = parse_constraints("linear");
  set_linear(wide, Vec(10, 1.0), 2, 5, Vec{1, 1}, 1);
  CHECK_THROWS_AS(apply(wide, v), ConfigError);
  ConstraintList badb = parse_constraints("linear");
  set_linear(badb, C, 2, 4, Vec(6, 1.0), 3);
  CHECK_THROWS_AS(apply(badb, v), ConfigError);
  ConstraintList dep = parse_constraints("linear");
  set_linear(dep, Vec{1, 2, 1, 2, 1, 2, 1, 2}, 2, 4, Vec{1, 2}, 1);
  CHECK_THROWS_AS(apply(dep, v), ConfigError);
  ConstraintList none = parse_constraints("nonnegative");
  CHECK_THROWS_AS(set_linear(none, C, 2, 4, Vec{1, 1}, 1), ConfigError);
  CHECK_THROWS_AS(make_linear(C, 2, 4, Vec{1, 1, 1}, 1), ConfigError);
}

TEST_CASE("every constraint is satisfied after it is applied", "[constraints]") {
  CounterRng rng(2, 2);
  std::vector<std::string> names = valid_constraint_names();
  for (auto& n : names)
    if (n == "clamp:A:B") n = "clamp:-0.3:0.4";
  names.erase(std::remove(names.begin(), names.end(), "linear"), names.end());
  for (const auto& name : names)
    for (const std::string& prefix : {std::string(), std::string("nonnegative+")}) {
      const std::string spec = prefix + name;
      Vec b(3 * 4 * 5);
      for (std::size_t i = 0; i < b.size(); ++i) b[i] = rng.normal(i);
      for (std::size_t i = 1; i < b.size(); i += 3) b[i] = -std::abs(b[i]); // slice r = 1 all negative
      INFO(spec);
      CHECK(viol(spec, b, {3, 4, 5}) > 1e-3);
      run(spec, b, {3, 4, 5});
      CHECK(viol(spec, b, {3, 4, 5}) <= 1e-13);
      if (!prefix.empty()) CHECK(viol("nonnegative", b, {3, 4, 5}) == 0.0);
    }
}

TEST_CASE("parsing constraint lists", "[constraints]") {
  const ConstraintList l = parse_constraints(" l1scale_average12slices + nonnegative ");
  REQUIRE(l.items.size() == 2);
  CHECK(l.items[0].kind == ConstraintKind::l1scale);
  CHECK(l.items[0].slicing == Slicing::average12);
  CHECK(l.items[1].kind == ConstraintKind::nonnegative);
  CHECK(l.name() == "l1scale_average12slices+nonnegative");
  CHECK(parse_constraints("").empty());
  CHECK(parse_constraints("none").empty());
  const ConstraintList c = parse_constraints("clamp:-0.5:2.25");
  CHECK(c.items[0].lo == -0.5);
  CHECK(c.items[0].hi == 2.25);
  CHECK(c.items[0].name() == "clamp:-0.5:2.25");
  CHECK(parse_constraints("simplex_cols").items[0].slicing == Slicing::columns);
  CHECK(parse_constraints("l2normalize").items[0].slicing == Slicing::whole);

  const std::vector<std::string> names = valid_constraint_names();
  CHECK(names.size() == 4 + 4 * 5 + 3 * 6);
  for (const auto& n : names) {
    if (n == "clamp:A:B") continue;
    CHECK(parse_constraints(n).name() == n);
  }

  for (const std::string bad : {"foo", "nonnegative+foo", "simplex_average12slices", "l1scale_diagonal", "l1scale_",
                                "clamp:1:0", "clamp:a:b", "clamp:1", "clamp", "nonnegative++simplex", "nonnegative+"}) {
    INFO(bad);
    CHECK_THROWS_AS(parse_constraints(bad), ConfigError);
  }
  try {
    parse_constraints("nonnegative+l3scale_rows");
    FAIL("no exception");
  } catch (const ConfigError& e) {
    const std::string msg = e.what();
    CHECK(msg.find("'l3scale_rows'") != std::string::npos);
    CHECK(msg.find("valid names") != std::string::npos);
    CHECK(msg.find("l1scale") != std::string::npos);
    CHECK(msg.find("simplex") != std::string::npos);
  }
}

TEST_CASE("the entrywise part before a rescaling, then the weights, give the list's result", "[constraints]") {
  auto part = [](const char* spec, std::size_t order = 3, std::size_t rank_mode = 0) {
    return entrywise_before_rescaling(parse_constraints(spec), order, rank_mode);
  };
  // Lists a pass over B in pieces can take: the pair's nonnegative belongs to the entrywise part.
  const std::pair<const char*, const char*> taken[] = {{"l1scale_average12slices+nonnegative", "nonnegative"},
                                                       {"nonnegative+l1scale_1slices", "nonnegative"},
                                                       {"clamp:-1:2+l2scale_rows", "clamp:-1:2"},
                                                       {"binary+nonnegative+linftyscale", "binary+nonnegative"},
                                                       {"l1scale", ""}};
  for (const auto& [spec, entrywise] : taken) {
    INFO(spec);
    const auto e = part(spec);
    REQUIRE(e.has_value());
    CHECK(e->name() == entrywise);
  }
  CHECK(part("l1scale_columns", 2, 1).has_value()); // A's columns
  // No rescaling, one the other factor cannot absorb, something after it other than the paired nonnegative,
  // a projection before it, two rescalings.
  for (const char* spec : {"nonnegative", "", "l1scale_12slices+nonnegative", "l1scale_rows+clamp:0:1",
                           "l1scale_rows+nonnegative+nonnegative", "simplex_rows+l1scale_rows",
                           "l1scale_rows+l2scale_rows", "nonnegative+linear"}) {
    INFO(spec);
    CHECK_FALSE(part(spec).has_value());
  }
  CHECK_FALSE(part("l1scale_rows", 2, 1).has_value());

  // On random 3 x 4 x 5 factors whose rows all have a positive entry: apply(list) equals the entrywise
  // part followed by division of row r by its weight, bit for bit.
  SeqRng rng(11);
  for (const auto& [spec, entrywise] : taken) {
    INFO(spec);
    Vec x(60);
    for (double& v : x) v = 3.0 * rng.uniform() - 1.0;
    for (std::size_t r = 0; r < 3; ++r) x[r] = 0.5 + static_cast<double>(r); // column 0: positive in every row
    Vec whole = x;
    const ScaleWeights w = run(spec, whole, {3, 4, 5});
    CHECK_FALSE(w.replaced);
    Vec pieces = x;
    const auto e = part(spec);
    apply_entrywise(*e, std::span<double>(pieces).subspan(0, 27)); // in two pieces of whole columns
    apply_entrywise(*e, std::span<double>(pieces).subspan(27));
    for (std::size_t i = 0; i < 60; ++i) pieces[i] /= (w.per_rank.empty() ? 1.0 : w.per_rank[i % 3]) * w.scalar;
    CHECK(pieces == whole);
  }
}

TEST_CASE("implies_nonnegative and scale_compensable", "[constraints]") {
  CHECK(implies_nonnegative(parse_constraints("nonnegative")));
  CHECK(implies_nonnegative(parse_constraints("simplex_rows")));
  CHECK(implies_nonnegative(parse_constraints("l1scale_average12slices+nonnegative")));
  CHECK(implies_nonnegative(parse_constraints("nonnegative+l2normalize_columns")));
  CHECK(implies_nonnegative(parse_constraints("binary")));
  CHECK(implies_nonnegative(parse_constraints("clamp:0:1")));
  CHECK(implies_nonnegative(parse_constraints("nonnegative+clamp:-1:1")));
  CHECK_FALSE(implies_nonnegative(parse_constraints("clamp:-1:1")));
  CHECK_FALSE(implies_nonnegative(parse_constraints("l1scale_rows")));
  CHECK_FALSE(implies_nonnegative(parse_constraints("nonnegative+linear")));
  CHECK_FALSE(implies_nonnegative(parse_constraints("")));

  // B (order 3, rank mode 0) and A (order 2, rank mode 1).
  CHECK(scale_compensable(parse_constraints("l1scale_average12slices+nonnegative"), 3, 0));
  CHECK(scale_compensable(parse_constraints("l2scale_1slices"), 3, 0));
  CHECK(scale_compensable(parse_constraints("l2scale_rows"), 3, 0));
  CHECK(scale_compensable(parse_constraints("linftyscale"), 3, 0));
  CHECK(scale_compensable(parse_constraints("simplex_12slices"), 3, 0)); // no scaling at all
  CHECK_FALSE(scale_compensable(parse_constraints("l1scale_12slices"), 3, 0));
  CHECK_FALSE(scale_compensable(parse_constraints("l1scale_columns"), 3, 0));
  CHECK(scale_compensable(parse_constraints("l1scale_columns"), 2, 1));
  CHECK_FALSE(scale_compensable(parse_constraints("l1scale_rows"), 2, 1));
  CHECK_FALSE(scale_compensable(parse_constraints("nonnegative+l1scale_1slices"), 2, 1));
}

TEST_CASE("fixed masks of the slicings", "[constraints]") {
  CHECK(fixed_mask(Slicing::whole, 3) == 0u);
  CHECK(fixed_mask(Slicing::rows, 3) == 1u);
  CHECK(fixed_mask(Slicing::slices1, 3) == 1u);
  CHECK(fixed_mask(Slicing::average12, 3) == 1u);
  CHECK(fixed_mask(Slicing::columns, 3) == 6u);
  CHECK(fixed_mask(Slicing::columns, 2) == 2u);
  CHECK(fixed_mask(Slicing::slices12, 3) == 3u);
  CHECK(fixed_mask(Slicing::columns, 1) == 0u);
}

TEST_CASE("every constraint list's name parses back to the same list", "[constraints]") {
  for (const char* spec : {" clamp:-1.5:2e3 + simplex_rows+l2normalize_12slices ", "clamp:1e-300:1e300",
                           "nonnegative+l1scale_average12slices"}) {
    const auto a = unmix::parse_constraints(spec);
    const auto b = unmix::parse_constraints(a.name());
    CHECK(b.name() == a.name());
    REQUIRE(b.items.size() == a.items.size());
    for (std::size_t i = 0; i < a.items.size(); ++i) {
      CHECK(b.items[i].lo == a.items[i].lo);
      CHECK(b.items[i].hi == a.items[i].hi);
    }
  }
}

namespace {

/// The reducer of a process that shares every slice with one twin holding the same values: sums count both,
/// maxima are the process's own; gathers are counted.
class TwinReducer final : public SliceReducer {
public:
  mutable int gathers = 0;
  void sum(std::span<double> v) const override {
    for (double& a : v) a *= 2;
  }
  void max(std::span<double>) const override {}
  std::vector<double> gather(std::span<const double> v) const override {
    ++gathers;
    Vec o(v.begin(), v.end());
    o.insert(o.end(), v.begin(), v.end());
    return o;
  }
  int size() const override { return 2; }
};

} // namespace

TEST_CASE("simplex and l1normalize on shared slices: reduced counts and sums, no values gathered", "[constraints]") {
  // A 3 x 40 factor whose rows a twin process shares: projected as the serial projection of the rows with each
  // value twice (a 3 x 80 array whose columns j and j + 40 are equal) projects them.
  const std::size_t rows = 3, cols = 40;
  CounterRng rng(8, 2);
  for (const std::string spec : {"simplex_rows", "l1normalize_rows", "nonnegative+simplex_rows"}) {
    INFO(spec);
    Vec x(rows * cols), twice(rows * 2 * cols);
    for (std::size_t i = 0; i < x.size(); ++i) x[i] = 0.3 * rng.normal(i);
    std::copy(x.begin(), x.end(), twice.begin());
    std::copy(x.begin(), x.end(), twice.begin() + static_cast<std::ptrdiff_t>(x.size()));
    TwinReducer twin;
    FactorView v = local_view(x, {rows, cols});
    v.reducer = [&](unsigned) -> const SliceReducer& { return twin; };
    apply(parse_constraints(spec), v);
    run(spec, twice, {rows, 2 * cols});
    CHECK(twin.gathers == 0);
    CHECK(max_diff(x, Vec(twice.begin(), twice.begin() + static_cast<std::ptrdiff_t>(x.size()))) <= 1e-15);
    for (std::size_t r = 0; r < rows; ++r) {
      double s = 0;
      for (std::size_t j = 0; j < 2 * cols; ++j) s += std::abs(twice[r + rows * j]);
      CHECK(s == Approx(1.0).epsilon(1e-12)); // the doubled row is on the unit sphere of its norm
    }
  }
}
