// `unmix factorize --model tucker` end to end: a planted Tucker tensor written by `unmix synth --model tucker`
// is fitted at several process counts and grids, the written core, factors and sources reproduce the data;
// starts from a file, checkpoints and resuming; options and constraints Tucker does not take are refused.
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

/// The Tucker model of C-order datasets: model[i, j, k] = sum G[a, b, c] A[i, a] F1[j, b] F2[k, c].
std::vector<double> tucker_model(const std::vector<double>& G, const std::vector<double>& A,
                                 const std::vector<double>& F1, const std::vector<double>& F2, std::size_t I,
                                 std::size_t J, std::size_t K, std::size_t R0, std::size_t R1, std::size_t R2) {
  std::vector<double> X(I * J * K, 0.0);
  for (std::size_t i = 0; i < I; ++i)
    for (std::size_t j = 0; j < J; ++j)
      for (std::size_t k = 0; k < K; ++k) {
        double v = 0;
        for (std::size_t a = 0; a < R0; ++a)
          for (std::size_t b = 0; b < R1; ++b)
            for (std::size_t c = 0; c < R2; ++c)
              v += G[(a * R1 + b) * R2 + c] * A[i * R0 + a] * F1[j * R1 + b] * F2[k * R2 + c];
        X[(i * J + j) * K + k] = v;
      }
  return X;
}

} // namespace

TEST_CASE("factorize --model tucker fits a planted Tucker tensor at any process count and grid", "[tucker]") {
  const fs::path d = unmix::test::fresh_cli_dir("tucker", "good");
  const std::string planted = (d / "planted.h5").string();
  const std::size_t I = 12, J = 10, K = 8, R0 = 3, R1 = 2, R2 = 4;
  const auto s = run_unmix(
      2, {"synth", "--model", "tucker", "--shape", "12x10x8", "--rank", "3,2,4", "--seed", "4", "--out", planted});
  INFO(s.err);
  REQUIRE(s.exit_code == 0);
  const auto Y = read_dataset(planted, "Y");
  // The planted datasets are the model: Y = core x0 A x1 F1 x2 F2, and B_true = core x1 F1 x2 F2.
  std::vector<hsize_t> dc;
  const auto Gt = read_dataset(planted, "core_true", &dc);
  REQUIRE(dc == std::vector<hsize_t>{R0, R1, R2});
  const auto At = read_dataset(planted, "A_true"), F1t = read_dataset(planted, "factor_1_true"),
             F2t = read_dataset(planted, "factor_2_true");
  CHECK(unmix::test::rel_diff(tucker_model(Gt, At, F1t, F2t, I, J, K, R0, R1, R2), Y) < 1e-14);
  struct Run {
    int np;
    std::string grid;
  };
  for (const Run& run : {Run{1, ""}, Run{3, ""}, Run{3, "3x1x1"}, Run{4, "2x1x2"}}) {
    INFO("np " << run.np << " grid " << run.grid);
    std::string name = std::to_string(run.np);
    name += run.grid;
    const std::string out = (d / (name + ".h5")).string();
    std::vector<std::string> args{
        "factorize", planted,          "-d",    "Y",       "--model",  "tucker", "--rank",
        "3,2,4",     "--block-solver", "bpp",   "--inner", "5",        "--tol",  "rel_error=1e-6",
        "--maxiter", "20000",          "--out", out,       "--no-plot"};
    if (!run.grid.empty()) args.insert(args.end(), {"--grid", run.grid});
    // About 2500 iterations: half a second alone, but over a minute at 4 processes on 2 cores beside another MPI
    // test and a compiler (each collective then waits for the scheduler), which the default 60 s watchdog killed.
    const auto res = run_unmix(run.np, args, 300);
    INFO(res.err);
    REQUIRE(res.exit_code == 0);
    CHECK(res.out.find("Tucker ranks 3 x 2 x 4 on " + std::to_string(run.np) + " process") != std::string::npos);
    CHECK(read_attribute(out, "model") == "tucker");
    CHECK(read_attribute(out, "ranks") == "3,2,4");
    CHECK(read_attribute(out, "constraint_core") == "nonnegative");
    CHECK(std::stod(read_attribute(out, "rel_error")) <= 1e-6);
    std::vector<hsize_t> da, db, dg, d1, d2;
    const auto A = read_dataset(out, "A", &da), B = read_dataset(out, "B", &db), G = read_dataset(out, "core", &dg);
    const auto F1 = read_dataset(out, "factor_1", &d1), F2 = read_dataset(out, "factor_2", &d2);
    CHECK(da == std::vector<hsize_t>{I, R0});
    CHECK(db == std::vector<hsize_t>{R0, J, K});
    CHECK(dg == std::vector<hsize_t>{R0, R1, R2});
    CHECK(d1 == std::vector<hsize_t>{J, R1});
    CHECK(d2 == std::vector<hsize_t>{K, R2});
    for (const auto* v : {&A, &G, &F1, &F2})
      for (double x : *v) CHECK(x >= 0);
    // The written core and factors are the model the error was reported for ...
    const auto model = tucker_model(G, A, F1, F2, I, J, K, R0, R1, R2);
    CHECK(unmix::test::rel_diff(model, Y) <= 1.0001e-6);
    // ... and A with the sources B as written give the same model: model[i, jk] = sum_r A[i, r] B[r, jk].
    std::vector<double> ab(Y.size(), 0.0);
    for (std::size_t i = 0; i < I; ++i)
      for (std::size_t jk = 0; jk < J * K; ++jk)
        for (std::size_t r = 0; r < R0; ++r) ab[i * J * K + jk] += A[i * R0 + r] * B[r * J * K + jk];
    CHECK(unmix::test::rel_diff(ab, model) < 1e-13);
  }
}

