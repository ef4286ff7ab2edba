// `unmix sediment tensor` and `unmix sediment run` through the real binary: accuracy on the Sundell et al.
// (2022) grains against their ground truth at 1 and 2 processes, the rank estimate, and bad input (one
// clear error line naming file, row and column; nothing left behind).
#include <catch2/catch.hpp>

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <sstream>

#include "../support/test_support.hpp"
#include "unmix/io/csv.hpp"

namespace fs = std::filesystem;
using unmix::test::run_unmix;
using unmix::test::shared_data;

namespace {

std::string dir() {
  static const std::string d = unmix::test::temp_dir("cli-sediment");
  return d;
}

std::string write(const std::string& name, const std::string& text) {
  const std::string path = dir() + "/" + name;
  std::ofstream(path) << text;
  return path;
}

std::vector<std::string> sundell_files() {
  std::vector<std::string> f;
  for (const char* name : {"Age", "Eu_anomaly", "Ti_temp", "Th_U", "LREE_HREE", "Dy_Yb", "Ce_Nd_Y"})
    f.push_back(shared_data(std::string("sediment/sundell2022/sinks20_") + name + ".csv"));
  return f;
}

std::vector<std::vector<double>> numbers(const std::string& path, std::size_t skip_rows, std::size_t skip_cols) {
  const auto t = unmix::csv::read(path);
  std::vector<std::vector<double>> out;
  for (std::size_t r = skip_rows; r < t.size(); ++r) {
    out.emplace_back();
    for (std::size_t c = skip_cols; c < t.rows[r].size(); ++c) {
      double v = NAN;
      unmix::csv::parse_cell(t.rows[r][c], v);
      out.back().push_back(v);
    }
  }
  return out;
}

struct Accuracy {
  double mae = 1, label = 0, confident = 0;
  std::size_t confident_count = 0;
};

/// Proportions MAE after the best matching of sources, and grain-label accuracy under that matching.
Accuracy accuracy(const std::string& out) {
  const auto truthP =
      numbers(shared_data("sediment/sundell2022/derived_true_proportions_20sinks_x_3sources.csv"), 0, 0);
  const auto truthL =
      numbers(shared_data("sediment/sundell2022/derived_true_grain_labels_75grains_x_20sinks.csv"), 0, 0);
  const auto P = numbers(out + "/proportions.csv", 1, 1);
  Accuracy a;
  if (P.size() != 20 || P[0].size() != 3) return a;
  std::vector<int> perm{0, 1, 2}, best;
  do {
    double m = 0;
    for (std::size_t i = 0; i < 20; ++i)
      for (std::size_t t = 0; t < 3; ++t) m += std::abs(P[i][static_cast<std::size_t>(perm[t])] - truthP[i][t]);
    m /= 60;
    if (m < a.mae) {
      a.mae = m;
      best = perm;
    }
  } while (std::next_permutation(perm.begin(), perm.end()));
  std::vector<int> to_true(3);
  for (int t = 0; t < 3; ++t) to_true[static_cast<std::size_t>(best[static_cast<std::size_t>(t)])] = t + 1;
  const auto labels = unmix::csv::read(out + "/labels.csv");
  std::vector<std::string> sinks;
  std::size_t n = 0, right = 0, nc = 0, rc = 0;
  for (std::size_t r = 1; r < labels.size(); ++r) {
    const auto& row = labels.rows[r];
    if (std::find(sinks.begin(), sinks.end(), row[0]) == sinks.end()) sinks.push_back(row[0]);
    const auto s = static_cast<std::size_t>(std::find(sinks.begin(), sinks.end(), row[0]) - sinks.begin());
    const auto g = static_cast<std::size_t>(std::stoi(row[1]) - 1);
    const int pred = to_true[static_cast<std::size_t>(std::stoi(row[2]) - 1)];
    const bool ok = pred == static_cast<int>(truthL[g][s]);
    ++n;
    right += ok;
    if (std::stod(row[3]) > 1) {
      ++nc;
      rc += ok;
    }
  }
  a.label = n ? double(right) / double(n) : 0;
  a.confident = nc ? double(rc) / double(nc) : 0;
  a.confident_count = nc;
  return a;
}

int count_error_lines(const std::string& err) {
  std::istringstream in(err);
  std::string line;
  int n = 0;
  while (std::getline(in, line))
    if (line.rfind("error:", 0) == 0) ++n;
  return n;
}

bool leftovers(const std::string& out) {
  if (fs::exists(out)) return true;
  for (const auto& e : fs::directory_iterator(fs::path(out).parent_path()))
    if (e.path().filename().string().rfind(fs::path(out).filename().string() + ".tmp", 0) == 0) return true;
  return false;
}

} // namespace

