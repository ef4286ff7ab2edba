#pragma once
// Rank estimation over process groups (ALGORITHMS.md section 7): the processes are split into G groups,
// each group holds its own copy of Y distributed over its members and factorizes its share of the
// candidate ranks; the final relative errors are gathered on every process and the rank of maximum
// curvature is picked.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <span>
#include <string>
#include <vector>

#include "unmix/constraints/constraints.hpp"
#include "unmix/core/mpi.hpp"
#include "unmix/dist/dist_tensor.hpp"
#include "unmix/rank/curvature.hpp"
#include "unmix/solver/solver.hpp"

namespace unmix {

/// Which process belongs to which group and which group solves which candidate (MPI-free, a value).
/// Groups are contiguous blocks of processes whose sizes differ by at most one. Candidates are handed
/// out largest rank first, each to the group with the smallest estimated finishing time (cost ~ rank /
/// group size), ties to the lower group.
struct SweepPlan {
  int processes = 1;
  int groups = 1;
  std::vector<int> group_size;  // per group
  std::vector<int> group_first; // first process of each group
  std::vector<int> owner;       // per candidate (in the order given): its group

  static SweepPlan make(int processes, int groups, std::span<const std::size_t> ranks);
  int group_of(int process) const;
};

/// "1:12", "3", "2,4,6", "1:12:2" -> the candidate ranks (ascending, no duplicates). Throws ConfigError.
std::vector<std::size_t> parse_rank_list(const std::string& text);

struct RankCandidate;

struct RankSweepOptions {
  std::vector<std::size_t> ranks;
  /// "tucker1" or "cp" (consA constrains factor 0, consB every other factor; a candidate's factors are then
  /// kept as A = factor 0 and B = the sources, the rank-one tensors of the other factors).
  std::string model = "tucker1";
  int groups = 1;
  CurvatureMethod method = CurvatureMethod::finite_differences;
  SolverOptions solver;
  ConstraintList consA, consB;
  /// Per-iteration callback of every solve, called on the processes of the solving group (rank r,
  /// stats); return false to stop that solve.
  std::function<bool(std::size_t, const IterationStats&)> progress;
  /// Reports for a person watching a long sweep, called on the first process of the solving group only
  /// (nothing collective may happen in them): each iteration of the candidate of rank r, and once when a
  /// candidate's solve ends (its rank, rel_error, iterations, seconds, converged, group and stop_reason;
  /// no stats).
  std::function<void(std::size_t, const IterationStats&)> on_iteration;
  std::function<void(const RankCandidate&)> on_finished;
};

/// One candidate's result, the same on every process after the sweep.
struct RankCandidate {
  std::size_t rank = 0;
  double rel_error = 0;
  double iterations = 0;
  double seconds = 0; // wall time of its solve (max over its group)
  double converged = 0;
  /// CP candidates: the core consistency in percent (kernels/mttkrp.hpp); NaN for Tucker-1.
  double core_consistency = std::numeric_limits<double>::quiet_NaN();
  int group = 0;
  std::string stop_reason;
  std::vector<IterationStats> stats; // every row, gathered to every process
};

/// One candidate's factors, held by the processes of the group that solved it (mine = true there) in
/// that group's block layout, with what is needed to write them collectively.
struct CandidateFactors {
  bool mine = false;
  Factors f; // CP: f.A only; B is formed from cp_factors as it is written (whole it is R / I of Y in doubles)
  std::vector<Tensor<double>> cp_factors; // CP: the local rows of factors 1 .. N-1 (entry 0 empty)
  Shape b_local;                          // the shape of the local box of B
  std::size_t I = 0;
  Shape b_global;           // R x the other modes
  Shape a_offset, b_offset; // where the local blocks start
  bool owns_A = false, owns_B = false;
};

struct RankSweepResult {
  std::vector<RankCandidate> candidates; // in the order of opts.ranks
  std::vector<double> curvature;
  std::size_t chosen_index = 0;
  std::size_t chosen_rank = 0;
  std::vector<CandidateFactors> factors; // one per candidate
  SweepPlan plan;
  std::vector<std::string> group_grids; // process grid of each group
  std::vector<std::string> warnings;
};

/// Loads Y distributed over the processes of one group (called collectively on that group's
/// communicator; may throw, collectively).
template <class T> using GroupLoader = std::function<DistTensor<T>(const Comm& group)>;

/// The sweep. Collective over `comm`; errors in any group reach every process (no hang).
template <class T>
RankSweepResult rank_sweep(const Comm& comm, const RankSweepOptions& opts, const GroupLoader<T>& load);

/// The number of groups used when none is given: as many as candidates and processes allow while each
/// group's share of Y (bytes_Y / group size, per process) stays under `bytes_per_process`.
int default_group_count(int processes, std::size_t candidates, double bytes_Y, double bytes_per_process);

extern template RankSweepResult rank_sweep(const Comm&, const RankSweepOptions&, const GroupLoader<float>&);
extern template RankSweepResult rank_sweep(const Comm&, const RankSweepOptions&, const GroupLoader<double>&);

} // namespace unmix