TEST_CASE("factorize --model tucker refuses what it does not take, leaving nothing behind", "[tucker]") {
  const fs::path d = unmix::test::fresh_cli_dir("tucker", "bad");
  const std::string planted = (d / "planted.h5").string();
  REQUIRE(run_unmix(1, {"synth", "--model", "tucker", "--shape", "6x5x4", "--rank", "2", "--out", planted}).exit_code ==
          0);
  const std::vector<std::string> base{planted, "-d", "Y", "--model", "tucker"};
  auto with = [&](std::vector<std::string> extra) {
    std::vector<std::string> a = base;
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  };
  const std::string not_tucker = "is not available with --model tucker";
  const std::vector<unmix::test::Refusal> cases{
      {with({"--rank", "auto"}), "--rank auto is not available with --model tucker: give one rank per axis"},
      {with({"--rank", "2", "--multiscale", "--continuous-axes", "1"}), "--multiscale " + not_tucker},
      {with({"--rank", "2", "--init", "nndsvd"}), "--init nndsvd (Tucker starts from a random start or a file)"},
      {with({"--rank", "2", "--order", "random"}),
       "a random --order (Tucker updates its core and factors in mode order)"},
      {with({"--rank", "2,2"}), "--rank '2,2': 2 values for a tensor of 3 axes (6 x 5 x 4): give one rank per axis"},
      {with({"--rank", "2,6,2"}), "rank 6 of the model's axis 1 exceeds its extent 5 (the tensor, mixture axis first, "
                                  "is 6 x 5 x 4); e.g. --rank 2,5,2"},
      {with({"--rank", "5"}), "rank 5 of the model's axis 2 exceeds its extent 4"},
      {with({"--rank", "2", "-c", "core=simplex_columns"}), "the Tucker core takes entrywise constraints only"},
      {with({"--rank", "2", "-c", "core=bogus"}), "--constraint core=bogus: "},
      {with({"--rank", "2", "-c", "B=l1scale_columns+nonnegative", "-c", "core=clamp:0:1"}),
       "the core absorbs the scale of B=l1scale_columns+nonnegative and would no longer satisfy its own constraint"},
      {with({"--rank", "2", "-c", "B=simplex_1slices"}), "or rows instead of 1slices"},
      {{planted, "-d", "Y", "--model", "cp", "--rank", "2,2,2"}, "one rank per axis is for --model tucker"},
      {{planted, "-d", "Y", "--model", "cp", "--rank", "2", "-c", "core=nonnegative"},
       "--constraint core=... is for --model tucker"},
      {{planted, "-d", "Y", "--rank", "2", "-c", "core=nonnegative"}, "--constraint core=... is for --model tucker"},
  };
  const std::string out = (d / "out.h5").string();
  unmix::test::check_all_refused("factorize", cases, out, {1, 2}, [&] { CHECK(!fs::exists(out)); });
  unmix::test::check_refused(2, {"rank", planted, "-d", "Y", "--model", "tucker", "--out", (d / "r.h5").string()},
                             "--model tucker: a Tucker model has one rank per axis");
  unmix::test::check_refused(1, {"rank", planted, "-d", "Y", "-c", "core=none", "--out", (d / "r.h5").string()},
                             "--constraint core=... is for factorize --model tucker");
  CHECK(!fs::exists(d / "r.h5"));
  unmix::test::check_refused(
      1, {"synth", "--model", "tucker", "--shape", "6x5x4", "--rank", "2,2", "--out", (d / "s.h5").string()},
      "--rank '2,2': 2 ranks for 3 axes");
  unmix::test::check_refused(
      1, {"synth", "--model", "cp", "--shape", "6x5x4", "--rank", "2,2,2", "--out", (d / "s.h5").string()},
      "one rank per axis is for --model tucker");
  CHECK(!fs::exists(d / "s.h5"));
}

