#pragma once
// Exact nonnegative least squares by block principal pivoting (Kim & Park 2011, "Fast nonnegative
// matrix factorization: an active-set-like method and comparisons", SIAM J. Sci. Comput. 33(6)), for
// many right-hand sides sharing one Gram matrix (ALGORITHMS.md section 11, exact block solves).
//
// Each column j of X (R x n, column-major) solves
//     minimize 1/2 x^T G x - m_j^T x  subject to x >= 0,
// the normal-equations form of min ||C x - b_j|| with G = C^T C and m_j = C^T b_j.
//
// Method. Every column keeps a passive set F (the free variables; the others are held at 0). For a
// given F the candidate is x_F = G_FF^{-1} m_F, x_H = 0, with gradient y = G x - m (y_F = 0). A column
// is optimal when x_F >= 0 and y_H >= 0; otherwise the infeasible variables V are exchanged between F
// and H: all of them ("full exchange") while |V| keeps dropping, for up to p = 3 steps when it does not,
// and then only the largest index in V (Murty's single-exchange backup rule), which guarantees finite
// termination; a drop in |V| below its best value re-arms the full exchange.
//
// Grouping. After each exchange step the columns still infeasible are sorted by passive set; every
// group that shares one F is solved with a single Cholesky factorization of G_FF, followed by one pair
// of triangular solves and one gradient evaluation per column. Columns leave the iteration as soon as
// they are optimal.
//
// Singular G_FF. The Cholesky factorization is pivot-checked: a variable whose Schur complement d_k
// satisfies d_k <= 1e-13 G_kk (its column of C lies, to about 3e-7 in angle, in the span of the
// passive columns before it; this includes G_kk = 0, a zero column of C) is marked dependent and held
// at 0 inside F. The least-squares fit over F is unchanged by this (the dependent column adds nothing
// to the span), so the gradient on F stays 0 and a final point satisfies the KKT conditions as for a
// nonsingular G_FF: among the minimizers (not unique when G is singular) a basic one. No NaN can arise.
//
// Singular G. If G itself is numerically singular after leaving out the variables with G_rr = 0
// (a dependent pivot in the factorization of the rest), the problem is no longer strictly convex and
// the pivoting can cycle (measured: it does, for C with fewer rows than columns). The solve then runs
// on G + delta I with delta = 1e-12 max_r G_rr, which restores strict convexity (and with it the
// termination guarantee of the backup rule) and stays far above the dependence threshold. The result
// then satisfies the KKT conditions of the original problem to about 1e-12 relative rather than to
// rounding. A zero column of C alone (G_rr = 0, exact) does not trigger the shift: such a variable is
// uncoupled and ends at 0. If G_rr = 0 while m_r > 0 (impossible in the least-squares form, where m
// lies in the range of G) the problem is unbounded and x_r = 0 is returned.
//
// Tolerances. A gradient entry counts as negative only below -1e-13 a_r, a_r = |m_r| + sum_k
// |G_rk x_k| being the size of the terms that were summed (rounding noise in y at a degenerate
// optimum, e.g. b = C x_true exactly, must not trigger exchanges); x_r < 0 is tested exactly.
//
// Warm start. On entry the positive entries of each column of X give its initial passive set
// (the standard cold start is F = {}, i.e. X = 0). A column with m_j <= 0 everywhere has solution 0
// and is set without any work.
//
// Safety net. A column that has not terminated after `max_iterations` exchange steps (default 2 R + 20)
// is re-solved from scratch by the Lawson-Hanson active-set method (one variable added at a time),
// counted in `fallbacks`. Well-conditioned problems never get there (at most about 7 steps measured for
// R up to 50); on an ill-conditioned G (condition 1e8) some columns need hundreds of single exchanges,
// and Lawson-Hanson is then the cheaper way to the same answer.
#include <cstddef>

namespace unmix {

struct NnlsStats {
  std::size_t columns = 0;    ///< columns (or rows) solved
  std::size_t iterations = 0; ///< exchange steps, the maximum over columns (0: the start was optimal)
  std::size_t solves = 0;     ///< Cholesky factorizations of a G_FF (each serves a whole group of columns)
  std::size_t fallbacks = 0;  ///< columns finished by the Lawson-Hanson fallback
};

struct NnlsOptions {
  bool warm_start = true;         ///< use the positive entries of X on entry as the initial passive sets
  std::size_t max_iterations = 0; ///< exchange steps per column before the fallback; 0: 2 R + 20
};

/// Solve every column of X (R x n, column-major; warm start on entry) for G (R x R, symmetric positive
/// semidefinite, column-major) and M (R x n, column-major).
NnlsStats nnls_bpp_columns(std::size_t R, std::size_t n, const double* G, const double* M, double* X,
                           const NnlsOptions& options = {});

/// The same on the rows of A (n x R, column-major; warm start on entry): row i solves
/// min 1/2 a^T P a - q_i^T a, a >= 0, with P (R x R) and q_i the i-th row of Q (n x R, column-major).
/// This is the A-factor update, P = B B^T and Q = Y B^T.
NnlsStats nnls_bpp_rows(std::size_t R, std::size_t n, const double* P, const double* Q, double* A,
                        const NnlsOptions& options = {});

/// One column by the Lawson-Hanson active-set method (the fallback above; exposed for testing). x is
/// overwritten (no warm start). Returns the number of linear solves made.
std::size_t nnls_active_set_column(std::size_t R, const double* G, const double* m, double* x);

} // namespace unmix
