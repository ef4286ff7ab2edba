#include "unmix/constraints/constraints.hpp"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <sstream>

namespace unmix {

namespace {

constexpr double kNegInf = -std::numeric_limits<double>::infinity();

const SliceReducer& reducer_for(const FactorView& v, unsigned mask) {
  static const LocalReducer local;
  if (!v.reducer) return local;
  return v.reducer(mask);
}

void check_view(const FactorView& v) {
  const std::size_t N = v.shape.size();
  if (N == 0) throw DataError("constraints: the factor has no modes");
  if (v.global_shape.size() != N || v.offset.size() != N)
    throw DataError("constraints: the factor view's shape " + shape_string(v.shape) + ", global shape " +
                    shape_string(v.global_shape) + " and offset " + shape_string(v.offset) +
                    " must have the same number of modes");
  if (v.data.size() != shape_size(v.shape))
    throw DataError("constraints: the local block has " + std::to_string(v.data.size()) + " values but its shape " +
                    shape_string(v.shape) + " needs " + std::to_string(shape_size(v.shape)));
  for (std::size_t n = 0; n < N; ++n)
    if (v.offset[n] + v.shape[n] > v.global_shape[n])
      throw DataError("constraints: the local block " + shape_string(v.shape) + " at offset " + shape_string(v.offset) +
                      " does not fit in the factor " + shape_string(v.global_shape));
  if (v.rank_mode >= N)
    throw DataError("constraints: rank mode " + std::to_string(v.rank_mode) + " of a factor of order " +
                    std::to_string(N));
}

inline double sgn(double x) { return x < 0 ? -1.0 : 1.0; }

/// The slices of one slicing on the local block: which local slice each entry belongs to, its
/// position among the slice's local entries, and its position in the whole slice (column-major over
/// the free modes of the whole factor).
class Slices {
public:
  Slices(const FactorView& v, unsigned mask) : v_(&v) {
    const std::size_t N = v.shape.size();
    s_.assign(N, 0);
    l_.assign(N, 0);
    g_.assign(N, 0);
    for (std::size_t n = 0; n < N; ++n) {
      if ((mask >> n) & 1u) {
        s_[n] = count;
        count *= v.shape[n];
      } else {
        l_[n] = per_slice;
        per_slice *= v.shape[n];
        g_[n] = global_size;
        global_size *= v.global_shape[n];
      }
    }
  }
  std::size_t count = 1;       // local slices
  std::size_t per_slice = 1;   // local entries per slice
  std::size_t global_size = 1; // entries per slice in the whole factor

