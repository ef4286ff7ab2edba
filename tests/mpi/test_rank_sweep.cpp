// The rank sweep over process groups: planted ranks are found, and the error curve does not depend on
// how the processes are grouped (including group counts that do not divide the process count).
#include <catch2/catch.hpp>

#include <cmath>

#include "../support/test_support.hpp"
#include "unmix/model/planted.hpp"
#include "unmix/rank/sweep.hpp"

using namespace unmix;

namespace {

RankSweepOptions options(std::vector<std::size_t> ranks, int groups, std::size_t maxiter) {
  RankSweepOptions o;
  o.ranks = std::move(ranks);
  o.groups = groups;
  o.solver.maxiter = maxiter;
  o.solver.tol.clear(); // a fixed iteration count: the curves can be compared to rounding
  o.solver.seed = 7;
  o.consA = parse_constraints("nonnegative");
  o.consB = parse_constraints("nonnegative");
  return o;
}

GroupLoader<double> planted(Shape shape, std::size_t rank, double noise, std::uint64_t seed) {
  return [=](const Comm& g) { return make_planted<double>(g, shape, rank, noise, seed, std::nullopt, true).Y; };
}

} // namespace

TEST_CASE("sweep plan: contiguous groups, every candidate owned once, larger ranks spread", "[rank_sweep]") {
  const std::vector<std::size_t> ranks{1, 2, 3, 4, 5, 6, 7, 8};
  const auto p = SweepPlan::make(3, 2, ranks);
  CHECK(p.group_size == std::vector<int>{2, 1});
  CHECK(p.group_of(0) == 0);
  CHECK(p.group_of(1) == 0);
  CHECK(p.group_of(2) == 1);
  CHECK(p.owner.size() == ranks.size());
  double load0 = 0, load1 = 0;
  for (std::size_t k = 0; k < ranks.size(); ++k)
    (p.owner[k] == 0 ? load0 : load1) +=
        static_cast<double>(ranks[k]) / p.group_size[static_cast<std::size_t>(p.owner[k])];
  CHECK(std::abs(load0 - load1) <= 8.0 / 1.0); // no group waits for more than one candidate of the other
  CHECK_THROWS_AS(SweepPlan::make(2, 3, ranks), ConfigError);
  CHECK(parse_rank_list("1:12") == std::vector<std::size_t>{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12});
  CHECK(parse_rank_list("2,4,3") == std::vector<std::size_t>{2, 3, 4});
  CHECK(parse_rank_list("1:7:3") == std::vector<std::size_t>{1, 4, 7});
  CHECK_THROWS_AS(parse_rank_list("0:4"), ConfigError);
  CHECK_THROWS_AS(parse_rank_list("5:2"), ConfigError);
  CHECK_THROWS_AS(parse_rank_list("a:b"), ConfigError);
}

TEST_CASE("planted rank-3 10x10x10 Tucker-1 tensor is detected as rank 3", "[rank_sweep]") {
  const Comm& comm = test::comm();
  auto o = options({1, 2, 3, 4, 5, 6, 7, 8}, std::min(comm.size(), 2), 400);
  const auto res = rank_sweep<double>(comm, o, planted({10, 10, 10}, 3, 0.0, 11));
  std::string curve;
  for (const auto& c : res.candidates) curve += std::to_string(c.rel_error) + " ";
  INFO("e(r) = " << curve);
  CHECK(res.chosen_rank == 3);
  for (auto m :
       {CurvatureMethod::splines, CurvatureMethod::circles, CurvatureMethod::breakpoints, CurvatureMethod::kneedle}) {
    std::vector<double> e;
    for (const auto& c : res.candidates) e.push_back(c.rel_error);
    INFO(curvature_method_name(m));
    CHECK(o.ranks[argmax_index(standard_curvature(e, m))] == 3);
  }
  // Every candidate's statistics reached every process, and the factors are held by the solving group.
  for (std::size_t k = 0; k < res.candidates.size(); ++k) {
    CHECK(res.candidates[k].stats.size() == 401);
    CHECK(res.candidates[k].stats.back().rel_error == res.candidates[k].rel_error);
    CHECK(res.factors[k].mine == (res.plan.owner[k] == res.plan.group_of(comm.rank())));
  }
}

TEST_CASE("planted rank-4 problem is detected as rank 4", "[rank_sweep]") {
  const Comm& comm = test::comm();
  auto o = options({1, 2, 3, 4, 5, 6, 7, 8}, std::min(comm.size(), 2), 400);
  const auto res = rank_sweep<double>(comm, o, planted({12, 10, 11}, 4, 0.0, 23));
  std::string curve;
  for (const auto& c : res.candidates) curve += std::to_string(c.rel_error) + " ";
  INFO("e(r) = " << curve);
  CHECK(res.chosen_rank == 4);
}

