#pragma once
// Checks shared by the command-line tests (Catch2 assertions, so for test sources only).
#include <catch2/catch.hpp>

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "test_support.hpp"

namespace unmix::test {

/// An empty folder unmix-cli-<command>-<pid>-<name> under the system's temporary folder (emptied if it exists).
inline std::filesystem::path fresh_cli_dir(const std::string& command, const std::string& name) {
  namespace fs = std::filesystem;
  const fs::path d =
      fs::temp_directory_path() / ("unmix-cli-" + command + "-" + std::to_string(::getpid()) + "-" + name);
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

/// The lines of a text file (none when it cannot be read).
inline std::vector<std::string> lines_of(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::vector<std::string> out;
  std::string line;
  while (std::getline(in, line)) out.push_back(line);
  return out;
}

/// `unmix ARGS` at `np` processes is refused: a non-zero exit in time, and "error: " and `message` on stderr.
inline void check_refused(int np, const std::vector<std::string>& args, const std::string& message) {
  INFO(args[1] << (args.size() > 2 ? " " + args[2] : std::string()) << " at np " << np);
  const RunResult r = run_unmix(np, args);
  INFO(r.err);
  CHECK(r.exit_code != 0);
  CHECK(!r.timed_out);
  CHECK(r.err.find("error: ") != std::string::npos);
  CHECK(r.err.find(message) != std::string::npos);
}

/// One bad command line: the arguments after the command, and what the error must say.
struct Refusal {
  std::vector<std::string> args;
  std::string message;
};

/// Every case as `unmix COMMAND ARGS... --out OUT` is refused (check_refused) at each process count of
/// `nps`; after each run `nothing_left` checks that no output was left behind.
inline void check_all_refused(const std::string& command, const std::vector<Refusal>& cases, const std::string& out,
                              const std::vector<int>& nps, const std::function<void()>& nothing_left) {
  for (const auto& c : cases) {
    std::vector<std::string> args = {command};
    args.insert(args.end(), c.args.begin(), c.args.end());
    args.insert(args.end(), {"--out", out});
    for (int np : nps) {
      check_refused(np, args, c.message);
      nothing_left();
    }
  }
}

/// The unmix binary the command-line tests run (UNMIX_BINARY overrides the build's).
inline std::string unmix_binary() {
  const char* env = std::getenv("UNMIX_BINARY");
  return env && *env ? env : UNMIX_BINARY_PATH_FOR_TESTS;
}

/// The shell words that start `unmix` at `np` processes, ready for its arguments.
inline std::string mpirun_unmix(int np) {
  return "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OPENBLAS_NUM_THREADS=1 mpirun --oversubscribe -n " +
         std::to_string(np) + " " + unmix_binary() + " ";
}

/// h5diff exits 0 when the datasets are identical to the bit.
inline bool identical_datasets(const std::string& a, const std::string& b, const std::string& ds) {
  return run_shell("h5diff " + a + " " + b + " " + ds + " " + ds).exit_code == 0;
}

/// Stop and resume at `np` processes: `unmix ARGS --out FULL` uninterrupted; the same run sent SIGUSR1 (what
/// SLURM sends before the time limit) once its first periodic checkpoint (every 50 iterations) exists, so that
/// the signal lands mid-run: it must exit with status 75, say so and leave no output; resumed from the
/// checkpoint it must write each of `datasets` bit-identical to the uninterrupted run's. Files go to `dir`,
/// named by `tag`; returns the checkpoint's path (for refusal checks).
inline std::string check_signal_then_resume(int np, const std::vector<std::string>& args,
                                            const std::filesystem::path& dir, const std::string& tag,
                                            const std::vector<std::string>& datasets) {
  namespace fs = std::filesystem;
  INFO(np << " processes");
  const std::string full = (dir / ("full" + tag + ".h5")).string(), part = (dir / ("part" + tag + ".h5")).string(),
                    ck = (dir / ("ck" + tag + ".h5")).string(), res = (dir / ("res" + tag + ".h5")).string();
  auto a = args;
  a.insert(a.end(), {"--out", full});
  auto r = run_unmix(np, a, 300);
  REQUIRE(r.exit_code == 0);
  std::string cmd = mpirun_unmix(np);
  for (const auto& w : args) cmd += w + " ";
  cmd += "--out " + part + " --checkpoint " + ck + " --checkpoint-every 50 & pid=$!; while [ ! -f " + ck +
         " ]; do sleep 0.02; done; kill -USR1 $pid; wait $pid; echo status=$?";
  r = run_shell(cmd, 300);
  INFO(r.out << r.err);
  CHECK(r.out.find("status=75") != std::string::npos);
  CHECK(r.err.find("stopped by SIGUSR1") != std::string::npos);
  CHECK(fs::exists(ck));
  CHECK(!fs::exists(part)); // no half result
  a = args;
  a.insert(a.end(), {"--out", res, "--resume", ck});
  r = run_unmix(np, a, 300);
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  for (const auto& ds : datasets) {
    INFO("dataset " << ds);
    CHECK(identical_datasets(full, res, ds));
  }
  return ck;
}

} // namespace unmix::test
