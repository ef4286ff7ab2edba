#include "unmix/kernels/nnls.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <utility>
#include <vector>

// Block principal pivoting for NNLS (Kim & Park 2011), written from the algorithm; see the header for
// the method, the grouping of columns, the treatment of singular G_FF and the tolerances.

namespace unmix {
namespace {

constexpr double kDependent = 1e-13;   // Schur complement d_k <= kDependent * G_kk: variable k is dependent
constexpr double kShift = 1e-12;       // diagonal shift of a singular G, relative to its largest diagonal entry
constexpr double kGradTol = 1e-13;     // y_r < -kGradTol * a_r: a negative gradient entry
constexpr unsigned kFullExchanges = 3; // p: full exchanges allowed without a drop of |V|
constexpr std::size_t kChunk = std::size_t{1} << 30; // columns per pass (indices are 32 bit)

/// Dot product with four partial sums (the one-accumulator loop is bound by the latency of the adds).
inline double dot(const double* a, const double* b, std::size_t n) {
  double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  std::size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    s0 += a[i] * b[i];
    s1 += a[i + 1] * b[i + 1];
    s2 += a[i + 2] * b[i + 2];
    s3 += a[i + 3] * b[i + 3];
  }
  for (; i < n; ++i) s0 += a[i] * b[i];
  return (s0 + s1) + (s2 + s3);
}

/// Cholesky factor of G_FF for one passive set F (ascending indices) with dependent pivots skipped,
/// kept for the independent passive variables F'; also G(H, F') for the gradient on the held variables
/// H. Right-hand sides are solved in batches, the loops running across the columns of a batch
/// (contiguous, vectorizable); a batch of one uses dot products instead.
class Factor {
public:
  static constexpr std::size_t kBatch = 32;

  explicit Factor(std::size_t R)
      : R_(R), L_(R * R), s_fac_(R * R), inv_diag_(R), ind_(R), fidx_(R), pos_(R), hid_(R), gh_(R * R), b_(R * kBatch),
        s_(kBatch), a_(kBatch) {}

  /// Factor for the passive set given as a bit mask (bit r of words[r / 64]). Right-looking: the
  /// Schur complement is updated a column at a time (contiguous, vectorizable loops); a pivot whose
  /// Schur complement is not above kDependent * G_kk is dependent and is skipped.
  void factor(const double* G, const std::uint64_t* words) {
    std::size_t nf = 0;
    nh_ = 0;
    for (std::size_t k = 0; k < R_; ++k) {
      if ((words[k >> 6] >> (k & 63)) & 1u)
        fidx_[nf++] = static_cast<std::uint32_t>(k);
      else
        hid_[nh_++] = static_cast<std::uint32_t>(k);
    }
    double* S = s_fac_.data(); // lower triangle of G_FF, leading dimension R, overwritten by L
    for (std::size_t b = 0; b < nf; ++b) {
      const double* gb = G + std::size_t{fidx_[b]} * R_;
      for (std::size_t a = b; a < nf; ++a) S[a + b * R_] = gb[fidx_[a]];
    }
    ni_ = 0;
    for (std::size_t j = 0; j < nf; ++j) {
      double* __restrict cj = S + j * R_;
      const double d = cj[j];
      if (!(d > kDependent * G[std::size_t{fidx_[j]} * (R_ + 1)])) continue; // dependent, or G_kk = 0
      const double l = std::sqrt(d), inv = 1.0 / l;
      cj[j] = l;
      for (std::size_t i = j + 1; i < nf; ++i) cj[i] *= inv;
      for (std::size_t k = j + 1; k < nf; ++k) {
        const double lk = cj[k];
        double* __restrict ck = S + k * R_;
        for (std::size_t i = k; i < nf; ++i) ck[i] -= cj[i] * lk;
      }
      pos_[ni_] = static_cast<std::uint32_t>(j);
      ind_[ni_] = fidx_[j];
      inv_diag_[ni_++] = inv;
    }
    // The factor of the independent variables, as rows.
    for (std::size_t a = 0; a < ni_; ++a)
      for (std::size_t b = 0; b <= a; ++b) L_[a * R_ + b] = S[pos_[a] + std::size_t{pos_[b]} * R_];
    for (std::size_t t = 0; t < nh_; ++t) {
      const double* gh = G + std::size_t{hid_[t]} * R_; // column = row (G symmetric)
      for (std::size_t j = 0; j < ni_; ++j) gh_[t * ni_ + j] = gh[ind_[j]];
    }
  }

