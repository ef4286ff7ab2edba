#pragma once
// Spatial transcriptomics (MPI-free maths of `unmix spatial`): each spot of a tissue section holds the
// gene counts of a few cells, so the spots are mixtures of cell types. The spots x genes matrix of
// normalized expression is factorized as Y ~ A B: A (spots x R) the cell-type proportions of each spot
// (rows on the simplex), B (R x genes) the cell types' expression profiles.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace unmix::spatial {

/// A sparse matrix in coordinate form (0-based indices), as MatrixMarket stores it.
struct Coo {
  std::size_t rows = 0, cols = 0;
  std::vector<std::size_t> row, col;
  std::vector<double> value;
};

/// A MatrixMarket coordinate matrix (real, integer or pattern; general or symmetric, the mirrored half added),
/// plain or gzip-compressed (read through zlib either way), read a piece at a time: the header when opened (IoError
/// when unreadable, DataError for a bad header or a size whose rows x columns passes 2^63), the entries by `read`.
class MatrixMarketReader {
public:
  explicit MatrixMarketReader(const std::string& path);
  ~MatrixMarketReader();
  MatrixMarketReader(MatrixMarketReader&&) noexcept;
  MatrixMarketReader& operator=(MatrixMarketReader&&) noexcept;

  std::size_t rows() const { return rows_; }
  std::size_t cols() const { return cols_; }
  /// The entry lines the size line announces (a symmetric file's mirrored entries not counted).
  std::size_t lines() const { return lines_; }
  /// Appends the next `max_lines` entry lines (fewer when the file has fewer left) to `out` as 0-based entries,
  /// with each off-diagonal line's mirror where the file is symmetric; `out`'s rows and cols are not touched.
  /// Returns the lines read: 0 once all are. DataError for an index out of range, a non-finite value, a line
  /// that is not an entry, or a file that ends before its size line's count.
  std::size_t read(Coo& out, std::size_t max_lines);

private:
  struct Source;
  std::unique_ptr<Source> in_;
  std::string path_;
  std::size_t rows_ = 0, cols_ = 0, lines_ = 0, done_ = 0;
  bool pattern_ = false, symmetric_ = false;
};

/// A whole MatrixMarket coordinate matrix (MatrixMarketReader's formats and errors).
Coo read_matrix_market(const std::string& path);

/// Gene names, one per line, in the counts' row order, plain or gzip-compressed; a line with tabs is a 10x
/// Genomics features.tsv row (id, name, type): its second field is the name. DataError when the file names
/// another number of genes than `expected`, IoError when it cannot be read.
std::vector<std::string> read_gene_names(const std::string& path, std::size_t expected);

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
/// With `barcodes` (the counts' column names in order, e.g. read_barcodes) the rows are matched to the columns by
/// their names instead: the table may list more spots (a 10x tissue_positions.csv lists those off the tissue
/// too; they are left out) and in any order. DataError for a column with no row or a name on two rows;
/// ConfigError with index_col too.
Spots read_spots(const std::string& path, const std::string& x_col, const std::string& y_col,
                 const std::string& label_col, const std::string& id_col = "", const std::string& index_col = "",
                 const std::vector<std::string>& barcodes = {});

/// The counts' column names, one per line, plain or gzip-compressed (a 10x barcodes.tsv(.gz); a line with tabs
/// gives its first field). IoError when unreadable, DataError for an empty or repeated name.
std::vector<std::string> read_barcodes(const std::string& path);

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
/// spot with no counts or when no gene is detected in min_spots spots. The steps below, in this order; the
/// distributed form (spatial_pipeline.hpp, read_spread) takes the same steps on pieces of the counts, so that
/// both give the same matrix.
Prepared prepare(const Coo& genes_by_spots, const PrepareOptions& opt);

/// ConfigError for options prepare cannot take (top_genes 0, an unknown scale).
void check_prepare_options(const PrepareOptions& opt);

/// One count of a genes x spots matrix: key = spot * genes + gene, so that keys sort by spot, then gene.
struct CountEntry {
  std::uint64_t key = 0;
  double value = 0;
};

/// Sorts the entries by key and sums the ones of the same gene and spot (some writers give a count in pieces),
/// in place: the first (returned) count of them are the merged entries. DataError for a negative value.
std::size_t merge_counts(std::span<CountEntry> entries);

/// The median of the spots' library sizes (total counts); DataError for a spot with none (or more than a double
/// holds), named by its 1-based number.
double median_library_size(const std::vector<double>& library_size);

/// What choosing the most variable genes needs, per gene: in how many spots it is detected, and the sums of
/// log1p(count x median / library size) and of its square.
struct GeneTotals {
  std::vector<double> detected, sum, sum2;
};

/// The totals of genes gene_begin .. gene_begin + its size over merged entries (each gene's spots in increasing
/// order, as merge_counts leaves them); entries of other genes are skipped.
GeneTotals gene_totals(std::span<const CountEntry> merged, std::size_t genes, std::size_t gene_begin,
                       std::size_t gene_count, const std::vector<double>& library_size, double median);

/// The top_genes genes (of those detected in min_spots spots) in decreasing variance over `spots` spots, ties in
/// gene order; DataError when none is detected often enough.
std::vector<std::size_t> most_variable_genes(const GeneTotals& all_genes, std::size_t spots, const PrepareOptions& opt);

/// Divides each column of `box` (rows x cols, column-major: some of the spots of some kept genes) by its gene's
/// scale: the largest value over all `spots` spots (max), the standard deviation (std) or 1 (none); 1 where that
/// is not positive. `combine(values, largest)` joins per-gene partial results (sums, or maxima where `largest`)
/// with those of the processes holding the genes' other spots; with the whole columns at hand it does nothing.
/// Returns the scales.
std::vector<double> scale_genes(double* box, std::size_t rows, std::size_t cols, std::size_t spots,
                                const std::string& scale,
                                const std::function<void(std::vector<double>& values, bool largest)>& combine);

/// The index of the largest entry of each row of X (n x R, column-major); ties to the lowest index.
std::vector<int> row_argmax(const std::vector<double>& X, std::size_t n, std::size_t R);

/// Adjusted Rand index of two labellings of the same items (Hubert & Arabie): 1 for identical partitions, about 0
/// for independent ones. Items whose label in `b` is negative are left out (unlabelled).
double adjusted_rand_index(const std::vector<int>& a, const std::vector<int>& b);

/// Text labels to integers 0..k-1 in order of first appearance; "" becomes -1 (unlabelled).
std::vector<int> encode_labels(const std::vector<std::string>& labels, std::vector<std::string>* names = nullptr);

} // namespace unmix::spatial
