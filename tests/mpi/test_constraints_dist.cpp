// Constraints on distributed factors agree with the serial result on the whole array, on every
// process grid of the job's size, including grids where some processes own nothing.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "../support/test_support.hpp"
#include "unmix/constraints/constraints.hpp"
#include "unmix/core/rng.hpp"
#include "unmix/dist/dist_tensor.hpp"
#include "unmix/dist/layout.hpp"
#include "unmix/dist/reducers.hpp"

using namespace unmix;

namespace {

using Vec = std::vector<double>;

/// Every 3-mode grid whose product is p.
std::vector<std::vector<int>> grids_of(int p) {
  std::vector<std::vector<int>> out;
  for (int a = 1; a <= p; ++a)
    for (int b = 1; a * b <= p; ++b)
      if (p % (a * b) == 0) out.push_back({a, b, p / (a * b)});
  return out;
}

/// Every constraint name, each also after `nonnegative+`, plus a few longer compositions.
std::vector<std::string> all_specs() {
  std::vector<std::string> base;
  for (auto n : valid_constraint_names()) {
    if (n == "linear") continue;
    if (n == "clamp:A:B") n = "clamp:-0.5:0.5";
    base.push_back(n);
  }
  std::vector<std::string> out = base;
  for (const auto& n : base)
    if (n != "nonnegative") out.push_back("nonnegative+" + n);
  for (const auto& n : base)
    if (n.find("scale") != std::string::npos) out.push_back(n + "+nonnegative");
  out.insert(out.end(), {"clamp:-0.3:2+l2normalize_columns", "l1scale_1slices+l2scale",
                         "l1scale_average12slices+nonnegative+linftyscale_12slices", "simplex_rows+binary",
                         "nonnegative+clamp:-1:1+l1scale_rows"});
  return out;
}

/// A deterministic global array with mixed signs, one rank slice all negative, one all zero, and one
/// column of the mode-1 unfolding all <= 0 (so every fallback and tie rule is exercised).
Vec make_data(const Shape& shape, std::size_t rank_mode, std::uint64_t seed) {
  Vec x(shape_size(shape));
  CounterRng rng(seed, 17);
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = rng.normal(i);
  std::vector<std::size_t> idx(shape.size(), 0);
  for (std::size_t lin = 0; lin < x.size(); ++lin) {
    const std::size_t r = idx[rank_mode];
    std::size_t col = 0, stride = 1;
    for (std::size_t n = 1; n < shape.size(); ++n) {
      col += idx[n] * stride;
      stride *= shape[n];
    }
    if (r == 1 || idx[0] == 1) x[lin] = -std::abs(x[lin]);
    if (r == 2) x[lin] = 0.0;
    if (col == 1) x[lin] = -std::abs(x[lin]);
    for (std::size_t n = 0; n < shape.size(); ++n) {
      if (++idx[n] < shape[n]) break;
      idx[n] = 0;
    }
  }
  return x;
}

/// The local block of a global column-major array.
Vec extract(const Vec& global, const Shape& gshape, const Shape& offset, const Shape& shape) {
  Vec out(shape_size(shape));
  std::vector<std::size_t> idx(shape.size(), 0);
  for (std::size_t lin = 0; lin < out.size(); ++lin) {
    std::size_t g = 0, stride = 1;
    for (std::size_t n = 0; n < shape.size(); ++n) {
      g += (offset[n] + idx[n]) * stride;
      stride *= gshape[n];
    }
    out[lin] = global[g];
    for (std::size_t n = 0; n < shape.size(); ++n) {
      if (++idx[n] < shape[n]) break;
      idx[n] = 0;
    }
  }
  return out;
}

double rel_diff(const Vec& a, const Vec& b) {
  if (a.size() != b.size()) return INFINITY;
  double d = 0, s = 1;
  for (std::size_t i = 0; i < a.size(); ++i) {
    d = std::max(d, std::abs(a[i] - b[i]));
    s = std::max(s, std::abs(b[i]));
  }
  return d / s;
}

struct Factor {
  const char* name;
  Shape global;
  std::size_t rank_mode;
  std::vector<int> grid_mode_of;
  Shape offset, shape; // local block
};

/// The two factors of a Tucker-1 problem Y (I x J1 x J2) on a grid over Y's modes.
std::vector<Factor> factors_for(const Shape& y, std::size_t R, const BlockLayout& layout, int rank) {
  const Shape off = layout.box_offset(rank), box = layout.box_shape(rank);
  Factor B{"B", {R, y[1], y[2]}, 0, {-1, 1, 2}, {0, off[1], off[2]}, {R, box[1], box[2]}};
  Factor A{"A", {y[0], R}, 1, {0, -1}, {off[0], 0}, {box[0], R}};
  return {B, A};
}

struct Outcome {
  Vec block;
  ScaleWeights w;
  double viol;
};

Outcome run_serial(const ConstraintList& list, const Factor& f, const Vec& global) {
  Vec x = global;
  FactorView v = local_view(x, f.global, f.rank_mode);
  Outcome o;
  o.w = apply(list, v);
  o.viol = violation(list, v);
  o.block = extract(x, f.global, f.offset, f.shape);
  return o;
}

Outcome run_dist(const ConstraintList& list, const Factor& f, const Vec& global, const FactorReducers& red) {
  Outcome o;
  o.block = extract(global, f.global, f.offset, f.shape);
  FactorView v = factor_view(o.block, f.shape, f.global, f.offset, f.rank_mode, red);
  o.w = apply(list, v);
  o.viol = violation(list, v);
  return o;
}

} // namespace

