#include "unmix/kernels/blas.hpp"

#include <cblas.h>
#include <lapacke.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <type_traits>
#include <utility>

#include "unmix/core/error.hpp"

namespace unmix::blas {
namespace {
CBLAS_TRANSPOSE tr(Trans t) { return t == Trans::N ? CblasNoTrans : CblasTrans; }
int I(std::size_t v) { return static_cast<int>(v); }
} // namespace

namespace {
std::size_t block_limit = static_cast<std::size_t>(INT32_MAX);

int leading(std::size_t ld, const char* name) {
  if (ld > static_cast<std::size_t>(INT32_MAX))
    throw Error(std::string("gemm: leading dimension ") + name + " = " + std::to_string(ld) +
                " is beyond what the BLAS's int sizes hold");
  return I(std::max<std::size_t>(ld, 1));
}

// Splits m, n and k into blocks the BLAS takes; with all three within the limit this is one call.
// call(m, n, k, A block, B block, beta, C block).
template <class T, class Call>
void blocked(Trans ta, Trans tb, std::size_t m, std::size_t n, std::size_t k, const T* A, std::size_t lda, const T* B,
             std::size_t ldb, T beta, T* C, std::size_t ldc, Call call) {
  if (m == 0 || n == 0) return;
  if (k == 0) {
    for (std::size_t j = 0; j < n; ++j)
      for (std::size_t i = 0; i < m; ++i) C[i + j * ldc] = beta == T(0) ? T(0) : beta * C[i + j * ldc];
    return;
  }
  const std::size_t L = block_limit;
  for (std::size_t i0 = 0; i0 < m; i0 += L)
    for (std::size_t j0 = 0; j0 < n; j0 += L)
      for (std::size_t k0 = 0; k0 < k; k0 += L) {
        const T* a = ta == Trans::N ? A + i0 + k0 * lda : A + k0 + i0 * lda;
        const T* b = tb == Trans::N ? B + k0 + j0 * ldb : B + j0 + k0 * ldb;
        call(I(std::min(L, m - i0)), I(std::min(L, n - j0)), I(std::min(L, k - k0)), a, b, k0 == 0 ? beta : T(1),
             C + i0 + j0 * ldc);
      }
}
} // namespace

std::size_t gemm_block_limit() { return block_limit; }

std::size_t set_gemm_block_limit(std::size_t limit) {
  return std::exchange(block_limit, std::clamp<std::size_t>(limit, 1, static_cast<std::size_t>(INT32_MAX)));
}

template <class T>
void gemm(Trans ta, Trans tb, std::size_t m, std::size_t n, std::size_t k, T alpha, const T* A, std::size_t lda,
          const T* B, std::size_t ldb, T beta, T* C, std::size_t ldc) {
  const int la = leading(lda, "lda"), lb = leading(ldb, "ldb"), lc = leading(ldc, "ldc");
  blocked(ta, tb, m, n, k, A, lda, B, ldb, beta, C, ldc,
          [&](int mi, int nj, int kk, const T* a, const T* b, T be, T* c) {
            if constexpr (std::is_same_v<T, double>)
              cblas_dgemm(CblasColMajor, tr(ta), tr(tb), mi, nj, kk, alpha, a, la, b, lb, be, c, lc);
            else
              cblas_sgemm(CblasColMajor, tr(ta), tr(tb), mi, nj, kk, alpha, a, la, b, lb, be, c, lc);
          });
}

template void gemm(Trans, Trans, std::size_t, std::size_t, std::size_t, double, const double*, std::size_t,
                   const double*, std::size_t, double, double*, std::size_t);
template void gemm(Trans, Trans, std::size_t, std::size_t, std::size_t, float, const float*, std::size_t, const float*,
                   std::size_t, float, float*, std::size_t);

void gemv(Trans ta, std::size_t m, std::size_t n, double alpha, const double* A, std::size_t lda, const double* x,
          double beta, double* y) {
  if (m > static_cast<std::size_t>(INT32_MAX) || n > static_cast<std::size_t>(INT32_MAX))
    throw Error("gemv: a " + std::to_string(m) + " x " + std::to_string(n) + " matrix is beyond the BLAS's int sizes");
  if (m == 0 || n == 0) {
    const std::size_t ny = ta == Trans::N ? m : n;
    for (std::size_t i = 0; i < ny; ++i) y[i] = beta == 0.0 ? 0.0 : beta * y[i];
    return;
  }
  cblas_dgemv(CblasColMajor, tr(ta), I(m), I(n), alpha, A, leading(lda, "lda"), x, 1, beta, y, 1);
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