  /// f(linear index in the block, local slice, local position in the slice, global position in the slice)
  template <class F> void each(F&& f) const {
    const FactorView& v = *v_;
    if (v.data.empty()) return;
    const std::size_t N = v.shape.size(), n0 = v.shape[0], off0 = v.offset[0];
    std::vector<std::size_t> idx(N, 0);
    std::size_t bs = 0, bl = 0, bg = 0;
    for (std::size_t n = 1; n < N; ++n) bg += v.offset[n] * g_[n];
    for (std::size_t lin = 0;;) {
      for (std::size_t i = 0; i < n0; ++i, ++lin) f(lin, bs + i * s_[0], bl + i * l_[0], bg + (off0 + i) * g_[0]);
      std::size_t n = 1;
      for (; n < N; ++n) {
        ++idx[n];
        bs += s_[n];
        bl += l_[n];
        bg += g_[n];
        if (idx[n] < v.shape[n]) break;
        bs -= s_[n] * v.shape[n];
        bl -= l_[n] * v.shape[n];
        bg -= g_[n] * v.shape[n];
        idx[n] = 0;
      }
      if (n == N) break;
    }
  }

private:
  const FactorView* v_;
  std::vector<std::size_t> s_, l_, g_;
};

/// Simplex threshold of the first n values of y, sorting them: the walk from the largest entry down.
double sorted_threshold(std::vector<double>& y, std::size_t n, double radius) {
  std::sort(y.begin(), y.begin() + static_cast<std::ptrdiff_t>(n));
  double suffix = 0; // sum of the entries above position i - 1, largest first
  for (std::size_t i = n - 1; i >= 1; --i) {
    suffix += y[i];
    const double t = (suffix - radius) / static_cast<double>(n - i);
    if (t >= y[i - 1]) return t;
  }
  return (suffix + y[0] - radius) / static_cast<double>(n);
}

/// Simplex threshold of a multiset: the t with sum_i max(y_i - t, 0) = radius; y is reordered. Michelot's
/// passes: for any set S, (sum_S y - radius) / |S| <= t (each entry of S gives y_i - t <= max(y_i - t, 0)),
/// so entries at or below that estimate lie outside the support; dropping them raises the estimate, and
/// when a pass drops none, S is the support and the estimate is t. Each pass sums its entries afresh. A
/// few passes suffice in practice (a sort costs log n); after 64 the walk over the sorted remaining
/// entries (a superset of the support) finishes.
double threshold_inplace(std::vector<double>& y, double radius) {
  if (y.empty()) return 0.0;
  std::size_t k = y.size();
  double sum = 0;
  for (std::size_t i = 0; i < k; ++i) sum += y[i];
  for (int pass = 0; pass < 64; ++pass) {
    const double t = (sum - radius) / static_cast<double>(k);
    std::size_t kept = 0;
    double kept_sum = 0;
    for (std::size_t i = 0; i < k; ++i) {
      const double v = y[i];
      y[kept] = v;
      kept += v > t ? 1 : 0;
      kept_sum += v > t ? v : 0.0;
    }
    if (kept == k || kept == 0) return t;
    k = kept;
    sum = kept_sum;
  }
  return sorted_threshold(y, k, radius);
}

/// threshold_inplace's passes on slices shared by several processes: each pass sums every slice's kept count
/// and kept sum over the sharing processes (two values a slice), so that no process receives another's values.
/// A value is kept while it exceeds every threshold so far (the serial passes' compaction). False when a slice
/// has not settled after 64 passes (the serial form then sorts): the caller gathers instead.
bool shared_slice_thresholds(const SliceReducer& red, const Slices& S, const std::vector<double>& buf, double radius,
                             std::vector<double>& t) {
  const double lowest = -std::numeric_limits<double>::infinity();
  std::vector<double> floor(S.count, lowest), acc(2 * S.count, 0.0), k(S.count);
  std::vector<char> settled(S.count, 0);
  for (int pass = 0; pass <= 64; ++pass) {
    std::fill(acc.begin(), acc.end(), 0.0);
    for (std::size_t s = 0; s < S.count; ++s) {
      if (settled[s]) continue;
      const double* v = buf.data() + s * S.per_slice;
      for (std::size_t i = 0; i < S.per_slice; ++i)
        if (v[i] > floor[s]) {
          acc[2 * s] += 1;
          acc[2 * s + 1] += v[i];
        }
    }
    red.sum(acc);
    bool all = true;
    for (std::size_t s = 0; s < S.count; ++s) {
      if (settled[s]) continue;
      if (acc[2 * s] == 0 || (pass > 0 && acc[2 * s] == k[s])) {
        settled[s] = 1; // t[s] is the last pass's threshold (0 for a slice without values, as serially)
        continue;
      }
      k[s] = acc[2 * s];
      t[s] = (acc[2 * s + 1] - radius) / k[s];
      floor[s] = std::max(floor[s], t[s]);
      all = false;
    }
    if (all) return true;
  }
  return false;
}

/// Simplex thresholds of every local slice; `buf` holds the local values slice-major (count x per_slice).
/// Shared slices: the serial passes with their counts and sums reduced (shared_slice_thresholds); only a slice
/// that needs the sorted form has its values gathered whole, so that every process sorts the same multiset.
std::vector<double> slice_thresholds(const SliceReducer& red, const Slices& S, const std::vector<double>& buf,
                                     double radius) {
  std::vector<double> t(S.count, 0.0);
  if (S.count == 0) return t;
  std::vector<double> vals;
  if (red.size() == 1) {
    for (std::size_t s = 0; s < S.count; ++s) {
      vals.assign(buf.begin() + static_cast<std::ptrdiff_t>(s * S.per_slice),
                  buf.begin() + static_cast<std::ptrdiff_t>((s + 1) * S.per_slice));
      t[s] = threshold_inplace(vals, radius);
    }
    return t;
  }
  if (shared_slice_thresholds(red, S, buf, radius, t)) return t;
  const double mine = static_cast<double>(S.per_slice);
  const std::vector<double> counts = red.gather(std::span<const double>(&mine, 1));
  const std::vector<double> all = red.gather(buf);
  std::vector<std::size_t> start(counts.size()), cnt(counts.size());
  std::size_t pos = 0;
  for (std::size_t p = 0; p < counts.size(); ++p) {
    cnt[p] = static_cast<std::size_t>(counts[p]);
    start[p] = pos;
    pos += cnt[p] * S.count;
  }
  if (pos != all.size()) throw DataError("constraints: processes sharing slices disagree on the number of slices");
  for (std::size_t s = 0; s < S.count; ++s) {
    vals.clear();
    for (std::size_t p = 0; p < counts.size(); ++p) {
      const auto b = all.begin() + static_cast<std::ptrdiff_t>(start[p] + s * cnt[p]);
      vals.insert(vals.end(), b, b + static_cast<std::ptrdiff_t>(cnt[p]));
    }
    t[s] = threshold_inplace(vals, radius);
  }
  return t;
}

bool is_l1(ConstraintKind k) { return k == ConstraintKind::l1scale; }

double target_of(const Constraint& c, const FactorView& v) {
  if (c.slicing == Slicing::average12 && v.global_shape.size() > 1) return static_cast<double>(v.global_shape[1]);
  return 1.0;
}

/// Per-slice norms (L1, L2 or L-infinity) of the whole slices, combined over the sharing processes.
std::vector<double> slice_norms(const SliceReducer& red, const Slices& S, const FactorView& v, int which) {
  std::vector<double> nrm(S.count, 0.0);
  const double* x = v.data.data();
  if (which == 1)
    S.each([&](std::size_t lin, std::size_t s, std::size_t, std::size_t) { nrm[s] += std::abs(x[lin]); });
  else if (which == 2)
    S.each([&](std::size_t lin, std::size_t s, std::size_t, std::size_t) { nrm[s] += x[lin] * x[lin]; });
  else
    S.each(
        [&](std::size_t lin, std::size_t s, std::size_t, std::size_t) { nrm[s] = std::max(nrm[s], std::abs(x[lin])); });
  if (which == 0)
    red.max(nrm);
  else
    red.sum(nrm);
  if (which == 2)
    for (double& a : nrm) a = std::sqrt(a);
  return nrm;
}

int norm_of(ConstraintKind k) {
  switch (k) {
  case ConstraintKind::l1normalize:
  case ConstraintKind::l1scale:
  case ConstraintKind::simplex: return 1;
  case ConstraintKind::l2normalize:
  case ConstraintKind::l2scale: return 2;
  default: return 0;
  }
}

void apply_entrywise(const Constraint& c, FactorView& v) {
  switch (c.kind) {
  case ConstraintKind::nonnegative:
    for (double& a : v.data) a = std::max(a, 0.0);
    break;
  case ConstraintKind::clamp:
    for (double& a : v.data) a = std::min(std::max(a, c.lo), c.hi);
    break;
  case ConstraintKind::binary:
    for (double& a : v.data) a = a < 0.5 ? 0.0 : 1.0;
    break;
  default: break;
  }
}

/// simplex and l1normalize: a threshold from the sorted values of each whole slice.
void apply_sorted_projection(const Constraint& c, FactorView& v) {
  const unsigned mask = fixed_mask(c.slicing, v.shape.size());
  const SliceReducer& red = reducer_for(v, mask);
  const Slices S(v, mask);
  double* x = v.data.data();
  const bool l1 = c.kind == ConstraintKind::l1normalize;
  std::vector<double> buf(S.count * S.per_slice);
  S.each([&](std::size_t lin, std::size_t s, std::size_t lp, std::size_t) {
    buf[s * S.per_slice + lp] = l1 ? std::abs(x[lin]) : x[lin];
  });
  const std::vector<double> t = slice_thresholds(red, S, buf, c.target_scale);
  if (l1)
    S.each([&](std::size_t lin, std::size_t s, std::size_t, std::size_t) {
      x[lin] = sgn(x[lin]) * std::max(std::abs(x[lin]) - t[s], 0.0);
    });
  else
    S.each([&](std::size_t lin, std::size_t s, std::size_t, std::size_t) { x[lin] = std::max(x[lin] - t[s], 0.0); });
}

void apply_l2normalize(const Constraint& c, FactorView& v) {
  const unsigned mask = fixed_mask(c.slicing, v.shape.size());
  const SliceReducer& red = reducer_for(v, mask);
  const Slices S(v, mask);
  const std::vector<double> nrm = slice_norms(red, S, v, 2);
  const double t = c.target_scale;
  const double fill = S.global_size ? t / std::sqrt(static_cast<double>(S.global_size)) : 0.0;
  double* x = v.data.data();
  S.each([&](std::size_t lin, std::size_t s, std::size_t, std::size_t) {
    x[lin] = nrm[s] > 0 ? x[lin] / nrm[s] * t : fill;
  });
}

void apply_linftynormalize(const Constraint& c, FactorView& v) {
  const unsigned mask = fixed_mask(c.slicing, v.shape.size());
  const SliceReducer& red = reducer_for(v, mask);
  const Slices S(v, mask);
  const std::vector<double> m = slice_norms(red, S, v, 0);
  const double t = c.target_scale;
  double* x = v.data.data();
  // Where the largest magnitude is below t, the first entry (in global slice order) reaching it moves.
  std::vector<double> first(S.count, kNegInf);
  if (std::any_of(m.begin(), m.end(), [t](double a) { return a < t; })) {
    S.each([&](std::size_t lin, std::size_t s, std::size_t, std::size_t gp) {
      if (m[s] < t && std::abs(x[lin]) == m[s]) first[s] = std::max(first[s], -static_cast<double>(gp));
    });
    red.max(first);
  }
  S.each([&](std::size_t lin, std::size_t s, std::size_t, std::size_t gp) {
    if (m[s] > t)
      x[lin] = std::min(std::max(x[lin], -t), t);
    else if (m[s] < t && -static_cast<double>(gp) == first[s])
      x[lin] = sgn(x[lin]) * t;
  });
}

/// The ReLU that precedes a scaled normalization: slices (of its slicing) that are all <= 0 get a
/// nonnegative slice of norm 1 built from their values instead of becoming zero.
/// Returns whether a slice was replaced.
bool apply_safe_nonnegative(const Constraint& scaled, FactorView& v) {
  const unsigned mask = fixed_mask(scaled.slicing, v.shape.size());
  const SliceReducer& red = reducer_for(v, mask);
  const Slices S(v, mask);
  double* x = v.data.data();
  std::vector<double> mx(S.count, kNegInf);
  S.each([&](std::size_t lin, std::size_t s, std::size_t, std::size_t) { mx[s] = std::max(mx[s], x[lin]); });
  red.max(mx);
  if (std::none_of(mx.begin(), mx.end(), [](double a) { return a <= 0; })) {
    for (double& a : v.data) a = std::max(a, 0.0);
    return false;
  }
  if (is_l1(scaled.kind)) {
    std::vector<double> buf(S.count * S.per_slice);
    S.each([&](std::size_t lin, std::size_t s, std::size_t lp, std::size_t) { buf[s * S.per_slice + lp] = x[lin]; });
    const std::vector<double> t = slice_thresholds(red, S, buf, 1.0);
    S.each([&](std::size_t lin, std::size_t s, std::size_t, std::size_t) {
      x[lin] = mx[s] > 0 ? std::max(x[lin], 0.0) : std::max(x[lin] - t[s], 0.0);
    });
  } else {
    std::vector<double> first(S.count, kNegInf);
    S.each([&](std::size_t lin, std::size_t s, std::size_t, std::size_t gp) {
      if (mx[s] <= 0 && x[lin] == mx[s]) first[s] = std::max(first[s], -static_cast<double>(gp));
    });
    red.max(first);
    S.each([&](std::size_t lin, std::size_t s, std::size_t, std::size_t gp) {
      if (mx[s] > 0)
        x[lin] = std::max(x[lin], 0.0);
      else
        x[lin] = -static_cast<double>(gp) == first[s] ? 1.0 : 0.0;
    });
  }
  return true;
}

ScaleWeights apply_scaled(const Constraint& c, FactorView& v) {
  const std::size_t N = v.shape.size();
  const unsigned mask = fixed_mask(c.slicing, N);
  const SliceReducer& red = reducer_for(v, mask);
  const Slices S(v, mask);
  const std::vector<double> nrm = slice_norms(red, S, v, norm_of(c.kind));
  const double target = target_of(c, v);
  std::vector<double> w(S.count, 1.0);
  for (std::size_t s = 0; s < S.count; ++s)
    if (nrm[s] > 0) w[s] = nrm[s] / target;
  double* x = v.data.data();
  S.each([&](std::size_t lin, std::size_t s, std::size_t, std::size_t) { x[lin] /= w[s]; });
  ScaleWeights out;
  if (c.slicing == Slicing::whole) {
    out.scalar = w[0];
  } else if (mask == (1u << v.rank_mode)) {
    out.per_rank.assign(v.global_shape[v.rank_mode], 1.0);
    for (std::size_t s = 0; s < S.count; ++s) out.per_rank[v.offset[v.rank_mode] + s] = w[s];
  }
  return out;
}

/// `nonnegative` paired with a scaled normalization: the safe ReLU, then the scaling.
ScaleWeights apply_nonnegative_scaled(const Constraint& scaled, FactorView& v) {
  const bool replaced = apply_safe_nonnegative(scaled, v);
  ScaleWeights w = apply_scaled(scaled, v);
  w.replaced = replaced;
  return w;
}

std::size_t product_from(const Shape& s, std::size_t first) {
  std::size_t p = 1;
  for (std::size_t n = first; n < s.size(); ++n) p *= s[n];
  return p;
}

/// Global column (of the mode-1 unfolding) of every local column.
std::vector<std::size_t> global_columns(const FactorView& v) {
  const std::size_t N = v.shape.size(), lc = product_from(v.shape, 1);
  std::vector<std::size_t> out(lc);
  std::vector<std::size_t> idx(N, 0);
  for (std::size_t c = 0; c < lc; ++c) {
    std::size_t g = 0, stride = 1;
    for (std::size_t n = 1; n < N; ++n) {
      g += (v.offset[n] + idx[n]) * stride;
      stride *= v.global_shape[n];
    }
    out[c] = g;
    for (std::size_t n = 1; n < N; ++n) {
      if (++idx[n] < v.shape[n]) break;
      idx[n] = 0;
    }
  }
  return out;
}

void check_linear(const Constraint& c, const FactorView& v) {
  if (c.k == 0 || c.C.size() != c.k * c.n)
    throw ConfigError("the `linear` constraint has no matrix C: attach C and b (set_linear) before using it");
  if (c.n != v.global_shape[0])
    throw ConfigError("the `linear` constraint's C has " + std::to_string(c.n) +
                      " columns but the factor's first mode has " + std::to_string(v.global_shape[0]) +
                      " entries; C must be k x " + std::to_string(v.global_shape[0]));
  const std::size_t M = product_from(v.global_shape, 1);
  if (c.m != 1 && c.m != M)
    throw ConfigError("the `linear` constraint's b has " + std::to_string(c.m) + " columns but the factor has " +
                      std::to_string(M) + " columns; give b as k x " + std::to_string(M) + " or k x 1");
}

/// The residual C X - b on the local columns (k x local columns), combined over the row blocks.
std::vector<double> linear_residual(const Constraint& c, const FactorView& v) {
  const unsigned mask = fixed_mask(Slicing::columns, v.shape.size());
  const SliceReducer& red = reducer_for(v, mask);
  const std::size_t rows = v.shape[0], lc = product_from(v.shape, 1), k = c.k, r0 = v.offset[0];
  std::vector<double> P(k * lc, 0.0);
  const double* x = v.data.data();
  for (std::size_t j = 0; j < lc; ++j)
    for (std::size_t r = 0; r < rows; ++r) {
      const double xr = x[r + j * rows];
      const double* Cr = c.C.data() + (r0 + r) * k;
      for (std::size_t i = 0; i < k; ++i) P[i + j * k] += Cr[i] * xr;
    }
  red.sum(P);
  const std::vector<std::size_t> gcol = global_columns(v);
  for (std::size_t j = 0; j < lc; ++j) {
    const double* b = c.b.data() + (c.m == 1 ? 0 : gcol[j]) * k;
    for (std::size_t i = 0; i < k; ++i) P[i + j * k] -= b[i];
  }
  return P;
}

void apply_linear(const Constraint& c, FactorView& v) {
  check_linear(c, v);
  std::vector<double> Z = linear_residual(c, v);
  const std::size_t k = c.k, n = c.n, rows = v.shape[0], lc = product_from(v.shape, 1), r0 = v.offset[0];
  // Cholesky factor of C C^T (k x k, column-major, lower triangle).
  std::vector<double> L(k * k, 0.0);
  for (std::size_t a = 0; a < k; ++a)
    for (std::size_t b = 0; b <= a; ++b) {
      double s = 0;
      for (std::size_t j = 0; j < n; ++j) s += c.C[a + j * k] * c.C[b + j * k];
      L[a + b * k] = s;
    }
  for (std::size_t j = 0; j < k; ++j) {
    double d = L[j + j * k];
    for (std::size_t p = 0; p < j; ++p) d -= L[j + p * k] * L[j + p * k];
    if (!(d > 0))
      throw ConfigError("the `linear` constraint's C does not have full row rank (C C^T is singular); remove "
                        "dependent rows of C");
    d = std::sqrt(d);
    L[j + j * k] = d;
    for (std::size_t i = j + 1; i < k; ++i) {
      double s = L[i + j * k];
      for (std::size_t p = 0; p < j; ++p) s -= L[i + p * k] * L[j + p * k];
      L[i + j * k] = s / d;
    }
  }
  // Z <- (C C^T)^{-1} Z, one column at a time.
  for (std::size_t j = 0; j < lc; ++j) {
    double* z = Z.data() + j * k;
    for (std::size_t i = 0; i < k; ++i) {
      double s = z[i];
      for (std::size_t p = 0; p < i; ++p) s -= L[i + p * k] * z[p];
      z[i] = s / L[i + i * k];
    }
    for (std::size_t i = k; i-- > 0;) {
      double s = z[i];
      for (std::size_t p = i + 1; p < k; ++p) s -= L[p + i * k] * z[p];
      z[i] = s / L[i + i * k];
    }
  }
  double* x = v.data.data();
  for (std::size_t j = 0; j < lc; ++j)
    for (std::size_t r = 0; r < rows; ++r) {
      const double* Cr = c.C.data() + (r0 + r) * k;
      double s = 0;
      for (std::size_t i = 0; i < k; ++i) s += Cr[i] * Z[i + j * k];
      x[r + j * rows] -= s;
    }
}

void combine(ScaleWeights& into, const ScaleWeights& w) {
  into.scalar *= w.scalar;
  into.replaced = into.replaced || w.replaced;
  if (w.per_rank.empty()) return;
  if (into.per_rank.empty()) {
    into.per_rank = w.per_rank;
    return;
  }
  for (std::size_t r = 0; r < into.per_rank.size(); ++r) into.per_rank[r] *= w.per_rank[r];
}

/// The shortest text that reads back as x, with no '+' (the list separator) in the exponent: 2e03, not
/// 2e+03, so that a list's name parses back to the same list.
std::string format_number(double x) {
  auto text = [x](int prec) {
    std::ostringstream os;
    os.precision(prec);
    os << x;
    std::string s = os.str();
    if (const auto e = s.find("e+"); e != std::string::npos) s.erase(e + 1, 1);
    return s;
  };
  for (int prec = 1; prec < 17; ++prec) {
    const std::string s = text(prec);
    if (std::strtod(s.c_str(), nullptr) == x) return s;
  }
  return text(17);
}

const char* base_name(ConstraintKind k) {
  switch (k) {
  case ConstraintKind::nonnegative: return "nonnegative";
  case ConstraintKind::clamp: return "clamp";
  case ConstraintKind::binary: return "binary";
  case ConstraintKind::l1normalize: return "l1normalize";
  case ConstraintKind::simplex: return "simplex";
  case ConstraintKind::l2normalize: return "l2normalize";
  case ConstraintKind::linftynormalize: return "linftynormalize";
  case ConstraintKind::l1scale: return "l1scale";
  case ConstraintKind::l2scale: return "l2scale";
  case ConstraintKind::linftyscale: return "linftyscale";
  case ConstraintKind::linear: return "linear";
  }
  return "";
}

constexpr ConstraintKind kNormalizations[] = {
    ConstraintKind::l1normalize, ConstraintKind::simplex, ConstraintKind::l2normalize, ConstraintKind::linftynormalize,
    ConstraintKind::l1scale,     ConstraintKind::l2scale, ConstraintKind::linftyscale};
constexpr Slicing kSlicings[] = {Slicing::whole,   Slicing::rows,     Slicing::columns,
                                 Slicing::slices1, Slicing::slices12, Slicing::average12};

std::string trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  const auto e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
}

std::string valid_names_text() {
  return "valid names: nonnegative, binary, clamp:A:B (A <= B), linear, "
         "{l1normalize, simplex, l2normalize, linftynormalize}[_rows|_columns|_1slices|_12slices], "
         "{l1scale, l2scale, linftyscale}[_rows|_columns|_1slices|_12slices|_average12slices] "
         "(no suffix: the whole factor); join several with '+', e.g. l1scale_average12slices+nonnegative";
}

bool parse_double(const std::string& s, double& out) {
  if (s.empty()) return false;
  char* end = nullptr;
  out = std::strtod(s.c_str(), &end);
  return end == s.c_str() + s.size() && std::isfinite(out);
}

Constraint parse_word(const std::string& word, const std::string& spec) {
  auto unknown = [&](const std::string& why) {
    return ConfigError("unknown constraint '" + word + "' in '" + spec + "'" + (why.empty() ? "" : " (" + why + ")") +
                       "; " + valid_names_text());
  };
  Constraint c;
  if (word == "nonnegative") {
    c.kind = ConstraintKind::nonnegative;
    return c;
  }
  if (word == "binary") {
    c.kind = ConstraintKind::binary;
    return c;
  }
  if (word == "linear") {
    c.kind = ConstraintKind::linear;
    return c;
  }
  if (word.rfind("clamp", 0) == 0) {
    const std::string rest = word.substr(5);
    const auto colon = rest.find(':', 1);
    double lo = 0, hi = 0;
    if (rest.empty() || rest[0] != ':' || colon == std::string::npos || !parse_double(rest.substr(1, colon - 1), lo) ||
        !parse_double(rest.substr(colon + 1), hi))
      throw unknown("write the interval as clamp:A:B with two numbers, e.g. clamp:0:1");
    if (lo > hi)
      throw unknown("the lower bound " + format_number(lo) + " is above the upper bound " + format_number(hi));
    c.kind = ConstraintKind::clamp;
    c.lo = lo;
    c.hi = hi;
    return c;
  }
  const auto us = word.find('_');
  const std::string base = word.substr(0, us), suffix = us == std::string::npos ? "" : word.substr(us + 1);
  bool found = false;
  for (ConstraintKind k : kNormalizations)
    if (base == base_name(k)) {
      c.kind = k;
      found = true;
    }
  if (!found) throw unknown("");
  if (us != std::string::npos && suffix.empty()) throw unknown("nothing after '_'");
  if (suffix == "cols") {
    c.slicing = Slicing::columns;
    return c;
  }
  found = false;
  for (Slicing s : kSlicings)
    if (suffix == slicing_name(s)) {
      c.slicing = s;
      found = true;
    }
  if (!found) throw unknown("'" + suffix + "' is not a slicing");
  if (c.slicing == Slicing::average12 && !c.is_scaled())
    throw unknown("average12slices exists only for the scaled normalizations l1scale, l2scale, linftyscale");
  return c;
}

} // namespace