TEST_CASE("factorize --model tucker --init continues from an earlier Tucker output", "[tucker]") {
  const fs::path d = unmix::test::fresh_cli_dir("tucker", "init");
  const std::string planted = (d / "planted.h5").string();
  REQUIRE(
      run_unmix(1, {"synth", "--model", "tucker", "--shape", "6x5x4", "--rank", "2,3,2", "--out", planted}).exit_code ==
      0);
  auto with = [&](std::vector<std::string> extra) {
    std::vector<std::string> a{"factorize", planted, "-d", "Y", "--model", "tucker", "--rank", "2,3,2", "--no-plot"};
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  };
  // A CP output (factors of the same shapes, no core) and a Tucker-1 output are refused; an output of other
  // ranks has other shapes (below).
  const std::string cp = (d / "cp.h5").string(), t1 = (d / "t1.h5").string(), first = (d / "first.h5").string(),
                    second = (d / "second.h5").string(), third = (d / "third.h5").string();
  REQUIRE(run_unmix(2, {"factorize", planted, "-d", "Y", "--model", "cp", "--rank", "2", "--maxiter", "3", "--out", cp,
                        "--no-plot"})
              .exit_code == 0);
  REQUIRE(run_unmix(1, {"factorize", planted, "-d", "Y", "--rank", "2", "--maxiter", "3", "--out", t1, "--no-plot"})
              .exit_code == 0);
  unmix::test::check_refused(2, with({"--init", cp, "--out", second}),
                             "is an output of --model cp; a tucker start needs an output of --model tucker");
  unmix::test::check_refused(1, with({"--init", t1, "--out", second}),
                             "has no dataset factor_1; a Tucker start needs A, factor_1 ... and core");
  CHECK(!fs::exists(second));
  // Five iterations, then five more from their result: a lower error.
  REQUIRE(run_unmix(2, with({"--maxiter", "5", "--tol", "rel_error=0", "--out", first})).exit_code == 0);
  const auto cont = run_unmix(1, with({"--init", first, "--maxiter", "5", "--tol", "rel_error=0", "--out", second}));
  INFO(cont.err);
  REQUIRE(cont.exit_code == 0);
  CHECK(std::stod(read_attribute(second, "rel_error")) < std::stod(read_attribute(first, "rel_error")));
  // With no iteration the file's start comes back unchanged (its constraints already hold).
  REQUIRE(run_unmix(3, with({"--init", first, "--maxiter", "0", "--out", third})).exit_code == 0);
  for (const char* name : {"A", "factor_1", "factor_2", "core"})
    CHECK(unmix::test::rel_diff(read_dataset(third, name), read_dataset(first, name)) < 1e-14);
  CHECK(std::stod(read_attribute(third, "rel_error")) ==
        Approx(std::stod(read_attribute(first, "rel_error"))).epsilon(1e-12));
  unmix::test::check_refused(2,
                             {"factorize", planted, "-d", "Y", "--model", "tucker", "--rank", "2,2,2", "--init", first,
                              "--out", (d / "x.h5").string()},
                             "factor_1 is 5 x 3 but this problem needs 5 x 2");
  // And a Tucker output is no CP start.
  unmix::test::check_refused(1,
                             {"factorize", planted, "-d", "Y", "--model", "cp", "--rank", "2", "--init", first, "--out",
                              (d / "x.h5").string()},
                             "is an output of --model tucker; a cp start needs an output of --model cp");
  CHECK(!fs::exists(d / "x.h5"));
  // A rank above the product of the others is allowed, with a warning.
  const auto w = run_unmix(1, {"factorize", planted, "-d", "Y", "--model", "tucker", "--rank", "5,2,2", "--maxiter",
                               "2", "--out", (d / "w.h5").string(), "--no-plot"});
  CHECK(w.exit_code == 0);
  CHECK(w.err.find("Tucker rank 5 of axis 0 exceeds the product of the other ranks (4)") != std::string::npos);
}

