#pragma once
// What the models with one factor matrix per mode (CP, Tucker) share on a block-partitioned tensor: factor n
// is I_n x R_n, and every process holds the rows of factor n that belong to its block of mode n (the other
// processes with the same mode-n block hold copies of the same rows). Local products are combined by
// allreduce over the right sub-communicator:
//   - Gram matrices F_n^T F_n and inner products of factor n: over the processes that split mode n;
//   - products of Y with every factor but mode n's: over the processes that share the mode-n block.
#include <cstddef>
#include <memory>
#include <vector>

#include "unmix/constraints/constraints.hpp"
#include "unmix/dist/dist_tensor.hpp"
#include "unmix/dist/reducers.hpp"

namespace unmix {

template <class T> class ModeFactors {
public:
  const DistTensor<T>& data() const { return *Y_; }
  std::size_t order() const { return N_; }
  /// Factor n's number of columns.
  std::size_t rank(std::size_t n) const { return ranks_[n]; }
  std::size_t extent(std::size_t n) const { return Y_->global_shape()[n]; }
  std::size_t rows_local(std::size_t n) const { return Y_->local().extent(n); }
  std::size_t row_offset(std::size_t n) const { return Y_->offset()[n]; }
  /// True on the process that holds the first copy of its rows of factor n (for writing).
  bool owns(std::size_t n) const;

  /// F_n^T F_n of the whole factor (R_n x R_n) from the local rows.
  std::vector<double> gram(std::size_t n, const Tensor<double>& F) const;
  /// Inner product of two factor-n-shaped arrays, and a sum of local values over factor n's rows.
  double dot(std::size_t n, const Tensor<double>& X, const Tensor<double>& Z) const;
  double sum_rows(std::size_t n, double local) const;
  double normY2() const { return summary_.sum2; }
  double y_min() const { return summary_.min; }
  double y_max() const { return summary_.max; }
  double y_nonfinite() const { return summary_.nonfinite; }
  double max_all(double v) const { return Y_->comm().allreduce(v, Op::max); }
  /// Factor n seen by the constraints (its rows, with reducers over the processes splitting mode n).
  FactorView view(std::size_t n, Tensor<double>& F) const;

  /// The sources as Tucker-1 sees them (B: R_0 x J1 x ... x J(N-1)): where the output writes them and their
  /// shapes for this process's box of the modes 1..N-1.
  Shape b_global_shape() const;
  Shape b_local_shape() const;
  Shape b_offset() const;
  bool owns_B() const { return Y_->comms().coords()[0] == 0; }

  /// Dimension tree (CP and Tucker): the data contracted with the last factor serves the products of every
  /// other mode, so an iteration reads Y twice (the contraction, and the last mode's own product) instead of once
  /// per mode. Its memory traffic per iteration, 2 + N R / J in units of Y (R: the last factor's columns, J: the
  /// shortest block of the last mode), must be at most 3/4 of one pass per mode (J > 12 R for three modes, J > 4 R
  /// for four), with J >= 2R. Measured for CP on a 2-core Zen 4 at R = 10: 1.6-1.85 times faster at
  /// 200 x 200 x 200, 0.8-1.0 at 2000 x 100 x 40 (J = 4R), which the rule leaves without.
  static bool tree_pays(std::size_t order, std::size_t rank, std::size_t shortest_last);
  /// The objective from Gram matrices and a product with Y cancels when it is small against ||Y||^2: below this
  /// fraction the solvers form the residual instead. The products of float32 data carry float rounding
  /// (measured: 3e-8 of ||Y||^2 on a 12 x 10 x 8 tensor, which hid a relative error of 1.9e-4 behind a reported
  /// 5.8e-5), double ones about 1e-16.
  static constexpr double exact_below = sizeof(T) == 4 ? 1e-6 : 1e-9;
  bool uses_tree() const { return tree_; }

protected:
  /// Decides the tree (the same on every process) and creates its sub-communicators when used.
  void plan_tree(bool wanted);
  /// `what`: the model's name for the message refusing a tensor of one mode.
  ModeFactors(const DistTensor<T>& Y, std::vector<std::size_t> ranks, const char* what);

  const DistTensor<T>* Y_;
  std::size_t N_;
  std::vector<std::size_t> ranks_;
  ValueSummary summary_;
  std::vector<const Comm*> rows_comm_;  // per mode: the processes splitting mode n
  std::vector<const Comm*> block_comm_; // per mode: the processes sharing this mode-n block
  std::vector<std::unique_ptr<FactorReducers>> reducers_;
  bool tree_ = false;
  std::vector<const Comm*> tree_comm_; // per mode n < N-1: the processes sharing the mode-n and last-mode blocks
  const Comm* last_comm_ = nullptr;    // the processes splitting the last mode
};

extern template class ModeFactors<float>;
extern template class ModeFactors<double>;

/// Pointers to the factors' data, in mode order.
std::vector<const double*> factor_pointers(const std::vector<Tensor<double>>& F);

/// Rows [row0, row0 + rows) and columns [col0, col0 + cols) of a factor (F.extent(0) rows, column-major) into
/// out (rows x cols, column-major): a box of a factor for the sources' pieces and the residuals' slabs.
void copy_factor_rows(const Tensor<double>& F, std::size_t row0, std::size_t rows, std::size_t col0, std::size_t cols,
                      double* out);

/// sum_k (y[k] - model[k])^2 over k < n, in double: the exact residuals' sum over a slab. Eight interleaved
/// partial sums added in a fixed order (the same result on every run), so that the additions do not wait on
/// one another as a single running sum's do.
template <class T> double squared_distance(const T* y, const double* model, std::size_t n);

/// The slabs of the exact residuals (CP's and Tucker's exact_residual2): `per` values of the model's block per
/// index of the slabbed axis, about 2^20 values a slab (at least one index). Also counted by the memory estimate.
constexpr std::size_t residual_slab(std::size_t per) {
  const std::size_t values = std::size_t{1} << 20;
  return per == 0 || per >= values ? 1 : values / per;
}

} // namespace unmix
