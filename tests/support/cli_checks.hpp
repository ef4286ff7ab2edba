#pragma once
// Checks shared by the command-line tests (Catch2 assertions, so for test sources only).
#include <catch2/catch.hpp>

#include <unistd.h>

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

} // namespace unmix::test
