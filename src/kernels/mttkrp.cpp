#include "unmix/kernels/mttkrp.hpp"

#include <algorithm>
#include <array>

#include "unmix/kernels/blas.hpp"
#include "unmix/kernels/tile_products.hpp"

namespace unmix {

namespace {
/// v.resize(n) for a buffer whose values are all overwritten: a larger one is allocated at exactly n values
/// after the old one is released (resize keeps the values and may grow to twice the old size: 1.6 x the
/// Khatri-Rao product's conversion was measured when mode 0's followed the last mode's).
template <class V> void fit(std::vector<V>& v, std::size_t n) {
  if (n > v.capacity()) {
    std::vector<V>().swap(v);
    v.reserve(n);
  }
  v.resize(n);
}
} // namespace

void khatri_rao(const Shape& shape, std::size_t lo, std::size_t hi, std::size_t R,
                const std::vector<const double*>& factors, std::vector<double>& out, std::vector<double>& scratch) {
  // Built up one mode at a time, alternating between the two buffers so that the last step lands in out.
  std::size_t rows = 1, steps = hi > lo ? hi - lo : 0;
  std::vector<double>* cur = steps % 2 == 0 ? &out : &scratch;
  std::vector<double>* nxt = steps % 2 == 0 ? &scratch : &out;
  cur->assign(R, 1.0);
  for (std::size_t m = lo; m < hi; ++m) {
    const std::size_t Im = shape[m];
    fit(*nxt, rows * Im * R);
    for (std::size_t r = 0; r < R; ++r) {
      const double* f = factors[m] + r * Im;
      const double* k = cur->data() + r * rows;
      double* o = nxt->data() + r * rows * Im;
      for (std::size_t i = 0; i < Im; ++i) {
        const double s = f[i];
        for (std::size_t p = 0; p < rows; ++p) o[p + i * rows] = k[p] * s;
      }
    }
    std::swap(cur, nxt);
    rows *= Im;
  }
}

std::vector<double> khatri_rao(const Shape& shape, std::size_t lo, std::size_t hi, std::size_t R,
                               const std::vector<const double*>& factors) {
  std::vector<double> out, scratch;
  khatri_rao(shape, lo, hi, R, factors, out, scratch);
  return out;
}

void khatri_rao_rows(const Shape& shape, std::size_t lo, std::size_t hi, std::size_t R,
                     const std::vector<const double*>& factors, std::size_t p0, std::size_t np, double* out) {
  if (np == 0) return;
  if (hi <= lo) {
    std::fill(out, out + np * R, 1.0);
    return;
  }
  // Row p's index in mode m is a digit of p (mode lo fastest). Along a run of mode lo's index the other modes'
  // product is the same: formed once per run (`rest`), then scaled by mode lo's rows.
  std::vector<std::size_t> idx(hi - lo);
  std::size_t p = p0;
  for (std::size_t m = lo; m < hi; ++m) {
    idx[m - lo] = p % shape[m];
    p /= shape[m];
  }
  std::vector<double> rest(R);
  const std::size_t I = shape[lo];
  for (std::size_t q = 0; q < np;) {
    for (std::size_t r = 0; r < R; ++r) {
      double v = 1;
      for (std::size_t m = lo + 1; m < hi; ++m) v *= factors[m][idx[m - lo] + r * shape[m]];
      rest[r] = v;
    }
    const std::size_t run = std::min(I - idx[0], np - q);
    for (std::size_t r = 0; r < R; ++r) {
      const double* f = factors[lo] + idx[0] + r * I;
      double* o = out + q + r * np;
      for (std::size_t i = 0; i < run; ++i) o[i] = f[i] * rest[r];
    }
    q += run;
    // The next run: mode lo's index back to 0, the next modes' indices carried.
    idx[0] += run;
    for (std::size_t m = lo; m < hi && idx[m - lo] == shape[m]; ++m) {
      idx[m - lo] = 0;
      if (m + 1 < hi) ++idx[m + 1 - lo];
    }
  }
}

namespace {

// The skinny products run in the tile kernels (kernels/tile_products.hpp), whose small operand (rows x R)
// and partial result must stay in the level-2 cache: at most rows_max rows per call. They read a tile of
// Y once per block of ranks, so a tile (rows x cols, 16 Ki values) stays in the cache too. Measured on a
// 2-core Zen 4 at R = 10 (2000 x 100 x 40 and 200 x 200 x 200): row pieces of 64 KiB of Khatri-Rao rows
// for Y^T KL and 256 KiB of partial products for Y KR were the fastest of 32-256 KiB.
std::size_t rows_max(std::size_t R, std::size_t kib) {
  return std::max<std::size_t>(64, (kib << 10) / (R * sizeof(double)));
}
std::size_t tile_cols(std::size_t rows) { return std::max<std::size_t>(4, (std::size_t{16} << 10) / rows); }

/// Q = Y[p0 : p0 + rows, :] K for pieces of at most piece_rows rows of the (rows_total x cols) matrix Y
/// (leading dimension rows_total) and K (cols x R, double), handed to sink(p0, rows, Q) (Q in T, rows x R).
/// K comes by rows: krows(t0, nt, out) writes its rows t0 .. t0 + nt - 1 (nt x R, column-major). When Y's rows
/// fit in one piece, each row of K is used once, so K is formed and converted a chunk of kChunk rows at a time:
/// whole, K and its conversion were cols x R values twice (for mode 0 of a CP block, 2 R / I_0 of Y). Several
/// pieces reuse K, which is then formed whole.
/// Pieces of fewer than 256 rows leave the tile kernel's vectors mostly idle: BLAS does better there
/// (measured 0.19 against 1.3 ms for mode 0 of 20 x 1025 x 7).
constexpr std::size_t kChunk = 4096;
template <class T, class KRows, class Sink>
void times_by_pieces(const T* Y, std::size_t rows_total, std::size_t cols, std::size_t R, const KRows& krows,
                     std::size_t piece_rows, MttkrpWorkspace<T>& ws, const Sink& sink) {
  const std::size_t first = std::min(piece_rows, rows_total);
  const bool use_blas = first < 256;
  const std::size_t chunk = rows_total <= piece_rows ? std::min(cols, kChunk) : cols;
  std::vector<double>& K = ws.right; // a chunk of K's rows (or all of them)
  std::vector<T>& Kt = ws.operand;   // the same in T: as it is for BLAS, transposed (R x rows) for tile_ybt
  fit(K, chunk * R);
  fit(Kt, chunk * R);
  std::vector<T>& Q = ws.partial;
  fit(Q, first * R);
  auto form = [&](std::size_t t0, std::size_t nt) {
    krows(t0, nt, K.data());
    for (std::size_t r = 0; r < R; ++r)
      for (std::size_t t = 0; t < nt; ++t) Kt[use_blas ? t + r * nt : r + t * R] = static_cast<T>(K[t + r * nt]);
  };
  if (chunk == cols) form(0, cols);
  for (std::size_t p0 = 0; p0 < rows_total; p0 += piece_rows) {
    const std::size_t rows = std::min(piece_rows, rows_total - p0);
    if (!use_blas) std::fill(Q.begin(), Q.begin() + static_cast<std::ptrdiff_t>(rows * R), T(0));
    for (std::size_t c0 = 0; c0 < cols; c0 += chunk) {
      const std::size_t nc = std::min(chunk, cols - c0);
      if (chunk < cols) form(c0, nc);
      const T* y = Y + p0 + c0 * rows_total;
      if (use_blas) {
        blas::gemm<T>(blas::Trans::N, blas::Trans::N, rows, R, nc, T(1), y, rows_total, Kt.data(), nc,
                      c0 == 0 ? T(0) : T(1), Q.data(), rows);
      } else {
        const std::size_t nt = tile_cols(rows);
        for (std::size_t t0 = 0; t0 < nc; t0 += nt)
          tile_ybt<T>(rows, std::min(nt, nc - t0), R, y + t0 * rows_total, rows_total, Kt.data() + t0 * R, Q.data());
      }
    }
    sink(p0, rows, Q.data());
  }
}

/// The sizes (values) khatri_rao's two buffers reach for modes lo .. hi-1 of `s`: {out, scratch}.
std::array<double, 2> khatri_rao_buffers(const Shape& s, std::size_t lo, std::size_t hi, std::size_t R) {
  const std::size_t steps = hi > lo ? hi - lo : 0;
  std::array<double, 2> size{0, 0};
  std::size_t cur = steps % 2 == 0 ? 0 : 1;
  size[cur] = static_cast<double>(R);
  double rows = 1;
  for (std::size_t m = lo; m < hi; ++m) {
    rows *= static_cast<double>(s[m]);
    size[1 - cur] = std::max(size[1 - cur], rows * static_cast<double>(R));
    cur = 1 - cur;
  }
  return size;
}

/// The buffers times_by_pieces fits for these arguments.
MttkrpBufferValues times_by_pieces_values(std::size_t rows_total, std::size_t cols, std::size_t R,
                                          std::size_t piece_rows) {
  const double chunk = static_cast<double>(rows_total <= piece_rows ? std::min(cols, kChunk) : cols);
  MttkrpBufferValues v;
  v.right = v.operand = chunk * static_cast<double>(R);
  v.partial = static_cast<double>(std::min(piece_rows, rows_total) * R);
  return v;
}

} // namespace

template <class T>
void mttkrp(const T* Y, const Shape& shape, std::size_t n, std::size_t R, const std::vector<const double*>& factors,
            double* M, MttkrpWorkspace<T>& ws) {
  const std::size_t N = shape.size(), J = shape[n];
  std::fill(M, M + J * R, 0.0);
  if (J == 0 || R == 0 || shape_size(shape) == 0) return;
  std::size_t L = 1, Rt = 1; // extents below and above mode n
  for (std::size_t m = 0; m < n; ++m) L *= shape[m];
  for (std::size_t m = n + 1; m < N; ++m) Rt *= shape[m];
  if (L >= Rt) {
    // Y is L x J x Rt: for each slice t, W = Y_t^T KL (J x R) in pieces of rows of KL, then
    // M[:, r] += W[:, r] * KR[t, r].
    // Short columns (L < 256) leave the tile kernel's vectors mostly idle: one BLAS product per slice instead
    // (0.12 against 0.33 ms for mode 1 of 20 x 1025 x 7), on KL in one piece.
    const bool use_blas = L < 256;
    const std::size_t rb = use_blas ? L : rows_max(R, 64), nb = (L + rb - 1) / rb;
    // With one slice (the last mode) each piece of KL is used once: formed as it is used (whole, KL and its
    // conversion are L x R values twice, 2 R / I_n of Y).
    const bool by_piece = Rt == 1 && !use_blas;
    khatri_rao(shape, n + 1, N, R, factors, ws.right, ws.scratch);
    const std::vector<double>& KR = ws.right;
    // KL's row pieces, each contiguous (rows x R), piece b at l0 R (by_piece: the one piece in use).
    std::vector<T>& KLb = ws.operand;
    std::vector<double>& KL = ws.left;
    if (by_piece) {
      fit(KL, rb * R);
      fit(KLb, rb * R);
    } else {
      khatri_rao(shape, 0, n, R, factors, KL, ws.scratch);
      fit(KLb, L * R);
      for (std::size_t b = 0; b < nb; ++b) {
        const std::size_t l0 = b * rb, rows = std::min(rb, L - l0);
        for (std::size_t r = 0; r < R; ++r)
          for (std::size_t l = 0; l < rows; ++l) KLb[l0 * R + l + r * rows] = static_cast<T>(KL[l0 + l + r * L]);
      }
    }
    auto piece = [&](std::size_t l0, std::size_t rows) -> const T* {
      if (!by_piece) return KLb.data() + l0 * R;
      khatri_rao_rows(shape, 0, n, R, factors, l0, rows, KL.data());
      for (std::size_t k = 0; k < rows * R; ++k) KLb[k] = static_cast<T>(KL[k]);
      return KLb.data();
    };
    std::vector<T>& W = ws.partial;
    if (use_blas) {
      fit(W, J * R);
      for (std::size_t t = 0; t < Rt; ++t) {
        blas::gemm<T>(blas::Trans::T, blas::Trans::N, J, R, L, T(1), Y + t * L * J, L, KLb.data(), L, T(0), W.data(),
                      J);
        for (std::size_t r = 0; r < R; ++r) {
          const double s = KR[t + r * Rt];
          for (std::size_t j = 0; j < J; ++j) M[j + r * J] += s * static_cast<double>(W[j + r * J]);
        }
      }
      return;
    }
    fit(W, std::min(J, tile_cols(1)) * R);
    for (std::size_t t = 0; t < Rt; ++t)
      for (std::size_t b = 0; b < nb; ++b) {
        const std::size_t l0 = b * rb, rows = std::min(rb, L - l0), nt = std::min(J, tile_cols(rows));
        const T* kl = piece(l0, rows);
        for (std::size_t j0 = 0; j0 < J; j0 += nt) {
          const std::size_t nj = std::min(nt, J - j0);
          tile_yta<T>(rows, nj, R, Y + t * L * J + j0 * L + l0, L, kl, W.data());
          for (std::size_t r = 0; r < R; ++r) {
            const double s = KR[t + r * Rt];
            for (std::size_t j = 0; j < nj; ++j) M[j0 + j + r * J] += s * static_cast<double>(W[j + r * nj]);
          }
        }
      }
    return;
  }
  // Y as an (L J) x Rt matrix times KR (Rt x R, formed by rows as the products take it), in pieces of mode-n
  // indices j0 .. j0 + nj - 1 (rows L j0 .. L (j0 + nj) - 1), each piece's product Q (L nj x R) then
  // contracted with KL over the L rows of each j.
  khatri_rao(shape, 0, n, R, factors, ws.left, ws.scratch);
  const std::vector<double>& KL = ws.left;
  const std::size_t jc = std::max<std::size_t>(1, std::min(J, rows_max(R, 256) / L));
  const auto krows = [&](std::size_t t0, std::size_t nt, double* out) {
    khatri_rao_rows(shape, n + 1, N, R, factors, t0, nt, out);
  };
  times_by_pieces<T>(Y, L * J, Rt, R, krows, L * jc, ws, [&](std::size_t p0, std::size_t rows, const T* Q) {
    const std::size_t j0 = p0 / L, nj = rows / L;
    for (std::size_t r = 0; r < R; ++r) {
      const T* q = Q + r * rows;
      const double* kl = KL.data() + r * L;
      for (std::size_t j = 0; j < nj; ++j) {
        double s = 0;
        for (std::size_t l = 0; l < L; ++l) s += static_cast<double>(q[l + j * L]) * kl[l];
        M[j0 + j + r * J] = s;
      }
    }
  });
}

template <class T>
void contract_last(const T* Y, const Shape& shape, std::size_t R, const double* F_last, double* Tout,
                   MttkrpWorkspace<T>& ws) {
  const std::size_t N = shape.size(), J = shape[N - 1];
  std::size_t L = 1;
  for (std::size_t m = 0; m + 1 < N; ++m) L *= shape[m];
  std::fill(Tout, Tout + L * R, 0.0);
  if (J == 0 || L == 0 || R == 0) return;
  const auto krows = [&](std::size_t t0, std::size_t nt, double* out) {
    for (std::size_t r = 0; r < R; ++r) std::copy(F_last + t0 + r * J, F_last + t0 + nt + r * J, out + r * nt);
  };
  times_by_pieces<T>(Y, L, J, R, krows, rows_max(R, 256), ws, [&](std::size_t p0, std::size_t rows, const T* Q) {
    for (std::size_t r = 0; r < R; ++r)
      for (std::size_t i = 0; i < rows; ++i) Tout[p0 + i + r * L] = static_cast<double>(Q[i + r * rows]);
  });
}

void mttkrp_contracted(const double* Tin, const Shape& shape, std::size_t n, std::size_t R,
                       const std::vector<const double*>& factors, double* M, std::vector<double>& left,
                       std::vector<double>& right, std::vector<double>& scratch) {
  const std::size_t N = shape.size() - 1, J = shape[n]; // the contracted block has modes 0 .. N-1
  std::fill(M, M + J * R, 0.0);
  std::size_t L = 1, Rt = 1;
  for (std::size_t m = 0; m < n; ++m) L *= shape[m];
  for (std::size_t m = n + 1; m < N; ++m) Rt *= shape[m];
  const std::size_t rows = L * J * Rt;
  if (rows == 0 || R == 0) return;
  khatri_rao(shape, 0, n, R, factors, left, scratch);
  khatri_rao(shape, n + 1, N, R, factors, right, scratch);
  // Per rank r, two matrix-vector products that read the column of T once: u = T_r^T KL[:, r] over the L
  // rows below mode n (none for mode 0), then M[:, r] = U KR[:, r] with U = u as J x Rt.
  std::vector<double>& u = scratch;
  fit(u, J * Rt);
  for (std::size_t r = 0; r < R; ++r) {
    const double* t = Tin + r * rows;
    const double* ur = t;
    if (n > 0) { // a block with one row below mode n still carries that row's factor values
      blas::gemv(blas::Trans::T, L, J * Rt, 1.0, t, L, left.data() + r * L, 0.0, u.data());
      ur = u.data();
    }
    blas::gemv(blas::Trans::N, J, Rt, 1.0, ur, J, right.data() + r * Rt, 0.0, M + r * J);
  }
}

namespace {
// The number of values of X x_n M for an M of `rows` rows.
std::size_t mode_product_size(const Shape& shape, std::size_t n, std::size_t rows) {
  std::size_t size = rows;
  for (std::size_t m = 0; m < shape.size(); ++m)
    if (m != n) size *= shape[m];
  return size;
}
} // namespace

template <class T>
std::vector<double> mode_product(const T* X, const Shape& shape, std::size_t n, const double* M, std::size_t rows) {
  std::vector<double> out(mode_product_size(shape, n, rows));
  mode_product_into<T>(X, shape, n, M, rows, out.data());
  return out;
}

template <class T>
void mode_product_into(const T* X, const Shape& shape, std::size_t n, const double* M, std::size_t rows, double* out) {
  const std::size_t J = shape[n];
  std::size_t L = 1, Rt = 1;
  for (std::size_t m = 0; m < n; ++m) L *= shape[m];
  for (std::size_t m = n + 1; m < shape.size(); ++m) Rt *= shape[m];
  if (L * rows * Rt == 0) return;
  if (J == 0) {
    std::fill(out, out + L * rows * Rt, 0.0);
    return;
  }
  // The tile kernels (written for R in the tens) where the contiguous direction is long enough for their
  // vectors; BLAS otherwise. Measured on a 2-core Zen 4 for 200 x 200 x 200 by a 10-row M: mode 0 11.5 ms
  // (tile_yta on 160-column tiles) against 20 (one BLAS product M X_(0)) and 13.8 (BLAS X_(0)^T M^T); the
  // last mode 8.0 ms (tile_ybt on pieces of rows_max rows) against 14; a middle mode 10.9 against 14.4.
  const bool tiles = rows <= 32 && (L == 1 ? J >= 64 : L >= 256);
  if (tiles && L == 1) {
    // out^T (Rt x rows) = X_(0)^T M^T, a tile of columns of X at a time (J x nt, about 32 Ki values).
    std::vector<T> Mt(J * rows); // M^T, J x rows
    for (std::size_t r = 0; r < rows; ++r)
      for (std::size_t j = 0; j < J; ++j) Mt[j + r * J] = static_cast<T>(M[r + j * rows]);
    const std::size_t nt = std::max<std::size_t>(4, (std::size_t{32} << 10) / J);
    std::vector<T> part(nt * rows);
    for (std::size_t t0 = 0; t0 < Rt; t0 += nt) {
      const std::size_t nc = std::min(nt, Rt - t0);
      tile_yta<T>(J, nc, rows, X + t0 * J, J, Mt.data(), part.data());
      for (std::size_t r = 0; r < rows; ++r)
        for (std::size_t t = 0; t < nc; ++t) out[r + (t0 + t) * rows] = static_cast<double>(part[t + r * nc]);
    }
    return;
  }
  const std::vector<T> Mc(M, M + rows * J); // M in T (rows x J)
  if (tiles) {
    // Slice t of X is L x J: out_t (L x rows) = X_t M^T on pieces of rows_max rows, each a tile of columns at
    // a time (tile_ybt accumulates), as contract_last's products.
    const std::size_t piece = std::min(L, rows_max(rows, 256)), nt = std::min(J, tile_cols(piece));
    std::vector<T> Q(piece * rows);
    for (std::size_t t = 0; t < Rt; ++t)
      for (std::size_t p0 = 0; p0 < L; p0 += piece) {
        const std::size_t pr = std::min(piece, L - p0);
        std::fill(Q.begin(), Q.begin() + static_cast<std::ptrdiff_t>(pr * rows), T(0));
        for (std::size_t j0 = 0; j0 < J; j0 += nt)
          tile_ybt<T>(pr, std::min(nt, J - j0), rows, X + t * L * J + j0 * L + p0, L, Mc.data() + j0 * rows, Q.data());
        for (std::size_t r = 0; r < rows; ++r)
          for (std::size_t i = 0; i < pr; ++i) out[t * L * rows + r * L + p0 + i] = static_cast<double>(Q[i + r * pr]);
      }
    return;
  }
  if (L == 1) {
    // Mode 0 (or modes below it of extent 1): the result is M X_(0), one product on slabs of columns.
    const std::size_t slab = std::max<std::size_t>(1, (std::size_t{1} << 18) / std::max<std::size_t>(rows, 1));
    std::vector<T> part(rows * std::min(slab, Rt));
    for (std::size_t t0 = 0; t0 < Rt; t0 += slab) {
      const std::size_t nc = std::min(slab, Rt - t0);
      blas::gemm<T>(blas::Trans::N, blas::Trans::N, rows, nc, J, T(1), Mc.data(), rows, X + t0 * J, J, T(0),
                    part.data(), rows);
      for (std::size_t k = 0; k < rows * nc; ++k) out[t0 * rows + k] = static_cast<double>(part[k]);
    }
    return;
  }
  // Each slice t of X is L x J; its product with M^T (J x rows) is the slice L x rows of the result.
  std::vector<T> part(L * rows);
  for (std::size_t t = 0; t < Rt; ++t) {
    blas::gemm<T>(blas::Trans::N, blas::Trans::T, L, rows, J, T(1), X + t * L * J, L, Mc.data(), rows, T(0),
                  part.data(), L);
    for (std::size_t k = 0; k < L * rows; ++k) out[t * L * rows + k] = static_cast<double>(part[k]);
  }
}

std::vector<std::size_t> mode_product_order(const Shape& shape, const std::vector<std::size_t>& rows, std::size_t skip,
                                            std::size_t also_skip) {
  std::vector<std::size_t> order;
  for (std::size_t m = 0; m < shape.size(); ++m)
    if (m != skip && m != also_skip) order.push_back(m);
  auto shrink = [&](std::size_t m) {
    return static_cast<double>(shape[m]) / static_cast<double>(std::max<std::size_t>(rows[m], 1));
  };
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return shrink(a) > shrink(b); });
  return order;
}

