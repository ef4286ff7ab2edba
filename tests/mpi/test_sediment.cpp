// The distributed factorization of a density tensor agrees with the one-process result, and every
// process ends with the same factors and grain labels.
#include <catch2/catch.hpp>

#include <cmath>
#include <sstream>

#include "../support/test_support.hpp"
#include "unmix/apps/sediment_pipeline.hpp"

using namespace unmix;
using namespace unmix::sediment;

TEST_CASE("sediment factorization: same result at every process count, identical on every process", "[sediment]") {
  const Comm& comm = test::comm();
  std::ostringstream t;
  t << "sink,grain,Age,Th_U,Eu\n";
  for (int s = 0; s < 5; ++s)
    for (int g = 0; g < 30; ++g) {
      const bool first = (g * 7 + s * 3) % 10 < 2 + s; // sinks mix two sources in different amounts
      t << "S" << s << "," << g << "," << (first ? 20 : 80) + (g * 13 % 17) << ","
        << (first ? 0.2 : 0.7) + 0.01 * (g % 9) << "," << (first ? 5.0 : 2.0) + 0.1 * (g * 5 % 7) << "\n";
    }
  const GrainTable g = parse_tidy(csv::parse(t.str(), "mem.csv"));
  validate(g);
  KdeOptions ko;
  ko.grid_points = 37;
  const KdeTensor T = build_tensor(g, ko);
  FactorSettings fs;
  fs.solver.maxiter = 200;
  fs.solver.tol = {};
  const Factorization par = factorize_tensor(T, 2, fs, comm);
  const Comm self = Comm::self();
  const Factorization ser = factorize_tensor(T, 2, fs, self);
  REQUIRE(par.A.size() == ser.A.size());
  REQUIRE(par.B.size() == ser.B.size());
  double da = 0, db = 0;
  for (std::size_t k = 0; k < par.A.size(); ++k) da = std::max(da, std::abs(par.A[k] - ser.A[k]));
  for (std::size_t k = 0; k < par.B.size(); ++k) db = std::max(db, std::abs(par.B[k] - ser.B[k]));
  CHECK(da < 1e-8);
  CHECK(db < 1e-8);
  // Rows of A on the simplex, fibres of B sum to 1.
  for (std::size_t i = 0; i < T.I; ++i) CHECK(par.A[i] + par.A[i + T.I] == Approx(1.0).epsilon(1e-10));
  // Every process holds bit-identical factors.
  std::vector<double> mine = par.A;
  mine.insert(mine.end(), par.B.begin(), par.B.end());
  std::vector<double> lo = mine, hi = mine;
  comm.allreduce(std::span<double>(lo), Op::min);
  comm.allreduce(std::span<double>(hi), Op::max);
  CHECK(lo == hi);
  const auto labels = label_grains(g, T.grid, par.B, 2);
  CHECK(labels.size() == 150);
}