FactorView local_view(std::span<double> data, Shape shape, std::size_t rank_mode) {
  FactorView v;
  v.data = data;
  v.global_shape = shape;
  v.offset.assign(shape.size(), 0);
  v.shape = std::move(shape);
  v.rank_mode = rank_mode;
  return v;
}

unsigned fixed_mask(Slicing s, std::size_t order) {
  const unsigned all = order >= 32 ? ~0u : (1u << order) - 1u;
  switch (s) {
  case Slicing::whole: return 0u;
  case Slicing::rows:
  case Slicing::slices1:
  case Slicing::average12: return 1u & all;
  case Slicing::columns: return all & ~1u;
  case Slicing::slices12: return 3u & all;
  }
  return 0u;
}

std::string slicing_name(Slicing s) {
  switch (s) {
  case Slicing::whole: return "";
  case Slicing::rows: return "rows";
  case Slicing::columns: return "columns";
  case Slicing::slices1: return "1slices";
  case Slicing::slices12: return "12slices";
  case Slicing::average12: return "average12slices";
  }
  return "";
}

bool Constraint::is_entrywise() const {
  return kind == ConstraintKind::nonnegative || kind == ConstraintKind::clamp || kind == ConstraintKind::binary;
}
bool Constraint::is_projected_normalization() const {
  return kind == ConstraintKind::l1normalize || kind == ConstraintKind::simplex ||
         kind == ConstraintKind::l2normalize || kind == ConstraintKind::linftynormalize;
}
bool Constraint::is_scaled() const {
  return kind == ConstraintKind::l1scale || kind == ConstraintKind::l2scale || kind == ConstraintKind::linftyscale;
}

