#include "unmix/model/tucker.hpp"

#include <algorithm>

#include "unmix/kernels/blas.hpp"

namespace unmix {

template <class T>
Tucker<T>::Tucker(const DistTensor<T>& Y, std::vector<std::size_t> ranks, bool dimension_tree)
    : ModeFactors<T>(Y, std::move(ranks), "Tucker") {
  this->plan_tree(dimension_tree);
}

template <class T>
std::vector<const double*> Tucker<T>::transposed_factors(const std::vector<Tensor<double>>& F, std::size_t skip,
                                                         std::size_t end, std::vector<std::vector<double>>& Ft) const {
  Ft.assign(N_, {});
  std::vector<const double*> Ms(N_, nullptr);
  for (std::size_t m = 0; m < end; ++m)
    if (m != skip) {
      Ft[m] = transposed(F[m].data(), this->rows_local(m), this->rank(m));
      Ms[m] = Ft[m].data();
    }
  return Ms;
}

template <class T> Tensor<double> Tucker<T>::partial(std::size_t n, const std::vector<Tensor<double>>& F) const {
  ++passes_;
  Shape shape = Y_->local().shape();
  std::vector<std::vector<double>> Ft;
  const std::vector<const double*> Ms = transposed_factors(F, n, N_, Ft);
  Tensor<double> out(multi_mode_product_shape(shape, this->ranks_, n));
  multi_mode_product_into<T>(Y_->local().data(), shape, Ms, this->ranks_, n, static_cast<std::size_t>(-1), out.data());
  block_comm_[n]->allreduce(out.span());
  return out;
}

template <class T> Tensor<double> Tucker<T>::contracted(const Tensor<double>& F_last) const {
  Tensor<double> C;
  contracted(F_last, C);
  return C;
}

template <class T> void Tucker<T>::contracted(const Tensor<double>& F_last, Tensor<double>& C) const {
  if (!this->tree_) throw Error("internal error: the contraction of the last mode is not used for this problem");
  ++passes_;
  const std::size_t L = N_ - 1;
  const Shape& shape = Y_->local().shape();
  Shape want = shape;
  want[L] = this->rank(L);
  if (C.shape() != want) C = Tensor<double>(want);
  const std::vector<double> Ft = transposed(F_last.data(), this->rows_local(L), this->rank(L));
  mode_product_into<T>(Y_->local().data(), shape, L, Ft.data(), this->rank(L), C.data());
  last_comm_->allreduce(C.span());
}

template <class T>
Tensor<double> Tucker<T>::partial_from(const Tensor<double>& C, std::size_t n,
                                       const std::vector<Tensor<double>>& F) const {
  Shape shape = C.shape();
  std::vector<std::vector<double>> Ft;
  const std::vector<const double*> Ms = transposed_factors(F, n, N_ - 1, Ft);
  Tensor<double> out(multi_mode_product_shape(shape, this->ranks_, n, N_ - 1));
  multi_mode_product_into<double>(C.data(), shape, Ms, this->ranks_, n, N_ - 1, out.data());
  tree_comm_[n]->allreduce(out.span());
  return out;
}

template <class T>
Tensor<double> Tucker<T>::projected(std::size_t n, const Tensor<double>& P, const Tensor<double>& Fn) const {
  Tensor<double> Z(core_shape());
  const std::vector<double> Ft = transposed(Fn.data(), this->rows_local(n), this->rank(n));
  mode_product_into<double>(P.data(), P.shape(), n, Ft.data(), this->rank(n), Z.data());
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
  Tensor<double> out(multi_mode_product_shape(shape, this->ranks_, skip));
  multi_mode_product_into<double>(G.data(), shape, Ms, this->ranks_, skip, static_cast<std::size_t>(-1), out.data());
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
    // The model's block a slab of the last mode at a time: the core times the slab's rows of the last factor
    // (R_0 x ... x R_(N-2) x nt), then times the other factors' local rows (I_0 x ... x I_(N-2) x nt, laid out
    // as Y's slab). Whole, G x_(m < N-1) F_m would be R_(N-1) / I_(N-1) of Y in doubles.
    const std::size_t L = N_ - 1, J = shape[L], RL = this->rank(L), head = shape_size(shape) / J;
    std::vector<const double*> Ms(N_, nullptr);
    std::vector<std::size_t> rows(N_);
    for (std::size_t m = 0; m < L; ++m) {
      rows[m] = this->rows_local(m);
      Ms[m] = F[m].data();
    }
    const std::size_t slab = residual_slab(head);
    const std::size_t most = std::min(slab, J);
    std::vector<double> Fs(most * RL), C(core_size() / std::max<std::size_t>(RL, 1) * most), Mdl(head * most);
    const T* y = Y_->local().data();
    for (std::size_t t0 = 0; t0 < J; t0 += slab) {
      const std::size_t nt = std::min(slab, J - t0);
      copy_factor_rows(F[L], t0, nt, 0, RL, Fs.data());
      Shape cs = core_shape();
      mode_product_into<double>(G.data(), cs, L, Fs.data(), nt, C.data());
      cs[L] = nt;
      rows[L] = nt;
      multi_mode_product_into<double>(C.data(), cs, Ms, rows, L, static_cast<std::size_t>(-1), Mdl.data());
      s += squared_distance(y + t0 * head, Mdl.data(), head * nt);
    }
  }
  return Y_->comm().allreduce(s);
}

template <class T>
Tensor<double> Tucker<T>::sources_local(const std::vector<Tensor<double>>& F, const Tensor<double>& G) const {
  return sources_box(F, G, Shape(N_, 0), this->b_local_shape());
}

template <class T>
Tensor<double> Tucker<T>::sources_box(const std::vector<Tensor<double>>& F, const Tensor<double>& G, const Shape& at,
                                      const Shape& count) const {
  // The core's slices of mode 0 in the box, times the factors' rows in the box.
  Shape shape = core_shape();
  const std::size_t R0 = shape[0], r0 = at[0], nr = count[0], rest = core_size() / std::max<std::size_t>(R0, 1);
  shape[0] = nr;
  std::vector<double> Gs(nr * rest);
  for (std::size_t k = 0; k < rest; ++k)
    for (std::size_t r = 0; r < nr; ++r) Gs[r + k * nr] = G[r0 + r + k * R0];
  std::vector<std::vector<double>> sub(N_);
  std::vector<const double*> Ms(N_, nullptr);
  std::vector<std::size_t> rows(N_, nr);
  for (std::size_t m = 1; m < N_; ++m) {
    sub[m].resize(count[m] * this->rank(m));
    copy_factor_rows(F[m], at[m], count[m], 0, this->rank(m), sub[m].data());
    Ms[m] = sub[m].data();
    rows[m] = count[m];
  }
  Tensor<double> out(count);
  multi_mode_product_into<double>(Gs.data(), shape, Ms, rows, 0, static_cast<std::size_t>(-1), out.data());
  return out;
}

template class Tucker<float>;
template class Tucker<double>;

} // namespace unmix
