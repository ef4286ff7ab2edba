// `unmix rank` and `unmix factorize --rank auto` through the real binary: a planted rank is found, the
// output holds the curve and every candidate, and bad input fails fast with a clear error.
#include <catch2/catch.hpp>

#include <hdf5.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>

#include "../support/test_support.hpp"

namespace fs = std::filesystem;
using unmix::test::read_dataset;
using unmix::test::run_unmix;

namespace {

std::string dir() {
  static const std::string d = unmix::test::temp_dir("cli-rank");
  return d;
}

std::string planted_file() {
  static std::string path;
  if (path.empty()) {
    path = dir() + "/planted.h5";
    auto r = run_unmix(1, {"synth", "--shape", "10x10x10", "--rank", "3", "--seed", "4", "--out", path});
    REQUIRE(r.exit_code == 0);
  }
  return path;
}

} // namespace

TEST_CASE("unmix rank finds the planted rank and writes the curve, every candidate and a plot", "[rank]") {
  const std::string in = planted_file();
  for (int np : {1, 3}) {
    INFO(np << " processes");
    const std::string out = dir() + "/sweep" + std::to_string(np) + ".h5";
    auto r = run_unmix(np,
                       {"rank", in, "-d", "Y", "--ranks", "1:6", "--groups", np == 3 ? "2" : "1", "--maxiter", "500",
                        "--tol", "rel_error=1e-4", "-o", out, "--overwrite"},
                       240);
    INFO(r.out << r.err);
    REQUIRE(r.exit_code == 0);
    CHECK(r.out.find("chosen rank 3") != std::string::npos);
    CHECK(r.out.find("<- chosen") != std::string::npos);
    const auto ranks = read_dataset(out, "ranks");
    CHECK(ranks == std::vector<double>{1, 2, 3, 4, 5, 6});
    // Progress on stderr: one line per candidate as it finishes, from its group, with its result.
    const auto errors = read_dataset(out, "rel_error"), groups = read_dataset(out, "group");
    std::size_t done = 0;
    std::istringstream lines(r.err);
    for (std::string line; std::getline(lines, line);) {
      std::size_t rank = 0;
      int group = -1;
      double e = 0;
      if (std::sscanf(line.c_str(), "rank %zu done (group %d): rel_error %lf,", &rank, &group, &e) != 3) continue;
      ++done;
      INFO(line);
      REQUIRE(rank >= 1);
      REQUIRE(rank <= 6);
      CHECK(group == static_cast<int>(groups[rank - 1]));
      CHECK(std::abs(e - errors[rank - 1]) <= 5e-6 * errors[rank - 1]); // printed to 6 significant digits
    }
    CHECK(done == 6);
    CHECK(read_dataset(out, "rel_error").size() == 6);
    CHECK(read_dataset(out, "curvature").size() == 6);
    std::vector<hsize_t> da, db;
    read_dataset(out, "A_3", &da);
    read_dataset(out, "B_5", &db);
    CHECK(da == std::vector<hsize_t>{10, 3});
    CHECK(db == std::vector<hsize_t>{5, 10, 10});
    const std::string svg = dir() + "/sweep" + std::to_string(np) + ".svg";
    REQUIRE(fs::exists(svg));
    CHECK(r.out.find("plot " + svg) != std::string::npos);
    std::ifstream plot(svg);
    const std::string text((std::istreambuf_iterator<char>(plot)), std::istreambuf_iterator<char>());
    CHECK(text.find("<svg") != std::string::npos);
    CHECK(text.find("chosen rank 3") != std::string::npos); // gnuplot's label at the chosen rank
  }
}

TEST_CASE("factorize --rank auto keeps the chosen factorization", "[rank]") {
  const std::string in = planted_file(), out = dir() + "/auto.h5";
  auto r = run_unmix(2,
                     {"factorize", in, "-d", "Y", "--rank", "auto", "--ranks", "1:5", "--groups", "2", "--maxiter",
                      "500", "--tol", "rel_error=1e-4", "-o", out, "--overwrite", "--quiet"},
                     240);
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(r.out.find("rank 3 on 2 processes") != std::string::npos);
  std::vector<hsize_t> da;
  read_dataset(out, "A", &da);
  CHECK(da == std::vector<hsize_t>{10, 3});
  CHECK(read_dataset(out, "sweep_rel_error").size() == 5);
}

