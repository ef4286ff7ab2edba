#pragma once
// Sediment provenance, the MPI-free parts (ALGORITHMS.md section 9): grain tables from CSV, the
// sinks x features x grid tensor of Gaussian kernel density estimates, grain labels from learned source
// densities, and a small rank picker by maximum curvature.
//
// Grain tables come in two layouts:
//   tidy  one file, a header row, columns `sink`, `grain`, then one column per feature; one row per grain.
//   wide  one file per feature, grains as rows and sinks as columns (as sundell2022/sinks20_<feature>.csv);
//         an optional header row names the sinks (it must agree across files); grain k of a sink is row k
//         in every file; empty cells at the bottom of a column are no grain (sinks may differ in size).
// In both, a cell that is empty or NaN/NA inside the data is a missing value: that grain is skipped for
// that feature only, and the cells are counted. Any other non-numeric cell is an error naming the file,
// row and column.
#include <cstddef>
#include <span>
#include <string>
#include <vector>

#include "unmix/io/csv.hpp"

namespace unmix::sediment {

struct Grain {
  std::string id;             ///< the grain column (tidy) or the row number (wide)
  std::size_t row = 0;        ///< 1-based row of the file(s) it was read from
  std::vector<double> values; ///< one per feature; NaN when missing
};

struct GrainTable {
  std::string layout; ///< "tidy" or "wide"
  std::vector<std::string> features, sinks;
  std::vector<std::vector<Grain>> grains; ///< per sink, in file order
  std::vector<std::string> file;          ///< per feature: the file its values came from
  /// column[s][j]: the 1-based file column holding sink s's values of feature j.
  std::vector<std::vector<std::size_t>> column;
  /// Header text of column[s][j] ("" when the file has none).
  std::vector<std::vector<std::string>> column_name;
  std::size_t missing = 0; ///< missing (empty, NaN) cells skipped

  std::size_t grain_count() const;
};

/// The tidy layout. Throws DataError naming file, row and column on a malformed table.
GrainTable parse_tidy(const csv::Table& table);
/// The wide layout: one table per feature, with the feature names in the same order.
GrainTable parse_wide(const std::vector<csv::Table>& tables, const std::vector<std::string>& feature_names);
/// Feature names from the wide files' names: the file stems with their longest common prefix that ends
/// in '_' removed (sinks20_Age.csv, sinks20_Th_U.csv -> Age, Th_U); a lone file keeps its stem.
std::vector<std::string> feature_names_from_paths(const std::vector<std::string>& paths);

/// Checks what the density estimates need: at least two grains with a value per sink and feature, and
/// a nonzero spread of every feature. Throws DataError naming file, row and column.
void validate(const GrainTable& table);

// ---------------------------------------------------------------------------------------------------
// Kernel density estimates

/// Silverman's rule of thumb: 0.9 min(sd, IQR / 1.34) n^(-1/5), with sd when the IQR is 0; 0 when the
/// values do not vary (or there are fewer than two). NaNs are ignored.
double silverman_bandwidth(std::span<const double> values);

enum class BandwidthRule { median, mean, min, max };
BandwidthRule parse_bandwidth_rule(const std::string& name);

struct KdeOptions {
  std::size_t grid_points = 256;
  BandwidthRule rule = BandwidthRule::median; ///< how the per-sink bandwidths of a feature are combined
  double bandwidth_scale = 1.0;               ///< multiplies the combined bandwidth
  /// Fixed bandwidths by feature name (override the rule); names must exist.
  std::vector<std::pair<std::string, double>> bandwidth;
  double margin = 3.0; ///< the grid spans [min - margin h, max + margin h] of the feature's values
};

/// The tensor, column-major (sinks fastest): Y[i + I (j + J k)] for sink i, feature j, grid point k.
struct KdeTensor {
  std::size_t I = 0, J = 0, K = 0;
  std::vector<double> Y;
  std::vector<std::vector<double>> grid; ///< per feature, K increasing points
  std::vector<double> bandwidth;         ///< per feature
  double at(std::size_t i, std::size_t j, std::size_t k) const { return Y[i + I * (j + J * k)]; }
  /// The same values in C order (sinks slowest, grid fastest), as written to HDF5.
  std::vector<double> c_order() const;
};

/// Per sink and feature a Gaussian KDE of the grains' values, evaluated at the feature's grid points and
/// scaled to sum to 1. Call validate() first.
KdeTensor build_tensor(const GrainTable& table, const KdeOptions& opts);

// ---------------------------------------------------------------------------------------------------
// Grain labels

/// The grid cell holding x: the index of the nearest grid point (clamped to the ends).
std::size_t grid_cell(std::span<const double> grid, double x);

struct GrainLabel {
  std::size_t sink = 0;
  std::string grain;
  int source = -1;            ///< 0-based; -1 when the grain has no value of any feature
  double confidence = 0;      ///< log10(p1 / p2); infinite with one source
  std::vector<double> log10p; ///< per source: sum_j log10 B[r, j, cell_j]
  std::size_t features_used = 0;
};

/// B is R x J x K column-major (r fastest), its fibres B[r, j, :] densities on `grid[j]`. Each grain
/// goes to argmax_r prod_j B[r, j, cell_j] over its features with a value, computed as a sum of logs
/// (entries below 1e-300 count as 1e-300).
std::vector<GrainLabel> label_grains(const GrainTable& table, std::span<const std::vector<double>> grid,
                                     std::span<const double> B, std::size_t R);

/// Mixture proportions of each sink estimated from its grains: the maximum-likelihood weights w (on the
/// simplex) of sum_r w_r p_r(grain) over the sink's grains, p_r the products of label_grains, found by EM
/// from the uniform start (the log-likelihood is concave in w, so the start does not matter). Returns
/// sinks x R, column-major. Grains without any feature value are ignored.
std::vector<double> grain_proportions(const std::vector<GrainLabel>& labels, std::size_t sinks, std::size_t R,
                                      std::size_t maxiter = 10000, double tol = 1e-10);

// ---------------------------------------------------------------------------------------------------
// Rank by maximum curvature (ALGORITHMS.md section 7, finite differences)

/// Standard curvature of the final relative errors e(1..n) (padding y0 = 1, y(n+1) = 0).
std::vector<double> curvature(std::span<const double> errors);
/// The rank (1-based) of maximum curvature.
std::size_t pick_rank(std::span<const double> errors);

} // namespace unmix::sediment
