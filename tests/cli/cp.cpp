// `unmix factorize --model cp` end to end: a planted CP tensor written by `unmix synth --model cp` is
// factorized at several process counts and grids (the mixture mode split or not), the factors are
// recovered and the sources B reproduce the data; the rank, the core consistency, starts from a file and
// checkpoints; options CP does not take are refused.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "../support/cli_checks.hpp"
#include "../support/factor_check.hpp"
#include "../support/test_support.hpp"

using unmix::test::read_attribute;
using unmix::test::read_dataset;
using unmix::test::run_unmix;
namespace fs = std::filesystem;

namespace {

/// A C-order (n, R) dataset as an n x R column-major matrix.
std::vector<double> columns_of(const std::vector<double>& c, std::size_t n, std::size_t R) {
  std::vector<double> x(n * R);
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t r = 0; r < R; ++r) x[i + r * n] = c[i * R + r];
  return x;
}

} // namespace

TEST_CASE("factorize --model cp recovers a planted CP tensor at any process count and grid", "[cp]") {
  const fs::path d = unmix::test::fresh_cli_dir("cp", "good");
  const std::string planted = (d / "planted.h5").string();
  const std::size_t I = 12, J = 10, K = 8, R = 3;
  const auto s =
      run_unmix(2, {"synth", "--model", "cp", "--shape", "12x10x8", "--rank", "3", "--seed", "4", "--out", planted});
  INFO(s.err);
  REQUIRE(s.exit_code == 0);
  const auto Y = read_dataset(planted, "Y");
  const auto At = columns_of(read_dataset(planted, "A_true"), I, R);
  const auto F1t = columns_of(read_dataset(planted, "factor_1_true"), J, R);
  const auto F2t = columns_of(read_dataset(planted, "factor_2_true"), K, R);
  // B_true is the sources: Y = sum_r A_true[:, r] o B_true[r].
  const auto Bt = read_dataset(planted, "B_true");
  REQUIRE(Bt.size() == R * J * K);
  CHECK(Bt[(1 * J + 2) * K + 3] == Approx(F1t[2 + 1 * J] * F2t[3 + 1 * K]).epsilon(1e-15));
  struct Run {
    int np;
    std::string grid;
  };
  for (const Run& run : {Run{1, ""}, Run{3, ""}, Run{3, "3x1x1"}, Run{4, "2x1x2"}}) {
    INFO("np " << run.np << " grid " << run.grid);
    std::string name = std::to_string(run.np);
    name += run.grid;
    const std::string out = (d / (name + ".h5")).string();
    std::vector<std::string> args{"factorize", planted,          "-d",  "Y",     "--model",        "cp",    "--rank",
                                  "3",         "--block-solver", "bpp", "--tol", "rel_error=1e-9", "--out", out,
                                  "--no-plot"};
    if (!run.grid.empty()) args.insert(args.end(), {"--grid", run.grid});
    const auto res = run_unmix(run.np, args);
    INFO(res.err);
    REQUIRE(res.exit_code == 0);
    CHECK(res.out.find("CP rank 3 on " + std::to_string(run.np) + " process") != std::string::npos);
    CHECK(read_attribute(out, "model") == "cp");
    CHECK(std::stod(read_attribute(out, "rel_error")) <= 1e-9);
    CHECK(std::stod(read_attribute(out, "core_consistency")) > 99.99);
    CHECK(res.out.find("core consistency 100.0 %") != std::string::npos);
    std::vector<hsize_t> da, db, d1, d2;
    const auto A = read_dataset(out, "A", &da), B = read_dataset(out, "B", &db);
    const auto F1 = read_dataset(out, "factor_1", &d1), F2 = read_dataset(out, "factor_2", &d2);
    CHECK(da == std::vector<hsize_t>{I, R});
    CHECK(db == std::vector<hsize_t>{R, J, K});
    CHECK(d1 == std::vector<hsize_t>{J, R});
    CHECK(d2 == std::vector<hsize_t>{K, R});
    CHECK(unmix::test::matched_column_error(columns_of(A, I, R), At, I, R) < 1e-7);
    CHECK(unmix::test::matched_column_error(columns_of(F1, J, R), F1t, J, R) < 1e-7);
    CHECK(unmix::test::matched_column_error(columns_of(F2, K, R), F2t, K, R) < 1e-7);
    // A and B as written reproduce Y: model[i, jk] = sum_r A[i, r] B[r, jk].
    std::vector<double> model(Y.size(), 0.0);
    for (std::size_t i = 0; i < I; ++i)
      for (std::size_t jk = 0; jk < J * K; ++jk)
        for (std::size_t r = 0; r < R; ++r) model[i * J * K + jk] += A[i * R + r] * B[r * J * K + jk];
    CHECK(unmix::test::rel_diff(model, Y) < 1e-9);
  }
}