Shape multi_mode_product_shape(Shape shape, const std::vector<std::size_t>& rows, std::size_t skip,
                               std::size_t also_skip) {
  for (std::size_t m : mode_product_order(shape, rows, skip, also_skip)) shape[m] = rows[m];
  return shape;
}

template <class T>
std::vector<double> multi_mode_product(const T* X, Shape& shape, const std::vector<const double*>& Ms,
                                       const std::vector<std::size_t>& rows, std::size_t skip, std::size_t also_skip) {
  std::vector<double> out(shape_size(multi_mode_product_shape(shape, rows, skip, also_skip)));
  multi_mode_product_into<T>(X, shape, Ms, rows, skip, also_skip, out.data());
  return out;
}

namespace {

// The chain of mode products in `order` from X (of `shape`, which becomes the result's) into out.
template <class T>
void chain_into(const T* X, Shape& shape, const std::vector<const double*>& Ms, const std::vector<std::size_t>& rows,
                const std::vector<std::size_t>& order, double* out) {
  if (order.empty()) {
    std::copy(X, X + shape_size(shape), out);
    return;
  }
  std::vector<double> cur, next; // the last intermediate and the one being formed
  for (std::size_t k = 0; k < order.size(); ++k) {
    const std::size_t m = order[k];
    double* dst = out;
    if (k + 1 < order.size()) {
      next.resize(mode_product_size(shape, m, rows[m]));
      dst = next.data();
    }
    if (k == 0)
      mode_product_into<T>(X, shape, m, Ms[m], rows[m], dst);
    else
      mode_product_into<double>(cur.data(), shape, m, Ms[m], rows[m], dst);
    shape[m] = rows[m];
    cur.swap(next);
    std::vector<double>().swap(next); // the input just used goes back before the next one is formed
  }
}

// The most values a chain in `order` on a tensor of `shape` holds at once, its input not counted: an
// intermediate and the next (the last step's next is the result).
double chain_peak_values(Shape shape, const std::vector<std::size_t>& rows, const std::vector<std::size_t>& order) {
  double cur = 0, peak = order.empty() ? static_cast<double>(shape_size(shape)) : 0.0;
  for (std::size_t m : order) {
    shape[m] = rows[m];
    const double next = static_cast<double>(shape_size(shape));
    peak = std::max(peak, cur + next);
    cur = next;
  }
  return peak;
}

// With two or more products, the first intermediate can be nearly as large as X (a short mode taken first
// while the long one is skipped: 8 x 300000 x 10 to 8 x 300000 x 6 for Tucker ranks 6); by slabs of the
// skipped mode it is a slab's. A slab holds about 2^13 values of X (64 KiB in double): its buffers stay below
// the allocator's first mmap threshold (128 KiB), so that forming them again per call neither maps memory nor
// moves glibc's threshold (with 8 MiB slabs a Tucker solve's peak changed between runs by a P_n, 384 or 471
// MB, as heap chunks were kept or not), and they stay in the level-2 cache between the products. A slab spans
// at least 512 contiguous values of X (runs of L x nt): at 2000 x 100 x 40, slabs of 2 rows of mode 0 took a
// Tucker solve from 2.4 to 5.7 s.
std::size_t chain_slab_values = std::size_t{1} << 13;

// The indices of mode `skip` that multi_mode_product_into takes at a time; 0 (the whole chain at once) unless
// the whole chain's intermediates would hold at least 128 x 2^13 = 2^20 values and four slabs.
std::size_t chain_slab(const Shape& shape, const std::vector<std::size_t>& rows, const std::vector<std::size_t>& order,
                       std::size_t skip) {
  if (order.size() < 2 || skip >= shape.size() || shape[skip] < 2) return 0;
  const std::size_t per = shape_size(shape) / shape[skip];
  if (per == 0) return 0;
  std::size_t L = 1;
  for (std::size_t m = 0; m < skip; ++m) L *= shape[m];
  const std::size_t nt = std::max({std::size_t{1}, chain_slab_values / per, (511 + L) / L});
  if (nt >= shape[skip]) return 0;
  Shape result = shape;
  for (std::size_t m : order) result[m] = rows[m];
  const double intermediates = chain_peak_values(shape, rows, order) - static_cast<double>(shape_size(result));
  const double slab = static_cast<double>(nt) * static_cast<double>(per);
  if (intermediates < 4.0 * slab || intermediates < 128.0 * static_cast<double>(chain_slab_values)) return 0;
  return nt;
}

} // namespace

