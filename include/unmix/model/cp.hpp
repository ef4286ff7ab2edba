#pragma once
// The CP (canonical polyadic) model Y ~= sum_r a0_r o a1_r o ... o a(N-1)_r on a block-partitioned tensor
// (ALGORITHMS.md section 1). Factor n is I_n x R; mode 0 is the mixture mode, so factor 0 holds the
// mixing proportions (the A of Tucker-1) and source r is the rank-one tensor a1_r o ... o a(N-1)_r (CP is
// Tucker-1 with every slice of B of rank one).
//
// Every process holds the rows of factor n that belong to its block of mode n. Local products are
// combined by allreduce over the right sub-communicator:
//   - Gram matrices F_n^T F_n and inner products of factor n: over the processes that split mode n (the
//     other processes with the same mode-n block hold copies of the same rows);
//   - the MTTKRP of mode n (Y_(n) times the Khatri-Rao product of the other factors): over the processes
//     that share the mode-n block.
// The relative error comes from Gram matrices and one MTTKRP, never from the model tensor.
#include <cstddef>
#include <memory>
#include <vector>

#include "unmix/constraints/constraints.hpp"
#include "unmix/dist/dist_tensor.hpp"
#include "unmix/dist/reducers.hpp"
#include "unmix/kernels/mttkrp.hpp"

namespace unmix {

template <class T> class CP {
public:
  /// `dimension_tree`: serve the MTTKRPs of modes 0..N-2 from one contraction of the last mode (below)
  /// where that pays; false always reads Y once per mode (for comparisons).
  CP(const DistTensor<T>& Y, std::size_t rank, bool dimension_tree = true);

  const DistTensor<T>& data() const { return *Y_; }
  std::size_t order() const { return N_; }
  std::size_t rank() const { return R_; }
  std::size_t extent(std::size_t n) const { return Y_->global_shape()[n]; }
  std::size_t rows_local(std::size_t n) const { return Y_->local().extent(n); }
  std::size_t row_offset(std::size_t n) const { return Y_->offset()[n]; }
  /// True on the process that holds the first copy of its rows of factor n (for writing).
  bool owns(std::size_t n) const;

  // ---- collective products ----
  /// F_n^T F_n of the whole factor (R x R) from the local rows.
  std::vector<double> gram(std::size_t n, const Tensor<double>& F) const;
  /// Y_(n) times the Khatri-Rao product of the other factors, for this process's rows of mode n
  /// (rows_local(n) x R). One pass over the local Y.
  Tensor<double> mttkrp(std::size_t n, const std::vector<Tensor<double>>& F) const;
  /// Dimension tree: an iteration reads Y twice whatever the order: once to contract the last mode with its
  /// new factor (contracted(), I_0 ... I_(N-2) x R, reduced over the processes that split the last mode) and
  /// once for the last mode's MTTKRP; the MTTKRPs of the other modes come from the contraction (mttkrp_from(),
  /// no pass over Y), which the solver keeps while the last factor is unchanged. Used where it pays
  /// (tree_pays, from the shortest block of the last mode, the same on every process).
  bool uses_tree() const { return tree_; }
  /// The tree's memory traffic per iteration, 2 + N R / J in units of Y (J: the shortest block of the last
  /// mode), is at most 3/4 of one pass per mode (J > 12 R for three modes, J > 4 R for four), with J >= 2R.
  /// Measured on a 2-core Zen 4 at R = 10: 1.6-1.85 times faster at 200 x 200 x 200, 0.8-1.0 at
  /// 2000 x 100 x 40 (J = 4R), which the rule leaves without.
  static bool tree_pays(std::size_t order, std::size_t rank, std::size_t shortest_last);
  Tensor<double> contracted(const Tensor<double>& F_last) const;
  Tensor<double> mttkrp_from(const Tensor<double>& C, std::size_t n, const std::vector<Tensor<double>>& F) const;
  /// Inner product of two factor-n-shaped arrays, and a sum of local values over factor n's rows.
  double dot(std::size_t n, const Tensor<double>& X, const Tensor<double>& Z) const;
  double sum_rows(std::size_t n, double local) const;
  double normY2() const { return summary_.sum2; }
  double y_min() const { return summary_.min; }
  double y_max() const { return summary_.max; }
  double y_nonfinite() const { return summary_.nonfinite; }
  double max_all(double v) const { return Y_->comm().allreduce(v, Op::max); }
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
  /// Factor n seen by the constraints (its rows, with reducers over the processes splitting mode n).
  FactorView view(std::size_t n, Tensor<double>& F) const;

  /// The sources as Tucker-1 sees them: B (R x J1 x ... x J(N-1)), B[r, j1, ...] = prod_(m >= 1) F_m[j_m, r],
  /// for this process's box of the modes 1..N-1; where the output writes it (owns_B) and its shapes.
  Tensor<double> sources_local(const std::vector<Tensor<double>>& F) const;
  Shape b_global_shape() const;
  Shape b_local_shape() const;
  Shape b_offset() const;
  bool owns_B() const { return Y_->comms().coords()[0] == 0; }

private:
  const DistTensor<T>* Y_;
  std::size_t N_, R_;
  ValueSummary summary_;
  mutable std::size_t passes_ = 0;
  mutable MttkrpWorkspace<T> ws_;
  std::vector<const Comm*> rows_comm_;  // per mode: the processes splitting mode n
  std::vector<const Comm*> block_comm_; // per mode: the processes sharing this mode-n block
  std::vector<const Comm*> tree_comm_;  // per mode n < N-1: ... and the same last-mode block
  const Comm* last_comm_ = nullptr;     // the processes splitting the last mode
  bool tree_ = false;
  mutable std::vector<double> left_, right_, scratch_;
  std::vector<std::unique_ptr<FactorReducers>> reducers_;
};

extern template class CP<float>;
extern template class CP<double>;

} // namespace unmix
