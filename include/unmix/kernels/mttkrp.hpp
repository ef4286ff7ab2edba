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
/// The same into `out`, with `scratch` for the intermediate products (both reused: no allocation once
/// they are large enough).
void khatri_rao(const Shape& shape, std::size_t lo, std::size_t hi, std::size_t R,
                const std::vector<const double*>& factors, std::vector<double>& out, std::vector<double>& scratch);

/// Rows p0 .. p0 + np - 1 of that product into `out` (np x R, column-major): a slab of it without the whole.
void khatri_rao_rows(const Shape& shape, std::size_t lo, std::size_t hi, std::size_t R,
                     const std::vector<const double*>& factors, std::size_t p0, std::size_t np, double* out);

/// Buffers of mttkrp kept between calls: a solver calls it every iteration on the same shapes, and fresh
/// buffers of this size cost more in page faults than the products on small blocks.
template <class T> struct MttkrpWorkspace {
  std::vector<double> left, right, scratch; // the Khatri-Rao products below and above mode n
  std::vector<T> operand, partial;          // one of them in T as the products take it; partial products
};

/// The most values each buffer of an MttkrpWorkspace holds (left, right, scratch in double; operand and partial
/// in T) for the calls it serves, as the kernels below size them: for memory estimates.
struct MttkrpBufferValues {
  double left = 0, right = 0, scratch = 0, operand = 0, partial = 0;
  /// Each buffer at the larger of the two (a workspace kept between calls keeps its largest size).
  void widen(const MttkrpBufferValues& o);
};
/// For mttkrp of mode n of a block of `shape`, for contract_last of it, and for mttkrp_contracted of mode n
/// (its three vectors as left, right and scratch), each given the block's shape as those take it.
MttkrpBufferValues mttkrp_buffer_values(const Shape& shape, std::size_t n, std::size_t R);
MttkrpBufferValues contract_last_buffer_values(const Shape& shape, std::size_t R);
MttkrpBufferValues mttkrp_contracted_values(const Shape& shape, std::size_t n, std::size_t R);

/// M (I_n x R, column-major, overwritten) for mode n of the block Y of the given shape. Reads Y once.
/// `factors[n]` is not used (may be null). Y in float is multiplied in float (the factors rounded to
/// float), the result returned in double. Extra memory: the two Khatri-Rao products of the modes below
/// and above n, and at most about 8 MiB of partial products.
template <class T>
void mttkrp(const T* Y, const Shape& shape, std::size_t n, std::size_t R, const std::vector<const double*>& factors,
            double* M, MttkrpWorkspace<T>& ws);
template <class T>
void mttkrp(const T* Y, const Shape& shape, std::size_t n, std::size_t R, const std::vector<const double*>& factors,
            double* M) {
  MttkrpWorkspace<T> ws;
  mttkrp<T>(Y, shape, n, R, factors, M, ws);
}

/// The block with its last mode contracted by that mode's factor: T = Y_(0..N-2) F_last, an
/// (I_0 ... I_(N-2)) x R column-major matrix (overwritten), F_last I_(N-1) x R. Reads Y once. From T the
/// MTTKRP of every other mode follows without reading Y again (mttkrp_contracted): with the last mode
/// updated last in an iteration, one such contraction serves all the other modes (a dimension tree).
template <class T>
void contract_last(const T* Y, const Shape& shape, std::size_t R, const double* F_last, double* Tout,
                   MttkrpWorkspace<T>& ws);

/// M (I_n x R, overwritten) for mode n < N-1 of the block of the given shape (all N modes) from its
/// contraction T (contract_last): M[i_n, r] = sum over the indices of modes 0..N-2 but n of
/// T[.., r] prod F_m[i_m, r]. O(R prod_(m < N-1) I_m); `left`, `right`, `scratch` are reused buffers.
void mttkrp_contracted(const double* Tin, const Shape& shape, std::size_t n, std::size_t R,
                       const std::vector<const double*>& factors, double* M, std::vector<double>& left,
                       std::vector<double>& right, std::vector<double>& scratch);

