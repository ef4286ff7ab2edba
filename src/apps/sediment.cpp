#include "unmix/apps/sediment.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <filesystem>
#include <limits>
#include <map>
#include <numeric>

#include "unmix/core/error.hpp"

namespace unmix::sediment {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

std::string trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t");
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(" \t") - b + 1);
}

std::string fmt(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  return buf;
}

/// True when the row looks like a header: at least one text cell and no number.
bool is_header(const std::vector<std::string>& row) {
  bool text = false;
  for (const auto& c : row) {
    double v;
    const auto kind = csv::parse_cell(c, v);
    if (kind == csv::CellKind::number) return false;
    if (kind == csv::CellKind::text) text = true;
  }
  return text;
}

/// Quantile of sorted values, linear interpolation between order statistics (type 7).
double quantile_sorted(const std::vector<double>& s, double p) {
  if (s.empty()) return kNaN;
  const double h = (static_cast<double>(s.size()) - 1) * p;
  const auto lo = static_cast<std::size_t>(std::floor(h));
  const std::size_t hi = std::min(lo + 1, s.size() - 1);
  return s[lo] + (h - static_cast<double>(lo)) * (s[hi] - s[lo]);
}

} // namespace

std::size_t GrainTable::grain_count() const {
  std::size_t n = 0;
  for (const auto& g : grains) n += g.size();
  return n;
}

GrainTable parse_tidy(const csv::Table& t) {
  if (t.rows.empty()) throw DataError("file '" + t.path + "' is empty; a grain table needs a header row and grains");
  const auto& head = t.rows[0];
  std::size_t sink_col = head.size(), grain_col = head.size();
  for (std::size_t c = 0; c < head.size(); ++c) {
    const std::string h = lower(trim(head[c]));
    if (h == "sink" && sink_col == head.size()) sink_col = c;
    if (h == "grain" && grain_col == head.size()) grain_col = c;
  }
  if (sink_col == head.size())
    throw DataError(csv::where(t.path, 1, 0) +
                    ": no column named 'sink'; a tidy grain table has a header row with columns sink, grain and one "
                    "column per feature (or give one file per feature with --wide)");
  GrainTable g;
  g.layout = "tidy";
  std::vector<std::size_t> feature_cols;
  for (std::size_t c = 0; c < head.size(); ++c) {
    if (c == sink_col || c == grain_col) continue;
    const std::string name = trim(head[c]);
    if (name.empty()) throw DataError(csv::where(t.path, 1, c + 1) + ": a feature column has no name in the header");
    for (const auto& f : g.features)
      if (f == name) throw DataError(csv::where(t.path, 1, c + 1) + ": feature '" + name + "' appears twice");
    g.features.push_back(name);
    feature_cols.push_back(c);
  }
  if (g.features.empty()) throw DataError(csv::where(t.path, 1, 0) + ": no feature columns (only sink and grain)");
  const std::size_t J = g.features.size();
  g.file.assign(J, t.path);
  std::map<std::string, std::size_t> index;
  for (std::size_t r = 1; r < t.rows.size(); ++r) {
    const auto& row = t.rows[r];
    const std::size_t file_row = r + 1;
    if (row.size() > head.size())
      throw DataError(csv::where(t.path, file_row, head.size() + 1) + ": the row has " + std::to_string(row.size()) +
                      " cells but the header names " + std::to_string(head.size()) + " columns");
    const std::string sink = trim(t.cell(r, sink_col));
    if (sink.empty())
      throw DataError(csv::where(t.path, file_row, sink_col + 1, trim(head[sink_col])) + ": the sink name is empty");
    auto it = index.find(sink);
    if (it == index.end()) {
      it = index.emplace(sink, g.sinks.size()).first;
      g.sinks.push_back(sink);
      g.grains.emplace_back();
    }
    Grain gr;
    gr.row = file_row;
    gr.id = grain_col < head.size() ? trim(t.cell(r, grain_col)) : std::string();
    if (gr.id.empty()) gr.id = std::to_string(g.grains[it->second].size() + 1);
    gr.values.resize(J);
    for (std::size_t j = 0; j < J; ++j) {
      const std::string& cell = t.cell(r, feature_cols[j]);
      const auto kind = csv::parse_cell(cell, gr.values[j]);
      if (kind == csv::CellKind::text)
        throw DataError(csv::where(t.path, file_row, feature_cols[j] + 1, g.features[j]) + ": '" + trim(cell) +
                        "' is not a number (write an empty cell or NaN for a missing value)");
      if (kind == csv::CellKind::missing) ++g.missing;
    }
    g.grains[it->second].push_back(std::move(gr));
  }
  if (g.sinks.empty()) throw DataError("file '" + t.path + "' has a header but no grains");
  g.column.assign(g.sinks.size(), std::vector<std::size_t>(J));
  g.column_name.assign(g.sinks.size(), std::vector<std::string>(J));
  for (std::size_t s = 0; s < g.sinks.size(); ++s)
    for (std::size_t j = 0; j < J; ++j) {
      g.column[s][j] = feature_cols[j] + 1;
      g.column_name[s][j] = g.features[j];
    }
  return g;
}