std::string Constraint::name() const {
  if (kind == ConstraintKind::clamp) return "clamp:" + format_number(lo) + ":" + format_number(hi);
  std::string s = base_name(kind);
  if ((is_projected_normalization() || is_scaled()) && slicing != Slicing::whole) {
    s += '_';
    s += slicing_name(slicing);
  }
  return s;
}

std::string ConstraintList::name() const {
  std::string s;
  for (const auto& c : items) {
    if (!s.empty()) s += '+';
    s += c.name();
  }
  return s;
}

ConstraintList parse_constraints(const std::string& spec) {
  ConstraintList list;
  list.spec = trim(spec);
  if (list.spec.empty() || list.spec == "none") return list;
  std::string word;
  std::stringstream ss(list.spec);
  while (std::getline(ss, word, '+')) {
    word = trim(word);
    if (word.empty())
      throw ConfigError("empty constraint name in '" + spec + "' (two '+' in a row, or one at an end); " +
                        valid_names_text());
    list.items.push_back(parse_word(word, spec));
  }
  if (list.spec.back() == '+')
    throw ConfigError("empty constraint name in '" + spec + "' (a '+' at the end); " + valid_names_text());
  return list;
}

std::vector<std::string> valid_constraint_names() {
  std::vector<std::string> out = {"nonnegative", "binary", "clamp:A:B", "linear"};
  for (ConstraintKind k : kNormalizations)
    for (Slicing s : kSlicings) {
      Constraint c;
      c.kind = k;
      c.slicing = s;
      if (s == Slicing::average12 && !c.is_scaled()) continue;
      out.push_back(c.name());
    }
  return out;
}

