#pragma once
// Planted low-rank nonnegative Tucker-1 problems: Y = B x1 A (+ noise), generated in place on each
// process (each process draws only its own box, identically at any process count).
#include <cstdint>
#include <optional>

#include "unmix/dist/dist_tensor.hpp"

namespace unmix {

template <class T> struct Planted {
  DistTensor<T> Y;
  Tensor<double> A;       // I x R, whole on every process
  Tensor<double> B_local; // R x (this process's box of the other modes)
};

/// shape[0] is the mixture mode. Entries of A and B are U(0,1) from counter-based streams; with
/// noise > 0, N(0, (noise * rms(B x1 A))^2) is added and the result clipped at 0. With `separable`,
/// the first R rows of A and the first R columns of B(1) are the identity (pure mixtures and pure
/// sources), which makes the nonnegative factorization unique up to permutation and scaling.
template <class T>
Planted<T> make_planted(const Comm& comm, const Shape& shape, std::size_t rank, double noise, std::uint64_t seed,
                        const std::optional<ProcessGrid>& grid = std::nullopt, bool separable = false);

extern template Planted<float> make_planted(const Comm&, const Shape&, std::size_t, double, std::uint64_t,
                                            const std::optional<ProcessGrid>&, bool);
extern template Planted<double> make_planted(const Comm&, const Shape&, std::size_t, double, std::uint64_t,
                                             const std::optional<ProcessGrid>&, bool);

/// A planted CP problem: Y = sum_r F_0[:, r] o F_1[:, r] o ... (+ noise), the factors whole on every
/// process.
template <class T> struct PlantedCP {
  DistTensor<T> Y;
  std::vector<Tensor<double>> F; // F[n]: shape[n] x R
};

/// Entries of the factors are U(0,1) from counter-based streams, so Y is the same at any process count and
/// grid; with noise > 0, N(0, (noise * rms(model))^2) is added (rms from the factors' Gram matrices) and the
/// result clipped at 0.
template <class T>
PlantedCP<T> make_planted_cp(const Comm& comm, const Shape& shape, std::size_t rank, double noise, std::uint64_t seed,
                             const std::optional<ProcessGrid>& grid = std::nullopt);

extern template PlantedCP<float> make_planted_cp(const Comm&, const Shape&, std::size_t, double, std::uint64_t,
                                                 const std::optional<ProcessGrid>&);
extern template PlantedCP<double> make_planted_cp(const Comm&, const Shape&, std::size_t, double, std::uint64_t,
                                                  const std::optional<ProcessGrid>&);

/// A planted Tucker problem: Y = G x_0 F_0 x_1 F_1 ... (+ noise), the factors and the core whole on every
/// process.
template <class T> struct PlantedTucker {
  DistTensor<T> Y;
  std::vector<Tensor<double>> F; // F[n]: shape[n] x ranks[n]
  Tensor<double> G;              // ranks[0] x ranks[1] x ...
};

/// Entries of the factors and the core are U(0,1) from counter-based streams (the same at any process count and
/// grid); noise as make_planted_cp's.
template <class T>
PlantedTucker<T> make_planted_tucker(const Comm& comm, const Shape& shape, const std::vector<std::size_t>& ranks,
                                     double noise, std::uint64_t seed,
                                     const std::optional<ProcessGrid>& grid = std::nullopt);

extern template PlantedTucker<float> make_planted_tucker(const Comm&, const Shape&, const std::vector<std::size_t>&,
                                                         double, std::uint64_t, const std::optional<ProcessGrid>&);
extern template PlantedTucker<double> make_planted_tucker(const Comm&, const Shape&, const std::vector<std::size_t>&,
                                                          double, std::uint64_t, const std::optional<ProcessGrid>&);

/// Rows i0 .. i0 + rows - 1 of a whole factor (I x R, column-major): the block of it one process holds.
Tensor<double> factor_rows(const Tensor<double>& F, std::size_t i0, std::size_t rows);

/// Global column index (in the mode-1 unfolding of the whole tensor) of local column j of a box.
std::size_t global_column(const Shape& global, const Shape& offset, const Shape& box, std::size_t j);

} // namespace unmix
