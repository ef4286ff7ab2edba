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

} // namespace

Coo read_matrix_market(const std::string& path) {
  LineReader in(path);
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
  const bool pattern = field == "pattern", symmetric = symmetry == "symmetric";
  while (in.next(line))
    if (!line.empty() && line[0] != '%') break;
  Coo m;
  std::size_t nnz = 0;
  {
    std::istringstream size(line);
    long long r = 0, c = 0, n = 0;
    if (!(size >> r >> c >> n))
      throw DataError("'" + path + "' line " + std::to_string(in.number()) + ": expected 'rows columns entries'");
    const long long limit = 1LL << 40;
    if (r < 1 || c < 1 || n < 0 || r > limit || c > limit || (n > 0 && (n - 1) / c >= r))
      throw DataError("'" + path + "' line " + std::to_string(in.number()) + ": '" + line +
                      "' is not a valid size (rows and columns at least 1, at most rows x columns entries)");
    m.rows = static_cast<std::size_t>(r);
    m.cols = static_cast<std::size_t>(c);
    nnz = static_cast<std::size_t>(n);
  }
  const std::size_t guess = std::min<std::size_t>(nnz, std::size_t{1} << 26); // grows past this as entries come
  m.row.reserve(guess);
  m.col.reserve(guess);
  m.value.reserve(guess);
  std::size_t read = 0;
  while (read < nnz && in.next(line)) {
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
    if (!pattern) {
      v = std::strtod(p, &end);
      ok_v = end != p && std::isfinite(v);
    }
    const std::string where = "'" + path + "' line " + std::to_string(in.number());
    if (!ok_i || !ok_j || !ok_v)
      throw DataError(where + ": expected 'row column" + (pattern ? "" : " value") + "', got '" + line + "'");
    if (i < 1 || i > m.rows || j < 1 || j > m.cols)
      throw DataError(where + ": entry (" + std::to_string(i) + ", " + std::to_string(j) + ") is outside the " +
                      std::to_string(m.rows) + " x " + std::to_string(m.cols) + " matrix");
    m.row.push_back(static_cast<std::size_t>(i - 1));
    m.col.push_back(static_cast<std::size_t>(j - 1));
    m.value.push_back(v);
    if (symmetric && i != j) {
      m.row.push_back(static_cast<std::size_t>(j - 1));
      m.col.push_back(static_cast<std::size_t>(i - 1));
      m.value.push_back(v);
    }
    ++read;
  }
  if (read < nnz)
    throw DataError("'" + path + "' ends after " + std::to_string(read) + " of its " + std::to_string(nnz) +
                    " entries (truncated file?)");
  return m;
}

Spots read_spots(const std::string& path, const std::string& x_col, const std::string& y_col,
                 const std::string& label_col, const std::string& id_col, const std::string& index_col) {
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
  Spots o;
  for (std::size_t k = 0; k < n; ++k) {
    const std::size_t i = row_of[k];
    o.id.push_back(s.id[i]);
    o.x.push_back(s.x[i]);
    o.y.push_back(s.y[i]);
    if (!s.label.empty()) o.label.push_back(s.label[i]);
  }
  return o;
}