bool multi_mode_product_slab(std::size_t values) {
  if (values > (std::size_t{1} << 40)) return false;
  chain_slab_values = values ? values : std::size_t{1} << 13;
  return true;
}

template <class T>
void multi_mode_product_into(const T* X, Shape& shape, const std::vector<const double*>& Ms,
                             const std::vector<std::size_t>& rows, std::size_t skip, std::size_t also_skip,
                             double* out) {
  const std::vector<std::size_t> order = mode_product_order(shape, rows, skip, also_skip);
  const std::size_t nt = chain_slab(shape, rows, order, skip);
  if (nt == 0) {
    chain_into<T>(X, shape, Ms, rows, order, out);
    return;
  }
  // Slabs of the skipped mode: X is L x J x Rt around it, the result Lo x J x Rto. A slab is gathered into a
  // contiguous block unless it is one already (Rt = 1), and its result scattered unless Rto = 1.
  const Shape result = multi_mode_product_shape(shape, rows, skip, also_skip);
  const std::size_t J = shape[skip];
  std::size_t L = 1, Rt = 1, Lo = 1, Rto = 1;
  for (std::size_t m = 0; m < skip; ++m) {
    L *= shape[m];
    Lo *= result[m];
  }
  for (std::size_t m = skip + 1; m < shape.size(); ++m) {
    Rt *= shape[m];
    Rto *= result[m];
  }
  std::vector<T> xs(Rt > 1 ? L * nt * Rt : 0);
  std::vector<double> ys(Rto > 1 ? Lo * nt * Rto : 0);
  for (std::size_t j0 = 0; j0 < J; j0 += nt) {
    const std::size_t n = std::min(nt, J - j0);
    const T* x = X + j0 * L;
    if (Rt > 1) {
      for (std::size_t t = 0; t < Rt; ++t)
        std::copy(X + t * L * J + j0 * L, X + t * L * J + (j0 + n) * L, xs.data() + t * L * n);
      x = xs.data();
    }
    double* y = Rto > 1 ? ys.data() : out + j0 * Lo;
    Shape slab = shape;
    slab[skip] = n;
    chain_into<T>(x, slab, Ms, rows, order, y);
    if (Rto > 1)
      for (std::size_t t = 0; t < Rto; ++t)
        std::copy(ys.data() + t * Lo * n, ys.data() + (t + 1) * Lo * n, out + t * Lo * J + j0 * Lo);
  }
  shape = result;
}

