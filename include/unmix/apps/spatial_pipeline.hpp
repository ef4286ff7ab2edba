#pragma once
// `unmix spatial` as one library call: counts (MatrixMarket, genes x spots) and the spots' table ->
// normalized spots x genes matrix -> rank (given or by maximum curvature) -> factorization with the spots'
// cell-type proportions on the simplex -> tables, maps and, where the spots are annotated, the agreement of
// each spot's dominant cell type with its annotation. Rank 0 reads and prepares the matrix and broadcasts
// it; the factorization is distributed; rank 0 writes the folder, which appears complete or not at all.
#include <cstddef>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "unmix/apps/replicated.hpp"
#include "unmix/apps/spatial.hpp"
#include "unmix/core/mpi.hpp"

namespace unmix::spatial {

struct RunConfig {
  std::string counts; ///< MatrixMarket (.mtx or .mtx.gz), genes x spots
  std::string spots;  ///< CSV, one row per spot in the counts' column order
  std::string genes;  ///< optional: gene names, one per line, in the counts' row order
  std::string x_column = "x", y_column = "y", label_column, id_column, index_column;
  PrepareOptions prepare;
  std::size_t rank = 0; ///< 0: estimate
  std::size_t max_rank = 10;
  std::size_t sweep_maxiter = 500;
  apps::FitSettings factor;
  std::string out_dir;
  bool overwrite = false;
  std::string plot_format = "png";
  std::map<std::string, std::string> options_text;
};

/// Proportions on the simplex (A = simplex_rows), profiles nonnegative; stop at a relative change of 1e-6 or
/// 3000 iterations.
RunConfig default_config();

struct RunSummary {
  std::size_t spots = 0, genes_total = 0, genes_used = 0;
  std::optional<apps::RankSweep> sweep;
  apps::Fit fit;
  std::vector<int> dominant;            ///< per spot, 0-based cell type of largest proportion
  std::vector<std::string> label_names; ///< annotations, in order of first appearance
  std::vector<int> labels;              ///< per spot, index into label_names (-1: none)
  std::optional<double> ari;            ///< adjusted Rand index of dominant vs labels
  std::vector<std::string> warnings;
  double seconds_total = 0;
};

/// Writes to `out_dir`: proportions.csv (spot, x, y, label, dominant type, proportions), profiles.csv (per
/// type its most specific genes), results.h5, rank_sweep.csv (estimated rank), agreement.csv (annotated
/// spots: dominant type x label counts) and maps.<fmt>. Collective.
RunSummary run(const RunConfig& cfg, const Comm& comm, const std::function<void(const std::string&)>& note = {});

} // namespace unmix::spatial
