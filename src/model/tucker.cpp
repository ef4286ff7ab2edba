#include "unmix/model/tucker.hpp"

#include <algorithm>

#include "unmix/kernels/blas.hpp"

namespace unmix {

template <class T>
Tucker<T>::Tucker(const DistTensor<T>& Y, std::vector<std::size_t> ranks, bool dimension_tree)
    : ModeFactors<T>(Y, std::move(ranks), "Tucker") {
  this->plan_tree(dimension_tree);
}

template <class T> Tensor<double> Tucker<T>::partial(std::size_t n, const std::vector<Tensor<double>>& F) const {
  ++passes_;
  Shape shape = Y_->local().shape();
  std::vector<std::vector<double>> Ft(N_);
  std::vector<const double*> Ms(N_, nullptr);
  for (std::size_t m = 0; m < N_; ++m)
    if (m != n) {
      Ft[m] = transposed(F[m].data(), this->rows_local(m), this->rank(m));
      Ms[m] = Ft[m].data();
    }
  std::vector<double> P = multi_mode_product<T>(Y_->local().data(), shape, Ms, this->ranks_, n);
  Tensor<double> out(shape);
  std::copy(P.begin(), P.end(), out.data());
  block_comm_[n]->allreduce(out.span());
  return out;
}

template <class T> Tensor<double> Tucker<T>::contracted(const Tensor<double>& F_last) const {
  if (!this->tree_) throw Error("internal error: the contraction of the last mode is not used for this problem");
  ++passes_;
  const std::size_t L = N_ - 1;
  Shape shape = Y_->local().shape();
  const std::vector<double> Ft = transposed(F_last.data(), this->rows_local(L), this->rank(L));
  const std::vector<double> C = mode_product<T>(Y_->local().data(), shape, L, Ft.data(), this->rank(L));
  shape[L] = this->rank(L);
  Tensor<double> out(shape);
  std::copy(C.begin(), C.end(), out.data());
  last_comm_->allreduce(out.span());
  return out;
}

template <class T>
Tensor<double> Tucker<T>::partial_from(const Tensor<double>& C, std::size_t n,
                                       const std::vector<Tensor<double>>& F) const {
  Shape shape = C.shape();
  std::vector<std::vector<double>> Ft(N_);
  std::vector<const double*> Ms(N_, nullptr);
  for (std::size_t m = 0; m + 1 < N_; ++m)
    if (m != n) {
      Ft[m] = transposed(F[m].data(), this->rows_local(m), this->rank(m));
      Ms[m] = Ft[m].data();
    }
  const std::vector<double> P = multi_mode_product<double>(C.data(), shape, Ms, this->ranks_, n, N_ - 1);
  Tensor<double> out(shape);
  std::copy(P.begin(), P.end(), out.data());
  tree_comm_[n]->allreduce(out.span());
  return out;
}

template <class T>
Tensor<double> Tucker<T>::projected(std::size_t n, const Tensor<double>& P, const Tensor<double>& Fn) const {
  Tensor<double> Z(core_shape());
  const std::vector<double> Ft = transposed(Fn.data(), this->rows_local(n), this->rank(n));
  const std::vector<double> z = mode_product<double>(P.data(), P.shape(), n, Ft.data(), this->rank(n));
  std::copy(z.begin(), z.end(), Z.data());
  rows_comm_[n]->allreduce(Z.span());
  return Z;
}

template <class T>
Tensor<double> Tucker<T>::times_core(std::size_t n, const Tensor<double>& P, const Tensor<double>& G) const {
  Tensor<double> M({this->rows_local(n), this->rank(n)});
  contract_except(P.data(), G.data(), P.shape(), n, this->rank(n), M.data());
  return M;
}

template <class T>
Tensor<double> Tucker<T>::core_times(const Tensor<double>& G, const std::vector<std::vector<double>>& W,
                                     std::size_t skip) const {
  Shape shape = core_shape();
  std::vector<const double*> Ms(N_, nullptr);
  for (std::size_t m = 0; m < N_; ++m)
    if (m != skip) Ms[m] = W[m].data(); // symmetric: W_m^T = W_m
  const std::vector<double> X = multi_mode_product<double>(G.data(), shape, Ms, this->ranks_, skip);
  Tensor<double> out(shape);
  std::copy(X.begin(), X.end(), out.data());
  return out;
}

template <class T>
std::vector<double> Tucker<T>::gram_except(std::size_t n, const Tensor<double>& G,
                                           const std::vector<std::vector<double>>& W) const {
  const Tensor<double> X = core_times(G, W, n);
  const std::size_t R = this->rank(n);
  std::vector<double> H(R * R);
  contract_except(G.data(), X.data(), core_shape(), n, R, H.data());
  // Symmetric in exact arithmetic; made exactly so for the eigenvalues and the solves that use it.
  for (std::size_t j = 0; j < R; ++j)
    for (std::size_t i = j + 1; i < R; ++i) H[i + j * R] = H[j + i * R] = 0.5 * (H[i + j * R] + H[j + i * R]);
  return H;
}

template <class T>
double Tucker<T>::exact_residual2(const std::vector<Tensor<double>>& F, const Tensor<double>& G) const {
  ++passes_;
  const Shape& shape = Y_->local().shape();
  double s = 0;
  if (shape_size(shape) > 0) {
    // The model's block: W = G x_(m < N-1) F_m (local rows), then W_(0..N-2) F_(N-1)^T, a slab of the last
    // mode at a time.
    Shape ws = core_shape();
    std::vector<const double*> Ms(N_, nullptr);
    std::vector<std::size_t> rows(N_);
    for (std::size_t m = 0; m < N_; ++m) {
      rows[m] = this->rows_local(m);
      Ms[m] = F[m].data();
    }
    const std::vector<double> W = multi_mode_product<double>(G.data(), ws, Ms, rows, N_ - 1);
    const std::size_t head = shape_size(shape) / shape[N_ - 1], J = shape[N_ - 1], RL = this->rank(N_ - 1);
    const std::size_t slab = std::max<std::size_t>(1, (std::size_t{1} << 20) / std::max<std::size_t>(1, head));
    std::vector<double> Mdl(head * std::min(slab, J));
    const T* y = Y_->local().data();
    for (std::size_t j0 = 0; j0 < J; j0 += slab) {
      const std::size_t nj = std::min(slab, J - j0);
      blas::gemm<double>(blas::Trans::N, blas::Trans::T, head, nj, RL, 1.0, W.data(), head, F[N_ - 1].data() + j0, J,
                         0.0, Mdl.data(), head);
      for (std::size_t k = 0; k < head * nj; ++k) {
        const double d = static_cast<double>(y[j0 * head + k]) - Mdl[k];
        s += d * d;
      }
    }
  }
  return Y_->comm().allreduce(s);
}

template <class T>
Tensor<double> Tucker<T>::sources_local(const std::vector<Tensor<double>>& F, const Tensor<double>& G) const {
  Shape shape = core_shape();
  std::vector<const double*> Ms(N_, nullptr);
  std::vector<std::size_t> rows(N_);
  for (std::size_t m = 0; m < N_; ++m) {
    rows[m] = this->rows_local(m);
    Ms[m] = F[m].data();
  }
  const std::vector<double> B = multi_mode_product<double>(G.data(), shape, Ms, rows, 0);
  Tensor<double> out(this->b_local_shape());
  std::copy(B.begin(), B.end(), out.data());
  return out;
}

template class Tucker<float>;
template class Tucker<double>;

} // namespace unmix