double multi_mode_product_values(const Shape& shape, const std::vector<std::size_t>& rows, std::size_t skip,
                                 std::size_t also_skip) {
  const std::vector<std::size_t> order = mode_product_order(shape, rows, skip, also_skip);
  const std::size_t nt = chain_slab(shape, rows, order, skip);
  if (nt == 0) return chain_peak_values(shape, rows, order);
  Shape slab = shape;
  slab[skip] = nt;
  // The result, a gathered slab and the slab's chain (its own result counted: the scattered block).
  return static_cast<double>(shape_size(multi_mode_product_shape(shape, rows, skip, also_skip))) +
         static_cast<double>(shape_size(slab)) + chain_peak_values(slab, rows, order);
}

void contract_except(const double* X, const double* Z, const Shape& shape, std::size_t n, std::size_t zn, double* out) {
  const std::size_t J = shape[n];
  std::size_t L = 1, Rt = 1;
  for (std::size_t m = 0; m < n; ++m) L *= shape[m];
  for (std::size_t m = n + 1; m < shape.size(); ++m) Rt *= shape[m];
  std::fill(out, out + J * zn, 0.0);
  if (J == 0 || zn == 0 || L * Rt == 0) return;
  if (L == 1) {
    // X_(n) is J x Rt as stored, Z_(n) zn x Rt.
    blas::gemm<double>(blas::Trans::N, blas::Trans::T, J, zn, Rt, 1.0, X, J, Z, zn, 0.0, out, J);
    return;
  }
  // Slice t of X is L x J, of Z L x zn: out += X_t^T Z_t.
  for (std::size_t t = 0; t < Rt; ++t)
    blas::gemm<double>(blas::Trans::T, blas::Trans::N, J, zn, L, 1.0, X + t * L * J, L, Z + t * L * zn, L, 1.0, out, J);
}

