// SRMD with the features split over the processes gives the same modes as one process (the forward
// products are exact integer sums, the adjoint entries are computed whole), at 1, 2, 3 and 4 ranks.
#include <catch2/catch.hpp>

#include <cmath>
#include <string>
#include <vector>

#include "../support/test_support.hpp"
#include "unmix/core/rng.hpp"
#include "unmix/io/signal.hpp"
#include "unmix/srmd/comm_reduction.hpp"
#include "unmix/srmd/features.hpp"
#include "unmix/srmd/srmd.hpp"

using namespace unmix;
using namespace unmix::srmd;

namespace {
void load(const std::string& name, std::vector<double>& t, std::vector<double>& y) {
  io::Signal sig = io::read_signal_csv(test::shared_data("srmd/signals/" + name + ".csv"));
  t = std::move(sig.t);
  y = std::move(sig.y);
}
} // namespace

TEST_CASE("distributed SRMD gives the modes of one process", "[srmd]") {
  const Comm& comm = test::comm();
  std::vector<double> t, y;
  load("ex1_discontinuous", t, y);
  SrmdOptions o;
  o.eps = 0.1;
  o.min_samples = 3;
  o.r = 0.06;
  o.n_modes = 3;
  o.n_features = 50 * t.size() + 1; // not a multiple of the process count
  o.seed = 7;
  const CommReduction red(comm);
  const SrmdResult dist = srmd::srmd(t, y, o, red);
  const SrmdResult serial = srmd::srmd(t, y, o);
  REQUIRE(dist.n_modes == serial.n_modes);
  REQUIRE(dist.n_modes == 3);
  CHECK(dist.iterations == serial.iterations);
  CHECK(dist.index == serial.index);
  CHECK(dist.label == serial.label);
  double diff = 0, scale = 0;
  for (std::size_t i = 0; i < dist.modes.size(); ++i) {
    diff = std::max(diff, std::abs(dist.modes[i] - serial.modes[i]));
    scale = std::max(scale, std::abs(serial.modes[i]));
  }
  CHECK(diff <= 1e-10 * scale);
  // Every rank holds the same result.
  double first = dist.modes[dist.m / 2];
  comm.bcast(std::span<double>(&first, 1), 0);
  CHECK(first == dist.modes[dist.m / 2]);
}

TEST_CASE("the split dictionary's products equal one process's, even with ranks owning no column", "[srmd]") {
  const Comm& comm = test::comm();
  std::vector<double> t(97);
  for (std::size_t i = 0; i < t.size(); ++i) t[i] = 0.01 * static_cast<double>(i);
  for (std::size_t N : {std::size_t{3}, std::size_t{501}}) {
    const int P = comm.size(), p = comm.rank();
    const std::size_t b = block_first(N, P, p), e = block_first(N, P, p + 1);
    const CommReduction red(comm);
    const SerialReduction one;
    const FeatureDictionary dist(t, draw_features(4, N, b, e, 0.0, 0.96, 50.0), 0.1, b, N, red);
    const FeatureDictionary whole(t, draw_features(4, N, 0, N, 0.0, 0.96, 50.0), 0.1, 0, N, one);
    SeqRng rng(5);
    std::vector<double> x(N), r(t.size());
    for (double& v : x) v = rng.uniform() - 0.5;
    for (double& v : r) v = rng.uniform() - 0.5;
    std::vector<double> y1(t.size()), y2(t.size()), g1(N), g2(N);
    dist.forward(x, y1);
    whole.forward(x, y2);
    dist.adjoint(r, g1);
    whole.adjoint(r, g2);
    CHECK(y1 == y2); // bitwise
    CHECK(g1 == g2);
  }
}