Constraint make_linear(std::vector<double> C, std::size_t k, std::size_t n, std::vector<double> b, std::size_t m) {
  if (k == 0 || n == 0 || m == 0)
    throw ConfigError("linear constraint: C must be k x n and b k x m with k, n, m at least 1");
  if (C.size() != k * n)
    throw ConfigError("linear constraint: C has " + std::to_string(C.size()) + " values but k x n = " +
                      std::to_string(k) + " x " + std::to_string(n) + " needs " + std::to_string(k * n));
  if (b.size() != k * m)
    throw ConfigError("linear constraint: b has " + std::to_string(b.size()) + " values but k x m = " +
                      std::to_string(k) + " x " + std::to_string(m) + " needs " + std::to_string(k * m));
  Constraint c;
  c.kind = ConstraintKind::linear;
  c.C = std::move(C);
  c.b = std::move(b);
  c.k = k;
  c.n = n;
  c.m = m;
  return c;
}

void set_linear(ConstraintList& list, std::vector<double> C, std::size_t k, std::size_t n, std::vector<double> b,
                std::size_t m) {
  const Constraint lin = make_linear(std::move(C), k, n, std::move(b), m);
  bool any = false;
  for (auto& c : list.items)
    if (c.kind == ConstraintKind::linear) {
      c = lin;
      any = true;
    }
  if (!any)
    throw ConfigError("a linear constraint matrix was given but the constraints '" + list.spec +
                      "' do not include `linear`; add it, e.g. nonnegative+linear");
}