std::vector<double> transposed(const double* F, std::size_t n, std::size_t R) {
  std::vector<double> Ft(n * R);
  for (std::size_t r = 0; r < R; ++r)
    for (std::size_t i = 0; i < n; ++i) Ft[r + i * R] = F[i + r * n];
  return Ft;
}

double core_consistency(const std::vector<double>& G, std::size_t R, std::size_t N) {
  double d2 = 0;
  std::size_t diag_stride = 0, stride = 1;
  for (std::size_t n = 0; n < N; ++n) {
    diag_stride += stride; // the linear index of (r, r, ..., r) is r * (1 + R + R^2 + ...)
    stride *= R;
  }
  for (std::size_t k = 0; k < G.size(); ++k) {
    const double want = diag_stride > 0 && k % diag_stride == 0 && k / diag_stride < R ? 1.0 : 0.0;
    d2 += (G[k] - want) * (G[k] - want);
  }
  return R > 0 ? 100.0 * (1.0 - d2 / static_cast<double>(R)) : 0.0;
}

void MttkrpBufferValues::widen(const MttkrpBufferValues& o) {
  left = std::max(left, o.left);
  right = std::max(right, o.right);
  scratch = std::max(scratch, o.scratch);
  operand = std::max(operand, o.operand);
  partial = std::max(partial, o.partial);
}

