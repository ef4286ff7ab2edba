#include "unmix/kernels/mttkrp.hpp"

#include <algorithm>

#include "unmix/kernels/blas.hpp"

namespace unmix {

std::vector<double> khatri_rao(const Shape& shape, std::size_t lo, std::size_t hi, std::size_t R,
                               const std::vector<const double*>& factors) {
  std::vector<double> K(R, 1.0);
  std::size_t rows = 1;
  for (std::size_t m = lo; m < hi; ++m) {
    const std::size_t Im = shape[m];
    std::vector<double> next(rows * Im * R);
    for (std::size_t r = 0; r < R; ++r) {
      const double* f = factors[m] + r * Im;
      const double* k = K.data() + r * rows;
      double* out = next.data() + r * rows * Im;
      for (std::size_t i = 0; i < Im; ++i) {
        const double s = f[i];
        for (std::size_t p = 0; p < rows; ++p) out[p + i * rows] = k[p] * s;
      }
    }
    K.swap(next);
    rows *= Im;
  }
  return K;
}

namespace {

template <class T> std::vector<T> as(const std::vector<double>& v) { return std::vector<T>(v.begin(), v.end()); }

} // namespace

template <class T>
void mttkrp(const T* Y, const Shape& shape, std::size_t n, std::size_t R, const std::vector<const double*>& factors,
            double* M) {
  const std::size_t N = shape.size(), J = shape[n];
  std::fill(M, M + J * R, 0.0);
  if (J == 0 || R == 0 || shape_size(shape) == 0) return;
  std::size_t L = 1, Rt = 1; // extents below and above mode n
  for (std::size_t m = 0; m < n; ++m) L *= shape[m];
  for (std::size_t m = n + 1; m < N; ++m) Rt *= shape[m];
  const std::vector<double> KL = khatri_rao(shape, 0, n, R, factors);
  const std::vector<double> KR = khatri_rao(shape, n + 1, N, R, factors);
  using blas::Trans;
  if (L >= Rt) {
    // Y is L x J x Rt: for each slice t, W = Y_t^T KL (J x R, one GEMM with the long inner dimension L),
    // then M[:, r] += W[:, r] * KR[t, r].
    std::vector<T> KLt = as<T>(KL);
    std::vector<T> W(J * R);
    for (std::size_t t = 0; t < Rt; ++t) {
      blas::gemm<T>(Trans::T, Trans::N, J, R, L, T(1), Y + t * L * J, L, KLt.data(), L, T(0), W.data(), J);
      for (std::size_t r = 0; r < R; ++r) {
        const double s = KR[t + r * Rt];
        for (std::size_t j = 0; j < J; ++j) M[j + r * J] += s * static_cast<double>(W[j + r * J]);
      }
    }
    return;
  }
  // Y as an (L J) x Rt matrix times KR (Rt x R) in chunks of mode-n indices (rows L j0 .. L j1 - 1),
  // each chunk's partial product T (L jc x R) then contracted with KL over the L rows of each j.
  std::vector<T> KRt = as<T>(KR);
  const std::size_t budget = std::size_t{1} << 20; // values of T per chunk (8 MiB in double)
  const std::size_t jc = std::max<std::size_t>(1, std::min(J, budget / std::max<std::size_t>(1, L * R)));
  std::vector<T> Tp(L * jc * R);
  for (std::size_t j0 = 0; j0 < J; j0 += jc) {
    const std::size_t nj = std::min(jc, J - j0), rows = L * nj;
    blas::gemm<T>(Trans::N, Trans::N, rows, R, Rt, T(1), Y + L * j0, L * J, KRt.data(), Rt, T(0), Tp.data(), rows);
    for (std::size_t r = 0; r < R; ++r) {
      const T* tp = Tp.data() + r * rows;
      const double* kl = KL.data() + r * L;
      for (std::size_t j = 0; j < nj; ++j) {
        double s = 0;
        for (std::size_t l = 0; l < L; ++l) s += static_cast<double>(tp[l + j * L]) * kl[l];
        M[j0 + j + r * J] = s;
      }
    }
  }
}

template void mttkrp<float>(const float*, const Shape&, std::size_t, std::size_t, const std::vector<const double*>&,
                            double*);
template void mttkrp<double>(const double*, const Shape&, std::size_t, std::size_t, const std::vector<const double*>&,
                             double*);

} // namespace unmix