TEST_CASE("sediment run on the Sundell grains at rank 3 meets the accuracy floors at 1 and 2 processes", "[sediment]") {
  for (int np : {1, 2}) {
    const std::string out = dir() + "/sundell_np" + std::to_string(np);
    std::vector<std::string> args{"sediment", "run", "--rank", "3", "--out", out, "--wide"};
    for (const auto& f : sundell_files()) args.push_back(f);
    const auto r = run_unmix(np, args, 600);
    INFO("np " << np << "\nstderr:\n" << r.err << "\nstdout:\n" << r.out);
    REQUIRE(r.exit_code == 0);
    for (const char* f : {"results.h5", "proportions.csv", "labels.csv", "sources.png", "proportions.png"})
      CHECK(fs::exists(out + "/" + f));
    const Accuracy a = accuracy(out);
    INFO("MAE " << a.mae << ", labels " << a.label << ", confident " << a.confident << " (" << a.confident_count
                << ")");
    CHECK(a.mae <= 0.05);
    CHECK(a.label >= 0.87);
    CHECK(a.confident >= 0.97);
    CHECK(a.confident_count >= 750); // at least half the grains are confident
    // The factorization's own proportions, reported with --proportions factor.
    const std::string out2 = out + "_factor";
    args[5] = out2;
    args.insert(args.begin() + 2, {"--proportions", "factor", "--plots", "none"});
    const auto r2 = run_unmix(np, args, 600);
    REQUIRE(r2.exit_code == 0);
    const Accuracy b = accuracy(out2);
    INFO("factor MAE " << b.mae);
    CHECK(b.mae <= 0.06);
    CHECK(b.label == a.label); // same labels: only the reported proportions differ
  }
}

TEST_CASE("sediment run estimates rank 3 on the Sundell grains", "[sediment]") {
  const std::string out = dir() + "/sundell_auto";
  std::vector<std::string> args{"sediment", "run", "--plots", "svg", "--out", out, "--wide"};
  for (const auto& f : sundell_files()) args.push_back(f);
  const auto r = run_unmix(1, args, 600);
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  const auto sweep = numbers(out + "/rank_sweep.csv", 1, 0);
  REQUIRE(sweep.size() == 10);
  std::size_t chosen = 0;
  for (const auto& row : sweep)
    if (row[3] == 1) chosen = static_cast<std::size_t>(row[0]);
  CHECK(chosen == 3);
  CHECK(fs::exists(out + "/sources.svg"));
  CHECK(accuracy(out).mae <= 0.05);
}

TEST_CASE("sediment tensor writes the density tensor from a tidy table", "[sediment]") {
  std::ostringstream t;
  t << "sink,grain,Age,Th_U\n";
  for (int s = 0; s < 3; ++s)
    for (int g = 0; g < 12; ++g)
      t << "S" << s << "," << g << "," << 10 * s + (g * 7) % 5 << "," << 0.1 * ((g * 3) % 4) << "\n";
  const std::string tidy = write("tidy.csv", t.str());
  for (int np : {1, 2}) {
    const std::string out = dir() + "/tensor_np" + std::to_string(np) + ".h5";
    const auto r = run_unmix(np, {"sediment", "tensor", "--grains", tidy, "--grid-points", "64", "--out", out}, 120);
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
    CHECK(r.out.find("tensor 3 sinks x 2 features x 64 grid points from 36 grains") != std::string::npos);
    const auto info = run_unmix(1, {"info", out}, 60);
    CHECK(info.out.find("3 x 2 x 64") != std::string::npos);
    CHECK(info.out.find("/grid") != std::string::npos);
  }
}