std::vector<std::string> feature_names_from_paths(const std::vector<std::string>& paths) {
  std::vector<std::string> stems;
  for (const auto& p : paths) stems.push_back(std::filesystem::path(p).stem().string());
  if (stems.size() < 2) return stems;
  std::size_t common = stems[0].size();
  for (const auto& s : stems) {
    std::size_t k = 0;
    while (k < common && k < s.size() && s[k] == stems[0][k]) ++k;
    common = k;
  }
  // Cut back to just after the last '_' inside the common prefix, keeping every name non-empty.
  std::size_t cut = stems[0].rfind('_', common == 0 ? 0 : common - 1);
  if (cut == std::string::npos || cut + 1 > common) return stems;
  for (const auto& s : stems)
    if (s.size() <= cut + 1) return stems;
  for (auto& s : stems) s = s.substr(cut + 1);
  return stems;
}

GrainTable parse_wide(const std::vector<csv::Table>& tables, const std::vector<std::string>& feature_names) {
  if (tables.empty()) throw ConfigError("no grain files given");
  if (feature_names.size() != tables.size())
    throw ConfigError(std::to_string(tables.size()) + " feature files but " + std::to_string(feature_names.size()) +
                      " feature names");
  for (std::size_t a = 0; a < feature_names.size(); ++a)
    for (std::size_t b = a + 1; b < feature_names.size(); ++b)
      if (feature_names[a] == feature_names[b])
        throw ConfigError("files '" + tables[a].path + "' and '" + tables[b].path + "' both give feature '" +
                          feature_names[a] + "'; name the features with --features");
  GrainTable g;
  g.layout = "wide";
  g.features = feature_names;
  const std::size_t J = tables.size();
  std::vector<bool> header(J);
  std::size_t S = 0;
  for (std::size_t j = 0; j < J; ++j) {
    const auto& t = tables[j];
    if (t.rows.empty()) throw DataError("file '" + t.path + "' is empty; it should hold one column of grains per sink");
    header[j] = is_header(t.rows[0]);
    const std::size_t cols = t.max_columns();
    if (j == 0) {
      S = cols;
    } else if (cols != S) {
      throw DataError("file '" + t.path + "' has " + std::to_string(cols) + " sink columns but '" + tables[0].path +
                      "' has " + std::to_string(S) + "; every feature file must list the same sinks");
    }
    g.file.push_back(t.path);
  }
  // Sink names: from the header rows, which must agree, or sink_1, sink_2, ...
  std::size_t named = J;
  for (std::size_t j = 0; j < J; ++j)
    if (header[j]) {
      named = j;
      break;
    }
  g.sinks.resize(S);
  for (std::size_t s = 0; s < S; ++s) {
    g.sinks[s] = named < J ? trim(tables[named].cell(0, s)) : "sink_" + std::to_string(s + 1);
    if (g.sinks[s].empty())
      throw DataError(csv::where(tables[named].path, 1, s + 1) + ": the header leaves this sink column unnamed");
  }
  for (std::size_t a = 0; a < S; ++a)
    for (std::size_t b = a + 1; b < S; ++b)
      if (g.sinks[a] == g.sinks[b])
        throw DataError(csv::where(tables[named].path, 1, b + 1) + ": sink '" + g.sinks[b] +
                        "' is named twice (also column " + std::to_string(a + 1) + ")");
  for (std::size_t j = 0; j < J; ++j) {
    if (named == J) break;
    if (!header[j])
      throw DataError("file '" + tables[j].path + "' has no header row but '" + tables[named].path +
                      "' names the sinks in its first row; give every feature file the same header");
    for (std::size_t s = 0; s < S; ++s) {
      const std::string here = trim(tables[j].cell(0, s));
      if (here != g.sinks[s])
        throw DataError(csv::where(tables[j].path, 1, s + 1) + ": sink '" + here + "' but '" + tables[named].path +
                        "' names column " + std::to_string(s + 1) + " '" + g.sinks[s] +
                        "'; the feature files must list the same sinks in the same order");
    }
  }
  const std::size_t first = named < J ? 1 : 0; // first data row (0-based)
  g.grains.resize(S);
  g.column.assign(S, std::vector<std::size_t>(J));
  g.column_name.assign(S, std::vector<std::string>(J));
  for (std::size_t s = 0; s < S; ++s) {
    // The sink's grains: up to its last non-empty cell in any feature file.
    std::size_t n = 0;
    for (std::size_t j = 0; j < J; ++j) {
      const auto& t = tables[j];
      for (std::size_t r = t.rows.size(); r > first; --r)
        if (!trim(t.cell(r - 1, s)).empty()) {
          n = std::max(n, r - first);
          break;
        }
    }
    for (std::size_t j = 0; j < J; ++j) {
      g.column[s][j] = s + 1;
      g.column_name[s][j] = named < J ? g.sinks[s] : std::string();
    }
    for (std::size_t k = 0; k < n; ++k) {
      Grain gr;
      gr.row = first + k + 1;
      gr.id = std::to_string(k + 1);
      gr.values.resize(J);
      for (std::size_t j = 0; j < J; ++j) {
        const std::string& cell = tables[j].cell(first + k, s);
        const auto kind = csv::parse_cell(cell, gr.values[j]);
        if (kind == csv::CellKind::text)
          throw DataError(csv::where(tables[j].path, gr.row, s + 1, g.column_name[s][j]) + ": '" + trim(cell) +
                          "' is not a number (write an empty cell or NaN for a missing value)");
        if (kind == csv::CellKind::missing) ++g.missing;
      }
      g.grains[s].push_back(std::move(gr));
    }
  }
  return g;
}

