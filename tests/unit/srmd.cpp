// SRMD building blocks against reference fixtures: l1-ball projections, SPGL1 problems, the SRMD ex0
// dictionary and its BPDN solution, DBSCAN labels, the feature dictionary and mode assembly.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>
#include <map>
#include <numbers>
#include <sstream>
#include <string>
#include <vector>

#include "../support/test_support.hpp"
#include "unmix/core/error.hpp"
#include "unmix/core/pcg64.hpp"
#include "unmix/core/rng.hpp"
#include "unmix/srmd/dbscan.hpp"
#include "unmix/srmd/features.hpp"
#include "unmix/srmd/spgl1.hpp"
#include "unmix/srmd/srmd.hpp"

using namespace unmix;
using namespace unmix::srmd;

namespace {

struct Table {
  std::size_t rows = 0, cols = 0;
  std::vector<double> v; // row-major
  double at(std::size_t i, std::size_t j) const { return v[i * cols + j]; }
  std::vector<double> col(std::size_t j) const {
    std::vector<double> c(rows);
    for (std::size_t i = 0; i < rows; ++i) c[i] = at(i, j);
    return c;
  }
};

Table read_csv(const std::string& rel) {
  const std::string path = test::shared_data(rel);
  std::ifstream in(path);
  REQUIRE(in.good());
  Table t;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    std::stringstream ss(line);
    std::string cell;
    std::vector<double> row;
    bool numeric = true;
    while (std::getline(ss, cell, ',')) {
      char* end = nullptr;
      const double x = std::strtod(cell.c_str(), &end);
      if (end == cell.c_str()) numeric = false;
      row.push_back(x);
    }
    if (!numeric) continue; // header
    if (t.cols == 0) t.cols = row.size();
    REQUIRE(row.size() == t.cols);
    t.v.insert(t.v.end(), row.begin(), row.end());
    ++t.rows;
  }
  return t;
}
std::vector<double> read_vec(const std::string& rel) { return read_csv(rel).v; }

DenseOperator dense(const Table& a) {
  std::vector<double> cm(a.rows * a.cols);
  for (std::size_t i = 0; i < a.rows; ++i)
    for (std::size_t j = 0; j < a.cols; ++j) cm[j * a.rows + i] = a.at(i, j);
  return DenseOperator(a.rows, a.cols, std::move(cm));
}

double norm2(const std::vector<double>& x) {
  double s = 0;
  for (double v : x) s += v * v;
  return std::sqrt(s);
}
double l1(const std::vector<double>& x) {
  double s = 0;
  for (double v : x) s += std::abs(v);
  return s;
}
double max_abs_diff(const std::vector<double>& a, const std::vector<double>& b) {
  REQUIRE(a.size() == b.size());
  double m = 0;
  for (std::size_t i = 0; i < a.size(); ++i) m = std::max(m, std::abs(a[i] - b[i]));
  return m;
}
std::vector<double> residual(const DenseOperator& A, const std::vector<double>& b, const std::vector<double>& x) {
  std::vector<double> r(b.size());
  A.forward(x, r);
  for (std::size_t i = 0; i < r.size(); ++i) r[i] = b[i] - r[i];
  return r;
}

} // namespace

TEST_CASE("l1-ball projections match the reference fixtures", "[srmd]") {
  // name, l1 of the weighted projection, nonzeros (summary.json)
  const std::vector<std::tuple<std::string, double, std::size_t>> cases = {{"rand20_tau1", 1.0000000000000007, 4},
                                                                           {"rand20_tau_big", 14.45237419085322, 20},
                                                                           {"rand20_tau0", 0.0, 0},
                                                                           {"ties", 1.9999999999999996, 3},
                                                                           {"rand50_weighted", 2.5, 28},
                                                                           {"rand50_scalar_d2", 2.5000000000000013, 6}};
  for (const auto& [name, l1w, nnz] : cases) {
    INFO(name);
    const std::string base = "srmd/spgl1/proj_" + name + "__";
    const auto b = read_vec(base + "b.csv"), d = read_vec(base + "d.csv"), x = read_vec(base + "x.csv");
    const double tau = read_vec(base + "tau.csv").at(0);
    const auto p = project_l1(b, d, tau);
    CHECK(max_abs_diff(p, x) <= 1e-12);
    double wl1 = 0;
    std::size_t count = 0;
    for (std::size_t i = 0; i < p.size(); ++i) {
      wl1 += (d.size() == 1 ? d[0] : d[i]) * std::abs(p[i]);
      count += p[i] != 0;
    }
    CHECK(wl1 == Approx(l1w).margin(1e-12));
    CHECK(count == nnz);
    for (std::size_t i = 0; i < p.size(); ++i) CHECK(p[i] * b[i] >= 0); // signs kept
  }
}

