#pragma once
// Inner iterations of a block (ALGORITHMS.md section 11): once the product with Y is formed (M = A^T Y
// for B, Q = Y B^T for A), further projected gradient steps on the block cost O(R^2) per column and
// never read Y again. Each column is an independent problem min_x 1/2 x^T G x - m^T x over its
// constraints, so each column stops on its own: when a step moves it by less than `tol` times its
// first inner step (squared lengths; the step length bounds the decrease for a 1/L step). Columns do
// not depend on how the columns are split over processes or tiles.
#include <cstddef>
#include <functional>
#include <span>

namespace unmix {

/// Entrywise projection of a group of columns (R x cols, column-major).
using EntrywiseProjection = std::function<void(std::span<double> block, std::size_t cols)>;

/// How each inner step moves a column: a projected gradient step with the block's step constants, or
/// one HALS sweep (exact minimization over each coordinate in turn, x_r <- proj(x_r - g_r / G_rr), valid
/// because entrywise constraints are separable).
enum class InnerMethod { gradient, hals };

/// Up to `steps` inner steps on every column j of X (R x n) for min 1/2 x^T G x - m_j^T x. Returns
/// the number of column steps taken (for statistics).
std::size_t inner_steps_columns(std::size_t R, std::size_t n, const double* G, const double* M, double* X,
                                const double* inv_L, std::size_t steps, double tol, const EntrywiseProjection& project,
                                InnerMethod method = InnerMethod::gradient);

/// The same on the rows of A (n x R, column-major), with P = B B^T and Q = Y B^T (n x R).
std::size_t inner_steps_rows(std::size_t R, std::size_t n, const double* P, const double* Q, double* A,
                             const double* inv_L, std::size_t steps, double tol, const EntrywiseProjection& project,
                             InnerMethod method = InnerMethod::gradient);

} // namespace unmix