void validate(const GrainTable& g) {
  const std::size_t J = g.features.size();
  for (std::size_t s = 0; s < g.sinks.size(); ++s)
    for (std::size_t j = 0; j < J; ++j) {
      std::size_t n = 0, row = 0;
      for (const auto& gr : g.grains[s])
        if (!std::isnan(gr.values[j])) {
          ++n;
          row = gr.row;
        }
      if (n >= 2) continue;
      std::string msg = csv::where(g.file[j], n == 1 ? row : 0, g.column[s][j], g.column_name[s][j]) + ": sink '" +
                        g.sinks[s] + "' has " + (n == 0 ? "no grain" : "only 1 grain") + " with a value of feature '" +
                        g.features[j] + "'; a density estimate needs at least two grains (add grains or drop the sink)";
      throw DataError(msg);
    }
  for (std::size_t j = 0; j < J; ++j) {
    double lo = std::numeric_limits<double>::infinity(), hi = -lo;
    for (const auto& sink : g.grains)
      for (const auto& gr : sink)
        if (!std::isnan(gr.values[j])) {
          lo = std::min(lo, gr.values[j]);
          hi = std::max(hi, gr.values[j]);
        }
    if (lo == hi) {
      const std::size_t col = g.layout == "tidy" ? g.column[0][j] : 0;
      throw DataError(csv::where(g.file[j], 0, col, g.layout == "tidy" ? g.features[j] : std::string()) +
                      ": feature '" + g.features[j] + "' has zero spread (every value is " + fmt(lo) +
                      "), so its density is a single spike that tells no source apart; drop this feature");
    }
  }
}

