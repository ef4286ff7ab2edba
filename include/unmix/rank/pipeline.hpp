#pragma once
// `unmix rank` and `unmix factorize --rank auto` as library calls: read the data once per process group,
// sweep the candidate ranks, pick one by curvature, write everything atomically.
#include <string>
#include <vector>

#include "unmix/pipeline/factorize.hpp"
#include "unmix/rank/sweep.hpp"

namespace unmix {

struct RankConfig {
  /// Input, dataset, mixture axis, constraints, solver options, precision, grid (ignored: each group picks
  /// its own), out, overwrite, options_text.
  FactorizeConfig base;
  std::string ranks = ""; // "" = 1 to min(I, M, 12)
  int groups = 0;         // 0 = chosen from the data size
  std::string curvature = "finite-differences";
  bool plot = true;     // an SVG of the curve next to the output (gnuplot)
  bool spectrum = true; // the singular values of Y(1) (ScaLAPACK) in the output and the table
  /// Progress for a person watching (RankSweepOptions::on_iteration, on_finished): called on the first
  /// process of the solving group only.
  std::function<void(std::size_t, const IterationStats&)> on_iteration;
  std::function<void(const RankCandidate&)> on_finished;
};

struct RankSummary {
  RankSweepResult sweep;
  double seconds = 0;        // the sweep (wall, max over processes)
  std::string plot_path;     // "" when no plot was written
  std::vector<double> sigma; // singular values of Y(1), descending (empty without cfg.spectrum)
  double spectrum_seconds = 0;
  std::vector<std::string> warnings;
};

/// Writes OUT with datasets singular_values (of Y(1)), ranks, rel_error, curvature, iterations, seconds, group (one
/// entry per candidate), A_<r>, B_<r> and the table stats_<r> for every candidate r, and attributes chosen_rank,
/// curvature_method, groups and the options.
RankSummary run_rank(const RankConfig& cfg, const Comm& comm);

/// factorize --rank auto: the sweep, then the chosen candidate's factors and statistics written as
/// run_factorize writes them (plus the curve as datasets sweep_ranks, sweep_rel_error, sweep_curvature).
FactorizeSummary run_factorize_auto(const FactorizeConfig& cfg, const Comm& comm, const ProgressFn& progress);

/// The gnuplot commands of the rank plot: e(r) and the curvature (second axis) with the chosen rank marked,
/// the data inline (datablock $sweep: rank, rel_error, curvature). Pure, for tests.
std::string curve_plot(const RankSweepResult& res, const std::string& title, const std::string& method);

} // namespace unmix