Prepared prepare(const Coo& m, const PrepareOptions& opt) {
  if (opt.scale != "max" && opt.scale != "std" && opt.scale != "none")
    throw ConfigError("--gene-scale '" + opt.scale + "': use max, std or none");
  if (opt.top_genes < 1) throw ConfigError("--top-genes must be at least 1");
  const std::size_t G = m.rows, S = m.cols;
  Prepared p;
  p.spots = S;
  // Entries given twice for one gene and spot (some writers do) are one count, their sum.
  std::vector<std::size_t> order(m.value.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    return m.col[a] != m.col[b] ? m.col[a] < m.col[b] : m.row[a] < m.row[b];
  });
  Coo merged;
  for (std::size_t k = 0; k < order.size(); ++k) {
    const std::size_t e = order[k];
    if (m.value[e] < 0) throw DataError("the counts hold a negative value (" + std::to_string(m.value[e]) + ")");
    if (k > 0 && m.row[e] == merged.row.back() && m.col[e] == merged.col.back()) {
      merged.value.back() += m.value[e];
    } else {
      merged.row.push_back(m.row[e]);
      merged.col.push_back(m.col[e]);
      merged.value.push_back(m.value[e]);
    }
  }
  p.library_size.assign(S, 0.0);
  for (std::size_t e = 0; e < merged.value.size(); ++e) p.library_size[merged.col[e]] += merged.value[e];
  for (std::size_t s = 0; s < S; ++s) {
    if (!std::isfinite(p.library_size[s]))
      throw DataError("spot " + std::to_string(s + 1) + "'s counts add up to more than a double holds");
    if (!(p.library_size[s] > 0)) throw DataError("spot " + std::to_string(s + 1) + " has no counts: remove it first");
  }
  std::vector<double> sorted = p.library_size;
  std::nth_element(sorted.begin(), sorted.begin() + static_cast<std::ptrdiff_t>(S / 2), sorted.end());
  double median = sorted[S / 2];
  if (S % 2 == 0) {
    median = 0.5 * (median + *std::max_element(sorted.begin(), sorted.begin() + static_cast<std::ptrdiff_t>(S / 2)));
  }
  // Per gene: detection count and the mean and variance of log1p(normalized), zeros included.
  std::vector<std::size_t> detected(G, 0);
  std::vector<double> sum(G, 0.0), sum2(G, 0.0);
  for (std::size_t e = 0; e < merged.value.size(); ++e) {
    if (merged.value[e] == 0) continue;
    const double v = std::log1p(merged.value[e] * median / p.library_size[merged.col[e]]);
    ++detected[merged.row[e]];
    sum[merged.row[e]] += v;
    sum2[merged.row[e]] += v * v;
  }
  std::vector<std::size_t> cand;
  std::vector<double> var(G, 0.0);
  for (std::size_t g = 0; g < G; ++g) {
    if (detected[g] < opt.min_spots) continue;
    const double mean = sum[g] / static_cast<double>(S);
    var[g] = sum2[g] / static_cast<double>(S) - mean * mean;
    cand.push_back(g);
  }
  if (cand.empty())
    throw DataError("no gene is detected in " + std::to_string(opt.min_spots) + " or more spots (lower --min-spots)");
  std::stable_sort(cand.begin(), cand.end(), [&](std::size_t a, std::size_t b) { return var[a] > var[b]; });
  cand.resize(std::min(cand.size(), opt.top_genes));
  p.gene_index = cand;
  p.genes = cand.size();
  std::vector<std::ptrdiff_t> slot(G, -1);
  for (std::size_t k = 0; k < cand.size(); ++k) slot[cand[k]] = static_cast<std::ptrdiff_t>(k);
  p.Y.assign(S * p.genes, 0.0);
  for (std::size_t e = 0; e < merged.value.size(); ++e) {
    const std::ptrdiff_t k = slot[merged.row[e]];
    if (k < 0) continue;
    p.Y[merged.col[e] + S * static_cast<std::size_t>(k)] += merged.value[e] * median / p.library_size[merged.col[e]];
  }
  p.gene_scale.assign(p.genes, 1.0);
  for (std::size_t k = 0; k < p.genes; ++k) {
    double* col = p.Y.data() + S * k;
    double scale = 1;
    if (opt.scale == "max") {
      scale = *std::max_element(col, col + S);
    } else if (opt.scale == "std") {
      const double mean = std::accumulate(col, col + S, 0.0) / static_cast<double>(S);
      double ss = 0;
      for (std::size_t s = 0; s < S; ++s) ss += (col[s] - mean) * (col[s] - mean);
      scale = std::sqrt(ss / static_cast<double>(S));
    }
    if (!(scale > 0)) scale = 1;
    p.gene_scale[k] = scale;
    for (std::size_t s = 0; s < S; ++s) col[s] /= scale;
  }
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