namespace {
/// The projection as the reference computes it: every ratio b_i / d_i (b = |x|) sorted, largest first
/// and ties by index, and walked down until alpha = (sum d b - tau) / sum d^2 reaches the ratio.
std::vector<double> sorted_projection(const std::vector<double>& x, const std::vector<double>& d, double tau) {
  const std::size_t n = x.size();
  auto wt = [&](std::size_t i) { return d.empty() ? 1.0 : (d.size() == 1 ? d[0] : d[i]); };
  std::vector<double> b(n), p(n, 0.0);
  for (std::size_t i = 0; i < n; ++i) b[i] = std::abs(x[i]);
  double total = 0;
  for (std::size_t i = 0; i < n; ++i) total += wt(i) * b[i];
  if (tau >= total) {
    p = b;
  } else if (tau >= std::numeric_limits<double>::epsilon()) {
    std::vector<std::pair<double, std::size_t>> c;
    for (std::size_t i = 0; i < n; ++i)
      if (b[i] > 0) c.emplace_back(b[i] / wt(i), i);
    std::sort(c.begin(), c.end(), [](const auto& u, const auto& v) {
      return u.first > v.first || (u.first == v.first && u.second < v.second);
    });
    double csdb = 0, csd2 = 0, soft = 0;
    for (const auto& [ratio, i] : c) {
      csdb += wt(i) * b[i];
      csd2 += wt(i) * wt(i);
      const double alpha = (csdb - tau) / csd2;
      if (alpha >= b[i] / wt(i)) break;
      soft = alpha;
    }
    for (std::size_t i = 0; i < n; ++i) p[i] = std::max(0.0, b[i] - soft * wt(i));
  }
  for (std::size_t i = 0; i < n; ++i) p[i] = x[i] > 0 ? p[i] : (x[i] < 0 ? -p[i] : 0.0);
  return p;
}
} // namespace

TEST_CASE("l1-ball projections equal the fully sorted computation bit for bit", "[srmd]") {
  // Ties, zeros of both signs, wide ranges of magnitude, every kind of weight, and radii from 0 to
  // beyond the norm: the selection of the ratios that are sorted must never change a bit.
  SeqRng rng(21);
  int mismatches = 0;
  for (int k = 0; k < 3000; ++k) {
    const std::size_t n = 1 + rng.below(k % 10 == 0 ? 3000 : 50);
    std::vector<double> x(n), w(n);
    const int kind = k % 5;
    for (std::size_t i = 0; i < n; ++i) {
      double v = rng.uniform() - 0.5;
      if (kind == 1) v = std::floor(6 * rng.uniform() - 3);
      if (kind == 2) v = rng.uniform() < 0.4 ? (rng.uniform() < 0.5 ? -0.0 : 0.0) : v;
      if (kind == 3) v = std::ldexp(rng.uniform() - 0.5, static_cast<int>(rng.below(40)) - 20);
      if (kind == 4) v = rng.uniform() < 0.9 ? 1e-3 * (rng.uniform() - 0.5) : 10 * (rng.uniform() - 0.5);
      x[i] = v;
      w[i] = k % 3 == 0 ? std::floor(1 + 3 * rng.uniform()) : 0.1 + 2 * rng.uniform();
    }
    double total = 0;
    for (double v : x) total += std::abs(v);
    const double taus[] = {total * rng.uniform(), total, total * (1 - 1e-15), 1e-17, total * 1e-9};
    const double tau = taus[k % 5];
    for (const std::vector<double>& d : {std::vector<double>{}, std::vector<double>{0.6}, w}) {
      const std::vector<double> p = project_l1(x, d, tau), q = sorted_projection(x, d, tau);
      if (std::memcmp(p.data(), q.data(), n * sizeof(double)) != 0) ++mismatches;
    }
  }
  CHECK(mismatches == 0);
}

