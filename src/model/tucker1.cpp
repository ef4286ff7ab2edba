#include "unmix/model/tucker1.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include "unmix/core/clones.hpp"
#include "unmix/kernels/blas.hpp"
#include "unmix/model/mode_factors.hpp"

namespace unmix {

namespace {
std::vector<int> a_grid_modes() { return {0, -1}; }
std::vector<int> b_grid_modes(std::size_t order) {
  std::vector<int> m{-1};
  for (std::size_t n = 1; n < order; ++n) m.push_back(static_cast<int>(n));
  return m;
}
unsigned other_modes_mask(std::size_t order) { return ((1u << order) - 1u) & ~1u; }

template <class T> std::vector<T> cast(const Tensor<double>& X) {
  return std::vector<T>(X.span().begin(), X.span().end());
}

// The exact residual's sum for ranks up to 4 without the model's tile: a multiply-add per rank and value
// beside reading Y (a GEMM with 1-4 terms per value ran at a fraction of its rate, and its output was
// written, zeroed and read again).
constexpr std::size_t direct_rank_max = 4;

// Columns [0, n) of Y (ld I): sum_j sum_i (y_ij - sum_r A_ir b_rj)^2, in 8 interleaved partial sums as
// squared_distance's. The model's values formed in registers: through a column buffer and squared_distance
// the sums took 1.3 x as long (rank 2, 400 x 100 x 50, 1500 iterations).
template <std::size_t R, class T>
UNMIX_AVX2_CLONE double residual_columns2(const T* y, std::size_t I, std::size_t n, const double* A, const double* B) {
  constexpr std::size_t lanes = 8;
  double part[lanes] = {};
  for (std::size_t j = 0; j < n; ++j) {
    const T* yj = y + j * I;
    double b[R];
    for (std::size_t r = 0; r < R; ++r) b[r] = B[r + j * R];
    std::size_t i = 0;
    for (; i + lanes <= I; i += lanes)
      for (std::size_t l = 0; l < lanes; ++l) {
        double m = 0;
        for (std::size_t r = 0; r < R; ++r) m += A[i + l + r * I] * b[r];
        const double d = static_cast<double>(yj[i + l]) - m;
        part[l] += d * d;
      }
    for (std::size_t l = 0; i < I; ++i, ++l) {
      double m = 0;
      for (std::size_t r = 0; r < R; ++r) m += A[i + r * I] * b[r];
      const double d = static_cast<double>(yj[i]) - m;
      part[l] += d * d;
    }
  }
  double s = 0;
  for (double p : part) s += p;
  return s;
}

template <class T>
double residual_columns2(std::size_t R, const T* y, std::size_t I, std::size_t n, const double* A, const double* B) {
  switch (R) {
  case 1: return residual_columns2<1>(y, I, n, A, B);
  case 2: return residual_columns2<2>(y, I, n, A, B);
  case 3: return residual_columns2<3>(y, I, n, A, B);
  case 4: return residual_columns2<4>(y, I, n, A, B);
  default: throw Error("internal error: the direct residual sum takes ranks 1 to 4");
  }
}
} // namespace

template <class T>
Tucker1<T>::Tucker1(const DistTensor<T>& Y, std::size_t rank)
    : Y_(&Y), R_(rank), I_(Y.global_shape()[0]), Ip_(Y.local().extent(0)), i0_(Y.offset()[0]),
      Mp_(Ip_ ? Y.local().size() / Ip_ : shape_size(Y.local().shape()) / std::max<std::size_t>(1, Y.local().extent(0))),
      M_(shape_size(Y.global_shape()) / std::max<std::size_t>(1, Y.global_shape()[0])), a_comm_(&Y.comms().sub(1u)),
      b_comm_(&Y.comms().sub(other_modes_mask(Y.global_shape().size()))), a_red_(Y.comms(), a_grid_modes()),
      b_red_(Y.comms(), b_grid_modes(Y.global_shape().size())) {
  if (Y.global_shape().size() < 2) throw DataError("Tucker-1 needs a tensor of at least 2 modes");
  // Local column count from the box even when the process owns no rows.
  Mp_ = 1;
  for (std::size_t n = 1; n < Y.local().order(); ++n) Mp_ *= Y.local().extent(n);
  const ValueSummary v = Y.summary();
  normY2_ = v.sum2;
  ymin_ = v.min;
  ymax_ = v.max;
  ynonfinite_ = v.nonfinite;
}

template <class T> Shape Tucker1<T>::b_global_shape() const {
  Shape s = Y_->global_shape();
  s[0] = R_;
  return s;
}
template <class T> Shape Tucker1<T>::b_local_shape() const {
  Shape s = Y_->local().shape();
  s[0] = R_;
  return s;
}
template <class T> Shape Tucker1<T>::b_offset() const {
  Shape s = Y_->offset();
  s[0] = 0;
  return s;
}
template <class T> bool Tucker1<T>::owns_A() const {
  const auto& c = Y_->comms().coords();
  for (std::size_t n = 1; n < c.size(); ++n)
    if (c[n] != 0) return false;
  return true;
}
template <class T> bool Tucker1<T>::owns_B() const { return Y_->comms().coords()[0] == 0; }

template <class T> std::vector<double> Tucker1<T>::gram_A(const Tensor<double>& A) const {
  std::vector<double> G(R_ * R_, 0.0);
  blas::gemm<double>(blas::Trans::T, blas::Trans::N, R_, R_, Ip_, 1.0, A.data(), Ip_, A.data(), Ip_, 0.0, G.data(), R_);
  a_comm_->allreduce(std::span<double>(G));
  return G;
}

template <class T> std::vector<double> Tucker1<T>::gram_B(const Tensor<double>& B) const {
  std::vector<double> P(R_ * R_, 0.0);
  blas::gemm<double>(blas::Trans::N, blas::Trans::T, R_, R_, Mp_, 1.0, B.data(), R_, B.data(), R_, 0.0, P.data(), R_);
  b_comm_->allreduce(std::span<double>(P));
  return P;
}

template <class T> Tensor<double> Tucker1<T>::AtY(const Tensor<double>& A) const {
  Tensor<double> out;
  AtY(A, out);
  return out;
}

template <class T> std::size_t Tucker1<T>::tile_columns() const {
  return std::max<std::size_t>(1, (std::size_t{1} << 16) / R_);
}

template <class T>
void Tucker1<T>::aty_columns(const T* At, std::size_t c0, std::size_t n, T* scratch, double* dst) const {
  const T* Yt = Y_->local().data() + Ip_ * c0;
  if constexpr (std::is_same_v<T, double>) {
    blas::gemm<double>(blas::Trans::T, blas::Trans::N, R_, n, Ip_, 1.0, At, Ip_, Yt, Ip_, 0.0, dst, R_);
  } else {
    blas::gemm<T>(blas::Trans::T, blas::Trans::N, R_, n, Ip_, T(1), At, Ip_, Yt, Ip_, T(0), scratch, R_);
    for (std::size_t i = 0; i < R_ * n; ++i) dst[i] = static_cast<double>(scratch[i]);
  }
}

template <class T> void Tucker1<T>::AtY(const Tensor<double>& A, Tensor<double>& out) const {
  ++passes_;
  if (out.shape() != Shape{R_, Mp_}) {
    out = Tensor<double>(); // the old one goes before the new one is formed
    out = Tensor<double>({R_, Mp_});
  }
  if constexpr (std::is_same_v<T, double>) {
    aty_columns(A.data(), 0, Mp_, nullptr, out.data());
  } else {
    // A tile of columns at a time in T, each converted into its place (a whole product in T was half a B more).
    const std::vector<T> Af = cast<T>(A);
    const std::size_t cols = tile_columns();
    std::vector<T> o(R_ * std::min(cols, Mp_));
    for (std::size_t c0 = 0; c0 < Mp_; c0 += cols)
      aty_columns(Af.data(), c0, std::min(cols, Mp_ - c0), o.data(), out.data() + R_ * c0);
  }
  a_comm_->allreduce(out.span());
}

template <class T>
void Tucker1<T>::AtY_by_tiles(const Tensor<double>& A,
                              const std::function<void(std::size_t, std::size_t, const double*)>& f) const {
  ++passes_;
  const std::size_t cols = tile_columns();
  std::vector<double> M(R_ * std::min(cols, Mp_));
  std::vector<T> Af, Mf; // float: A and each tile's product in T
  const T* At = nullptr;
  if constexpr (std::is_same_v<T, double>) {
    At = A.data();
  } else {
    Af = cast<T>(A);
    Mf.resize(M.size());
    At = Af.data();
  }
  for (std::size_t c0 = 0; c0 < Mp_; c0 += cols) {
    const std::size_t n = std::min(cols, Mp_ - c0);
    aty_columns(At, c0, n, Mf.data(), M.data());
    a_comm_->allreduce(std::span<double>(M.data(), R_ * n));
    f(c0, n, M.data());
  }
}

template <class T> Tensor<double> Tucker1<T>::YBt(const Tensor<double>& B) const {
  ++passes_;
  Tensor<double> out({Ip_, R_});
  if constexpr (std::is_same_v<T, double>) {
    blas::gemm<double>(blas::Trans::N, blas::Trans::T, Ip_, R_, Mp_, 1.0, Y_->local().data(), Ip_, B.data(), R_, 0.0,
                       out.data(), Ip_);
  } else {
    // B cast to T a tile of columns at a time (a whole copy was half a B, beside the solve's copies of B), each
    // tile's product added in double.
    const std::size_t cols = tile_columns();
    std::vector<T> Bf(R_ * std::min(cols, Mp_)), o(Ip_ * R_);
    for (std::size_t c0 = 0; c0 < Mp_; c0 += cols) {
      const std::size_t n = std::min(cols, Mp_ - c0);
      for (std::size_t i = 0; i < R_ * n; ++i) Bf[i] = static_cast<T>(B[R_ * c0 + i]);
      blas::gemm<T>(blas::Trans::N, blas::Trans::T, Ip_, R_, n, T(1), Y_->local().data() + Ip_ * c0, Ip_, Bf.data(), R_,
                    T(0), o.data(), Ip_);
      for (std::size_t i = 0; i < o.size(); ++i) out[i] += static_cast<double>(o[i]);
    }
  }
  b_comm_->allreduce(out.span());
  return out;
}

template <class T> double Tucker1<T>::dot_A(const Tensor<double>& X, const Tensor<double>& Z) const {
  double s = 0;
  for (std::size_t i = 0; i < X.size(); ++i) s += X[i] * Z[i];
  return a_comm_->allreduce(s);
}
template <class T> double Tucker1<T>::dot_B(const Tensor<double>& X, const Tensor<double>& Z) const {
  double s = 0;
  for (std::size_t i = 0; i < X.size(); ++i) s += X[i] * Z[i];
  return b_comm_->allreduce(s);
}
template <class T> double Tucker1<T>::sum_A(double local) const { return a_comm_->allreduce(local); }
template <class T> double Tucker1<T>::sum_B(double local) const { return b_comm_->allreduce(local); }

template <class T> double Tucker1<T>::exact_residual2(const Tensor<double>& A, const Tensor<double>& B) const {
  ++passes_;
  const T* y = Y_->local().data();
  if (R_ >= 1 && R_ <= direct_rank_max)
    return Y_->comm().allreduce(residual_columns2(R_, y, Ip_, Mp_, A.data(), B.data()));
  // Blockwise over column tiles so the model is never formed whole: a tile of the model of about 256 KiB
  // (16 columns at I = 2000), still in the level-2 cache when the sum reads it.
  const std::size_t tile = std::clamp<std::size_t>((std::size_t{1} << 15) / std::max<std::size_t>(Ip_, 1), 1, 256);
  std::vector<double> M(Ip_ * std::min(tile, Mp_));
  double s = 0;
  for (std::size_t j0 = 0; j0 < Mp_; j0 += tile) {
    const std::size_t nj = std::min(tile, Mp_ - j0);
    blas::gemm<double>(blas::Trans::N, blas::Trans::N, Ip_, nj, R_, 1.0, A.data(), Ip_, B.data() + j0 * R_, R_, 0.0,
                       M.data(), Ip_);
    s += squared_distance(y + j0 * Ip_, M.data(), Ip_ * nj);
  }
  return Y_->comm().allreduce(s);
}

template <class T>
typename Tucker1<T>::PassSums Tucker1<T>::fused_b_step(Tensor<double>& B, Tensor<double>& Bprev,
                                                       const FusedStepInput& in, Tensor<double>& Q,
                                                       std::vector<double>& P) const {
  if (mixture_split()) throw Error("internal error: the single-pass B step needs the whole mixture mode");
  ++passes_;
  Q = Tensor<double>({Ip_, R_});
  P.assign(R_ * R_, 0.0);
  FusedStepOutput out;
  out.Q = Q.data();
  out.P = P.data();
  // The read-ahead is measured by all processes of the model together (they all run this pass every iteration).
  FusedStepInput joint = in;
  if (!joint.tuning) {
    tuning_.report = Y_->comm().rank() == 0;
    joint.tuning = &tuning_;
    joint.agree = [this](std::span<double> v) { Y_->comm().allreduce(v, Op::max); };
  }
  unmix::fused_b_step<T>(Y_->local().data(), Ip_, Mp_, R_, B.data(), Bprev.data(), joint, out);
  b_comm_->allreduce(Q.span());
  b_comm_->allreduce(std::span<double>(P));
  double sums[4] = {out.grad2, out.stat2, out.change2, out.norm2};
  b_comm_->allreduce(std::span<double>(sums, 4));
  return PassSums{sums[0], sums[1], sums[2], sums[3]};
}

template <class T> FactorView Tucker1<T>::view_A(Tensor<double>& A) const {
  FactorView v;
  v.data = A.span();
  v.shape = {Ip_, R_};
  v.global_shape = {I_, R_};
  v.offset = {i0_, 0};
  v.rank_mode = 1;
  const FactorReducers* red = &a_red_;
  v.reducer = [red](unsigned fixed) -> const SliceReducer& { return (*red)(fixed); };
  return v;
}

template <class T> FactorView Tucker1<T>::view_B(Tensor<double>& B) const {
  FactorView v;
  v.data = B.span();
  v.shape = b_local_shape();
  v.global_shape = b_global_shape();
  v.offset = b_offset();
  v.rank_mode = 0;
  const FactorReducers* red = &b_red_;
  v.reducer = [red](unsigned fixed) -> const SliceReducer& { return (*red)(fixed); };
  return v;
}

template class Tucker1<float>;
template class Tucker1<double>;

} // namespace unmix
