#pragma once
// The Tucker model Y ~= G x_0 F_0 x_1 F_1 ... x_(N-1) F_(N-1) on a block-partitioned tensor (ALGORITHMS.md
// section 1): factor n is I_n x R_n, the core G is R_0 x ... x R_(N-1). Mode 0 is the mixture mode, so F_0
// holds the mixing proportions (the A of Tucker-1) and the sources are B = G x_1 F_1 ... x_(N-1) F_(N-1)
// (Tucker-1 with the sources' tensor compressed along every other mode).
//
// Factors are distributed as in ModeFactors; the core is small and the same on every process. For factor n,
// with X_n = G x_(m != n) F_m,
//     grad_n = F_n H_n - M_n,   H_n = X_n(n) X_n(n)^T = G_(n) (G x_(m != n) F_m^T F_m)_(n)^T   (R_n x R_n),
//     M_n = Y_(n) X_n(n)^T = P_n(n) G_(n)^T,   P_n = Y x_(m != n) F_m^T   (one pass over the local Y,
//     reduced over the processes sharing the mode-n block);
// for the core, grad_G = G x_0 F_0^T F_0 ... - Z with Z = Y x_0 F_0^T ... x_(N-1) F_(N-1)^T = P_n x_n F_n^T
// for any n (reduced over the processes splitting mode n), so the pass of the last factor's step also gives
// the core's product. The objective, from Gram matrices and one such product: ||Y||^2 - 2 <F_n, M_n> +
// <F_n^T F_n, H_n>.
#include <cstddef>
#include <vector>

#include "unmix/kernels/mttkrp.hpp"
#include "unmix/model/mode_factors.hpp"

namespace unmix {

template <class T> class Tucker : public ModeFactors<T> {
public:
  /// ranks[n]: the number of columns of factor n (the core's extent in mode n).
  /// `dimension_tree`: serve the products of modes 0..N-2 from one contraction of the last mode where that pays
  /// (ModeFactors::tree_pays with the last rank); false always reads Y once per mode (for comparisons).
  Tucker(const DistTensor<T>& Y, std::vector<std::size_t> ranks, bool dimension_tree = true);
  static constexpr bool has_core = true;

  const std::vector<std::size_t>& ranks() const { return this->ranks_; }
  const Shape& core_shape() const { return this->ranks_; }
  std::size_t core_size() const { return shape_size(this->ranks_); }
  /// True on the one process that writes the core.
  bool owns_core() const { return Y_->comm().rank() == 0; }

  // ---- collective products ----
  /// P_n = Y x_(m != n) F_m^T for this process's rows of mode n: the core's shape with rows_local(n) in mode n.
  /// One pass over the local Y.
  Tensor<double> partial(std::size_t n, const std::vector<Tensor<double>>& F) const;
  /// With the dimension tree: C = Y x_(N-1) F_(N-1)^T (this process's block with R_(N-1) in the last mode,
  /// reduced over the processes splitting the last mode; one pass over the local Y), and P_n for n < N-1 from it
  /// (no pass over Y), equal to partial(n, F) while the last factor is the one C was made with.
  Tensor<double> contracted(const Tensor<double>& F_last) const;
  /// The same into C's storage (reshaped only when its shape differs).
  void contracted(const Tensor<double>& F_last, Tensor<double>& C) const;
  Tensor<double> partial_from(const Tensor<double>& C, std::size_t n, const std::vector<Tensor<double>>& F) const;
  /// Z = P_n x_n F_n^T (the core's shape), the same on every process.
  Tensor<double> projected(std::size_t n, const Tensor<double>& P, const Tensor<double>& Fn) const;
  /// ||Y - model||^2 formed blockwise (one pass over Y); used when the Gram formula would cancel.
  double exact_residual2(const std::vector<Tensor<double>>& F, const Tensor<double>& G) const;
  /// How many times the products above have read the local Y since construction.
  std::size_t passes() const { return passes_; }

  // ---- local, MPI-free ----
  /// M_n = P_n(n) G_(n)^T (rows_local(n) x R_n).
  Tensor<double> times_core(std::size_t n, const Tensor<double>& P, const Tensor<double>& G) const;
  /// G x_m W_m for every m (W_m: R_m x R_m, e.g. the Gram matrices), skipping mode `skip` (N: none).
  Tensor<double> core_times(const Tensor<double>& G, const std::vector<std::vector<double>>& W, std::size_t skip) const;
  /// H_n = G_(n) (G x_(m != n) W_m)_(n)^T (R_n x R_n) from the factors' Gram matrices W.
  std::vector<double> gram_except(std::size_t n, const Tensor<double>& G,
                                  const std::vector<std::vector<double>>& W) const;

  /// The sources as Tucker-1 sees them, B = G x_1 F_1 ... x_(N-1) F_(N-1) (R_0 x J1 x ... x J(N-1)), for this
  /// process's box of the modes 1..N-1 (where and how the output writes them: ModeFactors).
  Tensor<double> sources_local(const std::vector<Tensor<double>>& F, const Tensor<double>& G) const;
  /// The box [at, at + count) of sources_local (local coordinates, mode 0 the core's first mode), formed alone
  /// (the output writes B a piece at a time, h5::write_generated).
  Tensor<double> sources_box(const std::vector<Tensor<double>>& F, const Tensor<double>& G, const Shape& at,
                             const Shape& count) const;

private:
  /// F_m^T (R_m x local rows, kept in Ft) for the modes m < end but `skip`, and pointers to them (null elsewhere):
  /// the matrices of a product with all factors but one.
  std::vector<const double*> transposed_factors(const std::vector<Tensor<double>>& F, std::size_t skip, std::size_t end,
                                                std::vector<std::vector<double>>& Ft) const;
  using ModeFactors<T>::Y_;
  using ModeFactors<T>::N_;
  using ModeFactors<T>::rows_comm_;
  using ModeFactors<T>::block_comm_;
  using ModeFactors<T>::tree_comm_;
  using ModeFactors<T>::last_comm_;
  mutable std::size_t passes_ = 0;
};

extern template class Tucker<float>;
extern template class Tucker<double>;

} // namespace unmix