TEST_CASE("SPGL1 solves the reference BP, BPDN and LASSO problems", "[srmd]") {
  struct Expect {
    std::string name;
    double lasso_rnorm, bp_rnorm_max, bp_err;
    int bp_stat;
    double bpdn_rnorm, bpdn_l1;
    int bpdn_stat;
  };
  // From summary.json (bp_err: max |x_bp - x0| of the reference).
  const std::vector<Expect> cases = {
      {"prob_square_50x50", 1.8744823672391033, 1e-10, 1.5e-16, 2, 0.10000647576956025, 10.945733477256786, 1},
      {"prob_tall_128x50_testpar2", 2.6440498957464538, 1e-10, 2.3e-16, 2, 0.6276354252895546, 14.102364885187578, 3},
      {"prob_wide_50x100_testpar3", 12.787528256976216, 2e-4, 2.8e-5, 1, 0.09995749993868171, 10.75102877912326, 1},
  };
  for (const auto& e : cases) {
    INFO(e.name);
    const std::string base = "srmd/spgl1/" + e.name + "__";
    const Table At = read_csv(base + "A.csv");
    const DenseOperator A = dense(At);
    const auto b = read_vec(base + "b.csv"), bn = read_vec(base + "b_noisy.csv"), x0 = read_vec(base + "x0.csv");

    // LASSO, tau = pi: unique solution (the fixture's), status 4.
    const auto lasso = spg_lasso(A, b, std::numbers::pi);
    CHECK(static_cast<int>(lasso.status) == 4);
    CHECK(l1(lasso.x) == Approx(std::numbers::pi).epsilon(1e-9));
    CHECK(norm2(residual(A, b, lasso.x)) == Approx(e.lasso_rnorm).epsilon(1e-4));
    CHECK(max_abs_diff(lasso.x, read_vec(base + "x_lasso.csv")) <= 1e-3);

    // Basis pursuit.
    const auto bp = spg_bp(A, b);
    CHECK(static_cast<int>(bp.status) == e.bp_stat);
    CHECK(norm2(residual(A, b, bp.x)) <= e.bp_rnorm_max);
    CHECK(max_abs_diff(bp.x, x0) <= std::max(1e-9, 10 * e.bp_err));
    CHECK(max_abs_diff(bp.x, read_vec(base + "x_bp.csv")) <= std::max(1e-9, 10 * e.bp_err));

    // Basis pursuit denoise, sigma = 0.1, on the noisy data.
    const auto dn = spg_bpdn(A, bn, 0.1);
    CHECK(static_cast<int>(dn.status) == e.bpdn_stat);
    CHECK(norm2(residual(A, bn, dn.x)) == Approx(e.bpdn_rnorm).epsilon(1e-3));
    CHECK(l1(dn.x) == Approx(e.bpdn_l1).epsilon(1e-3));
    CHECK(max_abs_diff(dn.x, read_vec(base + "x_bpdn.csv")) <= 1e-2);
  }
}

TEST_CASE("SPGL1 on the tutorial problem", "[srmd]") {
  const std::string base = "srmd/spgl1/tutorial_50x128__";
  const DenseOperator A = dense(read_csv(base + "A.csv"));
  const auto b = read_vec(base + "b.csv"), bn = read_vec(base + "b_noisy.csv"), x0 = read_vec(base + "x0.csv");
  const auto lasso = spg_lasso(A, b, std::numbers::pi);
  CHECK(static_cast<int>(lasso.status) == 4);
  CHECK(l1(lasso.x) == Approx(3.141592653589793).epsilon(1e-9));
  CHECK(lasso.rnorm == Approx(2.6887073516041258).epsilon(1e-4));
  std::size_t nnz = 0;
  for (double v : lasso.x) nnz += std::abs(v) > 1e-5;
  CHECK(nnz == 7);
  const auto bp = spg_bp(A, b);
  CHECK(static_cast<int>(bp.status) == 1);
  CHECK(max_abs_diff(bp.x, x0) <= 4e-3); // reference: 3.9e-4
  const auto dn = spg_bpdn(A, bn, 0.1);
  CHECK(static_cast<int>(dn.status) == 1);
  CHECK(dn.rnorm == Approx(0.10004743717579656).epsilon(1e-3));
  CHECK(l1(dn.x) == Approx(19.20115218219975).epsilon(1e-3));
}