  /// For the columns cols[0, nb) of M (R x *, nb <= kBatch): x (all R entries) into the same columns of
  /// X, and the infeasible set into V (W words per column): x_r < 0 on F, y_r < -tol on H.
  void solve(const double* M, double* X, const std::uint32_t* cols, std::size_t nb, std::uint64_t* V, std::size_t W) {
    if (nb == 1) {
      solve_one(M + std::size_t{cols[0]} * R_, X + std::size_t{cols[0]} * R_, V + std::size_t{cols[0]} * W);
      return;
    }
    constexpr std::size_t kb = kBatch;
    double* __restrict B = b_.data(); // row k (variable ind_[k]) holds the batch's values
    const double* L = L_.data();
    for (std::size_t k = 0; k < ni_; ++k)
      for (std::size_t c = 0; c < nb; ++c) B[k * kb + c] = M[ind_[k] + std::size_t{cols[c]} * R_];
    for (std::size_t k = 0; k < ni_; ++k) { // L z = m
      double* __restrict bk = B + k * kb;
      const double* row = L + k * R_;
      for (std::size_t p = 0; p < k; ++p) {
        const double l = row[p];
        const double* __restrict bp = B + p * kb;
        for (std::size_t c = 0; c < nb; ++c) bk[c] -= l * bp[c];
      }
      const double inv = inv_diag_[k];
      for (std::size_t c = 0; c < nb; ++c) bk[c] *= inv;
    }
    for (std::size_t k = ni_; k-- > 0;) { // L^T x = z
      double* __restrict bk = B + k * kb;
      const double inv = inv_diag_[k];
      for (std::size_t c = 0; c < nb; ++c) bk[c] *= inv;
      const double* row = L + k * R_;
      for (std::size_t p = 0; p < k; ++p) {
        const double l = row[p];
        double* __restrict bp = B + p * kb;
        for (std::size_t c = 0; c < nb; ++c) bp[c] -= l * bk[c];
      }
    }
    for (std::size_t c = 0; c < nb; ++c) {
      double* x = X + std::size_t{cols[c]} * R_;
      std::uint64_t* v = V + std::size_t{cols[c]} * W;
      std::fill(x, x + R_, 0.0);
      std::fill(v, v + W, std::uint64_t{0});
      for (std::size_t k = 0; k < ni_; ++k) {
        const double value = B[k * kb + c];
        const std::size_t r = ind_[k];
        x[r] = value;
        if (value < 0) v[r >> 6] |= std::uint64_t{1} << (r & 63);
      }
    }
    // Gradient on H, y = G_HF x_F - m_H, against the size of its terms.
    double* __restrict s = s_.data();
    double* __restrict a = a_.data();
    for (std::size_t t = 0; t < nh_; ++t) {
      const std::size_t r = hid_[t];
      for (std::size_t c = 0; c < nb; ++c) {
        s[c] = -M[r + std::size_t{cols[c]} * R_];
        a[c] = std::abs(s[c]);
      }
      const double* g = gh_.data() + t * ni_;
      for (std::size_t k = 0; k < ni_; ++k) {
        const double gk = g[k];
        const double* __restrict bk = B + k * kb;
        for (std::size_t c = 0; c < nb; ++c) {
          const double v = gk * bk[c];
          s[c] += v;
          a[c] += std::abs(v);
        }
      }
      for (std::size_t c = 0; c < nb; ++c)
        if (s[c] < -kGradTol * a[c]) V[std::size_t{cols[c]} * W + (r >> 6)] |= std::uint64_t{1} << (r & 63);
    }
  }

  /// The number of independent passive variables of the last factorization.
  std::size_t independent() const { return ni_; }

private:
  /// One column, with dot products along the rows of L (a batch of one does not vectorize).
  void solve_one(const double* m, double* x, std::uint64_t* v) {
    double* b = b_.data();
    const double* L = L_.data();
    for (std::size_t k = 0; k < ni_; ++k) b[k] = m[ind_[k]];
    for (std::size_t k = 0; k < ni_; ++k) {
      b[k] = (b[k] - dot(L + k * R_, b, k)) * inv_diag_[k];
    }
    for (std::size_t k = ni_; k-- > 0;) {
      const double value = b[k] * inv_diag_[k];
      b[k] = value;
      const double* row = L + k * R_;
      for (std::size_t p = 0; p < k; ++p) b[p] -= row[p] * value;
    }
    std::fill(x, x + R_, 0.0);
    std::fill(v, v + (R_ + 63) / 64, std::uint64_t{0});
    for (std::size_t k = 0; k < ni_; ++k) {
      const std::size_t r = ind_[k];
      x[r] = b[k];
      if (b[k] < 0) v[r >> 6] |= std::uint64_t{1} << (r & 63);
    }
    for (std::size_t t = 0; t < nh_; ++t) {
      const std::size_t r = hid_[t];
      const double* g = gh_.data() + t * ni_;
      double s = -m[r], a = std::abs(m[r]);
      for (std::size_t k = 0; k < ni_; ++k) {
        const double term = g[k] * b[k];
        s += term;
        a += std::abs(term);
      }
      if (s < -kGradTol * a) v[r >> 6] |= std::uint64_t{1} << (r & 63);
    }
  }