TEST_CASE("sediment: missing cells are skipped with a warning", "[sediment]") {
  const std::string f = write("missing.csv", "sink,grain,Age,Eu\nA,1,1,0.1\nA,2,2,\nA,3,3,0.3\nB,1,7,NaN\nB,2,8,0.8\n"
                                             "B,3,9,0.9\n");
  const std::string out = dir() + "/missing_out";
  const auto r = run_unmix(2, {"sediment", "run", "--grains", f, "--rank", "2", "--plots", "none", "--out", out}, 120);
  INFO(r.err);
  CHECK(r.exit_code == 0);
  CHECK(r.err.find("warning: 2 missing") != std::string::npos);
  CHECK(count_error_lines(r.err) == 0);
  CHECK(fs::exists(out + "/labels.csv"));
}

TEST_CASE("sediment: bad grain tables give one clear error and leave nothing behind", "[sediment]") {
  const std::string good = write("good.csv", "sink,grain,Age,Eu\nA,1,1,0.1\nA,2,2,0.2\nB,1,7,0.7\nB,2,8,0.9\n");
  const std::string text = write("text.csv", "sink,grain,Age,Eu\nA,1,1,0.1\nA,2,two,0.2\nB,1,7,0.7\nB,2,8,0.9\n");
  const std::string lone = write("lone.csv", "sink,grain,Age,Eu\nA,1,1,0.1\nA,2,2,0.2\nB,1,7,0.7\n");
  const std::string flat = write("flat.csv", "sink,grain,Age,Eu\nA,1,1,0.5\nA,2,2,0.5\nB,1,7,0.5\nB,2,8,0.5\n");
  const std::string w1 = write("w_Age.csv", "north,south\n1,10\n2,11\n3,12\n");
  const std::string w2 = write("w_Eu.csv", "north,west\n0.1,0.5\n0.2,0.6\n0.3,0.7\n");
  const std::string out = dir() + "/bad_out";
  const std::string existing = dir() + "/existing_out";
  fs::create_directories(existing);
  std::ofstream(existing + "/keep.txt") << "keep me";
  struct Case {
    std::string name;
    std::vector<std::string> args;
    std::vector<std::string> expect;
  };
  const std::vector<Case> cases = {
      {"non-numeric cell",
       {"sediment", "run", "--grains", text, "--rank", "2", "--out", out},
       {"text.csv', row 3, column 3 ('Age')", "'two' is not a number"}},
      {"sink with one grain",
       {"sediment", "run", "--grains", lone, "--rank", "2", "--out", out},
       {"lone.csv', row 4, column 3 ('Age')", "sink 'B' has only 1 grain"}},
      {"zero spread",
       {"sediment", "run", "--grains", flat, "--rank", "2", "--out", out},
       {"column 4 ('Eu')", "zero spread"}},
      {"mismatched sink names",
       {"sediment", "run", "--wide", w1, w2, "--rank", "2", "--out", out},
       {"w_Eu.csv', row 1, column 2", "sink 'west'"}},
      {"mismatched sink names (tensor)",
       {"sediment", "tensor", "--wide", w1, w2, "--out", out},
       {"w_Eu.csv', row 1, column 2"}},
      {"missing file", {"sediment", "run", "--grains", dir() + "/nope.csv", "--out", out}, {"cannot read", "nope.csv"}},
      {"rank too large", {"sediment", "run", "--grains", good, "--rank", "5", "--out", out}, {"--rank 5"}},
      {"existing output", {"sediment", "run", "--grains", good, "--rank", "1", "--out", existing}, {"--overwrite"}},
      {"no grains", {"sediment", "run", "--rank", "1", "--out", out}, {"no grains given"}},
      {"bad constraint", {"sediment", "run", "--grains", good, "-c", "B=wobbly", "--out", out}, {"wobbly"}},
      {"unknown step", {"sediment", "mix"}, {"unknown step"}},
  };
  for (int np : {1, 2, 3, 4}) {
    for (const auto& c : cases) {
      INFO(c.name << " at " << np << " processes");
      const auto r = run_unmix(np, c.args, 60);
      INFO("exit " << r.exit_code << "\nstderr:\n" << r.err);
      CHECK(!r.timed_out);
      CHECK(r.exit_code != 0);
      CHECK(r.exit_code < 128);
      CHECK(count_error_lines(r.err) == 1);
      for (const auto& e : c.expect) CHECK(r.err.find(e) != std::string::npos);
      CHECK(!leftovers(out));
    }
  }
  std::ifstream in(existing + "/keep.txt");
  std::string content;
  std::getline(in, content);
  CHECK(content == "keep me");
}
