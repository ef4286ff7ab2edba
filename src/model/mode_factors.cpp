#include "unmix/model/mode_factors.hpp"

#include "unmix/core/clones.hpp"
#include "unmix/kernels/blas.hpp"

#include <algorithm>

namespace unmix {

std::vector<const double*> factor_pointers(const std::vector<Tensor<double>>& F) {
  std::vector<const double*> p;
  for (const auto& f : F) p.push_back(f.data());
  return p;
}

void copy_factor_rows(const Tensor<double>& F, std::size_t row0, std::size_t rows, std::size_t col0, std::size_t cols,
                      double* out) {
  const std::size_t ld = F.extent(0);
  for (std::size_t r = 0; r < cols; ++r)
    std::copy(F.data() + row0 + (col0 + r) * ld, F.data() + row0 + rows + (col0 + r) * ld, out + r * rows);
}

template <class T> UNMIX_AVX2_CLONE double squared_distance(const T* y, const double* model, std::size_t n) {
  constexpr std::size_t lanes = 8;
  double part[lanes] = {};
  std::size_t k = 0;
  for (; k + lanes <= n; k += lanes)
    for (std::size_t l = 0; l < lanes; ++l) {
      const double d = static_cast<double>(y[k + l]) - model[k + l];
      part[l] += d * d;
    }
  for (std::size_t l = 0; k < n; ++k, ++l) {
    const double d = static_cast<double>(y[k]) - model[k];
    part[l] += d * d;
  }
  double s = 0;
  for (double p : part) s += p;
  return s;
}
template double squared_distance<float>(const float*, const double*, std::size_t);
template double squared_distance<double>(const double*, const double*, std::size_t);

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

template <class T> bool ModeFactors<T>::tree_pays(std::size_t order, std::size_t rank, std::size_t shortest_last) {
  // Memory traffic per iteration in units of the local Y: the tree reads Y twice and writes and then reads the
  // contraction (R / J of Y, J the last mode's block) once per mode, 2 + N R / J; without it, N passes.
  if (order < 3 || shortest_last < 2 * rank) return false;
  const double N = static_cast<double>(order), ratio = static_cast<double>(rank) / static_cast<double>(shortest_last);
  return 2.0 + N * ratio <= 0.75 * N;
}

template <class T> void ModeFactors<T>::plan_tree(bool wanted) {
  // Decided from the smallest block of the last mode (the same on every process): where a process's block is
  // short, its contraction would outgrow its share of Y.
  const BlockPartition& last_part = Y_->layout().partition(N_ - 1);
  std::size_t shortest = last_part.extent;
  for (int k = 0; k < last_part.parts; ++k) shortest = std::min(shortest, last_part.size(k));
  tree_ = wanted && tree_pays(N_, ranks_[N_ - 1], shortest);
  if (!tree_) return;
  const GridComms& comms = Y_->comms();
  const unsigned last = 1u << (N_ - 1);
  last_comm_ = &comms.sub(last);
  for (std::size_t n = 0; n + 1 < N_; ++n) tree_comm_.push_back(&comms.sub(comms.all_modes() & ~(1u << n) & ~last));
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