TEST_CASE("bad rank sweeps: clear error, non-zero exit, no hang", "[rank]") {
  const std::string in = planted_file(), out = dir() + "/bad.h5";
  struct Case {
    int np;
    std::vector<std::string> args;
    std::string msg;
  };
  const std::vector<Case> cases{
      {2, {"rank", in, "-d", "Y", "--ranks", "1:4", "--groups", "3", "-o", out}, "--groups 3"},
      {3, {"rank", in, "-d", "Y", "--ranks", "1:11", "-o", out}, "at most 10"},
      {1, {"rank", in, "-d", "Y", "--ranks", "0:4", "-o", out}, "ranks start at 1"},
      {2, {"rank", in, "-d", "Y", "--ranks", "1:3", "--curvature", "wiggles", "-o", out}, "--curvature"},
      {2, {"factorize", in, "-d", "Y", "--rank", "three", "-o", out}, "--rank 'three'"},
  };
  for (const auto& c : cases) {
    auto r = run_unmix(c.np, c.args, 60);
    INFO(r.out << r.err);
    CHECK(!r.timed_out);
    CHECK(r.exit_code == 2);
    CHECK(r.err.find("error:") != std::string::npos);
    CHECK(r.err.find(c.msg) != std::string::npos);
    CHECK(!fs::exists(out));
  }
}

TEST_CASE("factorize --multiscale and --init nndsvd through the binary; bad multiscale input", "[rank]") {
  const std::string out = dir() + "/ms.h5";
  // A 4 x 33 x 17 planted tensor; axes 1 and 2 coarsened.
  const std::string in = dir() + "/ms_in.h5";
  REQUIRE(run_unmix(1, {"synth", "--shape", "4x33x17", "--rank", "2", "--seed", "3", "--out", in}).exit_code == 0);
  for (int np : {1, 2}) {
    INFO(np << " processes");
    auto r = run_unmix(np,
                       {"factorize", in, "-d", "Y", "--rank", "2", "--multiscale", "--continuous-axes", "1,2",
                        "--maxiter", "300", "-o", out, "--overwrite", "--quiet"},
                       120);
    INFO(r.out << r.err);
    REQUIRE(r.exit_code == 0);
    std::vector<hsize_t> db;
    read_dataset(out, "B", &db);
    CHECK(db == std::vector<hsize_t>{2, 33, 17});
    auto n = run_unmix(np,
                       {"factorize", in, "-d", "Y", "--rank", "2", "--init", "nndsvd", "--maxiter", "50", "-o", out,
                        "--overwrite", "--quiet"},
                       120);
    INFO(n.out << n.err);
    CHECK(n.exit_code == 0);
    auto s = run_unmix(np, {"rank", in, "-d", "Y", "--ranks", "1:3", "--maxiter", "50", "-o", out, "--overwrite"}, 120);
    INFO(s.out << s.err);
    CHECK(s.exit_code == 0);
    CHECK(read_dataset(out, "singular_values").size() == 4);
    CHECK(s.err.find("rank 3 done (group 0)") != std::string::npos);
    // --quiet: no progress lines.
    auto q = run_unmix(
        np, {"rank", in, "-d", "Y", "--ranks", "1:3", "--maxiter", "50", "-o", out, "--overwrite", "--quiet"}, 120);
    CHECK(q.exit_code == 0);
    CHECK(q.err.find(" done (group") == std::string::npos);
  }
  const std::string bad = dir() + "/ms_bad.h5";
  struct Case {
    std::vector<std::string> args;
    std::string msg;
  };
  const std::vector<Case> cases{
      {{"--continuous-axes", "0"}, "mixture axis"},
      {{"--continuous-axes", "5"}, "does not exist"},
      {{}, "--multiscale needs --continuous-axes"},
  };
  for (int np : {1, 3})
    for (const auto& c : cases) {
      std::vector<std::string> args{"factorize", in, "-d", "Y", "--rank", "2", "--multiscale", "-o", bad};
      args.insert(args.end(), c.args.begin(), c.args.end());
      auto r = run_unmix(np, args, 60);
      INFO(r.out << r.err);
      CHECK(!r.timed_out);
      CHECK(r.exit_code == 2);
      CHECK(r.err.find(c.msg) != std::string::npos);
      CHECK(!fs::exists(bad));
    }
  // Too small to coarsen: a 4 x 4 x 3 tensor.
  const std::string tiny = dir() + "/tiny.h5";
  REQUIRE(run_unmix(1, {"synth", "--shape", "4x4x3", "--rank", "2", "--out", tiny}).exit_code == 0);
  auto r = run_unmix(
      2, {"factorize", tiny, "-d", "Y", "--rank", "2", "--multiscale", "--continuous-axes", "1", "-o", bad}, 60);
  INFO(r.out << r.err);
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("too small to coarsen") != std::string::npos);
}
