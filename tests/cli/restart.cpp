// Long runs survive interruption: signals checkpoint and stop every rank, a resumed run is
// bit-identical to an uninterrupted one, incompatible checkpoints are refused, and a failing or killed
// rank ends the whole job within seconds.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "../support/cli_checks.hpp"
#include "../support/test_support.hpp"

namespace fs = std::filesystem;
using unmix::test::check_signal_then_resume;
using unmix::test::run_shell;
using unmix::test::run_unmix;

namespace {

std::string dir() {
  static const std::string d = unmix::test::temp_dir("cli-restart");
  return d;
}

std::string bin() { return unmix::test::unmix_binary(); }
std::string mpirun(int np) { return unmix::test::mpirun_unmix(np); }
bool identical(const std::string& a, const std::string& b, const std::string& ds) {
  return unmix::test::identical_datasets(a, b, ds);
}

} // namespace

TEST_CASE("a signal checkpoints every rank; resuming reaches bit-identical factors", "[restart]") {
  const std::string data = dir() + "/planted.h5";
  REQUIRE(run_unmix(0, {"synth", "--shape", "150x100x80", "--rank", "5", "--noise", "0.01", "--out", data}).exit_code ==
          0);
  const std::vector<std::string> common = {"factorize", data,   "--dataset", "Y",           "--rank", "5",
                                           "--maxiter", "1500", "--tol",     "rel_error=0", "-q"};
  for (int np : {1, 2, 3, 4}) {
    const std::string ck = check_signal_then_resume(np, common, dir(), std::to_string(np), {"A", "B"});
    // A checkpoint is refused for other options or another process count.
    auto args = common;
    args[5] = "4";
    args.insert(args.end(), {"--out", dir() + "/other.h5", "--resume", ck});
    auto r = run_unmix(np, args, 60);
    CHECK(r.exit_code == 2);
    CHECK(r.err.find("rank is 4 now but 5 in the checkpoint") != std::string::npos);
    args = common;
    args.insert(args.end(), {"--out", dir() + "/other.h5", "--resume", ck});
    r = run_unmix(np == 4 ? 1 : np + 1, args, 60);
    CHECK(r.exit_code == 2);
    CHECK(r.err.find("processes is") != std::string::npos);
    CHECK(!fs::exists(dir() + "/other.h5"));
  }
}

TEST_CASE("extrapolated exact solves resume from a periodic checkpoint to bit-identical factors", "[restart]") {
  // The extrapolation's own state (its weight, the weight's ceiling, the restart flag and the plain
  // factors) travels in the checkpoint.
  const std::string data = dir() + "/planted_extrapolate.h5";
  REQUIRE(run_unmix(0, {"synth", "--shape", "60x50x40", "--rank", "3", "--noise", "0.01", "--out", data}).exit_code ==
          0);
  const std::vector<std::string> common = {
      "factorize", data,    "--dataset",   "Y",  "--rank",         "3",   "--maxiter",
      "60",        "--tol", "rel_error=0", "-q", "--block-solver", "bpp", "--extrapolate"};
  for (int np : {1, 2, 3, 4}) {
    INFO(np << " processes");
    const std::string full = dir() + "/xfull" + std::to_string(np) + ".h5";
    const std::string part = dir() + "/xpart" + std::to_string(np) + ".h5";
    const std::string ck = dir() + "/xck" + std::to_string(np) + ".h5";
    const std::string res = dir() + "/xres" + std::to_string(np) + ".h5";
    auto args = common;
    args.insert(args.end(), {"--out", full});
    auto r = run_unmix(np, args, 120);
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
    args = common;
    args.insert(args.end(), {"--out", part, "--checkpoint", ck, "--checkpoint-every", "25"});
    r = run_unmix(np, args, 120);
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
    REQUIRE(fs::exists(ck)); // the state after iteration 50
    args = common;
    args.insert(args.end(), {"--out", res, "--resume", ck});
    r = run_unmix(np, args, 120);
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
    CHECK(identical(full, res, "A"));
    CHECK(identical(full, res, "B"));
    CHECK(identical(full, part, "A"));
  }
}

TEST_CASE("a rank that fails or is killed ends the whole job within seconds", "[restart]") {
  const std::string data = dir() + "/planted_small.h5";
  REQUIRE(run_unmix(0, {"synth", "--shape", "60x50x40", "--rank", "3", "--out", data}).exit_code == 0);
  for (int np : {2, 3, 4}) {
    INFO(np << " processes");
    // An exception on the last rank only, while the others enter the next collective.
    const std::string out = dir() + "/fault.h5";
    auto r = run_shell("UNMIX_FAULT_RANK=" + std::to_string(np - 1) + " UNMIX_FAULT_ITER=5 UNMIX_ERROR_GRACE=2 " +
                           mpirun(np) + "factorize " + data +
                           " --dataset Y --rank 3 --maxiter 100000 --tol "
                           "rel_error=0 -q --out " +
                           out,
                       60);
    INFO(r.err);
    CHECK(!r.timed_out);
    CHECK(r.exit_code != 0);
    CHECK(r.seconds < 30);
    CHECK(r.err.find("injected fault") != std::string::npos);
    CHECK(!fs::exists(out));
    // SIGKILL of one rank.
    r = run_shell(mpirun(np) + "factorize " + data +
                      " --dataset Y --rank 3 --maxiter 100000 --tol rel_error=0 -q --out " + out +
                      " & sleep 1.5; pkill -KILL -f -n '" + bin() + " factorize " + data + "'; wait; echo done",
                  60);
    CHECK(!r.timed_out);
    CHECK(r.seconds < 30);
    CHECK(r.out.find("done") != std::string::npos);
    CHECK(!fs::exists(out));
  }
}