double grid_spacing_ratio(std::size_t n_data, std::size_t n_grid) {
  if (n_data == n_grid) return 1.0;
  if (n_data < 2 || n_grid < 2)
    throw DataError("constraints: an axis of " + std::to_string(n_data) + " points cannot be resampled to " +
                    std::to_string(n_grid) + " points with the same end points (both need at least 2)");
  return static_cast<double>(n_grid - 1) / static_cast<double>(n_data - 1);
}

ConstraintList constraints_for_grid(const ConstraintList& list, const Shape& data_shape, const Shape& grid_shape) {
  if (data_shape.size() != grid_shape.size())
    throw DataError("constraints: the data's factor shape " + shape_string(data_shape) + " and the grid's " +
                    shape_string(grid_shape) + " must have the same number of modes");
  ConstraintList out = list;
  if (data_shape == grid_shape) return out;
  const std::size_t N = data_shape.size();
  std::vector<double> ratio(N);
  for (std::size_t n = 0; n < N; ++n) ratio[n] = grid_spacing_ratio(data_shape[n], grid_shape[n]);
  for (auto& c : out.items) {
    if (!c.is_projected_normalization() || c.kind == ConstraintKind::linftynormalize) continue;
    const unsigned mask = fixed_mask(c.slicing, N);
    double prod = 1.0;
    for (std::size_t n = 0; n < N; ++n)
      if (!((mask >> n) & 1u)) prod *= ratio[n];
    c.target_scale *= c.kind == ConstraintKind::l2normalize ? std::sqrt(prod) : prod;
  }
  return out;
}