TEST_CASE("the feature formula reproduces the SRMD ex0 dictionary, and BPDN matches the reference", "[srmd]") {
  const std::string base = "srmd/spgl1/srmd_ex0_dictionary__";
  const Table B = read_csv(base + "B.csv");
  const auto t = read_vec(base + "t.csv"), y = read_vec(base + "y.csv");
  FeatureParams fp{read_vec(base + "tau.csv"), read_vec(base + "frq.csv"), read_vec(base + "phs.csv")};
  const double sigma = read_vec(base + "sigma.csv").at(0);
  REQUIRE(B.rows == 200);
  REQUIRE(B.cols == 2000);
  REQUIRE(fp.size() == 2000);
  const SerialReduction red;
  const FeatureDictionary dict(t, fp, 0.1, 0, fp.size(), red);
  // Every stored column equals the fixture's column, and nothing outside the supports is nonzero.
  double err = 0;
  std::size_t stored_nonzero = 0, fixture_nonzero = 0;
  for (std::size_t j = 0; j < 2000; ++j) {
    std::vector<double> col(200, 0.0);
    const auto v = dict.support_values(j);
    for (std::size_t k = 0; k < v.size(); ++k) col[dict.support_first(j) + k] = v[k];
    for (std::size_t i = 0; i < 200; ++i) {
      err = std::max(err, std::abs(col[i] - B.at(i, j)));
      stored_nonzero += col[i] != 0;
      fixture_nonzero += B.at(i, j) != 0;
    }
  }
  CHECK(err <= 1e-12);
  CHECK(stored_nonzero == fixture_nonzero);
  CHECK(dict.stored() < 200 * 2000 / 2);

  const auto sol = spg_bpdn(dict, y, sigma);
  std::size_t nnz = 0;
  for (double v : sol.x) nnz += v != 0;
  CHECK(static_cast<int>(sol.status) == 1);
  CHECK(std::abs(static_cast<double>(nnz) - 61.0) <= 6.1);
  CHECK(sol.rnorm == Approx(0.7070191343129935).epsilon(1e-4));
  CHECK(l1(sol.x) == Approx(18.196576155545692).epsilon(1e-2));
  // The dense fixture matrix gives the same answer as the sparse dictionary.
  const auto dsol = spg_bpdn(dense(B), y, sigma);
  CHECK(dsol.rnorm == Approx(sol.rnorm).epsilon(1e-4));
  CHECK(dsol.iterations == Approx(static_cast<double>(sol.iterations)).epsilon(0.1));
}

TEST_CASE("the generator draws NumPy's default_rng stream", "[srmd]") {
  // numpy.random.default_rng(s).random(): values published by NumPy for these seeds.
  Pcg64 g0(0);
  CHECK(g0.uniform() == 0.6369616873214543);
  CHECK(g0.uniform() == 0.2697867137638703);
  CHECK(g0.uniform() == 0.04097352393619469);
  CHECK(Pcg64(42).uniform() == 0.7739560485559633);
  CHECK(Pcg64(12345).uniform() == 0.22733602246716966);
  // Jumping ahead equals drawing.
  for (std::uint64_t skip : {1ULL, 2ULL, 7ULL, 1000ULL, 123457ULL}) {
    Pcg64 a(9), b(9);
    for (std::uint64_t k = 0; k < skip; ++k) (void)a.next_u64();
    b.advance(skip);
    CHECK(a.next_u64() == b.next_u64());
  }
}

