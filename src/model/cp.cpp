#include "unmix/model/cp.hpp"

#include "unmix/kernels/blas.hpp"

#include <algorithm>

namespace unmix {

template <class T>
CP<T>::CP(const DistTensor<T>& Y, std::size_t rank, bool dimension_tree)
    : ModeFactors<T>(Y, std::vector<std::size_t>(Y.global_shape().size(), rank), "CP"), R_(rank) {
  this->plan_tree(dimension_tree);
}

template <class T> Tensor<double> CP<T>::mttkrp(std::size_t n, const std::vector<Tensor<double>>& F) const {
  ++passes_;
  Tensor<double> M({this->rows_local(n), R_});
  unmix::mttkrp<T>(Y_->local().data(), Y_->local().shape(), n, R_, factor_pointers(F), M.data(), ws_);
  block_comm_[n]->allreduce(M.span());
  return M;
}

template <class T> Tensor<double> CP<T>::contracted(const Tensor<double>& F_last) const {
  Tensor<double> C;
  contracted(F_last, C);
  return C;
}

template <class T> void CP<T>::contracted(const Tensor<double>& F_last, Tensor<double>& C) const {
  if (!tree_) throw Error("internal error: the contraction of the last mode is not used for this problem");
  ++passes_;
  Shape s = Y_->local().shape();
  s.pop_back();
  const Shape want{shape_size(s), R_};
  if (C.shape() != want) C = Tensor<double>(want);
  contract_last<T>(Y_->local().data(), Y_->local().shape(), R_, F_last.data(), C.data(), ws_);
  last_comm_->allreduce(C.span());
}

template <class T>
Tensor<double> CP<T>::mttkrp_from(const Tensor<double>& C, std::size_t n, const std::vector<Tensor<double>>& F) const {
  Tensor<double> M({this->rows_local(n), R_});
  mttkrp_contracted(C.data(), Y_->local().shape(), n, R_, factor_pointers(F), M.data(), left_, right_, scratch_);
  tree_comm_[n]->allreduce(M.span());
  return M;
}

template <class T> double CP<T>::exact_residual2(const std::vector<Tensor<double>>& F) const {
  ++passes_;
  const Shape& shape = Y_->local().shape();
  double s = 0;
  if (shape_size(shape) > 0) {
    // The model's block: F_0 (I_0 x R) times the Khatri-Rao product of the others, transposed, a slab of
    // columns at a time (the product's rows for the slab only: whole, it is R / I_0 of Y in doubles).
    const std::size_t I0 = shape[0], cols = shape_size(shape) / I0;
    const std::vector<const double*> fp = factor_pointers(F);
    const std::size_t slab = residual_slab(I0);
    std::vector<double> Mdl(I0 * std::min(slab, cols)), K(std::min(slab, cols) * R_);
    const T* y = Y_->local().data();
    for (std::size_t j0 = 0; j0 < cols; j0 += slab) {
      const std::size_t nj = std::min(slab, cols - j0);
      khatri_rao_rows(shape, 1, N_, R_, fp, j0, nj, K.data());
      blas::gemm<double>(blas::Trans::N, blas::Trans::T, I0, nj, R_, 1.0, F[0].data(), I0, K.data(), nj, 0.0,
                         Mdl.data(), I0);
      s += squared_distance(y + j0 * I0, Mdl.data(), I0 * nj);
    }
  }
  return Y_->comm().allreduce(s);
}

template <class T> std::vector<double> CP<T>::least_squares_core(const std::vector<Tensor<double>>& F) const {
  double values = 1;
  for (std::size_t n = 0; n < N_; ++n) values *= static_cast<double>(R_);
  if (values > static_cast<double>(std::size_t{1} << 24)) return {};
  // This process's columns of each pseudo-inverse: P_n = pinv(F_n^T F_n) F_n(local rows)^T (R x rows).
  std::vector<std::vector<double>> P(N_);
  for (std::size_t n = 0; n < N_; ++n) {
    const std::vector<double> Gm = this->gram(n, F[n]);
    std::vector<double> V;
    const std::vector<double> lam = blas::sym_eig(Gm.data(), R_, &V);
    const double cut = 1e-12 * std::max(lam.back(), 0.0);
    std::vector<double> Ginv(R_ * R_, 0.0);
    for (std::size_t k = 0; k < R_; ++k)
      if (lam[k] > cut && lam[k] > 0)
        for (std::size_t j = 0; j < R_; ++j)
          for (std::size_t i = 0; i < R_; ++i) Ginv[i + j * R_] += V[i + k * R_] * V[j + k * R_] / lam[k];
    const std::size_t rows = this->rows_local(n);
    P[n].assign(R_ * rows, 0.0);
    if (rows > 0)
      blas::gemm<double>(blas::Trans::N, blas::Trans::T, R_, rows, R_, 1.0, Ginv.data(), R_, F[n].data(), rows, 0.0,
                         P[n].data(), R_);
  }
  ++passes_;
  std::vector<double> G(static_cast<std::size_t>(values), 0.0);
  Shape shape = Y_->local().shape();
  if (shape_size(shape) > 0) {
    std::vector<const double*> Ps;
    for (const auto& p : P) Ps.push_back(p.data());
    G = multi_mode_product<T>(Y_->local().data(), shape, Ps, std::vector<std::size_t>(N_, R_), N_);
  }
  Y_->comm().allreduce(std::span<double>(G));
  return G;
}

template <class T> Tensor<double> CP<T>::sources_local(const std::vector<Tensor<double>>& F) const {
  return sources_box(F, Shape(N_, 0), this->b_local_shape());
}

template <class T>
Tensor<double> CP<T>::sources_box(const std::vector<Tensor<double>>& F, const Shape& at, const Shape& count) const {
  return cp_sources_box(F, at, count);
}

Tensor<double> cp_sources_box(const std::vector<Tensor<double>>& F, const Shape& at, const Shape& count) {
  // The Khatri-Rao product of the factors' rows in the box, for the box's ranks (count[0] of them from at[0]).
  const std::size_t N = count.size(), r0 = at[0], nr = count[0];
  std::vector<std::vector<double>> sub(N);
  std::vector<const double*> ptr(N, nullptr);
  for (std::size_t m = 1; m < N; ++m) {
    sub[m].resize(count[m] * nr);
    copy_factor_rows(F[m], at[m], count[m], r0, nr, sub[m].data());
    ptr[m] = sub[m].data();
  }
  Tensor<double> B(count);
  const std::size_t cols = B.size() / std::max<std::size_t>(nr, 1);
  const std::vector<double> K = khatri_rao(count, 1, N, nr, ptr); // cols x nr
  for (std::size_t j = 0; j < cols; ++j)
    for (std::size_t r = 0; r < nr; ++r) B[r + j * nr] = K[j + r * cols];
  return B;
}

template class CP<float>;
template class CP<double>;

} // namespace unmix