  std::size_t R_;
  std::vector<double> L_;           // rows of the lower factor, leading dimension R
  std::vector<double> s_fac_;       // factorization workspace (G_FF, then its factor), column-major
  std::vector<double> inv_diag_;    // 1 / L_kk
  std::vector<std::uint32_t> ind_;  // independent passive variables, ascending
  std::vector<std::uint32_t> fidx_; // passive variables, ascending
  std::vector<std::uint32_t> pos_;  // position of each independent variable in fidx_
  std::vector<std::uint32_t> hid_;  // held variables (outside F)
  std::vector<double> gh_;          // G(hid, ind), row-major nh x ni
  std::vector<double> b_;           // a batch of right-hand sides / solutions, ni x kBatch row-major
  std::vector<double> s_, a_;       // gradient entries of a batch and the size of their terms
  std::size_t ni_ = 0, nh_ = 0;
};

/// Sort the column indices by passive set (W words per column): LSD radix sort on the bytes in which
/// the sets differ for W = 1, a comparison sort otherwise.
void sort_by_set(std::vector<std::uint32_t>& cols, const std::vector<std::uint64_t>& mask, std::size_t W,
                 std::vector<std::pair<std::uint64_t, std::uint32_t>>& buf,
                 std::vector<std::pair<std::uint64_t, std::uint32_t>>& tmp) {
  if (cols.size() < 2) return;
  if (W > 1) {
    std::sort(cols.begin(), cols.end(), [&](std::uint32_t a, std::uint32_t b) {
      const std::uint64_t* ka = mask.data() + std::size_t{a} * W;
      const std::uint64_t* kb = mask.data() + std::size_t{b} * W;
      return std::lexicographical_compare(ka, ka + W, kb, kb + W);
    });
    return;
  }
  std::uint64_t diff = 0;
  const std::uint64_t first = mask[cols[0]];
  for (const std::uint32_t c : cols) diff |= mask[c] ^ first;
  if (diff == 0) return;
  buf.resize(cols.size());
  tmp.resize(cols.size());
  for (std::size_t i = 0; i < cols.size(); ++i) buf[i] = {mask[cols[i]], cols[i]};
  for (unsigned shift = 0; shift < 64; shift += 8) {
    if (((diff >> shift) & 0xffu) == 0) continue;
    std::size_t count[257] = {};
    for (const auto& e : buf) ++count[((e.first >> shift) & 0xffu) + 1];
    for (std::size_t d = 0; d < 256; ++d) count[d + 1] += count[d];
    for (const auto& e : buf) tmp[count[(e.first >> shift) & 0xffu]++] = e;
    buf.swap(tmp);
  }
  for (std::size_t i = 0; i < cols.size(); ++i) cols[i] = buf[i].second;
}

bool any_positive(std::size_t R, const double* m) {
  for (std::size_t r = 0; r < R; ++r)
    if (m[r] > 0) return true;
  return false;
}

NnlsStats bpp_chunk(std::size_t R, std::size_t n, const double* G, const double* M, double* X,
                    const NnlsOptions& options) {
  NnlsStats stats;
  stats.columns = n;
  if (R == 0 || n == 0) return stats;
  const std::size_t W = (R + 63) / 64;
  const std::size_t cap = options.max_iterations ? options.max_iterations : 2 * R + 20;

  std::vector<std::uint64_t> mask(n * W, 0), infeasible(n * W, 0); // F and V of every column
  std::vector<std::uint8_t> alpha(n, kFullExchanges);
  std::vector<std::uint32_t> beta(n, static_cast<std::uint32_t>(R + 1)), iters(n, 0);
  std::vector<std::uint32_t> active, next, fallback;
  std::vector<std::pair<std::uint64_t, std::uint32_t>> buf, tmp;
  Factor factor(R);

  // Solve every listed column for its passive set, one factorization per distinct set.
  auto solve_groups = [&](std::vector<std::uint32_t>& cols) {
    sort_by_set(cols, mask, W, buf, tmp);
    for (std::size_t s = 0; s < cols.size();) {
      const std::uint64_t* key = mask.data() + std::size_t{cols[s]} * W;
      std::size_t e = s + 1;
      while (e < cols.size() && std::equal(key, key + W, mask.data() + std::size_t{cols[e]} * W)) ++e;
      factor.factor(G, key);
      if (std::any_of(key, key + W, [](std::uint64_t v) { return v != 0; })) ++stats.solves;
      for (std::size_t b = s; b < e; b += Factor::kBatch)
        factor.solve(M, X, cols.data() + b, std::min(Factor::kBatch, e - b), infeasible.data(), W);
      s = e;
    }
  };

  // Start: columns with m <= 0 are done (x = 0); the others start from the positive entries of X.
  active.reserve(n);
  for (std::size_t j = 0; j < n; ++j) {
    double* x = X + j * R;
    if (!any_positive(R, M + j * R)) {
      std::fill(x, x + R, 0.0);
      continue;
    }
    std::uint64_t* key = mask.data() + j * W;
    if (options.warm_start)
      for (std::size_t r = 0; r < R; ++r)
        if (x[r] > 0) key[r >> 6] |= std::uint64_t{1} << (r & 63);
    active.push_back(static_cast<std::uint32_t>(j));
  }
  solve_groups(active);

  next.reserve(active.size());
  while (!active.empty()) {
    next.clear();
    for (const std::uint32_t j : active) {
      const std::uint64_t* v = infeasible.data() + std::size_t{j} * W;
      std::uint64_t* key = mask.data() + std::size_t{j} * W;
      std::size_t count = 0;
      for (std::size_t w = 0; w < W; ++w) count += static_cast<std::size_t>(std::popcount(v[w]));
      if (count == 0) continue; // optimal
      if (iters[j] >= cap) {
        fallback.push_back(j);
        continue;
      }
      ++iters[j];
      if (count < beta[j]) { // |V| dropped: full exchange, re-armed
        beta[j] = static_cast<std::uint32_t>(count);
        alpha[j] = kFullExchanges;
        for (std::size_t w = 0; w < W; ++w) key[w] ^= v[w];
      } else if (alpha[j] >= 1) { // no drop, full exchanges left
        --alpha[j];
        for (std::size_t w = 0; w < W; ++w) key[w] ^= v[w];
      } else { // backup rule: exchange only the largest infeasible index
        std::size_t w = W;
        while (v[--w] == 0) {
        }
        key[w] ^= std::uint64_t{1} << (63 - std::countl_zero(v[w]));
      }
      next.push_back(j);
    }
    solve_groups(next);
    active.swap(next);
  }

  for (std::size_t j = 0; j < n; ++j) stats.iterations = std::max<std::size_t>(stats.iterations, iters[j]);
  for (const std::uint32_t j : fallback) {
    stats.solves += nnls_active_set_column(R, G, M + std::size_t{j} * R, X + std::size_t{j} * R);
    ++stats.fallbacks;
  }
  return stats;
}

} // namespace

