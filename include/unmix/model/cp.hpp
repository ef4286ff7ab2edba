#pragma once
// The CP (canonical polyadic) model Y ~= sum_r a0_r o a1_r o ... o a(N-1)_r on a block-partitioned tensor
// (ALGORITHMS.md section 1). Factor n is I_n x R; mode 0 is the mixture mode, so factor 0 holds the
// mixing proportions (the A of Tucker-1) and source r is the rank-one tensor a1_r o ... o a(N-1)_r (CP is
// Tucker-1 with every slice of B of rank one).
//
// Factors, Gram matrices and the reductions are those of ModeFactors; the MTTKRP of mode n (Y_(n) times the
// Khatri-Rao product of the other factors) is reduced over the processes that share the mode-n block.
// The relative error comes from Gram matrices and one MTTKRP, never from the model tensor.
#include <cstddef>
#include <vector>

#include "unmix/kernels/mttkrp.hpp"
#include "unmix/model/mode_factors.hpp"

namespace unmix {

template <class T> class CP : public ModeFactors<T> {
public:
  /// `dimension_tree`: serve the MTTKRPs of modes 0..N-2 from one contraction of the last mode (below)
  /// where that pays; false always reads Y once per mode (for comparisons).
  CP(const DistTensor<T>& Y, std::size_t rank, bool dimension_tree = true);
  static constexpr bool has_core = false;

  using ModeFactors<T>::rank;
  std::size_t rank() const { return R_; }

  // ---- collective products ----
  /// Y_(n) times the Khatri-Rao product of the other factors, for this process's rows of mode n
  /// (rows_local(n) x R). One pass over the local Y.
  Tensor<double> mttkrp(std::size_t n, const std::vector<Tensor<double>>& F) const;
  /// Dimension tree (ModeFactors::tree_pays): an iteration reads Y once to contract the last mode with its new
  /// factor (contracted(),
  /// I_0 ... I_(N-2) x R, reduced over the processes that split the last mode) and once for the last mode's
  /// MTTKRP; the MTTKRPs of the other modes come from the contraction (mttkrp_from(), no pass over Y), which the
  /// solver keeps while the last factor is unchanged.
  Tensor<double> contracted(const Tensor<double>& F_last) const;
  /// The same into C's storage (kept when C has the shape already): the solver's every iteration would otherwise
  /// map fresh pages for it, and a page fault costs much more than its share of the contraction on some hosts
  /// (measured on a 2-core Zen 4 VM at 200 x 200 x 200, R = 10: 11 against 21 ms an iteration when the
  /// allocator took the 3.2 MB afresh each time).
  void contracted(const Tensor<double>& F_last, Tensor<double>& C) const;
  Tensor<double> mttkrp_from(const Tensor<double>& C, std::size_t n, const std::vector<Tensor<double>>& F) const;
  /// ||Y - model||^2 formed blockwise (one pass over Y); used when the Gram formula would cancel.
  double exact_residual2(const std::vector<Tensor<double>>& F) const;
  /// How many times the products above have read the local Y since construction.
  std::size_t passes() const { return passes_; }

  /// The least-squares Tucker core of the data for these CP factors, G = Y x_0 F_0^+ x_1 F_1^+ ... (R^N,
  /// column-major; F^+ the pseudo-inverse, from the Gram matrix's eigenvalues above 1e-12 of the largest),
  /// the same on every process: each process multiplies its block by its columns of the pseudo-inverses
  /// (largest extent first, so the intermediate shrinks fastest) and the R^N pieces are summed. One pass
  /// over the local Y. Empty when R^N exceeds 2^24 values. For core_consistency (kernels/mttkrp.hpp).
  std::vector<double> least_squares_core(const std::vector<Tensor<double>>& F) const;

  /// The sources as Tucker-1 sees them: B (R x J1 x ... x J(N-1)), B[r, j1, ...] = prod_(m >= 1) F_m[j_m, r],
  /// for this process's box of the modes 1..N-1 (where and how the output writes them: ModeFactors).
  Tensor<double> sources_local(const std::vector<Tensor<double>>& F) const;
  /// The box [at, at + count) of sources_local (local coordinates, mode 0 the ranks), formed alone: the output
  /// writes B a piece at a time (h5::write_generated), since B whole is R / I_0 of Y in doubles.
  Tensor<double> sources_box(const std::vector<Tensor<double>>& F, const Shape& at, const Shape& count) const;

private:
  using ModeFactors<T>::Y_;
  using ModeFactors<T>::N_;
  using ModeFactors<T>::block_comm_;
  using ModeFactors<T>::tree_;
  using ModeFactors<T>::tree_comm_;
  using ModeFactors<T>::last_comm_;
  std::size_t R_;
  mutable std::size_t passes_ = 0;
  mutable MttkrpWorkspace<T> ws_;
  mutable std::vector<double> left_, right_, scratch_;
};

/// sources_box from the factors alone: F[m] (m >= 1) holds the local rows of factor m (F[0] is not used).
Tensor<double> cp_sources_box(const std::vector<Tensor<double>>& F, const Shape& at, const Shape& count);

extern template class CP<float>;
extern template class CP<double>;

} // namespace unmix