TEST_CASE("factorize --model cp refuses what it does not take, leaving nothing behind", "[cp]") {
  const fs::path d = unmix::test::fresh_cli_dir("cp", "bad");
  const std::string planted = (d / "planted.h5").string();
  REQUIRE(run_unmix(1, {"synth", "--model", "cp", "--shape", "6x5x4", "--rank", "2", "--out", planted}).exit_code == 0);
  const std::vector<std::string> base{planted, "-d", "Y", "--model", "cp"};
  auto with = [&](std::vector<std::string> extra) {
    std::vector<std::string> a = base;
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  };
  const std::string not_cp = "is not available with --model cp";
  const std::vector<unmix::test::Refusal> cases{
      {with({"--rank", "auto"}),
       "--rank auto is not available with --model cp: pick the rank with `unmix rank --model cp`"},
      {with({"--rank", "2", "--multiscale", "--continuous-axes", "1"}), "--multiscale " + not_cp},
      {with({"--rank", "2", "--init", "nndsvd"}), "--init nndsvd (CP starts from a random start or a file) " + not_cp},
      {with({"--rank", "2", "--order", "random"}), "a random --order (CP updates its factors in mode order) " + not_cp},
      {with({"--rank", "2", "--block-solver", "bpp", "--extrapolate"}), "--extrapolate " + not_cp},
      {with({"--rank", "2", "-c", "B=l1scale_average12slices+nonnegative"}), "or rows instead of average12slices"},
      {with({"--rank", "2", "-c", "B=simplex_1slices"}), "or rows instead of 1slices"},
      {with({"--rank", "2", "-c", "A=l1scale_columns", "-c", "B=l1scale_columns"}),
       "only one side may have a scaled normalization"},
      {with({"--rank", "2", "-c", "A=simplex_columns", "-c", "B=l1scale_columns+nonnegative"}),
       "A absorbs the scale of B=l1scale_columns+nonnegative after its own step and would no longer satisfy"},

      {with({"--rank", "5000"}), "CP ranks above 4096 are not supported"},
      {{planted, "-d", "Y", "--model", "tucker2", "--rank", "2"}, "--model 'tucker2': use tucker1"},
  };
  const std::string out = (d / "out.h5").string();
  unmix::test::check_all_refused("factorize", cases, out, {1, 2}, [&] {
    CHECK(!fs::exists(out));
    CHECK(!fs::exists(d / "c.h5"));
  });
  unmix::test::check_refused(
      1, {"synth", "--model", "cp", "--separable", "--shape", "6x5x4", "--rank", "2", "--out", (d / "s.h5").string()},
      "--separable makes pure mixtures and sources of a Tucker-1 model");
  CHECK(!fs::exists(d / "s.h5"));
}

TEST_CASE("factorize --model cp --init continues from an earlier CP output", "[cp]") {
  const fs::path d = unmix::test::fresh_cli_dir("cp", "init");
  const std::string planted = (d / "planted.h5").string();
  REQUIRE(run_unmix(1, {"synth", "--model", "cp", "--shape", "6x5x4", "--rank", "2", "--out", planted}).exit_code == 0);
  auto with = [&](std::vector<std::string> extra) {
    std::vector<std::string> a{"factorize", planted, "-d", "Y", "--model", "cp", "--rank", "2", "--no-plot"};
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  };
  // A file without the CP factors (a Tucker-1 output) is refused.
  const std::string tucker = (d / "tucker.h5").string(), first = (d / "first.h5").string(),
                    second = (d / "second.h5").string(), third = (d / "third.h5").string();
  REQUIRE(run_unmix(2, {"factorize", planted, "-d", "Y", "--rank", "2", "--out", tucker, "--no-plot"}).exit_code == 0);
  unmix::test::check_refused(2, with({"--init", tucker, "--out", second}),
                             "has no dataset factor_1; a CP start needs A and factor_1");
  CHECK(!fs::exists(second));
  // Five iterations, then five more from their result: a lower error.
  REQUIRE(run_unmix(2, with({"--maxiter", "5", "--tol", "rel_error=0", "--out", first})).exit_code == 0);
  const auto cont = run_unmix(1, with({"--init", first, "--maxiter", "5", "--tol", "rel_error=0", "--out", second}));
  INFO(cont.err);
  REQUIRE(cont.exit_code == 0);
  CHECK(std::stod(read_attribute(second, "rel_error")) < std::stod(read_attribute(first, "rel_error")));
  // With no iteration the file's factors come back unchanged (their constraints already hold).
  REQUIRE(run_unmix(3, with({"--init", first, "--maxiter", "0", "--out", third})).exit_code == 0);
  for (const char* name : {"A", "factor_1", "factor_2"})
    CHECK(unmix::test::rel_diff(read_dataset(third, name), read_dataset(first, name)) < 1e-14);
  CHECK(std::stod(read_attribute(third, "rel_error")) ==
        Approx(std::stod(read_attribute(first, "rel_error"))).epsilon(1e-12));
}