double silverman_bandwidth(std::span<const double> values) {
  std::vector<double> s;
  for (double v : values)
    if (!std::isnan(v)) s.push_back(v);
  const std::size_t n = s.size();
  if (n < 2) return 0;
  std::sort(s.begin(), s.end());
  const double mean = std::accumulate(s.begin(), s.end(), 0.0) / static_cast<double>(n);
  double var = 0;
  for (double v : s) var += (v - mean) * (v - mean);
  const double sd = std::sqrt(var / static_cast<double>(n - 1));
  const double iqr = (quantile_sorted(s, 0.75) - quantile_sorted(s, 0.25)) / 1.34;
  double width = std::min(sd, iqr);
  if (!(width > 0)) width = sd;
  if (!(width > 0)) return 0;
  return 0.9 * width * std::pow(static_cast<double>(n), -0.2);
}

BandwidthRule parse_bandwidth_rule(const std::string& name) {
  if (name == "median") return BandwidthRule::median;
  if (name == "mean") return BandwidthRule::mean;
  if (name == "min") return BandwidthRule::min;
  if (name == "max") return BandwidthRule::max;
  throw ConfigError("--bandwidth-rule '" + name + "': use median, mean, min or max");
}

std::vector<double> KdeTensor::c_order() const {
  std::vector<double> out(Y.size());
  for (std::size_t i = 0; i < I; ++i)
    for (std::size_t j = 0; j < J; ++j)
      for (std::size_t k = 0; k < K; ++k) out[(i * J + j) * K + k] = at(i, j, k);
  return out;
}

