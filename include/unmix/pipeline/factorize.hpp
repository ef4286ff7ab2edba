#pragma once
// `unmix factorize` as one library call: read the tensor, validate, start, solve, write the output
// file atomically.
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>

#include "unmix/core/mpi.hpp"
#include "unmix/solver/solver.hpp"

namespace unmix {

struct FactorizeConfig {
  std::string input, dataset;
  int mixture_axis = 0;
  std::size_t rank = 0;
  std::string constraint_A = "nonnegative", constraint_B = "nonnegative";
  SolverOptions solver;
  std::string precision = "double"; // or "float": Y stored in float32
  std::string init = "random";      // "random" or an HDF5 file with A and B
  std::optional<std::string> grid;
  std::string out;
  bool overwrite = false;
  /// Every option as given, written as attributes of the output file.
  std::map<std::string, std::string> options_text;
};

struct FactorizeSummary {
  SolveResult result;
  double seconds = 0;      // solve time (wall, max over processes)
  double read_seconds = 0; // reading the input
  std::string grid;
  std::vector<std::string> warnings;
};

/// Progress: called on every process after each iteration (print from rank 0 only).
using ProgressFn = std::function<void(const IterationStats&, std::size_t maxiter)>;

FactorizeSummary run_factorize(const FactorizeConfig& cfg, const Comm& comm, const ProgressFn& progress = {});

} // namespace unmix