TEST_CASE("constraints on distributed factors match the serial result", "[constraints_dist]") {
  const Comm& comm = unmix::test::comm();
  const std::vector<std::string> specs = all_specs();
  REQUIRE(specs.size() > 100);
  struct Problem {
    Shape y;
    std::size_t R;
  };
  // The second problem has fewer entries along each mode than processes on some grids.
  for (const Problem& pb : {Problem{{4, 5, 7}, 3}, Problem{{2, 2, 1}, 3}})
    for (const auto& dims : grids_of(comm.size())) {
      const ProcessGrid grid(dims);
      const BlockLayout layout(pb.y, grid);
      GridComms comms(comm, grid);
      for (const Factor& f : factors_for(pb.y, pb.R, layout, comm.rank())) {
        const FactorReducers red(comms, f.grid_mode_of);
        const Vec global = make_data(f.global, f.rank_mode, 3);
        double worst = 0, worst_w = 0, worst_v = 0;
        std::string worst_spec;
        int weights_mismatch = 0, scaled_cases = 0;
        for (const auto& spec : specs) {
          const ConstraintList list = parse_constraints(spec);
          const Outcome s = run_serial(list, f, global);
          const Outcome d = run_dist(list, f, global, red);
          const double e = rel_diff(d.block, s.block);
          if (e > worst) {
            worst = e;
            worst_spec = spec;
          }
          if (d.w.per_rank.size() != s.w.per_rank.size()) ++weights_mismatch;
          worst_w = std::max({worst_w, rel_diff(d.w.per_rank, s.w.per_rank),
                              std::abs(d.w.scalar - s.w.scalar) / std::max(1.0, std::abs(s.w.scalar))});
          worst_v = std::max(worst_v, std::abs(d.viol - s.viol) / std::max(1.0, s.viol));
          if (s.w.any()) ++scaled_cases;
        }
        INFO("factor " << f.name << " " << shape_string(f.global) << " on grid " << grid.to_string() << ", worst spec "
                       << worst_spec);
        CHECK(worst <= 1e-12);
        CHECK(weights_mismatch == 0);
        CHECK(worst_w <= 1e-12);
        CHECK(worst_v <= 1e-12);
        CHECK(scaled_cases > 10);
      }
    }
}

TEST_CASE("linear constraint on distributed factors matches the serial projection", "[constraints_dist]") {
  const Comm& comm = unmix::test::comm();
  const std::size_t R = 3;
  for (const Shape& y : {Shape{4, 5, 7}, Shape{2, 2, 1}})
    for (const auto& dims : grids_of(comm.size())) {
      const ProcessGrid grid(dims);
      const BlockLayout layout(y, grid);
      GridComms comms(comm, grid);
      for (const Factor& f : factors_for(y, R, layout, comm.rank())) {
        const FactorReducers red(comms, f.grid_mode_of);
        const Vec global = make_data(f.global, f.rank_mode, 8);
        const std::size_t n = f.global[0], M = shape_size(f.global) / n, k = 2;
        CounterRng rng(4, 4);
        for (std::size_t m : {M, std::size_t{1}}) {
          Vec C(k * n), b(k * m);
          for (std::size_t i = 0; i < C.size(); ++i) C[i] = rng.normal(i);
          for (std::size_t i = 0; i < b.size(); ++i) b[i] = rng.normal(1000 + i);
          ConstraintList list = parse_constraints("linear");
          set_linear(list, C, k, n, b, m);
          const Outcome s = run_serial(list, f, global);
          const Outcome d = run_dist(list, f, global, red);
          INFO("factor " << f.name << " " << shape_string(f.global) << " on grid " << grid.to_string() << ", b with "
                         << m << " columns");
          CHECK(rel_diff(d.block, s.block) <= 1e-12);
          CHECK(s.viol <= 1e-12);
          CHECK(d.viol <= 1e-12);
        }
      }
    }
}

TEST_CASE("factor reducers group the processes that share slices", "[constraints_dist]") {
  const Comm& comm = unmix::test::comm();
  for (const auto& dims : grids_of(comm.size())) {
    const ProcessGrid grid(dims);
    GridComms comms(comm, grid);
    const FactorReducers red(comms, {-1, 1, 2}); // B: modes 1, 2 split along grid modes 1, 2
    // Slices fixed on mode 0 only are shared by the processes of one grid-mode-0 coordinate.
    CHECK(red(1u).size() == dims[1] * dims[2]);
    CHECK(red(0u).size() == dims[1] * dims[2]);
    CHECK(red(3u).size() == dims[2]);
    CHECK(red(6u).size() == 1);
    CHECK(red(7u).size() == 1);
    CHECK(red.free_grid_modes(1u) == 6u);
    double one = 1.0;
    red(1u).sum(std::span<double>(&one, 1));
    CHECK(one == static_cast<double>(dims[1] * dims[2]));
    const double mine = static_cast<double>(comm.rank());
    const Vec all = red(3u).gather(std::span<const double>(&mine, 1));
    CHECK(all.size() == static_cast<std::size_t>(dims[2]));
    CHECK(std::is_sorted(all.begin(), all.end()));
    CHECK(std::find(all.begin(), all.end(), mine) != all.end());
  }
  const ProcessGrid g({comm.size(), 1, 1});
  GridComms comms(comm, g);
  CHECK_THROWS_AS(FactorReducers(comms, {0, 0}), ConfigError);
  CHECK_THROWS_AS(FactorReducers(comms, {3}), ConfigError);
}
