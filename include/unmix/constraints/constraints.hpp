#pragma once
// Constraints on a factor (ALGORITHMS.md section 3): entrywise projections, projected and scaled
// normalizations of slices, the linear constraint C X = b, and compositions of these joined by '+'.
//
// A factor is seen through a FactorView: its local block plus, for every slicing, a SliceReducer that
// combines per-slice partial values over the processes sharing those slices. This module never sees
// MPI: with the default (null) reducer everything is local, and a distributed caller passes reducers
// built on communicators (unmix/dist/reducers.hpp). Results do not depend on the process count beyond
// rounding in sums: projections that sort (simplex, l1normalize) gather each slice's values so every
// process computes the same threshold from the same sorted multiset, and ties are broken by the
// global position inside the slice (column-major, mode 0 fastest), never by the process order.
//
// Slicings ("what is normalized") of a factor of order N, as the set of factor modes held FIXED:
//   whole            {}                 the whole factor is one slice (name without a suffix)
//   rows, 1slices    {0}                B[r, ...] of a source tensor, A[i, :] of a matrix
//   columns          {1, ..., N-1}      the columns of the mode-1 unfolding (also spelled `cols`)
//   12slices         {0, 1}             the mode-3 fibres B[r, j, :] (single entries for a matrix)
//   average12slices  {0}                each 1-slice, target norm global_shape[1] instead of 1
//
// Constraint names (join several with '+'; they apply in the order written, see the exception below):
//   nonnegative, binary, clamp:A:B, linear,
//   {l1normalize, simplex, l2normalize, linftynormalize}[_rows|_columns|_1slices|_12slices],
//   {l1scale, l2scale, linftyscale}[_rows|_columns|_1slices|_12slices|_average12slices].
//
// Definitions on each slice x (n entries). The projected normalizations aim at a target norm t, which is
// 1 except on a coarse multiscale grid (Constraint::target_scale, set by constraints_for_grid below):
//   nonnegative      x <- max(x, 0)
//   clamp:A:B        x <- min(max(x, A), B)                         (A <= B)
//   binary           x <- (x < 0.5 ? 0 : 1)
//   simplex          Euclidean projection onto {x >= 0, sum x = t}   (Chen & Ye 2011; threshold by Michelot's passes)
//   l1normalize      Euclidean projection onto {||x||_1 = t}: sign(x) * simplex_t(|x|), where a zero
//                    entry counts as positive (so the result always has norm t; the reference drops
//                    such entries and can return a norm below 1)
//   l2normalize      t x / ||x||_2; a zero slice becomes the constant t/sqrt(n)
//   linftynormalize  Euclidean projection onto {||x||_inf = t}: clamp to [-t, t] if ||x||_inf > t; if
//                    ||x||_inf < t the first entry of largest magnitude becomes t times its sign (+1 for 0)
//   l1scale etc.     x <- x / w with w = ||x|| / target (target 1, or global_shape[1] for
//                    average12slices), and w is returned so the other factor can absorb it.
//                    A slice whose norm is exactly 0 cannot be scaled: it is left as it is, weight 1.
//   linear           on the mode-1 unfolding X (n0 x M):  X <- X - C^T (C C^T)^{-1} (C X - b), the
//                    Euclidean projection onto {C X = b}. C is k x n0 (full row rank), b is k x M or
//                    k x 1 (one column for every column of X). Neither is part of the name: attach
//                    them with set_linear() before applying.
//
// The one exception to "in the order written": `nonnegative` next to a scaled normalization (just
// before or just after it in the list, as in `l1scale_average12slices+nonnegative` or
// `nonnegative+l2scale_1slices`) is applied first, and safely: each slice (of the scaled
// normalization's slicing) that is all <= 0, so that the ReLU would make it zero and the scaling
// would divide by zero, is instead replaced by a nonnegative slice of norm 1 built from its values
// before the ReLU: their simplex projection for l1scale, a one-hot vector at their largest entry
// (the first one in a tie) for l2scale and linftyscale. Then the scaling runs as usual.
#include <cstddef>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "unmix/core/error.hpp"
#include "unmix/core/tensor.hpp"