bool scale_compensable(const ConstraintList& list, std::size_t order, std::size_t rank_mode) {
  for (const auto& c : list.items) {
    if (!c.is_scaled() || c.slicing == Slicing::whole) continue;
    if (fixed_mask(c.slicing, order) != (1u << rank_mode)) return false;
  }
  return true;
}

std::optional<ConstraintList> entrywise_before_rescaling(const ConstraintList& list, std::size_t order,
                                                         std::size_t rank_mode) {
  const auto& it = list.items;
  const auto scaled = std::find_if(it.begin(), it.end(), [](const Constraint& c) { return c.is_scaled(); });
  if (scaled == it.end() || !scale_compensable(list, order, rank_mode)) return std::nullopt;
  const auto nonnegative = [](const Constraint& c) { return c.kind == ConstraintKind::nonnegative; };
  // After the scaled item: nothing, or the `nonnegative` apply() pairs with it.
  const bool paired_after = scaled + 1 != it.end() && nonnegative(scaled[1]);
  if (scaled + (paired_after ? 2 : 1) != it.end()) return std::nullopt;
  ConstraintList out;
  for (auto c = it.begin(); c != scaled; ++c) {
    if (!c->is_entrywise()) return std::nullopt;
    out.items.push_back(*c);
  }
  // A paired `nonnegative` after the scaled item takes effect before the rescaling too.
  if (paired_after) out.items.push_back(scaled[1]);
  out.spec = out.name();
  return out;
}

