// Sediment provenance, serial parts: grain tables, bandwidths, the density tensor, labels, proportions
// from grains, and the rank picked by curvature.
#include <catch2/catch.hpp>

#include <cmath>
#include <numeric>

#include "unmix/apps/sediment.hpp"
#include "unmix/core/error.hpp"

using namespace unmix;
using namespace unmix::sediment;

namespace {

std::string message_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

GrainTable two_sinks() {
  return parse_tidy(csv::parse("sink,grain,Age,Th_U\n"
                               "north,g1,10,0.1\nnorth,g2,12,0.2\nnorth,g3,,0.3\n"
                               "south,g1,50,0.9\nsouth,g2,55,NaN\nsouth,g3,60,0.8\n",
                               "tidy.csv"));
}

} // namespace

TEST_CASE("tidy grain table: sinks in order of appearance, missing cells counted", "[sediment]") {
  const GrainTable g = two_sinks();
  CHECK(g.layout == "tidy");
  CHECK(g.sinks == std::vector<std::string>{"north", "south"});
  CHECK(g.features == std::vector<std::string>{"Age", "Th_U"});
  REQUIRE(g.grains[0].size() == 3);
  CHECK(g.grains[0][2].id == "g3");
  CHECK(g.grains[0][2].row == 4);
  CHECK(std::isnan(g.grains[0][2].values[0]));
  CHECK(g.missing == 2);
  CHECK(g.grain_count() == 6);
  CHECK_NOTHROW(validate(g));
}

TEST_CASE("tidy grain table: errors name file, row and column", "[sediment]") {
  auto tidy = [](const std::string& text) { return parse_tidy(csv::parse(text, "t.csv")); };
  CHECK_THAT(message_of([&] { tidy("sink,grain,Age\nA,1,12\nA,2,abc\n"); }),
             Catch::Contains("file 't.csv', row 3, column 3 ('Age')") && Catch::Contains("'abc' is not a number"));
  CHECK_THAT(message_of([&] { tidy("where,grain,Age\nA,1,2\n"); }), Catch::Contains("no column named 'sink'"));
  CHECK_THAT(message_of([&] { tidy("sink,grain,Age\n,1,2\n"); }),
             Catch::Contains("row 2, column 1") && Catch::Contains("sink name is empty"));
  // One grain with a value in a sink: not enough for a density.
  const GrainTable one = tidy("sink,grain,Age\nA,1,12\nA,2,\nB,1,3\nB,2,4\n");
  CHECK_THAT(message_of([&] { validate(one); }),
             Catch::Contains("row 2, column 3 ('Age')") && Catch::Contains("sink 'A' has only 1 grain"));
  const GrainTable flat = tidy("sink,grain,Age,Eu\nA,1,12,1\nA,2,13,1\nB,1,3,1\nB,2,4,1\n");
  CHECK_THAT(message_of([&] { validate(flat); }), Catch::Contains("column 4 ('Eu')") && Catch::Contains("zero spread"));
}

TEST_CASE("wide grain tables: headers, ragged sinks and mismatches", "[sediment]") {
  const csv::Table a = csv::parse("1,10\n2,11\n3,\n", "sinks_Age.csv");
  const csv::Table b = csv::parse("0.1,0.5\nNaN,0.6\n0.3,\n", "sinks_Th_U.csv");
  CHECK(feature_names_from_paths({"/d/sinks20_Age.csv", "/d/sinks20_Th_U.csv"}) ==
        std::vector<std::string>{"Age", "Th_U"});
  CHECK(feature_names_from_paths({"x/Age.csv"}) == std::vector<std::string>{"Age"});
  const GrainTable g = parse_wide({a, b}, {"Age", "Th_U"});
  CHECK(g.sinks == std::vector<std::string>{"sink_1", "sink_2"});
  CHECK(g.grains[0].size() == 3);
  CHECK(g.grains[1].size() == 2); // empty cells at the bottom are no grain
  CHECK(g.missing == 1);
  CHECK(g.grains[1][1].values[1] == 0.6);
  // Headers must agree.
  const csv::Table h1 = csv::parse("north,south\n1,10\n2,11\n", "f_Age.csv");
  const csv::Table h2 = csv::parse("north,west\n1,10\n2,11\n", "f_Eu.csv");
  CHECK_THAT(message_of([&] {
               parse_wide({h1, h2}, {"Age", "Eu"});
             }),
             Catch::Contains("file 'f_Eu.csv', row 1, column 2") && Catch::Contains("sink 'west'") &&
                 Catch::Contains("'south'"));
  const csv::Table nohead = csv::parse("1,10\n2,11\n", "f_Eu.csv");
  CHECK_THAT(message_of([&] { parse_wide({h1, nohead}, {"Age", "Eu"}); }), Catch::Contains("no header row"));
  const csv::Table three = csv::parse("1,10,4\n2,11,5\n", "f_Eu.csv");
  CHECK_THAT(message_of([&] { parse_wide({a, three}, {"Age", "Eu"}); }), Catch::Contains("3 sink columns"));
  const csv::Table text = csv::parse("1,10\n2,oops\n", "f_Eu.csv");
  CHECK_THAT(message_of([&] {
               parse_wide({a, text}, {"Age", "Eu"});
             }),
             Catch::Contains("file 'f_Eu.csv', row 2, column 2") && Catch::Contains("'oops'"));
}