TEST_CASE("seed 314 draws the reference's ex0 dictionary exactly", "[srmd]") {
  // The fixture's features were drawn by the reference with seed 314 (N = 2000 on 200 samples of
  // [0, 1], max_frq = 0.5 (m + 1) / L = 100.5): the same seed gives the same features bit for bit.
  const std::string base = "srmd/spgl1/srmd_ex0_dictionary__";
  const auto tau = read_vec(base + "tau.csv"), frq = read_vec(base + "frq.csv"), phs = read_vec(base + "phs.csv");
  REQUIRE(tau.size() == 2000);
  const FeatureParams all = draw_features(314, 2000, 0, 2000, 0.0, 1.0, 100.5);
  std::size_t differ = 0;
  for (std::size_t j = 0; j < 2000; ++j) differ += all.tau[j] != tau[j] || all.frq[j] != frq[j] || all.phs[j] != phs[j];
  CHECK(differ == 0);
  // A part of the stream is the same part of the whole.
  const FeatureParams part = draw_features(314, 2000, 1234, 1300, 0.0, 1.0, 100.5);
  for (std::size_t k = 0; k < part.size(); ++k) {
    CHECK(part.tau[k] == tau[1234 + k]);
    CHECK(part.frq[k] == frq[1234 + k]);
    CHECK(part.phs[k] == phs[1234 + k]);
  }
  CHECK_THROWS_AS(draw_features(314, 2000, 1990, 2001, 0.0, 1.0, 100.5), ConfigError);
}

TEST_CASE("DBSCAN reproduces scikit-learn's labels and core flags", "[srmd]") {
  const std::map<std::string, std::pair<double, int>> cases = {
      {"boundary_exact_eps", {1.0, 3}},
      {"boundary_exact_eps_2", {1.0, 2}},
      {"min_samples_1", {1.0, 1}},
      {"shared_border_AfirstBmidCthen", {1.0, 4}},
      {"shared_border_CfirstBmidAthen", {1.0, 4}},
      {"shared_border_Bfirst", {1.0, 4}},
      {"sklearn_doc", {3.0, 2}},
      {"duplicates", {0.1, 3}},
      {"blobs_with_noise", {0.5, 4}},
  };
  for (const auto& [name, par] : cases) {
    INFO(name);
    const Table X = read_csv("srmd/dbscan/" + name + "__X.csv");
    const auto labels = read_vec("srmd/dbscan/" + name + "__labels.csv");
    const auto core = read_vec("srmd/dbscan/" + name + "__is_core.csv");
    const auto res = dbscan(X.col(0), X.col(1), par.first, par.second);
    REQUIRE(res.labels.size() == labels.size());
    std::size_t bad_label = 0, bad_core = 0;
    for (std::size_t i = 0; i < labels.size(); ++i) {
      bad_label += res.labels[i] != static_cast<int>(labels[i]);
      bad_core += res.core[i] != static_cast<char>(core[i]);
    }
    CHECK(bad_label == 0);
    CHECK(bad_core == 0);
  }
  CHECK_THROWS_AS(dbscan(std::vector<double>{0}, std::vector<double>{0}, 0.0, 1), ConfigError);
  CHECK_THROWS_AS(dbscan(std::vector<double>{0}, std::vector<double>{0}, 1.0, 0), ConfigError);
}

TEST_CASE("DBSCAN on many points agrees with an all-pairs count", "[srmd]") {
  SeqRng rng(3);
  const std::size_t n = 3000;
  std::vector<double> x(n), y(n);
  for (std::size_t i = 0; i < n; ++i) {
    x[i] = std::floor(rng.uniform() * 400) / 8; // on a grid: many distances exactly eps
    y[i] = std::floor(rng.uniform() * 400) / 8;
  }
  const double eps = 0.5;
  const auto res = dbscan(x, y, eps, 5);
  std::size_t bad = 0;
  for (std::size_t i = 0; i < n; ++i) {
    std::size_t c = 0;
    for (std::size_t j = 0; j < n; ++j) c += (x[i] - x[j]) * (x[i] - x[j]) + (y[i] - y[j]) * (y[i] - y[j]) <= eps * eps;
    bad += (c >= 5) != (res.core[i] != 0);
    // A labelled non-core point has a core neighbour with its label.
    if (res.labels[i] >= 0 && !res.core[i]) {
      bool ok = false;
      for (std::size_t j = 0; j < n; ++j)
        ok |= res.core[j] && res.labels[j] == res.labels[i] &&
              (x[i] - x[j]) * (x[i] - x[j]) + (y[i] - y[j]) * (y[i] - y[j]) <= eps * eps;
      bad += !ok;
    }
  }
  CHECK(bad == 0);
  CHECK(res.clusters > 1);
}