/// X times M along mode n: X (column-major, shape `shape`) with M (rows x shape[n], column-major) gives a
/// tensor of the same shape but `rows` in mode n (the tensor-times-matrix product X x_n M).
template <class T>
std::vector<double> mode_product(const T* X, const Shape& shape, std::size_t n, const double* M, std::size_t rows);
/// The same into `out` (shape_size(shape) / shape[n] * rows values, every one written).
template <class T>
void mode_product_into(const T* X, const Shape& shape, std::size_t n, const double* M, std::size_t rows, double* out);

/// The order in which multi_mode_product takes the modes (every mode but `skip` and `also_skip`, by decreasing
/// shape[m] / rows[m]).
std::vector<std::size_t> mode_product_order(const Shape& shape, const std::vector<std::size_t>& rows, std::size_t skip,
                                            std::size_t also_skip);

/// X times M_m along every mode m but `skip` and `also_skip` (M_m: rows[m] x shape[m], column-major; a skip
/// >= the order skips nothing), the modes taken in order of decreasing shape[m] / rows[m] so that the intermediate
/// shrinks fastest; `shape` becomes the result's. Reads X once.
template <class T>
std::vector<double> multi_mode_product(const T* X, Shape& shape, const std::vector<const double*>& Ms,
                                       const std::vector<std::size_t>& rows, std::size_t skip,
                                       std::size_t also_skip = static_cast<std::size_t>(-1));
/// The same into `out` (the result's size, every value written): no copy of the result, each intermediate
/// freed as soon as the next is formed, and a chain of two or more products taken a slab of the skipped mode
/// at a time (multi_mode_product_values: what it holds at most).
template <class T>
void multi_mode_product_into(const T* X, Shape& shape, const std::vector<const double*>& Ms,
                             const std::vector<std::size_t>& rows, std::size_t skip, std::size_t also_skip,
                             double* out);
/// The most values multi_mode_product_into holds at once beside its input, its result included (by slabs of
/// the skipped mode where the chain has two or more products; see mttkrp.cpp).
double multi_mode_product_values(const Shape& shape, const std::vector<std::size_t>& rows, std::size_t skip,
                                 std::size_t also_skip = static_cast<std::size_t>(-1));
/// Sets the values of X in a slab of multi_mode_product_into (0: the default, 2^13; slabs only where the whole
/// chain's intermediates would hold 128 x that and four slabs); false (nothing changes) above 2^40. For tests.
bool multi_mode_product_slab(std::size_t values);
/// The shape multi_mode_product gives for these arguments.
Shape multi_mode_product_shape(Shape shape, const std::vector<std::size_t>& rows, std::size_t skip,
                               std::size_t also_skip = static_cast<std::size_t>(-1));

/// X_(n) Z_(n)^T for two tensors that agree in every mode but n: X of shape `shape`, Z of that shape with `zn`
/// in mode n; `out` (shape[n] x zn, column-major) is overwritten. The contraction of every mode but n.
void contract_except(const double* X, const double* Z, const Shape& shape, std::size_t n, std::size_t zn, double* out);

/// The transpose of an n x R column-major matrix (R x n).
std::vector<double> transposed(const double* F, std::size_t n, std::size_t R);

/// The core consistency of a CP model (Bro & Kiers 2003), in percent: 100 (1 - ||G - I||^2 / R) for the
/// least-squares Tucker core G (R^N, column-major) of the data with the CP factors fixed, I the
/// superdiagonal of ones. 100 when the data are exactly the CP model; near or below 0 when a rank-one
/// component is not supported by the data (a rank too high).
double core_consistency(const std::vector<double>& G, std::size_t R, std::size_t N);

extern template void mttkrp<float>(const float*, const Shape&, std::size_t, std::size_t,
                                   const std::vector<const double*>&, double*, MttkrpWorkspace<float>&);
extern template void mttkrp<double>(const double*, const Shape&, std::size_t, std::size_t,
                                    const std::vector<const double*>&, double*, MttkrpWorkspace<double>&);
extern template void contract_last<float>(const float*, const Shape&, std::size_t, const double*, double*,
                                          MttkrpWorkspace<float>&);
extern template void contract_last<double>(const double*, const Shape&, std::size_t, const double*, double*,
                                           MttkrpWorkspace<double>&);

} // namespace unmix