TEST_CASE("Silverman bandwidth", "[sediment]") {
  // 1..5: sd = 1.5811, IQR = 2 -> 2/1.34 = 1.4925; h = 0.9 * 1.4925 * 5^-0.2.
  const std::vector<double> x{1, 2, 3, 4, 5};
  CHECK(silverman_bandwidth(x) == Approx(0.9 * (2.0 / 1.34) * std::pow(5.0, -0.2)).epsilon(1e-12));
  const std::vector<double> y{1, 1, 1, 1, 9};
  const double sd = std::sqrt((4 * 1.6 * 1.6 + 6.4 * 6.4) / 4);
  CHECK(silverman_bandwidth(y) == Approx(0.9 * sd * std::pow(5.0, -0.2)).epsilon(1e-12)); // IQR 0: sd
  CHECK(silverman_bandwidth(std::vector<double>{2, 2, 2}) == 0);
  CHECK(silverman_bandwidth(std::vector<double>{2, NAN, 4}) > 0);
}

TEST_CASE("density tensor: fibres sum to 1, grids cover the data, peaks where the grains are", "[sediment]") {
  const GrainTable g = two_sinks();
  KdeOptions o;
  o.grid_points = 64;
  const KdeTensor T = build_tensor(g, o);
  REQUIRE(T.I == 2);
  REQUIRE(T.J == 2);
  REQUIRE(T.K == 64);
  for (std::size_t i = 0; i < 2; ++i)
    for (std::size_t j = 0; j < 2; ++j) {
      double s = 0;
      for (std::size_t k = 0; k < 64; ++k) {
        CHECK(T.at(i, j, k) >= 0);
        s += T.at(i, j, k);
      }
      CHECK(s == Approx(1.0).epsilon(1e-12));
    }
  CHECK(T.grid[0].front() < 10);
  CHECK(T.grid[0].back() > 60);
  // North's ages are near 11, south's near 55.
  const std::size_t k11 = grid_cell(T.grid[0], 11), k55 = grid_cell(T.grid[0], 55);
  CHECK(T.at(0, 0, k11) > T.at(1, 0, k11));
  CHECK(T.at(1, 0, k55) > T.at(0, 0, k55));
  // C order: sinks slowest, grid fastest.
  const auto c = T.c_order();
  CHECK(c[(1 * 2 + 0) * 64 + 5] == T.at(1, 0, 5));
  // Fixed bandwidths and unknown names.
  o.bandwidth = {{"Age", 2.0}};
  CHECK(build_tensor(g, o).bandwidth[0] == 2.0);
  o.bandwidth = {{"Depth", 2.0}};
  CHECK_THROWS_AS(build_tensor(g, o), ConfigError);
}

TEST_CASE("grid cells and grain labels", "[sediment]") {
  const std::vector<double> grid{0, 1, 2, 3};
  CHECK(grid_cell(grid, -5) == 0);
  CHECK(grid_cell(grid, 1.4) == 1);
  CHECK(grid_cell(grid, 1.6) == 2);
  CHECK(grid_cell(grid, 99) == 3);
  // Two sources, two features, four grid points: source 0 sits low, source 1 high.
  GrainTable g;
  g.features = {"a", "b"};
  g.sinks = {"s"};
  g.grains = {{{"1", 2, {0.1, 0.2}}, {"2", 3, {2.9, 3.0}}, {"3", 4, {0.0, NAN}}, {"4", 5, {NAN, NAN}}}};
  const std::size_t R = 2, J = 2, K = 4;
  std::vector<double> B(R * J * K);
  const double lowd[4] = {0.7, 0.2, 0.1, 0.0}, highd[4] = {0.0, 0.1, 0.2, 0.7};
  for (std::size_t j = 0; j < J; ++j)
    for (std::size_t k = 0; k < K; ++k) {
      B[0 + R * (j + J * k)] = lowd[k];
      B[1 + R * (j + J * k)] = highd[k];
    }
  const std::vector<std::vector<double>> grids{grid, grid};
  const auto L = label_grains(g, grids, B, R);
  REQUIRE(L.size() == 4);
  CHECK(L[0].source == 0);
  CHECK(L[0].confidence > 100); // source 1 has density 0 there
  CHECK(L[1].source == 1);
  CHECK(L[2].source == 0);
  CHECK(L[2].features_used == 1);
  CHECK(L[3].source == -1);
  // Confidence is log10(p1 / p2).
  g.grains = {{{"1", 2, {1.0, 1.0}}}};
  const auto M = label_grains(g, grids, B, R);
  CHECK(M[0].source == 0);
  CHECK(M[0].confidence == Approx(2 * std::log10(0.2 / 0.1)));
}

TEST_CASE("proportions from grains recover the mixture weights", "[sediment]") {
  // 1000 grains of a sink, each with likelihoods under 2 sources; 30 % are from source 0.
  std::vector<GrainLabel> L;
  for (int n = 0; n < 1000; ++n) {
    GrainLabel g;
    g.sink = 0;
    g.features_used = 1;
    const bool from0 = n % 10 < 3;
    g.log10p = from0 ? std::vector<double>{-1, -5} : std::vector<double>{-5, -1};
    L.push_back(g);
  }
  const auto A = grain_proportions(L, 1, 2);
  CHECK(A[0] == Approx(0.3).margin(1e-3));
  CHECK(A[1] == Approx(0.7).margin(1e-3));
}

TEST_CASE("rank by maximum curvature", "[sediment]") {
  const std::vector<double> e{0.27, 0.16, 0.108, 0.094, 0.085, 0.075, 0.066, 0.060, 0.054, 0.049};
  CHECK(pick_rank(e) == 3);
  const std::vector<double> knee2{0.5, 0.1, 0.09, 0.085, 0.08};
  CHECK(pick_rank(knee2) == 2);
  const auto k = curvature(e);
  CHECK(k.size() == e.size());
}