namespace unmix {

/// Combines partial per-slice values across the processes that share slices (MPI-free interface).
class SliceReducer {
public:
  virtual ~SliceReducer() = default;
  /// In place, elementwise over the sharing processes (each process passes the same length).
  virtual void sum(std::span<double> v) const = 0;
  /// In place, elementwise maximum over the sharing processes.
  virtual void max(std::span<double> v) const = 0;
  /// Concatenation of every sharing process's `v` (any lengths), in process order.
  virtual std::vector<double> gather(std::span<const double> v) const = 0;
  /// Number of sharing processes.
  virtual int size() const = 0;
};

/// The reducer of a process that shares its slices with nobody: sum and max leave v as it is.
class LocalReducer final : public SliceReducer {
public:
  void sum(std::span<double>) const override {}
  void max(std::span<double>) const override {}
  std::vector<double> gather(std::span<const double> v) const override { return {v.begin(), v.end()}; }
  int size() const override { return 1; }
};

/// A factor's local block and how it sits in the whole factor.
struct FactorView {
  std::span<double> data;    ///< local block, column-major (mode 0 fastest)
  Shape shape;               ///< local block shape
  Shape global_shape;        ///< whole factor shape
  Shape offset;              ///< where the local block starts in the whole factor
  std::size_t rank_mode = 0; ///< the factor mode indexed by the rank r (B: 0, A: 1)
  /// Reducer for slices whose FIXED factor modes are the bits of `fixed_mask` (bit n = mode n fixed);
  /// null means everything is local (a LocalReducer).
  std::function<const SliceReducer&(unsigned fixed_mask)> reducer;
};

/// A whole array seen as a factor with no other process: shape = global shape, offset 0, local reducers.
FactorView local_view(std::span<double> data, Shape shape, std::size_t rank_mode = 0);

enum class Slicing { whole, rows, columns, slices1, slices12, average12 };

/// The factor modes a slicing holds fixed, as a bit mask, for a factor of the given order.
unsigned fixed_mask(Slicing s, std::size_t order);
/// "" (whole), "rows", "columns", "1slices", "12slices", "average12slices".
std::string slicing_name(Slicing s);

enum class ConstraintKind {
  nonnegative,
  clamp,
  binary,
  l1normalize,
  simplex,
  l2normalize,
  linftynormalize,
  l1scale,
  l2scale,
  linftyscale,
  linear
};

struct Constraint {
  ConstraintKind kind = ConstraintKind::nonnegative;
  Slicing slicing = Slicing::whole; ///< for the normalizations
  double lo = 0, hi = 1;            ///< clamp interval [lo, hi]
  // linear: C (k x n, column-major) and b (k x m, column-major; m == 1 means one column for all)
  std::vector<double> C, b;
  std::size_t k = 0, n = 0, m = 0;
  /// Target norm t of a projected normalization (simplex, l1normalize, l2normalize, linftynormalize):
  /// 1 as the user writes it; other values only on coarse multiscale grids (constraints_for_grid).
  /// Not part of name(). Ignored by the other kinds.
  double target_scale = 1.0;

