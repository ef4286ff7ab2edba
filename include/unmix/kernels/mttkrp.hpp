#pragma once
// Local products of the CP model (ALGORITHMS.md section 1): the Khatri-Rao product of factor matrices
// and the matricized tensor times Khatri-Rao product (MTTKRP) on one dense block, MPI-free.
//
// Conventions: a block Y of shape (I_0, ..., I_(N-1)) is column-major (mode 0 fastest); factor m is an
// I_m x R column-major matrix of the rows that belong to the block. For mode n,
//     M[i_n, r] = sum over every other index of Y[i_0, ..., i_(N-1)] * prod_(m != n) F_m[i_m, r],
// i.e. M = Y_(n) (F_(N-1) kr ... kr F_(n+1) kr F_(n-1) kr ... kr F_0), with kr the column-wise
// Kronecker (Khatri-Rao) product ordered so that the lower mode varies fastest.
#include <cstddef>
#include <vector>

#include "unmix/core/tensor.hpp"

namespace unmix {

/// The Khatri-Rao product of the factors of modes lo .. hi-1, mode lo fastest: a
/// (prod_(lo <= m < hi) I_m) x R column-major matrix. An empty range gives a 1 x R matrix of ones.
std::vector<double> khatri_rao(const Shape& shape, std::size_t lo, std::size_t hi, std::size_t R,
                               const std::vector<const double*>& factors);

/// M (I_n x R, column-major, overwritten) for mode n of the block Y of the given shape. Reads Y once.
/// `factors[n]` is not used (may be null). Y in float is multiplied in float (the factors rounded to
/// float), the result returned in double. Extra memory: the two Khatri-Rao products of the modes below
/// and above n, and at most about 8 MiB of partial products.
template <class T>
void mttkrp(const T* Y, const Shape& shape, std::size_t n, std::size_t R, const std::vector<const double*>& factors,
            double* M);

extern template void mttkrp<float>(const float*, const Shape&, std::size_t, std::size_t,
                                   const std::vector<const double*>&, double*);
extern template void mttkrp<double>(const double*, const Shape&, std::size_t, std::size_t,
                                    const std::vector<const double*>&, double*);

} // namespace unmix