ScaleWeights apply(const Constraint& c, FactorView& view) {
  check_view(view);
  if (c.is_entrywise())
    apply_entrywise(c, view);
  else if (c.kind == ConstraintKind::simplex || c.kind == ConstraintKind::l1normalize)
    apply_sorted_projection(c, view);
  else if (c.kind == ConstraintKind::l2normalize)
    apply_l2normalize(c, view);
  else if (c.kind == ConstraintKind::linftynormalize)
    apply_linftynormalize(c, view);
  else if (c.is_scaled())
    return apply_scaled(c, view);
  else if (c.kind == ConstraintKind::linear)
    apply_linear(c, view);
  return {};
}

ScaleWeights apply(const ConstraintList& list, FactorView& view) {
  check_view(view);
  ScaleWeights out;
  const auto& it = list.items;
  for (std::size_t i = 0; i < it.size(); ++i) {
    const bool nn_here = it[i].kind == ConstraintKind::nonnegative;
    const bool has_next = i + 1 < it.size();
    if (has_next && nn_here && it[i + 1].is_scaled()) {
      combine(out, apply_nonnegative_scaled(it[i + 1], view));
      ++i;
    } else if (has_next && it[i].is_scaled() && it[i + 1].kind == ConstraintKind::nonnegative) {
      combine(out, apply_nonnegative_scaled(it[i], view));
      ++i;
    } else {
      combine(out, apply(it[i], view));
    }
  }
  return out;
}

double violation(const Constraint& c, FactorView& v) {
  check_view(v);
  const double* x = v.data.data();
  double worst = 0;
  if (c.is_entrywise()) {
    for (double a : v.data) {
      double d = 0;
      if (c.kind == ConstraintKind::nonnegative)
        d = std::max(-a, 0.0);
      else if (c.kind == ConstraintKind::clamp)
        d = std::max({c.lo - a, a - c.hi, 0.0});
      else
        d = std::min(std::abs(a), std::abs(a - 1.0));
      worst = std::max(worst, d);
    }
  } else if (c.kind == ConstraintKind::linear) {
    check_linear(c, v);
    for (double r : linear_residual(c, v)) worst = std::max(worst, std::abs(r));
  } else {
    const unsigned mask = fixed_mask(c.slicing, v.shape.size());
    const SliceReducer& red = reducer_for(v, mask);
    const Slices S(v, mask);
    std::vector<double> val;
    double target = c.is_scaled() ? target_of(c, v) : c.target_scale;
    if (c.kind == ConstraintKind::simplex) {
      val.assign(S.count, 0.0);
      S.each([&](std::size_t lin, std::size_t s, std::size_t, std::size_t) { val[s] += x[lin]; });
      red.sum(val);
      for (double a : v.data) worst = std::max(worst, -a);
    } else {
      val = slice_norms(red, S, v, norm_of(c.kind));
    }
    for (double a : val) worst = std::max(worst, std::abs(a - target) / target);
  }
  std::span<double> w(&worst, 1);
  reducer_for(v, 0u).max(w);
  return worst;
}

double violation(const ConstraintList& list, FactorView& view) {
  double worst = 0;
  for (const auto& c : list.items) worst = std::max(worst, violation(c, view));
  return worst;
}

bool is_only_nonnegative(const ConstraintList& list) {
  if (list.empty()) return false;
  for (const auto& c : list.items)
    if (c.kind != ConstraintKind::nonnegative) return false;
  return true;
}

bool is_entrywise_only(const ConstraintList& list) {
  for (const auto& c : list.items)
    if (!c.is_entrywise()) return false;
  return true;
}

bool implies_nonnegative(const ConstraintList& list) {
  bool nn = false;
  for (const auto& c : list.items) {
    switch (c.kind) {
    case ConstraintKind::nonnegative:
    case ConstraintKind::simplex:
    case ConstraintKind::binary: nn = true; break;
    case ConstraintKind::clamp: nn = c.lo >= 0 || (nn && c.hi >= 0); break;
    case ConstraintKind::linear: nn = false; break;
    default: break; // the normalizations divide by a positive number or keep signs
    }
  }
  return nn;
}

double simplex_threshold(std::vector<double> values, double radius) { return threshold_inplace(values, radius); }

namespace {
void apply_whole(ConstraintKind k, std::span<double> x) {
  FactorView v = local_view(x, Shape{x.size()});
  Constraint c;
  c.kind = k;
  apply(c, v);
}
} // namespace

void project_simplex(std::span<double> x) { apply_whole(ConstraintKind::simplex, x); }
void project_l1_sphere(std::span<double> x) { apply_whole(ConstraintKind::l1normalize, x); }
void project_l2_sphere(std::span<double> x) { apply_whole(ConstraintKind::l2normalize, x); }
void project_linf_sphere(std::span<double> x) { apply_whole(ConstraintKind::linftynormalize, x); }
void project_one_hot(std::span<double> x) {
  if (x.empty()) return;
  const auto best = static_cast<std::size_t>(std::max_element(x.begin(), x.end()) - x.begin());
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = i == best ? 1.0 : 0.0;
}

void apply_entrywise(const ConstraintList& list, std::span<double> x) {
  FactorView v;
  v.data = x;
  for (const auto& c : list.items) {
    if (!c.is_entrywise())
      throw ConfigError("internal error: apply_entrywise given '" + c.name() + "', which is not entrywise");
    apply_entrywise(c, v);
  }
}

} // namespace unmix
