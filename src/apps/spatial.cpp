#include "unmix/apps/spatial.hpp"

#include <zlib.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <numeric>
#include <sstream>

#include "unmix/core/error.hpp"
#include "unmix/io/csv.hpp"

namespace unmix::spatial {

namespace {

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// Lines of a plain or gzip-compressed text file (zlib reads both).
class LineReader {
public:
  explicit LineReader(const std::string& path) : path_(path), f_(gzopen(path.c_str(), "rb"), gzclose) {
    if (!std::filesystem::exists(path)) throw IoError("cannot open '" + path + "': no such file");
    if (!f_) throw IoError("cannot open '" + path + "' for reading");
    gzbuffer(f_.get(), 1 << 18);
  }
  bool next(std::string& line) {
    line.clear();
    char buf[4096];
    while (gzgets(f_.get(), buf, sizeof buf)) {
      line += buf;
      if (!line.empty() && line.back() == '\n') break;
    }
    int err = 0;
    const char* msg = gzerror(f_.get(), &err);
    if (err != Z_OK && err != Z_STREAM_END) throw IoError("reading '" + path_ + "' failed: " + msg);
    if (line.empty()) return false;
    ++number_;
    while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.pop_back();
    return true;
  }
  std::size_t number() const { return number_; }

private:
  std::string path_;
  std::unique_ptr<gzFile_s, int (*)(gzFile)> f_;
  std::size_t number_ = 0;
};

std::size_t column_of(const csv::Table& t, const std::string& name, const char* option) {
  for (std::size_t j = 0; j < t.rows[0].size(); ++j)
    if (t.rows[0][j] == name) return j;
  std::string have;
  for (const auto& h : t.rows[0]) have += (have.empty() ? "" : ", ") + h;
  throw DataError("'" + t.path + "' has no column '" + name + "' (" + option + "); its columns: " + have);
}

/// The spots of rows row_of[0], row_of[1], ... of `s`: the table in the counts' column order.
Spots rows_in_order(const Spots& s, const std::vector<std::size_t>& row_of) {
  Spots o;
  for (std::size_t i : row_of) {
    o.id.push_back(s.id[i]);
    o.x.push_back(s.x[i]);
    o.y.push_back(s.y[i]);
    if (!s.label.empty()) o.label.push_back(s.label[i]);
  }
  return o;
}

} // namespace

struct MatrixMarketReader::Source {
  explicit Source(const std::string& path) : lines(path) {}
  LineReader lines;
};

MatrixMarketReader::~MatrixMarketReader() = default;
MatrixMarketReader::MatrixMarketReader(MatrixMarketReader&&) noexcept = default;
MatrixMarketReader& MatrixMarketReader::operator=(MatrixMarketReader&&) noexcept = default;

MatrixMarketReader::MatrixMarketReader(const std::string& path) : in_(std::make_unique<Source>(path)), path_(path) {
  LineReader& in = in_->lines;
  std::string line;
  if (!in.next(line)) throw DataError("'" + path + "' is empty: expected a MatrixMarket file");
  std::istringstream banner(lower(line));
  std::string tag, object, format, field, symmetry;
  banner >> tag >> object >> format >> field >> symmetry;
  if (tag != "%%matrixmarket" || object != "matrix")
    throw DataError("'" + path +
                    "' is not a MatrixMarket matrix (its first line should start with %%MatrixMarket matrix)");
  if (format != "coordinate")
    throw DataError("'" + path + "' is a MatrixMarket '" + format +
                    "' matrix; only the sparse 'coordinate' format is read");
  if (field != "real" && field != "integer" && field != "pattern" && field != "double")
    throw DataError("'" + path + "': MatrixMarket field '" + field + "' is not supported (real, integer or pattern)");
  if (symmetry != "general" && symmetry != "symmetric")
    throw DataError("'" + path + "': MatrixMarket symmetry '" + symmetry + "' is not supported (general or symmetric)");
  pattern_ = field == "pattern";
  symmetric_ = symmetry == "symmetric";
  while (in.next(line))
    if (!line.empty() && line[0] != '%') break;
  std::istringstream size(line);
  long long r = 0, c = 0, n = 0;
  if (!(size >> r >> c >> n))
    throw DataError("'" + path + "' line " + std::to_string(in.number()) + ": expected 'rows columns entries'");
  const long long limit = 1LL << 40;
  if (r < 1 || c < 1 || n < 0 || r > limit || c > limit || (n > 0 && (n - 1) / c >= r))
    throw DataError("'" + path + "' line " + std::to_string(in.number()) + ": '" + line +
                    "' is not a valid size (rows and columns at least 1, at most rows x columns entries)");
  if (static_cast<unsigned long long>(r) > (1ULL << 63) / static_cast<unsigned long long>(c))
    throw DataError("'" + path + "' line " + std::to_string(in.number()) + ": " + std::to_string(r) + " x " +
                    std::to_string(c) + " is larger than the 2^63 cells unmix indexes");
  rows_ = static_cast<std::size_t>(r);
  cols_ = static_cast<std::size_t>(c);
  lines_ = static_cast<std::size_t>(n);
}

std::size_t MatrixMarketReader::read(Coo& m, std::size_t max_lines) {
  LineReader& in = in_->lines;
  const std::size_t want = std::min(max_lines, lines_ - done_);
  std::string line;
  std::size_t got = 0;
  while (got < want && in.next(line)) {
    if (line.empty() || line[0] == '%') continue;
    const char* p = line.c_str();
    char* end = nullptr;
    const unsigned long long i = std::strtoull(p, &end, 10);
    const bool ok_i = end != p;
    p = end;
    const unsigned long long j = std::strtoull(p, &end, 10);
    const bool ok_j = end != p;
    p = end;
    double v = 1;
    bool ok_v = true;
    if (!pattern_) {
      v = std::strtod(p, &end);
      ok_v = end != p && std::isfinite(v);
    }
    if (!ok_i || !ok_j || !ok_v)
      throw DataError("'" + path_ + "' line " + std::to_string(in.number()) + ": expected 'row column" +
                      (pattern_ ? "" : " value") + "', got '" + line + "'");
    if (i < 1 || i > rows_ || j < 1 || j > cols_)
      throw DataError("'" + path_ + "' line " + std::to_string(in.number()) + ": entry (" + std::to_string(i) + ", " +
                      std::to_string(j) + ") is outside the " + std::to_string(rows_) + " x " + std::to_string(cols_) +
                      " matrix");
    m.row.push_back(static_cast<std::size_t>(i - 1));
    m.col.push_back(static_cast<std::size_t>(j - 1));
    m.value.push_back(v);
    if (symmetric_ && i != j) {
      m.row.push_back(static_cast<std::size_t>(j - 1));
      m.col.push_back(static_cast<std::size_t>(i - 1));
      m.value.push_back(v);
    }
    ++got;
  }
  done_ += got;
  if (got < want)
    throw DataError("'" + path_ + "' ends after " + std::to_string(done_) + " of its " + std::to_string(lines_) +
                    " entries (truncated file?)");
  return got;
}

Coo read_matrix_market(const std::string& path) {
  MatrixMarketReader in(path);
  Coo m;
  m.rows = in.rows();
  m.cols = in.cols();
  const std::size_t guess = std::min<std::size_t>(in.lines(), std::size_t{1} << 26); // grows past this as needed
  m.row.reserve(guess);
  m.col.reserve(guess);
  m.value.reserve(guess);
  in.read(m, in.lines());
  return m;
}

std::vector<std::string> read_gene_names(const std::string& path, std::size_t expected) {
  LineReader in(path);
  std::vector<std::string> names;
  std::string line;
  while (in.next(line)) {
    const std::size_t tab = line.find('\t');
    if (tab != std::string::npos) { // id <tab> name [<tab> type]
      const std::size_t end = line.find('\t', tab + 1);
      line = line.substr(tab + 1, end == std::string::npos ? std::string::npos : end - tab - 1);
    }
    while (!line.empty() && (line.back() == ' ' || line.back() == '\t')) line.pop_back();
    names.push_back(line);
  }
  if (names.size() != expected)
    throw DataError("'" + path + "' names " + std::to_string(names.size()) + " genes; the counts have " +
                    std::to_string(expected) + " rows");
  return names;
}

std::vector<std::string> read_barcodes(const std::string& path) {
  LineReader in(path);
  std::vector<std::string> names;
  std::map<std::string, std::size_t> seen;
  std::string line;
  while (in.next(line)) {
    line = line.substr(0, line.find('\t'));
    while (!line.empty() && line.back() == ' ') line.pop_back();
    if (line.empty())
      throw DataError("'" + path + "' line " + std::to_string(in.number()) + " is empty: expected a barcode");
    const auto [it, fresh] = seen.emplace(line, in.number());
    if (!fresh)
      throw DataError("'" + path + "' names barcode '" + line + "' on lines " + std::to_string(it->second) + " and " +
                      std::to_string(in.number()));
    names.push_back(line);
  }
  if (names.empty()) throw DataError("'" + path + "' is empty: expected one barcode per column of the counts");
  return names;
}

Spots read_spots(const std::string& path, const std::string& x_col, const std::string& y_col,
                 const std::string& label_col, const std::string& id_col, const std::string& index_col,
                 const std::vector<std::string>& barcodes) {
  if (!barcodes.empty() && !index_col.empty())
    throw ConfigError("--index-column and --barcodes both say which row is which column: give one");
  const csv::Table t = csv::read(path);
  if (t.size() < 2) throw DataError("'" + path + "' has no spots: expected a header row and one row per spot");
  const std::size_t cx = column_of(t, x_col, "--x-column"), cy = column_of(t, y_col, "--y-column");
  const std::size_t npos = static_cast<std::size_t>(-1);
  const std::size_t cl = label_col.empty() ? npos : column_of(t, label_col, "--label-column");
  const std::size_t cindex = index_col.empty() ? npos : column_of(t, index_col, "--index-column");
  std::size_t ci = npos;
  if (!id_col.empty()) {
    ci = column_of(t, id_col, "--id-column");
  } else {
    for (std::size_t j = 0; j < t.rows[0].size() && ci == npos; ++j)
      if (j != cx && j != cy && j != cl && j != cindex) ci = j;
  }
  Spots s;
  for (std::size_t r = 1; r < t.size(); ++r) {
    double x = 0, y = 0;
    if (csv::parse_cell(t.cell(r, cx), x) != csv::CellKind::number)
      throw DataError(csv::where(path, r + 1, cx + 1, x_col) + ": '" + t.cell(r, cx) + "' is not a number");
    if (csv::parse_cell(t.cell(r, cy), y) != csv::CellKind::number)
      throw DataError(csv::where(path, r + 1, cy + 1, y_col) + ": '" + t.cell(r, cy) + "' is not a number");
    s.x.push_back(x);
    s.y.push_back(y);
    s.id.push_back(ci == npos ? std::to_string(r) : t.cell(r, ci));
    if (cl != npos) {
      double v = 0; // NA, empty and the like: an unannotated spot
      s.label.push_back(csv::parse_cell(t.cell(r, cl), v) == csv::CellKind::missing ? std::string() : t.cell(r, cl));
    }
  }
  if (!barcodes.empty()) { // rows matched to the counts' columns by name
    std::map<std::string, std::size_t> row_of_id;
    for (std::size_t i = 0; i < s.id.size(); ++i) {
      const auto [it, fresh] = row_of_id.emplace(s.id[i], i);
      if (!fresh)
        throw DataError("'" + path + "' names spot '" + s.id[i] + "' on rows " + std::to_string(it->second + 2) +
                        " and " + std::to_string(i + 2));
    }
    std::vector<std::size_t> row_of(barcodes.size());
    for (std::size_t k = 0; k < barcodes.size(); ++k) {
      const auto it = row_of_id.find(barcodes[k]);
      if (it == row_of_id.end())
        throw DataError("'" + path + "' has no row for barcode '" + barcodes[k] + "' (column " + std::to_string(k + 1) +
                        " of the counts)");
      row_of[k] = it->second;
    }
    return rows_in_order(s, row_of);
  }
  if (index_col.empty()) return s;
  const std::size_t cx_index = cindex, n = s.x.size();
  std::vector<std::size_t> row_of(n, npos);
  for (std::size_t r = 1; r < t.size(); ++r) {
    double v = 0;
    const bool number = csv::parse_cell(t.cell(r, cx_index), v) == csv::CellKind::number;
    if (!number || v != std::floor(v) || v < 1 || v > static_cast<double>(n))
      throw DataError(csv::where(path, r + 1, cx_index + 1, index_col) + ": '" + t.cell(r, cx_index) +
                      "' is not a column of the counts (1 to " + std::to_string(n) + ")");
    const auto k = static_cast<std::size_t>(v) - 1;
    if (row_of[k] != npos)
      throw DataError(csv::where(path, r + 1, cx_index + 1, index_col) + ": column " + std::to_string(k + 1) +
                      " is already described by row " + std::to_string(row_of[k] + 2));
    row_of[k] = r - 1;
  }
  return rows_in_order(s, row_of);
}

void check_prepare_options(const PrepareOptions& opt) {
  if (opt.scale != "max" && opt.scale != "std" && opt.scale != "none")
    throw ConfigError("--gene-scale '" + opt.scale + "': use max, std or none");
  if (opt.top_genes < 1) throw ConfigError("--top-genes must be at least 1");
}

std::size_t merge_counts(std::span<CountEntry> e) {
  std::sort(e.begin(), e.end(), [](const CountEntry& a, const CountEntry& b) { return a.key < b.key; });
  std::size_t kept = 0;
  for (std::size_t k = 0; k < e.size(); ++k) {
    if (e[k].value < 0) throw DataError("the counts hold a negative value (" + std::to_string(e[k].value) + ")");
    if (kept > 0 && e[kept - 1].key == e[k].key)
      e[kept - 1].value += e[k].value;
    else
      e[kept++] = e[k];
  }
  return kept;
}

double median_library_size(const std::vector<double>& library_size) {
  const std::size_t S = library_size.size();
  for (std::size_t s = 0; s < S; ++s) {
    if (!std::isfinite(library_size[s]))
      throw DataError("spot " + std::to_string(s + 1) + "'s counts add up to more than a double holds");
    if (!(library_size[s] > 0)) throw DataError("spot " + std::to_string(s + 1) + " has no counts: remove it first");
  }
  std::vector<double> sorted = library_size;
  std::nth_element(sorted.begin(), sorted.begin() + static_cast<std::ptrdiff_t>(S / 2), sorted.end());
  double median = sorted[S / 2];
  if (S % 2 == 0)
    median = 0.5 * (median + *std::max_element(sorted.begin(), sorted.begin() + static_cast<std::ptrdiff_t>(S / 2)));
  return median;
}

GeneTotals gene_totals(std::span<const CountEntry> merged, std::size_t genes, std::size_t gene_begin,
                       std::size_t gene_count, const std::vector<double>& library_size, double median) {
  GeneTotals t;
  t.detected.assign(gene_count, 0.0);
  t.sum.assign(gene_count, 0.0);
  t.sum2.assign(gene_count, 0.0);
  for (const CountEntry& e : merged) {
    const std::size_t g = e.key % genes;
    if (e.value == 0 || g < gene_begin || g - gene_begin >= gene_count) continue;
    const double v = std::log1p(e.value * median / library_size[e.key / genes]);
    t.detected[g - gene_begin] += 1;
    t.sum[g - gene_begin] += v;
    t.sum2[g - gene_begin] += v * v;
  }
  return t;
}

std::vector<std::size_t> most_variable_genes(const GeneTotals& t, std::size_t spots, const PrepareOptions& opt) {
  const std::size_t G = t.sum.size();
  std::vector<std::size_t> cand;
  std::vector<double> var(G, 0.0);
  for (std::size_t g = 0; g < G; ++g) {
    if (t.detected[g] < static_cast<double>(opt.min_spots)) continue;
    const double mean = t.sum[g] / static_cast<double>(spots);
    var[g] = t.sum2[g] / static_cast<double>(spots) - mean * mean;
    cand.push_back(g);
  }
  if (cand.empty())
    throw DataError("no gene is detected in " + std::to_string(opt.min_spots) + " or more spots (lower --min-spots)");
  std::stable_sort(cand.begin(), cand.end(), [&](std::size_t a, std::size_t b) { return var[a] > var[b]; });
  cand.resize(std::min(cand.size(), opt.top_genes));
  return cand;
}

std::vector<double> scale_genes(double* box, std::size_t rows, std::size_t cols, std::size_t spots,
                                const std::string& scale,
                                const std::function<void(std::vector<double>&, bool)>& combine) {
  std::vector<double> out(cols, 1.0);
  if (scale == "none") return out;
  std::vector<double> part(cols, 0.0);
  if (scale == "max") { // the counts are nonnegative: 0 is below every column's largest value
    for (std::size_t k = 0; k < cols; ++k)
      if (rows > 0) part[k] = *std::max_element(box + rows * k, box + rows * (k + 1));
    combine(part, true);
    out = part;
  } else {
    for (std::size_t k = 0; k < cols; ++k) part[k] = std::accumulate(box + rows * k, box + rows * (k + 1), 0.0);
    combine(part, false);
    std::vector<double> mean(cols), ss(cols, 0.0);
    for (std::size_t k = 0; k < cols; ++k) mean[k] = part[k] / static_cast<double>(spots);
    for (std::size_t k = 0; k < cols; ++k)
      for (std::size_t s = 0; s < rows; ++s) ss[k] += (box[s + rows * k] - mean[k]) * (box[s + rows * k] - mean[k]);
    combine(ss, false);
    for (std::size_t k = 0; k < cols; ++k) out[k] = std::sqrt(ss[k] / static_cast<double>(spots));
  }
  for (std::size_t k = 0; k < cols; ++k) {
    if (!(out[k] > 0)) out[k] = 1;
    for (std::size_t s = 0; s < rows; ++s) box[s + rows * k] /= out[k];
  }
  return out;
}

Prepared prepare(const Coo& m, const PrepareOptions& opt) {
  check_prepare_options(opt);
  const std::size_t G = m.rows, S = m.cols;
  Prepared p;
  p.spots = S;
  std::vector<CountEntry> merged(m.value.size());
  for (std::size_t e = 0; e < merged.size(); ++e) merged[e] = {m.col[e] * G + m.row[e], m.value[e]};
  merged.resize(merge_counts(merged));
  p.library_size.assign(S, 0.0);
  for (const CountEntry& e : merged) p.library_size[e.key / G] += e.value;
  const double median = median_library_size(p.library_size);
  p.gene_index = most_variable_genes(gene_totals(merged, G, 0, G, p.library_size, median), S, opt);
  p.genes = p.gene_index.size();
  std::vector<std::ptrdiff_t> slot(G, -1);
  for (std::size_t k = 0; k < p.genes; ++k) slot[p.gene_index[k]] = static_cast<std::ptrdiff_t>(k);
  p.Y.assign(S * p.genes, 0.0);
  for (const CountEntry& e : merged) {
    const std::ptrdiff_t k = slot[e.key % G];
    const std::size_t s = e.key / G;
    if (k >= 0) p.Y[s + S * static_cast<std::size_t>(k)] = e.value * median / p.library_size[s];
  }
  p.gene_scale = scale_genes(p.Y.data(), S, p.genes, S, opt.scale, [](std::vector<double>&, bool) {});
  return p;
}

std::vector<int> row_argmax(const std::vector<double>& X, std::size_t n, std::size_t R) {
  std::vector<int> out(n, 0);
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t r = 1; r < R; ++r)
      if (X[i + n * r] > X[i + n * static_cast<std::size_t>(out[i])]) out[i] = static_cast<int>(r);
  return out;
}

