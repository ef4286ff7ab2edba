#pragma once
// The singular-value spectrum of the mode-1 unfolding Y(1) (I x M) of a distributed tensor, computed in
// parallel with ScaLAPACK: the I x I Gram matrix Y(1) Y(1)^T is formed from the local blocks, laid out
// block-cyclically over a BLACS process grid of the tensor's communicator and handed to pdsyev; the
// singular values are the square roots of its eigenvalues and the left singular vectors its eigenvectors.
// This is the route for I much smaller than M (the Tucker-1 case: few mixtures, many entries each).
// NNDSVD (Boutsidis & Gallopoulos 2008) builds a nonnegative start from the leading triplets.
#include <cstddef>
#include <vector>

#include "unmix/core/mpi.hpp"
#include "unmix/dist/dist_tensor.hpp"

namespace unmix {

/// Eigenvalues (descending) of a symmetric n x n matrix that every process of `comm` holds identically
/// (column-major), by ScaLAPACK pdsyev over a near-square BLACS grid of `comm` with square blocks of
/// `block` (0: chosen from n); with `vectors`, the eigenvectors as the columns of an n x n matrix in
/// the same order, on every process. Collective.
std::vector<double> parallel_sym_eig(const Comm& comm, const std::vector<double>& S, std::size_t n,
                                     std::vector<double>* vectors, std::size_t block = 0);

struct Spectrum {
  std::vector<double> sigma; // all I singular values of Y(1), descending
  std::vector<double> U;     // I x I left singular vectors (column-major), column j for sigma[j]
};

/// The spectrum of Y(1). Collective over Y's communicator.
template <class T> Spectrum unfolding_spectrum(const DistTensor<T>& Y);

extern template Spectrum unfolding_spectrum(const DistTensor<float>&);
extern template Spectrum unfolding_spectrum(const DistTensor<double>&);

} // namespace unmix