TEST_CASE("factorize --model tucker: a signal checkpoints; resuming reaches bit-identical results", "[tucker]") {
  const fs::path d = unmix::test::fresh_cli_dir("tucker", "restart");
  const std::string data = (d / "planted.h5").string();
  REQUIRE(run_unmix(0, {"synth", "--model", "tucker", "--shape", "60x50x40", "--rank", "4,3,3", "--noise", "0.01",
                        "--out", data})
              .exit_code == 0);
  // Scaled normalizations absorbed by the core, exact solves for A and inner steps for the others and the core:
  // every piece of the state a resume must restore is in use.
  const std::vector<std::string> common{
      "factorize",      data,    "-d",        "Y",    "--model", "tucker",
      "--rank",         "4,3,3", "--maxiter", "3000", "--tol",   "rel_error=0",
      "--block-solver", "bpp",   "--inner",   "3",    "-c",      "B=l1scale_columns+nonnegative",
      "--no-plot",      "-q"};
  for (int np : {1, 3}) {
    const std::string ck = unmix::test::check_signal_then_resume(np, common, d, std::to_string(np),
                                                                 {"A", "B", "core", "factor_1", "factor_2"});
    // A Tucker checkpoint is refused by the CP model, and for other ranks or another core constraint.
    auto args = common;
    args[5] = "cp";
    args[7] = "4";
    args.insert(args.end(), {"--out", (d / "other.h5").string(), "--resume", ck});
    unmix::test::check_refused(np, args, "is a checkpoint of --model tucker; resume it with --model tucker");
    args = common;
    args[7] = "4,3,2";
    args.insert(args.end(), {"--out", (d / "other.h5").string(), "--resume", ck});
    unmix::test::check_refused(np, args, "ranks is 4,3,2 now but 4,3,3 in the checkpoint");
    args = common;
    args.insert(args.end(), {"-c", "core=none", "--out", (d / "other.h5").string(), "--resume", ck});
    unmix::test::check_refused(np, args, "constraint_core is none now but nonnegative in the checkpoint");
    CHECK(!fs::exists(d / "other.h5"));
  }
}

TEST_CASE("factorize --model tucker and --model cp with --precision float fit as in double", "[tucker]") {
  const fs::path d = unmix::test::fresh_cli_dir("tucker", "float");
  const std::size_t I = 12, J = 10, K = 8;
  for (const std::string model : {"tucker", "cp"}) {
    INFO("model " << model);
    const std::string planted = (d / (model + ".h5")).string();
    REQUIRE(run_unmix(1, {"synth", "--model", model, "--shape", "12x10x8", "--rank", model == "cp" ? "3" : "3,2,2",
                          "--seed", "6", "--out", planted})
                .exit_code == 0);
    const auto Y = read_dataset(planted, "Y");
    double rel[2] = {0, 0};
    for (const std::string precision : {"double", "float"}) {
      INFO("precision " << precision);
      const std::string out = (d / (model + precision + ".h5")).string();
      const auto r = run_unmix(2, {"factorize", planted, "-d", "Y", "--model", model, "--rank",
                                   model == "cp" ? "3" : "3,2,2", "--block-solver", "bpp", "--tol", "rel_error=1e-4",
                                   "--maxiter", "5000", "--precision", precision, "--out", out, "--no-plot"});
      INFO(r.err);
      REQUIRE(r.exit_code == 0);
      CHECK(read_attribute(out, "precision") == precision);
      rel[precision == "float"] = std::stod(read_attribute(out, "rel_error"));
      CHECK(rel[precision == "float"] <= 1e-4);
      // The written factors (and core) are the model whose error was reported, to float rounding of Y.
      std::vector<double> model_values(Y.size(), 0.0);
      const auto A = read_dataset(out, "A"), B = read_dataset(out, "B");
      const std::size_t R = 3;
      for (std::size_t i = 0; i < I; ++i)
        for (std::size_t jk = 0; jk < J * K; ++jk)
          for (std::size_t q = 0; q < R; ++q) model_values[i * J * K + jk] += A[i * R + q] * B[q * J * K + jk];
      CHECK(unmix::test::rel_diff(model_values, Y) <= rel[precision == "float"] * 1.001 + 1e-6);
    }
    CHECK(rel[1] > 0);
  }
}