std::size_t nnls_active_set_column(std::size_t R, const double* G, const double* m, double* x) {
  std::fill(x, x + R, 0.0);
  if (R == 0 || !any_positive(R, m)) return 0;
  const std::size_t W = (R + 63) / 64;
  std::vector<std::uint64_t> key(W, 0);
  std::vector<double> z(R);
  std::vector<std::uint64_t> vz(W);
  const std::uint32_t zero_col = 0;
  std::vector<char> banned(R, 0);
  Factor factor(R);
  std::size_t solves = 0;
  auto passive = [&](std::size_t r) { return ((key[r >> 6] >> (r & 63)) & 1u) != 0; };
  auto flip = [&](std::size_t r) { key[r >> 6] ^= std::uint64_t{1} << (r & 63); };

  for (std::size_t outer = 0; outer < 3 * R + 30; ++outer) {
    // Entering variable: the most negative gradient among the held, non-banned ones.
    std::size_t t = R;
    double best = 0;
    for (std::size_t r = 0; r < R; ++r) {
      if (passive(r) || banned[r]) continue;
      double s = -m[r], a = std::abs(m[r]);
      for (std::size_t k = 0; k < R; ++k) {
        const double v = G[r + k * R] * x[k];
        s += v;
        a += std::abs(v);
      }
      if (s < -kGradTol * a && s < best) {
        best = s;
        t = r;
      }
    }
    if (t == R) break;
    flip(t);
    bool entered = false;
    for (std::size_t inner = 0; inner <= R; ++inner) {
      factor.factor(G, key.data());
      factor.solve(m, z.data(), &zero_col, 1, vz.data(), W);
      ++solves;
      if (inner == 0 && !(z[t] > 0)) {
        // Rounding (or a dependent column) keeps t at 0: do not let it in again until x moves.
        flip(t);
        banned[t] = 1;
        break;
      }
      bool feasible = true;
      double step = 1;
      std::size_t blocking = R;
      for (std::size_t r = 0; r < R; ++r) {
        if (!passive(r) || z[r] > 0) continue;
        feasible = false;
        const double ratio = x[r] > 0 ? x[r] / (x[r] - z[r]) : 0.0;
        if (ratio < step || blocking == R) {
          step = ratio;
          blocking = r;
        }
      }
      if (feasible) {
        std::copy(z.begin(), z.end(), x);
        entered = true;
        break;
      }
      for (std::size_t r = 0; r < R; ++r)
        if (passive(r)) x[r] += step * (z[r] - x[r]);
      x[blocking] = 0;
      for (std::size_t r = 0; r < R; ++r)
        if (passive(r) && !(x[r] > 0)) {
          x[r] = 0;
          flip(r);
        }
      entered = true;
    }
    if (entered) std::fill(banned.begin(), banned.end(), 0);
  }
  for (std::size_t r = 0; r < R; ++r)
    if (!(x[r] > 0)) x[r] = 0;
  return solves;
}