MttkrpBufferValues mttkrp_buffer_values(const Shape& shape, std::size_t n, std::size_t R) {
  const std::size_t N = shape.size(), J = shape[n];
  std::size_t L = 1, Rt = 1;
  for (std::size_t m = 0; m < n; ++m) L *= shape[m];
  for (std::size_t m = n + 1; m < N; ++m) Rt *= shape[m];
  const auto kl = khatri_rao_buffers(shape, 0, n, R), kr = khatri_rao_buffers(shape, n + 1, N, R);
  const double r = static_cast<double>(R);
  MttkrpBufferValues v;
  if (L >= Rt) { // as mttkrp's slice branch
    const bool use_blas = L < 256, by_piece = Rt == 1 && !use_blas;
    const double rb = static_cast<double>(use_blas ? L : rows_max(R, 64));
    v.right = kr[0];
    v.left = by_piece ? rb * r : kl[0];
    v.scratch = by_piece ? kr[1] : std::max(kl[1], kr[1]);
    v.operand = by_piece ? rb * r : static_cast<double>(L) * r;
    v.partial = static_cast<double>(use_blas ? J : std::min(J, tile_cols(1))) * r;
    return v;
  }
  const std::size_t jc = std::max<std::size_t>(1, std::min(J, rows_max(R, 256) / L));
  v = times_by_pieces_values(L * J, Rt, R, L * jc);
  v.left = kl[0];
  v.scratch = kl[1];
  return v;
}

