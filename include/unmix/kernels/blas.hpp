#pragma once
// Thin typed wrappers over CBLAS/LAPACKE (column-major throughout).
#include <cstddef>
#include <vector>

namespace unmix::blas {

enum class Trans { N, T };

/// C = alpha op(A) op(B) + beta C, op(A) m x k, op(B) k x n, C m x n. The BLAS takes int sizes: m, n or
/// k beyond gemm_block_limit() (INT_MAX) are computed in blocks; a leading dimension beyond INT_MAX
/// throws unmix::Error.
template <class T>
void gemm(Trans ta, Trans tb, std::size_t m, std::size_t n, std::size_t k, T alpha, const T* A, std::size_t lda,
          const T* B, std::size_t ldb, T beta, T* C, std::size_t ldc);

/// y = alpha op(A) x + beta y, A m x n (column-major, leading dimension lda), op(A) = A or A^T; x and y
/// contiguous. Sizes beyond INT_MAX throw unmix::Error.
void gemv(Trans ta, std::size_t m, std::size_t n, double alpha, const double* A, std::size_t lda, const double* x,
          double beta, double* y);

/// The largest m, n or k one BLAS call of gemm takes. Tests lower it (the previous value is returned)
/// to exercise the blocks at small sizes.
std::size_t gemm_block_limit();
std::size_t set_gemm_block_limit(std::size_t limit);

/// Largest eigenvalue of a symmetric n x n matrix (n small): exact, via LAPACK's syev.
double sym_max_eig(const double* S, std::size_t n);
/// All eigenvalues (ascending) and, if `vectors`, eigenvectors (columns) of a symmetric matrix.
std::vector<double> sym_eig(const double* S, std::size_t n, std::vector<double>* vectors);

/// Solve the symmetric positive-definite system S X = Bm in place (Bm is n x nrhs); false if S is not
/// positive definite.
bool spd_solve(std::vector<double> S, std::size_t n, double* Bm, std::size_t nrhs);

} // namespace unmix::blas
