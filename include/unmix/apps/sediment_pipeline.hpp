#pragma once
// `unmix sediment tensor` and `unmix sediment run` as library calls. Grain files are read by rank 0 and
// broadcast as text; every process then parses them and builds the (small) density tensor identically,
// so all agree without further communication. The factorization is distributed like `unmix factorize`;
// the factors are gathered and the grain labels computed identically on every process; rank 0 writes
// the tables and plots. Everything goes to a temporary name first and is renamed only when complete.
#include <cstddef>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "unmix/apps/replicated.hpp"
#include "unmix/apps/sediment.hpp"
#include "unmix/core/mpi.hpp"
#include "unmix/solver/solver.hpp"

namespace unmix::sediment {

struct GrainInput {
  std::string tidy;                  ///< one tidy CSV, or
  std::vector<std::string> wide;     ///< one CSV per feature
  std::vector<std::string> features; ///< names of the wide files' features (default: from the file names)
};

/// Reads and parses the grain tables (rank 0 reads, everyone parses) and validates them. Collective.
GrainTable load_grains(const GrainInput& in, const Comm& comm);

struct TensorConfig {
  GrainInput input;
  KdeOptions kde;
  std::string out;
  bool overwrite = false;
};

struct TensorSummary {
  GrainTable grains;
  KdeTensor tensor;
};

/// `unmix sediment tensor`: writes Y (sinks, features, grid) with the grids, bandwidths, feature and sink
/// names to an HDF5 file.
TensorSummary run_tensor(const TensorConfig& cfg, const Comm& comm);

/// The factorization settings shared by every rank tried: proportions on the simplex, each source density of
/// each feature summing to 1.
struct FactorSettings : apps::FitSettings {
  FactorSettings() {
    constraint_A = "simplex_rows";
    constraint_B = "simplex_12slices";
  }
};

/// One factorization of the tensor, gathered on every process.
using Factorization = apps::Fit;

/// Factorizes the replicated tensor at rank R, distributed over `comm`. Collective.
Factorization factorize_tensor(const KdeTensor& T, std::size_t R, const FactorSettings& s, const Comm& comm);

/// The rank sweep (apps::sweep_ranks) of the density tensor.
using RankSweep = apps::RankSweep;
RankSweep sweep_ranks(const KdeTensor& T, std::size_t max_rank, const FactorSettings& s, const Comm& comm,
                      const std::function<void(std::size_t r, double err)>& progress = {});

struct RunConfig {
  GrainInput input;
  KdeOptions kde;
  std::size_t rank = 0;     ///< 0: estimate
  std::size_t max_rank = 0; ///< for the estimate; 0: min(sinks, 10)
  /// Iteration limit of the sweep's fits (they only need the error curve); the chosen rank is then
  /// refitted with the full settings.
  std::size_t sweep_maxiter = 1000;
  FactorSettings factor;
  std::string out_dir;
  bool overwrite = false;
  std::string plot_format = "png"; ///< png, svg or none
  /// Reported proportions: "grains" (maximum-likelihood mixture weights of each sink's grains under the
  /// learned source densities, grain_proportions) or "factor" (the factorization's A).
  std::string proportions = "grains";
  std::map<std::string, std::string> options_text;
};

struct RunSummary {
  GrainTable grains;
  KdeTensor tensor;
  std::optional<RankSweep> sweep;
  Factorization fit;
  std::vector<GrainLabel> labels;
  std::vector<double> proportions; ///< the reported proportions, sinks x R column-major
  std::vector<std::string> warnings;
  double seconds_tensor = 0, seconds_factorize = 0, seconds_total = 0;
};

/// `unmix sediment run`: grains -> tensor -> rank -> factorization -> labels, written to `out_dir`:
/// results.h5, proportions.csv, labels.csv, rank_sweep.csv (estimated rank), sources.<fmt>, proportions.<fmt>.
RunSummary run(const RunConfig& cfg, const Comm& comm, const std::function<void(const std::string&)>& note = {});

} // namespace unmix::sediment
