#include "unmix/kernels/blas.hpp"

#include <cblas.h>
#include <lapacke.h>

#include <algorithm>

#include "unmix/core/error.hpp"

namespace unmix::blas {
namespace {
CBLAS_TRANSPOSE tr(Trans t) { return t == Trans::N ? CblasNoTrans : CblasTrans; }
int I(std::size_t v) { return static_cast<int>(v); }
} // namespace

template <>
void gemm<double>(Trans ta, Trans tb, std::size_t m, std::size_t n, std::size_t k, double alpha, const double* A,
                  std::size_t lda, const double* B, std::size_t ldb, double beta, double* C, std::size_t ldc) {
  if (m == 0 || n == 0) return;
  if (k == 0) {
    for (std::size_t j = 0; j < n; ++j)
      for (std::size_t i = 0; i < m; ++i) C[i + j * ldc] = beta == 0 ? 0.0 : beta * C[i + j * ldc];
    return;
  }
  cblas_dgemm(CblasColMajor, tr(ta), tr(tb), I(m), I(n), I(k), alpha, A, I(std::max<std::size_t>(lda, 1)), B,
              I(std::max<std::size_t>(ldb, 1)), beta, C, I(std::max<std::size_t>(ldc, 1)));
}

template <>
void gemm<float>(Trans ta, Trans tb, std::size_t m, std::size_t n, std::size_t k, float alpha, const float* A,
                 std::size_t lda, const float* B, std::size_t ldb, float beta, float* C, std::size_t ldc) {
  if (m == 0 || n == 0) return;
  if (k == 0) {
    for (std::size_t j = 0; j < n; ++j)
      for (std::size_t i = 0; i < m; ++i) C[i + j * ldc] = beta == 0 ? 0.0f : beta * C[i + j * ldc];
    return;
  }
  cblas_sgemm(CblasColMajor, tr(ta), tr(tb), I(m), I(n), I(k), alpha, A, I(std::max<std::size_t>(lda, 1)), B,
              I(std::max<std::size_t>(ldb, 1)), beta, C, I(std::max<std::size_t>(ldc, 1)));
}

std::vector<double> sym_eig(const double* S, std::size_t n, std::vector<double>* vectors) {
  std::vector<double> a(S, S + n * n), w(n);
  if (n == 0) return w;
  const int info = LAPACKE_dsyev(LAPACK_COL_MAJOR, vectors ? 'V' : 'N', 'U', I(n), a.data(), I(n), w.data());
  if (info != 0)
    throw DataError("symmetric eigenvalue solver failed (LAPACK dsyev info " + std::to_string(info) +
                    "): the matrix holds NaN or Inf");
  if (vectors) *vectors = std::move(a);
  return w;
}

double sym_max_eig(const double* S, std::size_t n) {
  if (n == 0) return 0.0;
  if (n == 1) return S[0];
  return sym_eig(S, n, nullptr).back();
}

bool spd_solve(std::vector<double> S, std::size_t n, double* Bm, std::size_t nrhs) {
  if (n == 0) return true;
  const int info = LAPACKE_dposv(LAPACK_COL_MAJOR, 'U', I(n), I(nrhs), S.data(), I(n), Bm, I(n));
  return info == 0;
}

} // namespace unmix::blas