TEST_CASE("the curve is the same in any grouping as on one process (1e-10 relative)", "[rank_sweep]") {
  const Comm& comm = test::comm();
  Comm self = Comm::self();
  const auto load = planted({9, 8, 7}, 3, 0.05, 5);
  const auto ref = rank_sweep<double>(self, options({1, 2, 3, 4, 5}, 1, 60), load);
  for (int G = 1; G <= comm.size(); ++G) {
    INFO(comm.size() << " processes in " << G << " groups");
    const auto res = rank_sweep<double>(comm, options({1, 2, 3, 4, 5}, G, 60), load);
    REQUIRE(res.candidates.size() == ref.candidates.size());
    for (std::size_t k = 0; k < ref.candidates.size(); ++k) {
      const double a = res.candidates[k].rel_error, b = ref.candidates[k].rel_error;
      CHECK(std::abs(a - b) <= 1e-10 * std::abs(b));
      CHECK(res.candidates[k].iterations == 60);
    }
    CHECK(res.chosen_rank == ref.chosen_rank);
  }
}

TEST_CASE("bad sweeps fail on every process alike", "[rank_sweep]") {
  const Comm& comm = test::comm();
  CHECK_THROWS_AS(rank_sweep<double>(comm, options({1, 2}, comm.size() + 1, 5), planted({5, 4, 3}, 2, 0, 1)),
                  ConfigError);
  // Rank 6 is more than min(I, M) = 5.
  CHECK_THROWS_AS(rank_sweep<double>(comm, options({1, 6}, 1, 5), planted({5, 4, 3}, 2, 0, 1)), ConfigError);
}

TEST_CASE("CP sweeps: a planted rank-3 CP tensor is detected as rank 3, the same in any grouping", "[rank_sweep]") {
  const Comm& comm = test::comm();
  Comm self = Comm::self();
  const GroupLoader<double> load = [](const Comm& g) { return make_planted_cp<double>(g, {12, 10, 8}, 3, 0.02, 1).Y; };
  auto o = options({1, 2, 3, 4, 5, 6}, 1, 3000);
  o.model = "cp";
  o.solver.tol = {{Stat::rel_decrease, 1e-7}};
  // Exact block solves: the core consistency judges a converged fit (projected gradient stopped by this
  // rule leaves rank 3 at 0.018944 against 0.018939, and its core consistency at 92).
  o.solver.bpp = true;
  const auto ref = rank_sweep<double>(self, o, load);
  std::string curve;
  for (const auto& c : ref.candidates) curve += std::to_string(c.rel_error) + " ";
  INFO("e(r) = " << curve);
  CHECK(ref.chosen_rank == 3);
  CHECK(ref.candidates[2].rel_error < 0.025); // the noise's level (0.02 of the data's rms)
  CHECK(ref.candidates[1].rel_error > 0.05);
  // Core consistency: near 100 up to the planted rank, far below it beyond (an extra component fits noise).
  for (std::size_t k = 0; k < ref.candidates.size(); ++k) {
    INFO("rank " << ref.candidates[k].rank << " core consistency " << ref.candidates[k].core_consistency);
    if (ref.candidates[k].rank <= 3)
      CHECK(ref.candidates[k].core_consistency > 99.0);
    else
      CHECK(ref.candidates[k].core_consistency < 90.0);
  }
  for (int G = 1; G <= comm.size(); ++G) {
    INFO(comm.size() << " processes in " << G << " groups");
    o.groups = G;
    const auto res = rank_sweep<double>(comm, o, load);
    CHECK(res.chosen_rank == 3);
    for (std::size_t k = 0; k < ref.candidates.size(); ++k) {
      // Stopping by a relative decrease can end a candidate one iteration apart when rounding differs.
      CHECK(res.candidates[k].rel_error == Approx(ref.candidates[k].rel_error).epsilon(1e-6));
      CHECK(res.candidates[k].core_consistency == Approx(ref.candidates[k].core_consistency).epsilon(1e-4));
      // The factors kept are factor 0 and the sources, in the group's layout.
      const CandidateFactors& cf = res.factors[k];
      if (cf.mine) {
        CHECK(cf.f.A.cols() == res.candidates[k].rank);
        CHECK(cf.b_global == Shape{res.candidates[k].rank, 10, 8});
      }
    }
  }
  // CP ranks are not bounded by min(I, M): rank 6 of a 5 x 4 x 3 tensor is a valid candidate.
  auto big = options({1, 6}, 1, 5);
  big.model = "cp";
  CHECK_NOTHROW(rank_sweep<double>(comm, big, [](const Comm& g) {
    return make_planted_cp<double>(g, {5, 4, 3}, 2, 0, 1).Y;
  }));
}