KdeTensor build_tensor(const GrainTable& g, const KdeOptions& opts) {
  if (opts.grid_points < 2) throw ConfigError("--grid-points must be at least 2");
  if (!(opts.margin >= 0)) throw ConfigError("--margin must be 0 or more (bandwidths beyond the data range)");
  if (!(opts.bandwidth_scale > 0)) throw ConfigError("--bandwidth-scale must be positive");
  for (const auto& [name, h] : opts.bandwidth) {
    if (std::find(g.features.begin(), g.features.end(), name) == g.features.end()) {
      std::string list;
      for (const auto& f : g.features) list += (list.empty() ? "" : ", ") + f;
      throw ConfigError("--bandwidth " + name + "=...: there is no feature '" + name + "' (features: " + list + ")");
    }
    if (!(h > 0) || !std::isfinite(h)) throw ConfigError("--bandwidth " + name + ": the bandwidth must be positive");
  }
  KdeTensor T;
  T.I = g.sinks.size();
  T.J = g.features.size();
  T.K = opts.grid_points;
  T.Y.assign(T.I * T.J * T.K, 0.0);
  T.grid.resize(T.J);
  T.bandwidth.resize(T.J);
  const std::size_t K = T.K;
  for (std::size_t j = 0; j < T.J; ++j) {
    std::vector<double> hs, all;
    for (const auto& sink : g.grains) {
      std::vector<double> v;
      for (const auto& gr : sink)
        if (!std::isnan(gr.values[j])) v.push_back(gr.values[j]);
      const double h = silverman_bandwidth(v);
      if (h > 0) hs.push_back(h);
      all.insert(all.end(), v.begin(), v.end());
    }
    double h = 0;
    if (hs.empty()) {
      h = silverman_bandwidth(all); // every sink constant on its own: pool the grains
    } else {
      std::sort(hs.begin(), hs.end());
      switch (opts.rule) {
      case BandwidthRule::median: h = quantile_sorted(hs, 0.5); break;
      case BandwidthRule::mean: h = std::accumulate(hs.begin(), hs.end(), 0.0) / static_cast<double>(hs.size()); break;
      case BandwidthRule::min: h = hs.front(); break;
      case BandwidthRule::max: h = hs.back(); break;
      }
    }
    h *= opts.bandwidth_scale;
    for (const auto& [name, fixed] : opts.bandwidth)
      if (name == g.features[j]) h = fixed;
    if (!(h > 0))
      throw DataError("feature '" + g.features[j] + "' of '" + g.file[j] +
                      "' has zero spread; its bandwidth would be 0 (call validate first)");
    T.bandwidth[j] = h;
    const double lo = *std::min_element(all.begin(), all.end()) - opts.margin * h;
    const double hi = *std::max_element(all.begin(), all.end()) + opts.margin * h;
    auto& grid = T.grid[j];
    grid.resize(K);
    const double dx = (hi - lo) / static_cast<double>(K - 1);
    for (std::size_t k = 0; k < K; ++k) grid[k] = lo + dx * static_cast<double>(k);
    // Each grain's Gaussian is integrated over the cells [g_k - dx/2, g_k + dx/2] (exact mass per cell,
    // so a bandwidth smaller than the grid step still gives a usable density), then the fibre is scaled
    // to sum to 1.
    std::vector<double> cdf(K + 1), fibre(K);
    for (std::size_t i = 0; i < T.I; ++i) {
      std::fill(fibre.begin(), fibre.end(), 0.0);
      for (const auto& gr : g.grains[i]) {
        const double x = gr.values[j];
        if (std::isnan(x)) continue;
        for (std::size_t k = 0; k <= K; ++k) {
          const double edge = lo + dx * (static_cast<double>(k) - 0.5);
          cdf[k] = 0.5 * std::erfc(-(edge - x) / (h * std::sqrt(2.0)));
        }
        for (std::size_t k = 0; k < K; ++k) fibre[k] += cdf[k + 1] - cdf[k];
      }
      double sum = 0;
      for (double v : fibre) sum += v;
      for (std::size_t k = 0; k < K; ++k) T.Y[i + T.I * (j + T.J * k)] = sum > 0 ? fibre[k] / sum : 1.0 / double(K);
    }
  }
  return T;
}

std::size_t grid_cell(std::span<const double> grid, double x) {
  const std::size_t K = grid.size();
  if (K < 2) return 0;
  const double dx = (grid[K - 1] - grid[0]) / static_cast<double>(K - 1);
  const double pos = std::round((x - grid[0]) / dx);
  if (!(pos > 0)) return 0;
  if (pos >= static_cast<double>(K - 1)) return K - 1;
  return static_cast<std::size_t>(pos);
}

std::vector<GrainLabel> label_grains(const GrainTable& g, std::span<const std::vector<double>> grid,
                                     std::span<const double> B, std::size_t R) {
  const std::size_t J = g.features.size();
  if (grid.size() != J) throw DataError("label_grains: one grid per feature is needed");
  const std::size_t K = J ? grid[0].size() : 0;
  if (B.size() != R * J * K) throw DataError("label_grains: B must be R x J x K");
  std::vector<GrainLabel> out;
  out.reserve(g.grain_count());
  for (std::size_t s = 0; s < g.sinks.size(); ++s)
    for (const auto& gr : g.grains[s]) {
      GrainLabel L;
      L.sink = s;
      L.grain = gr.id;
      L.log10p.assign(R, 0.0);
      for (std::size_t j = 0; j < J; ++j) {
        const double x = gr.values[j];
        if (std::isnan(x)) continue;
        ++L.features_used;
        const std::size_t k = grid_cell(grid[j], x);
        for (std::size_t r = 0; r < R; ++r) L.log10p[r] += std::log10(std::max(B[r + R * (j + J * k)], 1e-300));
      }
      if (L.features_used > 0 && R > 0) {
        std::size_t best = 0;
        for (std::size_t r = 1; r < R; ++r)
          if (L.log10p[r] > L.log10p[best]) best = r;
        double second = -std::numeric_limits<double>::infinity();
        for (std::size_t r = 0; r < R; ++r)
          if (r != best) second = std::max(second, L.log10p[r]);
        L.source = static_cast<int>(best);
        L.confidence = L.log10p[best] - second;
      }
      out.push_back(std::move(L));
    }
  return out;
}