MttkrpBufferValues contract_last_buffer_values(const Shape& shape, std::size_t R) {
  const std::size_t J = shape.back();
  return times_by_pieces_values(shape_size(shape) / std::max<std::size_t>(J, 1), J, R, rows_max(R, 256));
}

MttkrpBufferValues mttkrp_contracted_values(const Shape& shape, std::size_t n, std::size_t R) {
  const std::size_t N = shape.size() - 1; // as mttkrp_contracted: the modes but the contracted last one
  const auto kl = khatri_rao_buffers(shape, 0, n, R), kr = khatri_rao_buffers(shape, n + 1, N, R);
  std::size_t above = 1;
  for (std::size_t m = n + 1; m < N; ++m) above *= shape[m];
  MttkrpBufferValues v;
  v.left = kl[0];
  v.right = kr[0];
  v.scratch = std::max({kl[1], kr[1], static_cast<double>(shape[n] * above)}); // u shares the scratch
  return v;
}

template std::vector<double> mode_product<float>(const float*, const Shape&, std::size_t, const double*, std::size_t);
template std::vector<double> mode_product<double>(const double*, const Shape&, std::size_t, const double*, std::size_t);
template std::vector<double> multi_mode_product<float>(const float*, Shape&, const std::vector<const double*>&,
                                                       const std::vector<std::size_t>&, std::size_t, std::size_t);