NnlsStats nnls_bpp_columns(std::size_t R, std::size_t n, const double* G, const double* M, double* X,
                           const NnlsOptions& options) {
  NnlsStats total;
  total.columns = n;
  if (R == 0 || n == 0) return total;
  // A numerically singular G (a dependent pivot in its Cholesky factorization) makes the problem
  // a non-P-matrix LCP on which the pivoting can cycle; a shift of kShift * max_r G_rr restores
  // strict convexity (and is far above the dependence threshold, so no G_FF is singular after it).
  std::vector<double> shifted;
  const double* Gs = G;
  {
    // Variables with G_rr = 0 (zero columns of C) are left out: they are uncoupled (G PSD), end at 0
    // as dependent variables, and cannot make the pivoting cycle.
    Factor whole(R);
    std::vector<std::uint64_t> nonzero((R + 63) / 64, 0);
    std::size_t count = 0;
    double max_diag = 0;
    for (std::size_t r = 0; r < R; ++r) {
      const double g = G[r * (R + 1)];
      max_diag = std::max(max_diag, g);
      if (g > 0) {
        nonzero[r >> 6] |= std::uint64_t{1} << (r & 63);
        ++count;
      }
    }
    whole.factor(G, nonzero.data());
    if (whole.independent() < count) {
      shifted.assign(G, G + R * R);
      for (std::size_t r = 0; r < R; ++r) shifted[r * (R + 1)] += kShift * max_diag;
      Gs = shifted.data();
    }
  }
  for (std::size_t j0 = 0; j0 < n; j0 += kChunk) {
    const std::size_t nc = std::min(kChunk, n - j0);
    const NnlsStats s = bpp_chunk(R, nc, Gs, M + j0 * R, X + j0 * R, options);
    total.iterations = std::max(total.iterations, s.iterations);
    total.solves += s.solves;
    total.fallbacks += s.fallbacks;
  }
  return total;
}

NnlsStats nnls_bpp_rows(std::size_t R, std::size_t n, const double* P, const double* Q, double* A,
                        const NnlsOptions& options) {
  // Rows of A as columns of A^T (P is symmetric, so the row problem has the column form).
  std::vector<double> At(R * n), Qt(R * n);
  for (std::size_t r = 0; r < R; ++r)
    for (std::size_t i = 0; i < n; ++i) {
      At[r + i * R] = A[i + r * n];
      Qt[r + i * R] = Q[i + r * n];
    }
  const NnlsStats stats = nnls_bpp_columns(R, n, P, Qt.data(), At.data(), options);
  for (std::size_t r = 0; r < R; ++r)
    for (std::size_t i = 0; i < n; ++i) A[i + r * n] = At[r + i * R];
  return stats;
}

} // namespace unmix