TEST_CASE("feature draws depend only on seed and global index", "[srmd]") {
  const auto all = draw_features(11, 100, 0, 100, 0.5, 2.0, 30.0);
  const auto part = draw_features(11, 100, 40, 60, 0.5, 2.0, 30.0);
  for (std::size_t k = 0; k < 20; ++k) {
    CHECK(part.tau[k] == all.tau[40 + k]);
    CHECK(part.frq[k] == all.frq[40 + k]);
    CHECK(part.phs[k] == all.phs[40 + k]);
  }
  for (std::size_t j = 0; j < 100; ++j) {
    CHECK(all.tau[j] >= 0.5);
    CHECK(all.tau[j] <= 2.5);
    CHECK(all.frq[j] <= 30.0);
    CHECK(all.phs[j] <= 2 * std::numbers::pi);
  }
  CHECK(draw_features(12, 100, 0, 1, 0.5, 2.0, 30.0).tau[0] != all.tau[0]);
  // Window: 1 inside 1.5 w, 1/2 on the edge, 0 beyond.
  CHECK(feature_value(0.75, 0.0, 0.0, std::numbers::pi / 2, 0.5) == Approx(0.5 * std::exp(-4.5)));
  CHECK(feature_value(-0.75, 0.0, 0.0, std::numbers::pi / 2, 0.5) == Approx(0.5 * std::exp(-4.5)));
  CHECK(feature_value(0.7500001, 0.0, 0.0, std::numbers::pi / 2, 0.5) == 0.0);
  CHECK(feature_value(0.7499999, 0.0, 0.0, std::numbers::pi / 2, 0.5) == Approx(std::exp(-4.5)).epsilon(1e-5));
  CHECK(feature_value(0.05, 0.0, 0.0, std::numbers::pi / 2, 0.1) == Approx(std::exp(-0.5)));
}

TEST_CASE("the sparse dictionary's products equal dense products", "[srmd]") {
  std::vector<double> t(150);
  for (std::size_t i = 0; i < t.size(); ++i) t[i] = 0.01 * static_cast<double>(i);
  const auto fp = draw_features(5, 700, 0, 700, t.front(), t.back() - t.front(), 75.0);
  const SerialReduction red;
  const FeatureDictionary dict(t, fp, 0.1, 0, 700, red);
  std::vector<double> dense_m(150 * 700);
  for (std::size_t j = 0; j < 700; ++j)
    for (std::size_t i = 0; i < 150; ++i)
      dense_m[j * 150 + i] = feature_value(t[i], fp.tau[j], fp.frq[j], fp.phs[j], 0.1);
  const DenseOperator D(150, 700, dense_m);
  SeqRng rng(9);
  std::vector<double> x(700, 0.0), r(150);
  for (std::size_t j = 0; j < 700; j += 3) x[j] = rng.uniform() - 0.5;
  for (double& v : r) v = rng.uniform() - 0.5;
  std::vector<double> y1(150), y2(150), g1(700), g2(700);
  dict.forward(x, y1);
  D.forward(x, y2);
  dict.adjoint(r, g1);
  D.adjoint(r, g2);
  CHECK(max_abs_diff(y1, y2) <= 1e-13);
  CHECK(max_abs_diff(g1, g2) <= 1e-13);
}