template std::vector<double> multi_mode_product<double>(const double*, Shape&, const std::vector<const double*>&,
                                                        const std::vector<std::size_t>&, std::size_t, std::size_t);
template void mode_product_into<float>(const float*, const Shape&, std::size_t, const double*, std::size_t, double*);
template void mode_product_into<double>(const double*, const Shape&, std::size_t, const double*, std::size_t, double*);
template void multi_mode_product_into<float>(const float*, Shape&, const std::vector<const double*>&,
                                             const std::vector<std::size_t>&, std::size_t, std::size_t, double*);
template void multi_mode_product_into<double>(const double*, Shape&, const std::vector<const double*>&,
                                              const std::vector<std::size_t>&, std::size_t, std::size_t, double*);
template void mttkrp<float>(const float*, const Shape&, std::size_t, std::size_t, const std::vector<const double*>&,
                            double*, MttkrpWorkspace<float>&);
template void mttkrp<double>(const double*, const Shape&, std::size_t, std::size_t, const std::vector<const double*>&,
                             double*, MttkrpWorkspace<double>&);
template void contract_last<float>(const float*, const Shape&, std::size_t, const double*, double*,
                                   MttkrpWorkspace<float>&);
template void contract_last<double>(const double*, const Shape&, std::size_t, const double*, double*,
                                    MttkrpWorkspace<double>&);

} // namespace unmix
