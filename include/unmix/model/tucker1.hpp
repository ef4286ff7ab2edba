#pragma once
// The Tucker-1 model Y ~= B x1 A on a block-partitioned tensor. Every process holds the rows of A of
// its mixture block (I_p x R) and the columns of B of its box of the other modes (R x M_p). Local
// products are combined by allreduce over the right sub-communicator:
//   - over the processes that split the mixture mode (same column box): A^T A, A^T Y, <A, X>;
//   - over the processes that split the other modes (same mixture block): B B^T, Y B^T, <B, X>.
// The relative error comes from Gram matrices and inner products, never from the model tensor.
#include <cstddef>
#include <functional>
#include <vector>

#include "unmix/constraints/constraints.hpp"
#include "unmix/dist/dist_tensor.hpp"
#include "unmix/dist/reducers.hpp"
#include "unmix/kernels/fused.hpp"

namespace unmix {

template <class T> class Tucker1 {
public:
  Tucker1(const DistTensor<T>& Y, std::size_t rank);

  const DistTensor<T>& data() const { return *Y_; }
  std::size_t rank() const { return R_; }
  std::size_t mixtures() const { return I_; }    // I
  std::size_t rows_local() const { return Ip_; } // I_p
  std::size_t row_offset() const { return i0_; }
  std::size_t cols_local() const { return Mp_; } // M_p
  std::size_t cols_global() const { return M_; }
  Shape b_global_shape() const; // R x J1 x ...
  Shape b_local_shape() const;
  Shape b_offset() const;
  /// True on the processes that hold the first replica of their A rows / B columns (for writing).
  bool owns_A() const;
  bool owns_B() const;

  // ---- collective products (double precision results) ----
  /// A^T A of the whole A (R x R), from the local rows.
  std::vector<double> gram_A(const Tensor<double>& A) const;
  /// B B^T of the whole B (R x R), from the local columns.
  std::vector<double> gram_B(const Tensor<double>& B) const;
  /// A^T Y restricted to this process's columns (R x M_p).
  Tensor<double> AtY(const Tensor<double>& A) const;
  /// The same into `out`, whose storage is reused when it already holds R x M_p values (no allocation,
  /// no page faults: the two-pass iteration forms it every iteration).
  void AtY(const Tensor<double>& A, Tensor<double>& out) const;
  /// A^T Y restricted to this process's columns, a tile of columns at a time (at most 2^16 values of it): `f(first
  /// column, columns, M)` with M the tile's R x columns values, column-major (reduced as AtY's). One pass over Y,
  /// none of A^T Y held whole (at a few mixtures it is as large as Y or more).
  void AtY_by_tiles(const Tensor<double>& A,
                    const std::function<void(std::size_t, std::size_t, const double*)>& f) const;
  /// Y B^T restricted to this process's rows (I_p x R).
  Tensor<double> YBt(const Tensor<double>& B) const;
  /// Inner products of whole A-shaped (I x R) and B-shaped arrays from local blocks.
  double dot_A(const Tensor<double>& X, const Tensor<double>& Z) const;
  double dot_B(const Tensor<double>& X, const Tensor<double>& Z) const;
  /// Sums of local scalars over the A-sharing or B-sharing processes.
  double sum_A(double local) const;
  double sum_B(double local) const;
  double normY2() const { return normY2_; }
  /// Largest value of `v` over all processes (for decisions every process must share).
  double max_all(double v) const { return Y_->comm().allreduce(v, Op::max); }
  /// ||Y - A B||^2 formed blockwise (one pass over Y); used when the Gram formula would cancel.
  double exact_residual2(const Tensor<double>& A, const Tensor<double>& B) const;

  /// True when the mixture mode is split over processes (A^T Y then needs a reduction before B can be
  /// updated, so the single-pass iteration is not available).
  bool mixture_split() const { return a_comm_->size() > 1; }
  /// The B step in one pass over the local Y (kernels/fused.hpp); Q, P and the pass's sums (FusedStepOutput's
  /// grad2, stat2, change2, norm2) are reduced over the processes sharing the mixture block. Requires
  /// !mixture_split().
  struct PassSums {
    double grad2 = 0, stat2 = 0, change2 = 0, norm2 = 0;
  };
  PassSums fused_b_step(Tensor<double>& B, Tensor<double>& Bprev, const FusedStepInput& in, Tensor<double>& Q,
                        std::vector<double>& P) const;

  /// How many times the products above (A^T Y, Y B^T, the single pass, the blockwise residual) have read the
  /// local Y since construction: what an iteration costs in memory traffic, for tests and reports.
  std::size_t passes() const { return passes_; }

  /// Views for the constraints (the local block plus reducers over the processes sharing slices).
  FactorView view_A(Tensor<double>& A) const;
  FactorView view_B(Tensor<double>& B) const;

  /// Global min and max of Y, and the count of entries that are not finite.
  double y_min() const { return ymin_; }
  double y_max() const { return ymax_; }
  double y_nonfinite() const { return ynonfinite_; }

private:
  /// Columns of a tile of the products formed a tile at a time: 2^16 values of an R x columns product.
  std::size_t tile_columns() const;
  /// A^T Y for the local columns [c0, c0 + n) into dst (R x n, column-major, double), not reduced; `At` is A in
  /// T; in float the product goes through `scratch` (R x n values of T).
  void aty_columns(const T* At, std::size_t c0, std::size_t n, T* scratch, double* dst) const;

  const DistTensor<T>* Y_;
  std::size_t R_, I_, Ip_, i0_, Mp_, M_;
  double normY2_ = 0, ymin_ = 0, ymax_ = 0, ynonfinite_ = 0;
  mutable std::size_t passes_ = 0;
  mutable FusedTuning tuning_; // the single pass's read-ahead, measured by all processes together
  const Comm* a_comm_;         // processes splitting the mixture mode (same column box)
  const Comm* b_comm_;         // processes splitting the other modes (same mixture block)
  FactorReducers a_red_, b_red_;
};

extern template class Tucker1<float>;
extern template class Tucker1<double>;

} // namespace unmix