double adjusted_rand_index(const std::vector<int>& a, const std::vector<int>& b) {
  if (a.size() != b.size()) throw Error("adjusted_rand_index: labellings of different lengths");
  std::map<std::pair<int, int>, double> joint;
  std::map<int, double> ca, cb;
  double n = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (b[i] < 0 || a[i] < 0) continue;
    joint[{a[i], b[i]}] += 1;
    ca[a[i]] += 1;
    cb[b[i]] += 1;
    n += 1;
  }
  auto pairs = [](double k) { return k * (k - 1) / 2; };
  double sj = 0, sa = 0, sb = 0;
  for (const auto& [k, v] : joint) sj += pairs(v);
  for (const auto& [k, v] : ca) sa += pairs(v);
  for (const auto& [k, v] : cb) sb += pairs(v);
  const double expected = sa * sb / pairs(n);
  const double top = 0.5 * (sa + sb);
  if (top == expected) return 1.0; // both partitions trivial (all one cluster or all singletons) and equal
  return (sj - expected) / (top - expected);
}

std::vector<int> encode_labels(const std::vector<std::string>& labels, std::vector<std::string>* names) {
  std::map<std::string, int> code;
  std::vector<std::string> order;
  std::vector<int> out(labels.size(), -1);
  for (std::size_t i = 0; i < labels.size(); ++i) {
    if (labels[i].empty()) continue;
    auto [it, fresh] = code.emplace(labels[i], static_cast<int>(order.size()));
    if (fresh) order.push_back(labels[i]);
    out[i] = it->second;
  }
  if (names) *names = order;
  return out;
}

} // namespace unmix::spatial