std::vector<double> grain_proportions(const std::vector<GrainLabel>& labels, std::size_t sinks, std::size_t R,
                                      std::size_t maxiter, double tol) {
  std::vector<double> A(sinks * R, R ? 1.0 / static_cast<double>(R) : 0.0);
  std::vector<std::vector<const GrainLabel*>> by_sink(sinks);
  for (const auto& L : labels)
    if (L.features_used > 0 && L.sink < sinks) by_sink[L.sink].push_back(&L);
  std::vector<double> w(R), nw(R), p(R);
  for (std::size_t i = 0; i < sinks; ++i) {
    const auto& gs = by_sink[i];
    if (gs.empty()) continue;
    // Likelihoods scaled per grain (the posterior does not change), so no grain underflows.
    std::vector<double> lik(gs.size() * R);
    for (std::size_t n = 0; n < gs.size(); ++n) {
      const auto& lp = gs[n]->log10p;
      const double top = *std::max_element(lp.begin(), lp.end());
      for (std::size_t r = 0; r < R; ++r) lik[n * R + r] = std::pow(10.0, lp[r] - top);
    }
    std::fill(w.begin(), w.end(), 1.0 / static_cast<double>(R));
    for (std::size_t it = 0; it < maxiter; ++it) {
      std::fill(nw.begin(), nw.end(), 0.0);
      for (std::size_t n = 0; n < gs.size(); ++n) {
        double z = 0;
        for (std::size_t r = 0; r < R; ++r) z += (p[r] = w[r] * lik[n * R + r]);
        if (!(z > 0)) continue;
        for (std::size_t r = 0; r < R; ++r) nw[r] += p[r] / z;
      }
      double total = 0, change = 0;
      for (double v : nw) total += v;
      if (!(total > 0)) break;
      for (std::size_t r = 0; r < R; ++r) {
        nw[r] /= total;
        change = std::max(change, std::abs(nw[r] - w[r]));
      }
      w = nw;
      if (change < tol) break;
    }
    for (std::size_t r = 0; r < R; ++r) A[i + sinks * r] = w[r];
  }
  return A;
}

std::vector<double> curvature(std::span<const double> e) {
  const std::size_t n = e.size();
  std::vector<double> y(n + 2);
  y[0] = 1;
  y[n + 1] = 0;
  double ymax = 1;
  for (std::size_t i = 0; i < n; ++i) {
    y[i + 1] = e[i];
    ymax = std::max(ymax, e[i]);
  }
  const double nn = static_cast<double>(n);
  std::vector<double> k(n);
  for (std::size_t i = 1; i <= n; ++i) {
    const double d1 = nn * (y[i + 1] - y[i - 1]) / (2 * ymax);
    const double d2 = nn * nn * (y[i - 1] - 2 * y[i] + y[i + 1]) / ymax;
    k[i - 1] = d2 / std::pow(1 + d1 * d1, 1.5);
  }
  return k;
}

std::size_t pick_rank(std::span<const double> errors) {
  const auto k = curvature(errors);
  std::size_t best = 0;
  for (std::size_t i = 0; i < k.size(); ++i)
    if (!std::isnan(k[i]) && (std::isnan(k[best]) || k[i] > k[best])) best = i;
  return best + 1;
}

} // namespace unmix::sediment