  /// The word this constraint is spelled with, e.g. "l1scale_average12slices", "clamp:0:1".
  std::string name() const;
  bool is_entrywise() const;
  bool is_projected_normalization() const;
  bool is_scaled() const;
};

struct ConstraintList {
  std::vector<Constraint> items;
  std::string spec; ///< the text it was parsed from
  bool empty() const { return items.empty(); }
  /// The items' names joined by '+'.
  std::string name() const;
};

/// Parse "l1scale_average12slices+nonnegative" etc. Spaces around words are ignored; "" and "none" give
/// an empty list. Throws ConfigError naming the bad word and listing the valid names.
ConstraintList parse_constraints(const std::string& spec);
/// Every valid constraint name (clamp written as clamp:A:B), for help texts.
std::vector<std::string> valid_constraint_names();

/// Attach the data of every `linear` item of the list: C is k x n (n = the global extent of the
/// factor's mode 0), b is k x m with m the number of columns of the mode-1 unfolding, or m = 1 for
/// one column shared by all; both column-major. Throws ConfigError on inconsistent sizes.
void set_linear(ConstraintList& list, std::vector<double> C, std::size_t k, std::size_t n, std::vector<double> b,
                std::size_t m);
/// A ready `linear` constraint.
Constraint make_linear(std::vector<double> C, std::size_t k, std::size_t n, std::vector<double> b, std::size_t m);

// ---- per-grid targets (multiscale, ALGORITHMS.md section 8) ----
//
// A factor whose modes sample a continuous variable (a density on a grid) changes its norms when it is
// sampled on a coarser grid of the same interval: with spacings h (data grid) and h' (coarse grid), the
// discrete p-norm of samples of a function g is (sum |g|^p)^(1/p) ~ (integral |g|^p / h)^(1/p), so a
// slice covering coarsened modes n has its p-norm multiplied by (prod_n h_n / h'_n)^(1/p) where
// h_n / h'_n = (n'_n - 1) / (n_n - 1), the ratio of the numbers of intervals (ratio of spacings; end
// points aligned, as multiscale.hpp samples). So that the coarse problem asks for the same densities as
// the data's grid, a projected normalization whose slices extend along coarsened modes gets the target
//   simplex, l1normalize   t = prod_n r_n            (sum of samples; exactly 1/2 per level for 2^k + 1)
//   l2normalize            t = sqrt(prod_n r_n)
//   linftynormalize        t = 1                     (a maximum does not depend on the spacing)
// with r_n = (n'_n - 1) / (n_n - 1) over the coarsened modes n among the slice's FREE modes (the modes
// the slicing does not hold fixed); a slicing whose slices do not extend along a coarsened mode keeps
// its target. Why the ratio of intervals and not of point counts n'/n: a slice's sum is h^-1 times the
// trapezoid rule's integral plus half its two end values, so for densities that vanish at the grid's ends
// (a density grid covering its support) the sums scale by h / h' up to the quadrature error O(h'^2),
// whereas n'/n would be right only for a constant slice; for 2^k + 1 grids the ratio is 1/2 per level
// exactly, as a number (every coarse point is a data point).
// The scaled normalizations (l1scale, ...) are left alone: their weights are absorbed by the other factor,
// so they do not change the fit, and average12slices already takes its target from the grid's extents.

/// h_data / h_grid = (n_grid - 1) / (n_data - 1) for an axis resampled from n_data to n_grid points with
/// the same end points; 1 when the sizes are equal. Throws DataError for a size below 2 that differs.
double grid_spacing_ratio(std::size_t n_data, std::size_t n_grid);

/// The list with every projected normalization's target_scale multiplied by its factor for a factor of
/// global shape `grid_shape` resampled from `data_shape` (same order; modes whose sizes agree are not
/// coarsened). Everything else is copied unchanged; with equal shapes the list comes back identical, bit
/// for bit. MPI-free: a value computation on shapes.
ConstraintList constraints_for_grid(const ConstraintList& list, const Shape& data_shape, const Shape& grid_shape);

/// Rescaling weights produced by scaled normalizations: per rank index r (slices fixed on exactly the
/// rank mode; indexed by the global r, 1 outside the local block's range of r), and one scalar (slicing
/// `whole`). Several scaled normalizations multiply. Scaled normalizations that scaled_compensable()
/// rejects leave no weights: their scaling cannot be absorbed by the other factor.
struct ScaleWeights {
  std::vector<double> per_rank; ///< empty when no per-rank scaling happened
  double scalar = 1.0;
  /// Some slice was all <= 0 before a scaled normalization paired with `nonnegative` and was replaced
  /// (see above) instead of rescaled: the result is then not the entrywise part divided by the weights.
  bool replaced = false;
  bool any() const { return !per_rank.empty() || scalar != 1.0; }
};

/// True when every scaled normalization of the list (if any) can be compensated exactly by scaling
/// the other factor: its slices are fixed on exactly the rank mode, or it is `whole`.
bool scale_compensable(const ConstraintList& list, std::size_t order, std::size_t rank_mode);

/// For a list made of entrywise constraints and one scaled normalization that the other factor absorbs
/// (scale_compensable), nothing after it but its paired `nonnegative`: the entrywise constraints apply()
/// takes before the rescaling, the pair's `nonnegative` included. Then apply(list) = E(x) / w on every
/// slice, where E is that entrywise list and w the returned weights (per rank and scalar), unless
/// ScaleWeights::replaced. This lets a pass over the factor in pieces apply E piece by piece and the
/// rescaling afterwards. nullopt for every other list (including lists without a scaled normalization).
std::optional<ConstraintList> entrywise_before_rescaling(const ConstraintList& list, std::size_t order,
                                                         std::size_t rank_mode);

/// Apply every constraint of the list, in order (with the nonnegative exception above), to the local
/// block. Collective over the reducers it uses: every process sharing a slice must call it, with the
/// same list. Returns the combined weights of the scaled normalizations.
ScaleWeights apply(const ConstraintList& list, FactorView& view);
/// Apply one constraint alone (no pairing with nonnegative).
ScaleWeights apply(const Constraint& c, FactorView& view);

/// Largest violation of the list's constraints over the whole factor (0 when satisfied); the same
/// value on every process sharing the factor. Collective like apply(). Measures:
/// entrywise: distance of an entry to the allowed set; simplex: max(-min x, |sum x - t| / t);
/// normalizations: |norm - target| / target (target t, or the scaled target); linear: max |C X - b|.
double violation(const ConstraintList& list, FactorView& view);
double violation(const Constraint& c, FactorView& view);

/// Apply a list of entrywise constraints (nonnegative, clamp, binary only) to any values, with no view
/// or reducer: the fast path for inner loops.
void apply_entrywise(const ConstraintList& list, std::span<double> x);

/// The list is `nonnegative` and nothing else (what an exact nonnegative least-squares solve honours).
bool is_only_nonnegative(const ConstraintList& list);
/// Every item acts entrywise (nonnegative, clamp, binary); true for an empty list.
bool is_entrywise_only(const ConstraintList& list);

/// Whether the list's result is always >= 0 entrywise (it contains nonnegative, simplex, binary or a
/// clamp with A >= 0, and nothing after that can make an entry negative).
bool implies_nonnegative(const ConstraintList& list);

// ---- serial helpers on one slice (the whole span), the same code as apply() on a local view ----

/// The simplex threshold t of Chen & Ye: the projection of y onto {x >= 0, sum x = radius} is
/// max(y - t, 0). Found by Michelot's passes (constraints.cpp), not by sorting: linear time in practice;
/// the multiset is what counts. Empty input gives 0.
double simplex_threshold(std::vector<double> values, double radius = 1.0);
/// x <- projection onto the simplex {x >= 0, sum x = 1}.
void project_simplex(std::span<double> x);
/// x <- projection onto the L1 sphere {||x||_1 = 1} (sign-preserving).
void project_l1_sphere(std::span<double> x);
/// x <- x / ||x||_2 (constant 1/sqrt(n) for x = 0).
void project_l2_sphere(std::span<double> x);
/// x <- projection onto the L-infinity sphere {||x||_inf = 1}.
void project_linf_sphere(std::span<double> x);
/// x <- one-hot vector at the (first) largest entry.
void project_one_hot(std::span<double> x);

} // namespace unmix