TEST_CASE("rank --model cp finds a planted CP tensor's rank and keeps every candidate", "[cp]") {
  const fs::path d = unmix::test::fresh_cli_dir("cp", "rank");
  const std::string planted = (d / "planted.h5").string(), out = (d / "ranks.h5").string();
  REQUIRE(
      run_unmix(2, {"synth", "--model", "cp", "--shape", "12x10x8", "--rank", "3", "--noise", "0.02", "--out", planted})
          .exit_code == 0);
  const auto r =
      run_unmix(3, {"rank", planted, "-d", "Y", "--model", "cp", "--ranks", "1:5", "--tol", "rel_decrease=1e-7",
                    "--maxiter", "3000", "--block-solver", "bpp", "--out", out, "--no-plot", "--quiet"});
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(r.out.find("chosen rank 3") != std::string::npos);
  CHECK(read_attribute(out, "model") == "cp");
  CHECK(read_attribute(out, "chosen_rank") == "3.000000");
  std::vector<hsize_t> da, db;
  const auto A3 = read_dataset(out, "A_3", &da);
  const auto B3 = read_dataset(out, "B_3", &db);
  CHECK(da == std::vector<hsize_t>{12, 3});
  CHECK(db == std::vector<hsize_t>{3, 10, 8});
  const auto e = read_dataset(out, "rel_error");
  REQUIRE(e.size() == 5);
  CHECK(e[2] < 0.025);
  // B_3 (formed from the factors as it was written, by the group that solved rank 3) times A_3 leaves the
  // residual the sweep reports.
  const auto Y = read_dataset(planted, "Y");
  REQUIRE(Y.size() == 960);
  double r2 = 0, y2 = 0;
  for (std::size_t i = 0; i < 12; ++i)
    for (std::size_t jk = 0; jk < 80; ++jk) {
      double m = 0;
      for (std::size_t q = 0; q < 3; ++q) m += A3[i * 3 + q] * B3[q * 80 + jk];
      r2 += (Y[i * 80 + jk] - m) * (Y[i * 80 + jk] - m);
      y2 += Y[i * 80 + jk] * Y[i * 80 + jk];
    }
  CHECK(std::sqrt(r2 / y2) == Approx(e[2]).epsilon(1e-6));
  CHECK(e[1] > 0.05);
  // The core consistency of every candidate: near 100 up to the planted rank, far below beyond it.
  const auto cc = read_dataset(out, "core_consistency");
  REQUIRE(cc.size() == 5);
  CHECK(cc[2] > 99.0);
  CHECK(cc[3] < 90.0);
  CHECK(r.out.find("core_consistency") != std::string::npos);
  // A Tucker-1 constraint of B that a CP factor cannot take is refused by rank too.
  unmix::test::check_refused(
      1, {"rank", planted, "-d", "Y", "--model", "cp", "-c", "B=l1scale_1slices", "--out", (d / "bad.h5").string()},
      "or rows instead of 1slices");
  CHECK(!fs::exists(d / "bad.h5"));
}

TEST_CASE("factorize --model cp: a signal checkpoints; resuming reaches bit-identical factors", "[cp]") {
  const fs::path d = unmix::test::fresh_cli_dir("cp", "restart");
  const std::string data = (d / "planted.h5").string();
  REQUIRE(
      run_unmix(0, {"synth", "--model", "cp", "--shape", "60x50x40", "--rank", "4", "--noise", "0.01", "--out", data})
          .exit_code == 0);
  const std::vector<std::string> common{"factorize", data,        "-d",   "Y",     "--model",     "cp",        "--rank",
                                        "4",         "--maxiter", "3000", "--tol", "rel_error=0", "--no-plot", "-q"};
  for (int np : {1, 3}) {
    const std::string ck =
        unmix::test::check_signal_then_resume(np, common, d, std::to_string(np), {"A", "B", "factor_1", "factor_2"});
    // A CP checkpoint is refused by the Tucker-1 model, and for another rank.
    std::vector<std::string> t1(common.begin(), common.end());
    t1.erase(t1.begin() + 4, t1.begin() + 6);
    t1.insert(t1.end(), {"--out", (d / "other.h5").string(), "--resume", ck});
    unmix::test::check_refused(np, t1, "is a checkpoint of --model cp; resume it with --model cp");
    auto args = common;
    args[7] = "3";
    args.insert(args.end(), {"--out", (d / "other.h5").string(), "--resume", ck});
    unmix::test::check_refused(np, args, "rank is 3 now but 4 in the checkpoint");
    CHECK(!fs::exists(d / "other.h5"));
  }
}
