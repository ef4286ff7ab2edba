// Body of the B step's per-column arithmetic (kernels/tile_step.hpp), included once per instruction set by
// tile_step_<isa>.cpp with TILE_NS naming the namespace of that build. Compiled without contraction into
// fused multiply-adds (CMake), so that every entry is rounded as in the plain loops of the two-pass
// iteration and the results are the same, bit for bit, on every instruction set. For a compile-time R (1..16) a
// column's R values are whole vectors of the instruction set (GCC vector extensions); a run-time R takes plain
// loops. The sums over a tile go to 16 partial sums so that no single chain of additions sets the pace.
#include <algorithm>
#include <cstddef>
#include <optional>
#include <type_traits>
#include <vector>

#include "tile_step_decls.hpp"
#include "tile_vector.hpp"
#include "unmix/kernels/tile_step.hpp"

namespace unmix::TILE_NS {

constexpr std::size_t sum_lanes = 16;
// Columns per chunk: the chunk's R x 32 values of B, Bprev, M and the gradient stay in the level-1 cache
// from the first gradient to the step.
constexpr std::size_t step_chunk = 32;

// The 16 partial sums; as vectors, partial sum l is lane l mod W of vector l / W.
struct LaneSums {
  using VD = typename Vec<double>::type;
  static constexpr std::size_t W = Vec<double>::width, NV = sum_lanes / W;
  double v[sum_lanes] = {};
  void get(VD* out) const {
    for (std::size_t k = 0; k < NV; ++k)
      for (std::size_t l = 0; l < W; ++l) out[k][l] = v[k * W + l];
  }
  void set(const VD* in) {
    for (std::size_t k = 0; k < NV; ++k)
      for (std::size_t l = 0; l < W; ++l) v[k * W + l] = in[k][l];
  }
  double total() const {
    double pair[sum_lanes / 2];
    for (std::size_t l = 0; l < sum_lanes / 2; ++l) pair[l] = v[l] + v[l + sum_lanes / 2];
    for (std::size_t w = sum_lanes / 4; w >= 1; w /= 2)
      for (std::size_t l = 0; l < w; ++l) pair[l] += pair[l + w];
    return pair[0];
  }
};

// The sums of a gradient's squares over a tile, chunk after chunk: all entries, and those that count in
// the stationarity (with `nonnegative`, entries with B > 0 or g < 0 only). Entry k of the tile goes to
// partial sum k mod 16.
struct GradientSums {
  LaneSums g2, s2;
  std::size_t filled = 0; // entries summed so far
  void add(const double* __restrict g, const double* __restrict b, std::size_t count, bool nonnegative) {
    std::size_t i = 0;
    if (filled % sum_lanes == 0 && count >= sum_lanes) {
      // In vectors, as change_norm.
      using VD = LaneSums::VD;
      constexpr std::size_t W = LaneSums::W, NV = LaneSums::NV;
      VD a[NV], s[NV];
      g2.get(a);
      s2.get(s);
      const VD zero = {};
      for (; i + sum_lanes <= count; i += sum_lanes)
#pragma GCC unroll 8
        for (std::size_t v = 0; v < NV; ++v) {
          const VD x = load(g + i + v * W), sq = x * x;
          a[v] += sq;
          if (nonnegative)
            s[v] += (load(b + i + v * W) > zero || x < zero) ? sq : zero;
          else
            s[v] += sq;
        }
      g2.set(a);
      s2.set(s);
    }
    for (; i < count; ++i) {
      const double v = g[i], sq = v * v;
      const std::size_t l = (filled + i) % sum_lanes;
      g2.v[l] += sq;
      s2.v[l] += (!nonnegative || b[i] > 0 || v < 0) ? sq : 0.0;
    }
    filled += count;
  }
  void into(TileStepSums& sums) const {
    sums.grad2 += g2.total();
    sums.stat2 += s2.total();
  }
};

template <std::size_t RC> struct StepMath {
  using VD = typename Vec<double>::type;
  static constexpr std::size_t W = Vec<double>::width;
  static constexpr std::size_t V = RC ? (RC + W - 1) / W : 1; // vectors per column of R values
  static constexpr std::size_t RP = V * W;                    // R padded to whole vectors

  // G's columns padded to whole vectors with zeros (RC x RP).
  struct PaddedGram {
    double v[RC ? RC * RP : 1];
    explicit PaddedGram(const double* G) {
      for (std::size_t q = 0; q < RC; ++q)
        for (std::size_t r = 0; r < RP; ++r) v[r + q * RP] = r < RC ? G[r + q * RC] : 0.0;
    }
  };

  // grad = G X - M for X, M (R x n); each entry: -M, then + G(r, q) x(q) for q = 0..R-1 in order. For a
  // compile-time R, a column's R values are whole vectors (G padded with zeros), two columns at a time
  // share the loads of G; M and grad are read and written a whole vector past each column (the next
  // column's values are read and written over before that column's turn, and the arrays have
  // tile_step_padding entries after the last column).
  static void gram_times_minus(std::size_t Rrt, std::size_t n, const PaddedGram* Gp, const double* G,
                               const double* __restrict X, const double* M, double* grad) {
    if constexpr (RC > 0) {
      const double* g = Gp->v;
      std::size_t j = 0;
      for (; j + 2 <= n; j += 2) {
        VD a0[V], a1[V];
        const double* __restrict x0 = X + j * RC;
        const double* __restrict x1 = x0 + RC;
        for (std::size_t v = 0; v < V; ++v) {
          a0[v] = -load(M + j * RC + v * W);
          a1[v] = -load(M + (j + 1) * RC + v * W);
        }
        for (std::size_t q = 0; q < RC; ++q) {
          const double u0 = x0[q], u1 = x1[q];
          for (std::size_t v = 0; v < V; ++v) {
            const VD gq = load(g + q * RP + v * W);
            a0[v] += gq * u0;
            a1[v] += gq * u1;
          }
        }
        for (std::size_t v = 0; v < V; ++v) store(grad + j * RC + v * W, a0[v]);
        for (std::size_t v = 0; v < V; ++v) store(grad + (j + 1) * RC + v * W, a1[v]);
      }
      for (; j < n; ++j) {
        VD a0[V];
        const double* __restrict x0 = X + j * RC;
        for (std::size_t v = 0; v < V; ++v) a0[v] = -load(M + j * RC + v * W);
        for (std::size_t q = 0; q < RC; ++q) {
          const double u0 = x0[q];
          for (std::size_t v = 0; v < V; ++v) a0[v] += load(g + q * RP + v * W) * u0;
        }
        for (std::size_t v = 0; v < V; ++v) store(grad + j * RC + v * W, a0[v]);
      }
    } else {
      const std::size_t R = Rrt;
      for (std::size_t j = 0; j < n; ++j) {
        double* __restrict acc = grad + j * R;
        const double* x = X + j * R;
        for (std::size_t r = 0; r < R; ++r) acc[r] = -M[r + j * R];
        for (std::size_t q = 0; q < R; ++q) {
          const double xq = x[q];
          const double* Gq = G + q * R;
          for (std::size_t r = 0; r < R; ++r) acc[r] += Gq[r] * xq;
        }
      }
    }
  }

  // P += X X^T for X (R x n). A compile-time R sums the tile in vector registers first (column q of the
  // sum: x x(q), whole vectors of x); columns too close to X's end for a whole vector's read are copied.
  static void add_outer(std::size_t Rrt, std::size_t n, const double* __restrict X, double* __restrict P) {
    if constexpr (RC > 0) {
      VD acc[RC][V];
      for (std::size_t q = 0; q < RC; ++q)
        for (std::size_t v = 0; v < V; ++v) acc[q][v] = VD{};
      const std::size_t direct = n * RC >= RP ? (n * RC - RP) / RC + 1 : 0;
      auto column = [&](const double* x) {
        VD xv[V];
        for (std::size_t v = 0; v < V; ++v) xv[v] = load(x + v * W);
        for (std::size_t q = 0; q < RC; ++q) {
          const double xq = x[q];
          for (std::size_t v = 0; v < V; ++v) acc[q][v] += xv[v] * xq;
        }
      };
      for (std::size_t j = 0; j < std::min(direct, n); ++j) column(X + j * RC);
      for (std::size_t j = std::min(direct, n); j < n; ++j) {
        double padded[RP] = {};
        std::copy(X + j * RC, X + (j + 1) * RC, padded);
        column(padded);
      }
      for (std::size_t q = 0; q < RC; ++q) {
        double sum[RP];
        for (std::size_t v = 0; v < V; ++v) store(sum + v * W, acc[q][v]);
        for (std::size_t r = 0; r < RC; ++r) P[r + q * RC] += sum[r];
      }
    } else {
      const std::size_t R = Rrt;
      for (std::size_t j = 0; j < n; ++j) {
        const double* x = X + j * R;
        for (std::size_t q = 0; q < R; ++q) {
          const double xq = x[q];
          double* Pq = P + q * R;
          for (std::size_t r = 0; r < R; ++r) Pq[r] += x[r] * xq;
        }
      }
    }
  }

  // M (R x n) = A^T Y for a tile of n columns of Y at a few mixtures: each column of M is a sum over the I
  // rows of A's row (R values, whole vectors) times that row's entry of Y, two columns at a time, even and
  // odd rows in separate sums (added at the end). Sums in T, stored in double. Meanwhile the next tile
  // (next, next_count values) is read, as much of it per column as the column of Y holds.
  template <class T>
  static void aty(std::size_t I, std::size_t n, const T* __restrict Y, std::size_t ldy, const T* __restrict A,
                  double* M, const T* next, std::size_t next_count) {
    static_assert(RC > 0);
    using VT = typename Vec<T>::type;
    constexpr std::size_t WT = Vec<T>::width;
    constexpr std::size_t VN = (RC + WT - 1) / WT;
    constexpr std::size_t RPT = VN * WT;
    T At[tile_aty_max_rows * RPT];
    for (std::size_t i = 0; i < I; ++i)
      for (std::size_t r = 0; r < RPT; ++r) At[r + i * RPT] = r < RC ? A[i + r * I] : T(0);
    const char* ahead = reinterpret_cast<const char*>(next);
    const char* const ahead_end = next ? ahead + next_count * sizeof(T) : ahead;
    auto read_ahead = [&](std::size_t columns_done) {
      const char* until = reinterpret_cast<const char*>(next) + columns_done * I * sizeof(T);
      if (until > ahead_end) until = ahead_end;
      for (; ahead < until; ahead += 64) __builtin_prefetch(ahead);
    };
    auto put = [&](std::size_t j, const VT* acc) {
      if constexpr (std::is_same_v<T, double>) {
        for (std::size_t v = 0; v < VN; ++v) store(M + j * RC + v * WT, acc[v]);
      } else {
        T tmp[RPT];
        for (std::size_t v = 0; v < VN; ++v) store(tmp + v * WT, acc[v]);
        for (std::size_t r = 0; r < RC; ++r) M[r + j * RC] = static_cast<double>(tmp[r]);
      }
    };
    const std::size_t Ie = I / 2 * 2;
    std::size_t j = 0;
    for (; j + 2 <= n; j += 2) {
      VT e0[VN] = {}, o0[VN] = {}, e1[VN] = {}, o1[VN] = {};
      const T* y0 = Y + j * ldy;
      const T* y1 = y0 + ldy;
      for (std::size_t i = 0; i < Ie; i += 2) {
        const T a0 = y0[i], b0 = y0[i + 1], a1 = y1[i], b1 = y1[i + 1];
        for (std::size_t v = 0; v < VN; ++v) {
          const VT ae = load(At + i * RPT + v * WT), ao = load(At + (i + 1) * RPT + v * WT);
          e0[v] += ae * a0;
          o0[v] += ao * b0;
          e1[v] += ae * a1;
          o1[v] += ao * b1;
        }
      }
      if (Ie < I)
        for (std::size_t v = 0; v < VN; ++v) {
          const VT ae = load(At + Ie * RPT + v * WT);
          e0[v] += ae * y0[Ie];
          e1[v] += ae * y1[Ie];
        }
      for (std::size_t v = 0; v < VN; ++v) {
        e0[v] += o0[v];
        e1[v] += o1[v];
      }
      put(j, e0);
      put(j + 1, e1);
      read_ahead(j + 2);
    }
    for (; j < n; ++j) {
      VT e0[VN] = {}, o0[VN] = {};
      const T* y0 = Y + j * ldy;
      for (std::size_t i = 0; i < Ie; i += 2)
        for (std::size_t v = 0; v < VN; ++v) {
          e0[v] += load(At + i * RPT + v * WT) * y0[i];
          o0[v] += load(At + (i + 1) * RPT + v * WT) * y0[i + 1];
        }
      if (Ie < I)
        for (std::size_t v = 0; v < VN; ++v) e0[v] += load(At + Ie * RPT + v * WT) * y0[Ie];
      for (std::size_t v = 0; v < VN; ++v) e0[v] += o0[v];
      put(j, e0);
    }
    read_ahead(n);
  }

  // X <- X - grad / L per row, for n columns.
  static void descend(std::size_t R, std::size_t n, const double* __restrict grad, const double* __restrict inv_L,
                      double* __restrict X) {
    for (std::size_t j = 0; j < n; ++j)
      for (std::size_t r = 0; r < R; ++r) X[r + j * R] -= grad[r + j * R] * inv_L[r];
  }

  template <class T>
  static void step(std::size_t Rrt, std::size_t nt, const T* __restrict Mt, const TileStepParams& p,
                   double* __restrict B, double* __restrict Bp, double* __restrict M, double* __restrict grad,
                   TileStepSums& sums) {
    const std::size_t R = RC ? RC : Rrt;
    const double* __restrict omega = p.omega;
    GradientSums sums_here;
    std::optional<PaddedGram> padded;
    if constexpr (RC > 0) padded.emplace(p.G);
    const PaddedGram* Gp = padded ? &*padded : nullptr;
    for (std::size_t j0 = 0; j0 < nt; j0 += step_chunk) {
      const std::size_t nc = std::min(step_chunk, nt - j0);
      const std::size_t count = R * nc;
      double* __restrict Bc = B + j0 * R;
      double* __restrict Bpc = Bp + j0 * R;
      double* __restrict Mc = M + j0 * R;
      double* __restrict gc = grad + j0 * R;
      // B and Bprev of the next chunk to the caches meanwhile (at a few mixtures they outweigh the tile of Y,
      // and each tile's step starts their streams anew).
      if (j0 + nc < nt) {
        const std::size_t ahead = R * std::min(step_chunk, nt - j0 - nc);
        for (std::size_t k = 0; k < ahead; k += 8) {
          __builtin_prefetch(Bc + count + k, 1);
          __builtin_prefetch(Bpc + count + k, 1);
        }
      }
      if (Mt)
        for (std::size_t j = 0; j < nc; ++j)
          for (std::size_t r = 0; r < R; ++r) Mc[r + j * R] = static_cast<double>(Mt[j0 + j + r * nt]);
      gram_times_minus(R, nc, Gp, p.G, Bc, Mc, gc);
      // The sums of the gradient at the current point.
      sums_here.add(gc, Bc, count, p.nonnegative_stats);
      if (p.momentum) {
        for (std::size_t j = 0; j < nc; ++j)
          for (std::size_t r = 0; r < R; ++r) {
            const std::size_t idx = r + j * R;
            const double cur = Bc[idx];
            Bc[idx] = cur + omega[r] * (cur - Bpc[idx]);
            Bpc[idx] = cur;
          }
        gram_times_minus(R, nc, Gp, p.G, Bc, Mc, gc);
      } else if (p.copy_prev) {
        std::copy(Bc, Bc + count, Bpc);
      }
      descend(R, nc, gc, p.inv_L, Bc);
    }
    sums_here.into(sums);
  }

  // The gradient G X - M of n columns without padding, a chunk at a time through padded copies: its sums
  // (with `sums`) at X, then (with inv_L) the step X <- X - (G X - M) / L per row.
  static void gradient(std::size_t Rrt, std::size_t n, const double* G, const double* M, double* __restrict X,
                       const double* __restrict inv_L, bool nonnegative, TileStepSums* sums) {
    const std::size_t R = RC ? RC : Rrt;
    std::optional<PaddedGram> padded;
    if constexpr (RC > 0) padded.emplace(G);
    const PaddedGram* Gp = padded ? &*padded : nullptr;
    std::vector<double> work(2 * (R * step_chunk + tile_step_padding));
    double* __restrict mc = work.data();
    double* __restrict gc = mc + R * step_chunk + tile_step_padding;
    GradientSums acc;
    for (std::size_t j0 = 0; j0 < n; j0 += step_chunk) {
      const std::size_t nc = std::min(step_chunk, n - j0);
      const std::size_t count = R * nc;
      double* Xc = X + j0 * R;
      std::copy(M + j0 * R, M + j0 * R + count, mc);
      gram_times_minus(R, nc, Gp, G, Xc, mc, gc);
      if (sums) acc.add(gc, Xc, count, nonnegative);
      if (inv_L) descend(R, nc, gc, inv_L, Xc);
    }
    if (sums) acc.into(*sums);
  }
};

// Calls f.template operator()<RC>() with RC = R for R = 1..16, else RC = 0.
template <class F> void with_rank(std::size_t R, F&& f) {
  switch (R) {
  case 1: f.template operator()<1>(); return;
  case 2: f.template operator()<2>(); return;
  case 3: f.template operator()<3>(); return;
  case 4: f.template operator()<4>(); return;
  case 5: f.template operator()<5>(); return;
  case 6: f.template operator()<6>(); return;
  case 7: f.template operator()<7>(); return;
  case 8: f.template operator()<8>(); return;
  case 9: f.template operator()<9>(); return;
  case 10: f.template operator()<10>(); return;
  case 11: f.template operator()<11>(); return;
  case 12: f.template operator()<12>(); return;
  case 13: f.template operator()<13>(); return;
  case 14: f.template operator()<14>(); return;
  case 15: f.template operator()<15>(); return;
  case 16: f.template operator()<16>(); return;
  default: f.template operator()<0>(); return;
  }
}

template <class T>
void b_step(std::size_t R, std::size_t n, const T* Mt, const TileStepParams& p, double* B, double* Bprev, double* M,
            double* grad, TileStepSums& sums) {
  with_rank(R, [&]<std::size_t RC>() { StepMath<RC>::template step<T>(R, n, Mt, p, B, Bprev, M, grad, sums); });
}

template <class T>
bool aty(std::size_t I, std::size_t n, std::size_t R, const T* Y, std::size_t ldy, const T* A, double* M, const T* next,
         std::size_t next_count) {
  if (I > tile_aty_max_rows || R > 16 || R == 0) return false;
  with_rank(R, [&]<std::size_t RC>() {
    if constexpr (RC > 0) StepMath<RC>::template aty<T>(I, n, Y, ldy, A, M, next, next_count);
  });
  return true;
}

void gradient(std::size_t R, std::size_t n, const double* G, const double* M, double* X, const double* inv_L,
              bool nonnegative, TileStepSums* sums) {
  with_rank(R, [&]<std::size_t RC>() { StepMath<RC>::gradient(R, n, G, M, X, inv_L, nonnegative, sums); });
}

void change_norm(std::size_t count, const double* __restrict B, const double* __restrict Bprev, double& change2,
                 double& norm2) {
  // The 16 partial sums as vectors (LaneSums), written with the vector type, since GCC's own vectorization
  // of the 16-lane loop shuffled every load (10 % of an iteration at I = 20, R = 3; 2 % after).
  using VD = LaneSums::VD;
  constexpr std::size_t W = LaneSums::W, NV = LaneSums::NV;
  VD c[NV] = {}, q[NV] = {};
  std::size_t i = 0;
  for (; i + sum_lanes <= count; i += sum_lanes)
#pragma GCC unroll 8
    for (std::size_t v = 0; v < NV; ++v) {
      const VD b = load(B + i + v * W), d = b - load(Bprev + i + v * W);
      c[v] += d * d;
      q[v] += b * b;
    }
  LaneSums c2, b2;
  c2.set(c);
  b2.set(q);
  for (std::size_t l = 0; i < count; ++i, ++l) {
    const double b = B[i], d = b - Bprev[i];
    c2.v[l] += d * d;
    b2.v[l] += b * b;
  }
  change2 += c2.total();
  norm2 += b2.total();
}

void add_outer(std::size_t R, std::size_t n, const double* X, double* P) {
  with_rank(R, [&]<std::size_t RC>() { StepMath<RC>::add_outer(R, n, X, P); });
}

template bool aty<double>(std::size_t, std::size_t, std::size_t, const double*, std::size_t, const double*, double*,
                          const double*, std::size_t);
template bool aty<float>(std::size_t, std::size_t, std::size_t, const float*, std::size_t, const float*, double*,
                         const float*, std::size_t);
template void b_step<double>(std::size_t, std::size_t, const double*, const TileStepParams&, double*, double*, double*,
                             double*, TileStepSums&);
template void b_step<float>(std::size_t, std::size_t, const float*, const TileStepParams&, double*, double*, double*,
                            double*, TileStepSums&);

} // namespace unmix::TILE_NS
