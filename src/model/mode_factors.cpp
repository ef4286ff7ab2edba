#include "unmix/model/mode_factors.hpp"

#include "unmix/kernels/blas.hpp"

namespace unmix {

std::vector<const double*> factor_pointers(const std::vector<Tensor<double>>& F) {
  std::vector<const double*> p;
  for (const auto& f : F) p.push_back(f.data());
  return p;
}

template <class T>
ModeFactors<T>::ModeFactors(const DistTensor<T>& Y, std::vector<std::size_t> ranks, const char* what)
    : Y_(&Y), N_(Y.global_shape().size()), ranks_(std::move(ranks)) {
  if (N_ < 2) throw DataError(std::string("the ") + what + " model needs a tensor of at least 2 modes");
  if (ranks_.size() != N_) throw Error("internal error: one rank per mode is needed");
  const GridComms& comms = Y.comms();
  // Every process creates the same sub-communicators in the same order (the first request is collective).
  for (std::size_t n = 0; n < N_; ++n) {
    const unsigned bit = 1u << n;
    rows_comm_.push_back(&comms.sub(bit));
    block_comm_.push_back(&comms.sub(comms.all_modes() & ~bit));
    reducers_.push_back(std::make_unique<FactorReducers>(comms, std::vector<int>{static_cast<int>(n), -1}));
  }
  summary_ = Y.summary();
}

template <class T> bool ModeFactors<T>::owns(std::size_t n) const {
  const auto& c = Y_->comms().coords();
  for (std::size_t m = 0; m < N_; ++m)
    if (m != n && c[m] != 0) return false;
  return true;
}

template <class T> std::vector<double> ModeFactors<T>::gram(std::size_t n, const Tensor<double>& F) const {
  const std::size_t R = ranks_[n], rows = rows_local(n);
  std::vector<double> G(R * R, 0.0);
  if (rows > 0)
    blas::gemm<double>(blas::Trans::T, blas::Trans::N, R, R, rows, 1.0, F.data(), rows, F.data(), rows, 0.0, G.data(),
                       R);
  rows_comm_[n]->allreduce(std::span<double>(G));
  return G;
}

template <class T> double ModeFactors<T>::dot(std::size_t n, const Tensor<double>& X, const Tensor<double>& Z) const {
  double s = 0;
  for (std::size_t i = 0; i < X.size(); ++i) s += X[i] * Z[i];
  return rows_comm_[n]->allreduce(s);
}

template <class T> double ModeFactors<T>::sum_rows(std::size_t n, double local) const {
  return rows_comm_[n]->allreduce(local);
}

template <class T> FactorView ModeFactors<T>::view(std::size_t n, Tensor<double>& F) const {
  FactorView v;
  v.data = F.span();
  v.shape = {rows_local(n), ranks_[n]};
  v.global_shape = {extent(n), ranks_[n]};
  v.offset = {row_offset(n), 0};
  v.rank_mode = 1;
  const FactorReducers* red = reducers_[n].get();
  v.reducer = [red](unsigned fixed) -> const SliceReducer& { return (*red)(fixed); };
  return v;
}

template <class T> Shape ModeFactors<T>::b_global_shape() const {
  Shape s = Y_->global_shape();
  s[0] = ranks_[0];
  return s;
}
template <class T> Shape ModeFactors<T>::b_local_shape() const {
  Shape s = Y_->local().shape();
  s[0] = ranks_[0];
  return s;
}
template <class T> Shape ModeFactors<T>::b_offset() const {
  Shape s = Y_->offset();
  s[0] = 0;
  return s;
}

template class ModeFactors<float>;
template class ModeFactors<double>;

} // namespace unmix
