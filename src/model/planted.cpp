#include "unmix/model/planted.hpp"

#include <cmath>
#include <cstdint>
#include <span>

#include "unmix/core/rng.hpp"
#include "unmix/kernels/blas.hpp"
#include "unmix/kernels/mttkrp.hpp"

namespace unmix {

Tensor<double> factor_rows(const Tensor<double>& F, std::size_t i0, std::size_t rows) {
  Tensor<double> out({rows, F.cols()});
  for (std::size_t r = 0; r < F.cols(); ++r)
    for (std::size_t i = 0; i < rows; ++i) out(i, r) = F(i0 + i, r);
  return out;
}

std::size_t global_column(const Shape& global, const Shape& offset, const Shape& box, std::size_t j) {
  std::size_t g = 0, stride = 1;
  for (std::size_t n = 1; n < global.size(); ++n) {
    const std::size_t idx = j % box[n];
    j /= box[n];
    g += (offset[n] + idx) * stride;
    stride *= global[n];
  }
  return g;
}

template <class T>
Planted<T> make_planted(const Comm& comm, const Shape& shape, std::size_t rank, double noise, std::uint64_t seed,
                        const std::optional<ProcessGrid>& grid, bool separable) {
  if (shape.size() < 2) throw ConfigError("a planted tensor needs at least 2 modes");
  if (rank < 1) throw ConfigError("the planted rank must be at least 1");
  ProcessGrid g = grid ? *grid : ProcessGrid::default_for(shape, comm.size());
  DistTensor<T> Y(comm, BlockLayout(shape, g));
  const std::size_t I = shape[0], R = rank;
  const CounterRng ra(seed, 1), rb(seed, 2), rn(seed, 3);
  Tensor<double> A({I, R});
  for (std::size_t i = 0; i < I * R; ++i) A[i] = ra.uniform(i);
  if (separable)
    for (std::size_t i = 0; i < std::min(I, R); ++i)
      for (std::size_t r = 0; r < R; ++r) A(i, r) = i == r ? 1.0 : 0.0;
  const Shape& off = Y.offset();
  const Shape& box = Y.local().shape();
  const std::size_t Ip = box[0], Mp = Y.local().size() / std::max<std::size_t>(Ip, 1);
  Shape bshape = box;
  bshape[0] = R;
  Tensor<double> B(bshape);
  const std::size_t Mloc = B.size() / R;
  for (std::size_t j = 0; j < Mloc; ++j) {
    const std::size_t gj = global_column(shape, off, box, j);
    for (std::size_t r = 0; r < R; ++r)
      B[r + j * R] = separable && gj < R ? (gj == r ? 1.0 : 0.0) : rb.uniform(gj * R + r);
  }
  // Y_local = A[rows of this box, :] * B_local (+ noise), built in column tiles so that no second
  // copy of the local Y is ever held.
  double scale = 0;
  const std::size_t tile = 256;
  std::vector<double> Yd(Ip * std::min(tile, std::max<std::size_t>(Mloc, 1)));
  auto product_tile = [&](std::size_t j0, std::size_t nj) {
    if (Ip && nj)
      blas::gemm<double>(blas::Trans::N, blas::Trans::N, Ip, nj, R, 1.0, A.data() + off[0], I, B.data() + j0 * R, R,
                         0.0, Yd.data(), Ip);
  };
  if (noise > 0) {
    // The sum of squares of the noise-free Y, the same bits at any process count and grid (so that a seed
    // gives the same file however many processes write it): every entry is below R (A and B in [0, 1)), so
    // each square is rounded to a multiple of 2^e with R^2 / 2^e < 2^53 and the integers are added exactly.
    const int e = std::ilogb(static_cast<double>(R) * static_cast<double>(R)) + 1 - 53;
    unsigned __int128 local = 0;
    for (std::size_t j0 = 0; j0 < Mloc; j0 += tile) {
      const std::size_t nj = std::min(tile, Mloc - j0);
      product_tile(j0, nj);
      for (std::size_t i = 0; i < Ip * nj; ++i)
        local += static_cast<std::uint64_t>(std::llround(std::ldexp(Yd[i] * Yd[i], -e)));
    }
    const std::uint64_t halves[2] = {static_cast<std::uint64_t>(local), static_cast<std::uint64_t>(local >> 64)};
    const auto all = comm.allgatherv<std::uint64_t>(std::span<const std::uint64_t>(halves, 2));
    unsigned __int128 total = 0;
    for (std::size_t p = 0; p + 1 < all.size(); p += 2)
      total += (static_cast<unsigned __int128>(all[p + 1]) << 64) | all[p];
    const double s2 = std::ldexp(static_cast<double>(static_cast<long double>(total)), e);
    scale = noise * std::sqrt(s2 / static_cast<double>(shape_size(shape)));
  }
  auto& loc = Y.local();
  for (std::size_t j0 = 0; j0 < Mp; j0 += tile) {
    const std::size_t nj = std::min(tile, Mp - j0);
    product_tile(j0, nj);
    for (std::size_t j = 0; j < nj; ++j) {
      const std::size_t gj = global_column(shape, off, box, j0 + j);
      for (std::size_t i = 0; i < Ip; ++i) {
        double v = Yd[i + j * Ip];
        if (noise > 0) v = std::max(0.0, v + scale * rn.normal(gj * I + off[0] + i));
        loc[i + (j0 + j) * Ip] = static_cast<T>(v);
      }
    }
  }
  return Planted<T>{std::move(Y), std::move(A), std::move(B)};
}

template Planted<float> make_planted(const Comm&, const Shape&, std::size_t, double, std::uint64_t,
                                     const std::optional<ProcessGrid>&, bool);
template Planted<double> make_planted(const Comm&, const Shape&, std::size_t, double, std::uint64_t,
                                      const std::optional<ProcessGrid>&, bool);

template <class T>
PlantedCP<T> make_planted_cp(const Comm& comm, const Shape& shape, std::size_t rank, double noise, std::uint64_t seed,
                             const std::optional<ProcessGrid>& grid) {
  if (shape.size() < 2) throw ConfigError("a planted tensor needs at least 2 modes");
  if (rank < 1) throw ConfigError("the planted rank must be at least 1");
  const std::size_t N = shape.size(), R = rank;
  ProcessGrid g = grid ? *grid : ProcessGrid::default_for(shape, comm.size());
  DistTensor<T> Y(comm, BlockLayout(shape, g));
  std::vector<Tensor<double>> F;
  for (std::size_t n = 0; n < N; ++n) {
    const CounterRng rng(seed, 10 + n);
    Tensor<double> X({shape[n], R});
    for (std::size_t i = 0; i < X.size(); ++i) X[i] = rng.uniform(i);
    F.push_back(std::move(X));
  }
  // rms of the model from the Gram matrices: ||model||^2 = sum of the Hadamard product of all F_n^T F_n.
  double scale = 0;
  if (noise > 0) {
    std::vector<double> H(R * R, 1.0);
    for (std::size_t n = 0; n < N; ++n)
      for (std::size_t q = 0; q < R; ++q)
        for (std::size_t r = 0; r < R; ++r) {
          double s = 0;
          for (std::size_t i = 0; i < shape[n]; ++i) s += F[n](i, q) * F[n](i, r);
          H[q + r * R] *= s;
        }
    double s2 = 0;
    for (double h : H) s2 += h;
    scale = noise * std::sqrt(s2 / static_cast<double>(shape_size(shape)));
  }
  // The local block: rows of factor 0 times the Khatri-Rao product of the local rows of the others.
  const Shape& off = Y.offset();
  const Shape& box = Y.local().shape();
  auto& loc = Y.local();
  if (loc.size() > 0) {
    // khatri_rao takes the box's extents as leading dimensions: the local rows of each factor, copied.
    std::vector<Tensor<double>> local_rows;
    std::vector<const double*> rows;
    for (std::size_t n = 0; n < N; ++n) {
      local_rows.push_back(factor_rows(F[n], off[n], box[n]));
      rows.push_back(local_rows.back().data());
    }
    const std::vector<double> K = khatri_rao(box, 1, N, R, rows);
    // In slabs of columns, so that no second copy of the local Y is held.
    const std::size_t Ip = box[0], cols = loc.size() / Ip, slab = 256;
    std::vector<double> Yd(Ip * std::min(slab, cols));
    const CounterRng rn(seed, 3);
    for (std::size_t j0 = 0; j0 < cols; j0 += slab) {
      const std::size_t nj = std::min(slab, cols - j0);
      blas::gemm<double>(blas::Trans::N, blas::Trans::T, Ip, nj, R, 1.0, rows[0], Ip, K.data() + j0, cols, 0.0,
                         Yd.data(), Ip);
      for (std::size_t j = 0; j < nj; ++j) {
        const std::size_t gj = global_column(shape, off, box, j0 + j);
        for (std::size_t i = 0; i < Ip; ++i) {
          double v = Yd[i + j * Ip];
          if (noise > 0) v = std::max(0.0, v + scale * rn.normal(gj * shape[0] + off[0] + i));
          loc[i + (j0 + j) * Ip] = static_cast<T>(v);
        }
      }
    }
  }
  return PlantedCP<T>{std::move(Y), std::move(F)};
}

template <class T>
PlantedTucker<T> make_planted_tucker(const Comm& comm, const Shape& shape, const std::vector<std::size_t>& ranks,
                                     double noise, std::uint64_t seed, const std::optional<ProcessGrid>& grid) {
  if (shape.size() < 2) throw ConfigError("a planted tensor needs at least 2 modes");
  if (ranks.size() != shape.size()) throw ConfigError("a planted Tucker tensor needs one rank per mode");
  for (std::size_t r : ranks)
    if (r < 1) throw ConfigError("the planted ranks must be at least 1");
  const std::size_t N = shape.size();
  ProcessGrid g = grid ? *grid : ProcessGrid::default_for(shape, comm.size());
  DistTensor<T> Y(comm, BlockLayout(shape, g));
  std::vector<Tensor<double>> F;
  for (std::size_t n = 0; n < N; ++n) {
    const CounterRng rng(seed, 10 + n);
    Tensor<double> X({shape[n], ranks[n]});
    for (std::size_t i = 0; i < X.size(); ++i) X[i] = rng.uniform(i);
    F.push_back(std::move(X));
  }
  Tensor<double> G(ranks);
  {
    const CounterRng rng(seed, 30);
    for (std::size_t i = 0; i < G.size(); ++i) G[i] = rng.uniform(i);
  }
  double scale = 0;
  if (noise > 0) {
    // rms of the model: ||model||^2 = <G, G x_0 F_0^T F_0 ...>.
    std::vector<std::vector<double>> W(N);
    std::vector<const double*> Ms(N);
    for (std::size_t n = 0; n < N; ++n) {
      const std::size_t R = ranks[n];
      W[n].assign(R * R, 0.0);
      blas::gemm<double>(blas::Trans::T, blas::Trans::N, R, R, shape[n], 1.0, F[n].data(), shape[n], F[n].data(),
                         shape[n], 0.0, W[n].data(), R);
      Ms[n] = W[n].data();
    }
    Shape cs = ranks;
    const std::vector<double> GW = multi_mode_product<double>(G.data(), cs, Ms, ranks, N);
    double s2 = 0;
    for (std::size_t i = 0; i < GW.size(); ++i) s2 += GW[i] * G[i];
    scale = noise * std::sqrt(s2 / static_cast<double>(shape_size(shape)));
  }
  const Shape& off = Y.offset();
  const Shape& box = Y.local().shape();
  auto& loc = Y.local();
  if (loc.size() > 0) {
    // The local block: W = G x_(m < N-1) F_m (local rows), then W_(0..N-2) times the last factor's rows
    // transposed, a slab of the last mode at a time (no second copy of the local Y).
    std::vector<Tensor<double>> local_rows;
    std::vector<const double*> Ms(N, nullptr);
    for (std::size_t n = 0; n < N; ++n) {
      local_rows.push_back(factor_rows(F[n], off[n], box[n]));
      Ms[n] = local_rows.back().data();
    }
    Shape ws = ranks;
    const std::vector<double> W = multi_mode_product<double>(G.data(), ws, Ms, Shape(box.begin(), box.end()), N - 1);
    const std::size_t J = box[N - 1], head = loc.size() / J, RL = ranks[N - 1], I0 = box[0];
    const std::size_t slab = std::max<std::size_t>(1, (std::size_t{1} << 18) / head);
    std::vector<double> Yd(head * std::min(slab, J));
    const CounterRng rn(seed, 3);
    for (std::size_t j0 = 0; j0 < J; j0 += slab) {
      const std::size_t nj = std::min(slab, J - j0);
      blas::gemm<double>(blas::Trans::N, blas::Trans::T, head, nj, RL, 1.0, W.data(), head,
                         local_rows[N - 1].data() + j0, J, 0.0, Yd.data(), head);
      for (std::size_t k = 0; k < head * nj; ++k) {
        const std::size_t idx = j0 * head + k, i = idx % I0;
        double v = Yd[k];
        if (noise > 0)
          v = std::max(0.0, v + scale * rn.normal(global_column(shape, off, box, idx / I0) * shape[0] + off[0] + i));
        loc[idx] = static_cast<T>(v);
      }
    }
  }
  return PlantedTucker<T>{std::move(Y), std::move(F), std::move(G)};
}

template PlantedTucker<float> make_planted_tucker(const Comm&, const Shape&, const std::vector<std::size_t>&, double,
                                                  std::uint64_t, const std::optional<ProcessGrid>&);
template PlantedTucker<double> make_planted_tucker(const Comm&, const Shape&, const std::vector<std::size_t>&, double,
                                                   std::uint64_t, const std::optional<ProcessGrid>&);

template PlantedCP<float> make_planted_cp(const Comm&, const Shape&, std::size_t, double, std::uint64_t,
                                          const std::optional<ProcessGrid>&);
template PlantedCP<double> make_planted_cp(const Comm&, const Shape&, std::size_t, double, std::uint64_t,
                                           const std::optional<ProcessGrid>&);

} // namespace unmix