TEST_CASE("mode assembly: cutoff split, norm order and merging into n_modes", "[srmd]") {
  std::vector<double> t(400);
  for (std::size_t i = 0; i < t.size(); ++i) t[i] = static_cast<double>(i) / 399.0;
  SrmdOptions opt;
  opt.n_features = 4000;
  opt.eps = 1.0;
  opt.frq_scale = 1.0;
  const SrmdPlan plan = plan_srmd(t, t, opt);
  SrmdResult res;
  // Three groups of features: 5 Hz (weight 3), 40 Hz (weight 2), 80 Hz (weight 1), spread in time.
  for (int g = 0; g < 3; ++g)
    for (int k = 0; k < 10; ++k) {
      res.tau.push_back(0.05 + 0.1 * k);
      res.frq.push_back(g == 0 ? 5.0 : (g == 1 ? 40.0 : 80.0));
      res.phs.push_back(0.3);
      res.weight.push_back(g == 0 ? 3.0 : (g == 1 ? 2.0 : 1.0));
    }
  assemble_modes(t, plan, opt, res);
  REQUIRE(res.n_modes == 3);
  CHECK(res.label[0] == 0);
  CHECK(res.label[10] == 1);
  CHECK(res.label[20] == 2);
  double n0 = 0, n1 = 0, n2 = 0;
  for (std::size_t i = 0; i < 400; ++i) {
    n0 += res.mode(0)[i] * res.mode(0)[i];
    n1 += res.mode(1)[i] * res.mode(1)[i];
    n2 += res.mode(2)[i] * res.mode(2)[i];
  }
  CHECK(n0 > n1);
  CHECK(n1 > n2);
  // The sum of all modes is the sum of all weighted features.
  double err = 0;
  for (std::size_t i = 0; i < 400; ++i) {
    double s = 0;
    for (std::size_t j = 0; j < 30; ++j)
      s += res.weight[j] * feature_value(t[i], res.tau[j], res.frq[j], res.phs[j], 0.1);
    err = std::max(err, std::abs(s - res.mode(0)[i] - res.mode(1)[i] - res.mode(2)[i]));
  }
  CHECK(err <= 1e-12);

  SrmdOptions two = opt;
  two.n_modes = 2;
  SrmdResult merged = res;
  assemble_modes(t, plan, two, merged);
  REQUIRE(merged.n_modes == 2);
  CHECK(merged.label[20] == 1);
  for (std::size_t i = 0; i < 400; ++i)
    CHECK(merged.mode(1)[i] == Approx(res.mode(1)[i] + res.mode(2)[i]).margin(1e-12));

  SrmdOptions cut = opt;
  cut.cutoff = 20.0;
  SrmdResult split = res;
  assemble_modes(t, plan, cut, split);
  REQUIRE(split.n_modes == 2);
  CHECK(split.label[0] != split.label[10]);
  CHECK(split.label[10] == split.label[20]);
}

TEST_CASE("srmd rejects bad signals and options", "[srmd]") {
  std::vector<double> t = {0, 1, 2, 3}, y = {1, 0, -1, 0};
  SrmdOptions o;
  CHECK_THROWS_AS(srmd::srmd(std::vector<double>{}, std::vector<double>{}, o), DataError);
  CHECK_THROWS_AS(srmd::srmd(std::vector<double>{0}, std::vector<double>{1}, o), DataError);
  CHECK_THROWS_AS(srmd::srmd(t, std::vector<double>{1, NAN, 0, 1}, o), DataError);
  CHECK_THROWS_AS(srmd::srmd(std::vector<double>{0, 1, 1, 2}, y, o), DataError);
  CHECK_THROWS_AS(srmd::srmd(t, std::vector<double>(4, 0.0), o), DataError);
  SrmdOptions r1 = o;
  r1.r = 1.0;
  CHECK_THROWS_AS(srmd::srmd(t, y, r1), ConfigError);
  r1.r = 0.0;
  CHECK_THROWS_AS(srmd::srmd(t, y, r1), ConfigError);
  SrmdOptions e = o;
  e.eps = 0.0;
  CHECK_THROWS_AS(srmd::srmd(t, y, e), ConfigError);
  SrmdOptions ms = o;
  ms.min_samples = 0;
  CHECK_THROWS_AS(srmd::srmd(t, y, ms), ConfigError);
}
