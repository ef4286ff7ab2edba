#pragma once
// `unmix spatial` as one library call: counts (MatrixMarket, genes x spots) and the spots' table ->
// normalized spots x genes matrix -> rank (given or by maximum curvature) -> factorization with the spots'
// cell-type proportions on the simplex -> tables, maps and, where the spots are annotated, the agreement of
// each spot's dominant cell type with its annotation. Rank 0 reads the counts a piece at a time and sends
// each entry on; the matrix is prepared and factorized distributed (no process holds it whole); rank 0 writes
// the folder, which appears complete or not at all.
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
  std::string counts;   ///< MatrixMarket (.mtx or .mtx.gz), genes x spots
  std::string spots;    ///< CSV, one row per spot in the counts' column order
  std::string genes;    ///< optional: gene names, one per line, in the counts' row order
  std::string barcodes; ///< optional: the counts' column names in order; the spots' rows are matched by name
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

/// The counts prepared as `prepare` does, spread over the processes in the fit's layout (the grid `factor.grid` or
/// the default one), without any process holding them whole: process 0 reads `reader` (nullptr elsewhere)
/// `piece_lines` lines at a time and sends each entry to the process that gathers its gene's statistics (genes in
/// contiguous blocks); the kept genes' values then go to the owners of their boxes. The same matrix as `prepare`
/// on every process count: bit for bit where the counts are integers (library sizes exact) and the grid leaves
/// the spots whole (the default), to rounding otherwise. Collective; an error on any process (a bad line, a
/// negative count, a spot with no counts) is thrown on every one.
struct SpreadCounts {
  DistTensor<double> Y;                ///< spots x kept genes
  std::size_t genes_total = 0;         ///< rows of the counts
  std::vector<std::size_t> gene_index; ///< kept genes (rows of the counts), in decreasing variance
  std::vector<double> gene_scale;      ///< the divisor of each kept gene
};
/// `progress(lines read, lines in all)` is called on every process after each piece.
SpreadCounts read_spread(MatrixMarketReader* reader, const PrepareOptions& opt, const apps::FitSettings& factor,
                         const Comm& comm, std::size_t piece_lines = std::size_t{1} << 20,
                         const std::function<void(std::size_t, std::size_t)>& progress = {});

/// Writes to `out_dir`: proportions.csv (spot, x, y, label, dominant type, proportions), profiles.csv (per
/// type its most specific genes), results.h5, rank_sweep.csv (estimated rank), agreement.csv (annotated
/// spots: dominant type x label counts) and maps.<fmt>. Collective.
RunSummary run(const RunConfig& cfg, const Comm& comm, const std::function<void(const std::string&)>& note = {});

} // namespace unmix::spatial
