#pragma once
// Spatial transcriptomics (MPI-free maths of `unmix spatial`): each spot of a tissue section holds the
// gene counts of a few cells, so the spots are mixtures of cell types. The spots x genes matrix of
// normalized expression is factorized as Y ~ A B: A (spots x R) the cell-type proportions of each spot
// (rows on the simplex), B (R x genes) the cell types' expression profiles.
#include <cstddef>
#include <string>
#include <vector>

namespace unmix::spatial {

/// A sparse matrix in coordinate form (0-based indices), as MatrixMarket stores it.
struct Coo {
  std::size_t rows = 0, cols = 0;
  std::vector<std::size_t> row, col;
  std::vector<double> value;
};

/// Reads a MatrixMarket coordinate matrix (real, integer or pattern; general or symmetric, the mirrored
/// half added), plain or gzip-compressed (read through zlib either way). Throws IoError (unreadable) or
/// DataError (bad header, an index out of range, a non-finite value, fewer entries than the size line says).
Coo read_matrix_market(const std::string& path);

/// The spots' table: one row per column of the counts, in the same order.
struct Spots {
  std::vector<std::string> id;
  std::vector<double> x, y;
  std::vector<std::string> label; ///< annotation ("" where missing: empty, NA, ...); empty without a label column
};

/// Reads a CSV with a header: `x_col` and `y_col` name the coordinate columns, `label_col` (optional, "" for
/// none) an annotation, `id_col` (optional) the spot names (default: the first column that is neither).
/// Rows describe the counts' columns in order, unless `index_col` names a column holding each row's 1-based
/// column of the counts (then the spots come back in the counts' order; the indices must be 1..rows, each
/// once). DataError for missing columns, non-numeric coordinates or bad indices.
Spots read_spots(const std::string& path, const std::string& x_col, const std::string& y_col,
                 const std::string& label_col, const std::string& id_col = "", const std::string& index_col = "");

struct PrepareOptions {
  std::size_t top_genes = 1000; ///< keep the genes of largest variance of log1p(normalized) expression
  std::size_t min_spots = 3;    ///< ... among those detected in at least this many spots
  std::string scale =
      "max"; ///< each kept gene divided by its largest value (max), its standard deviation (std) or not (none)
};

/// The matrix factorized, spots x kept genes, column-major, and what was kept.
struct Prepared {
  std::size_t spots = 0, genes = 0;
  std::vector<double> Y;               ///< spots x genes, column-major
  std::vector<std::size_t> gene_index; ///< kept genes (rows of the counts), in decreasing variance
  std::vector<double> gene_scale;      ///< the divisor of each kept gene
  std::vector<double> library_size;    ///< per spot, total counts
};

/// Counts (genes x spots) -> per spot scaled to the median library size (a linear change, so mixing stays
/// linear) -> the top_genes genes by variance of log1p of that -> each divided by its scale. DataError for a
/// spot with no counts or when no gene is detected in min_spots spots.
Prepared prepare(const Coo& genes_by_spots, const PrepareOptions& opt);

/// The index of the largest entry of each row of X (n x R, column-major); ties to the lowest index.
std::vector<int> row_argmax(const std::vector<double>& X, std::size_t n, std::size_t R);

/// Adjusted Rand index of two labellings of the same items (Hubert & Arabie): 1 for identical partitions, about 0
/// for independent ones. Items whose label in `b` is negative are left out (unlabelled).
double adjusted_rand_index(const std::vector<int>& a, const std::vector<int>& b);

/// Text labels to integers 0..k-1 in order of first appearance; "" becomes -1 (unlabelled).
std::vector<int> encode_labels(const std::vector<std::string>& labels, std::vector<std::string>* names = nullptr);

} // namespace unmix::spatial
