// The ScaLAPACK spectrum of Y(1) against LAPACK and against a planted spectrum, on every process grid.
#include <catch2/catch.hpp>

#include <cmath>
#include <functional>
#include <numbers>

#include "../support/test_support.hpp"
#include "unmix/dist/svd.hpp"
#include "unmix/kernels/blas.hpp"
#include "unmix/model/planted.hpp"
#include "unmix/model/tucker1.hpp"
#include "unmix/rank/nndsvd.hpp"
#include "unmix/solver/solver.hpp"

extern "C" void dgesvd_(const char* jobu, const char* jobvt, const int* m, const int* n, double* a, const int* lda,
                        double* s, double* u, const int* ldu, double* vt, const int* ldvt, double* work,
                        const int* lwork, int* info);

using namespace unmix;

namespace {} // namespace

TEST_CASE("pdsyev on a replicated matrix equals LAPACK's syev", "[svd]") {
  const Comm& comm = test::comm();
  for (std::size_t n : {1u, 7u, 13u}) {
    for (std::size_t block : {0u, 2u}) {
      INFO("n " << n << " block " << block);
      std::vector<double> S(n * n);
      for (std::size_t j = 0; j < n; ++j)
        for (std::size_t i = 0; i <= j; ++i)
          S[i + j * n] = S[j + i * n] = std::sin(static_cast<double>(1 + i + 3 * j)) + (i == j ? 2.0 : 0.0);
      std::vector<double> Z, Zref;
      const auto w = parallel_sym_eig(comm, S, n, &Z, block);
      auto ref = blas::sym_eig(S.data(), n, &Zref); // ascending
      for (std::size_t k = 0; k < n; ++k) {
        CHECK(w[k] == Approx(ref[n - 1 - k]).epsilon(1e-12).margin(1e-13));
        double d = 0;
        for (std::size_t i = 0; i < n; ++i) d += Z[i + k * n] * Zref[i + (n - 1 - k) * n];
        CHECK(std::abs(d) == Approx(1.0).epsilon(1e-10));
      }
    }
  }
}

TEST_CASE("spectrum of Y(1) equals LAPACK's dgesvd of the whole unfolding", "[svd]") {
  const Comm& comm = test::comm();
  Comm self = Comm::self();
  const Shape shape{6, 5, 4};
  auto serial = make_planted<double>(self, shape, 3, 0.2, 9);
  std::vector<double> Y1(serial.Y.local().span().begin(), serial.Y.local().span().end());
  const int m = 6, n = 20, lwork = 1000;
  std::vector<double> s(6), work(lwork);
  int info = 0;
  double dummy = 0;
  const int ld1 = 1;
  dgesvd_("N", "N", &m, &n, Y1.data(), &m, s.data(), &dummy, &ld1, &dummy, &ld1, work.data(), &lwork, &info);
  REQUIRE(info == 0);
  for (const auto& dims : test::all_grids(comm.size(), shape.size())) {
    INFO("grid " << ProcessGrid(dims).to_string());
    auto dist = make_planted<double>(comm, shape, 3, 0.2, 9, ProcessGrid(dims));
    const Spectrum sp = unfolding_spectrum(dist.Y);
    REQUIRE(sp.sigma.size() == 6);
    for (std::size_t k = 0; k < 6; ++k) CHECK(sp.sigma[k] == Approx(s[k]).epsilon(1e-10).margin(1e-12));
  }
}

TEST_CASE("a planted spectrum is recovered at every process count and grid", "[svd]") {
  const Comm& comm = test::comm();
  const Shape shape{6, 9, 7};
  const std::vector<double> sig{10, 5, 2, 1, 0.5, 0.1};
  const std::size_t M = 63;
  for (const auto& dims : test::all_grids(comm.size(), shape.size())) {
    INFO("grid " << ProcessGrid(dims).to_string());
    DistTensor<double> Y(comm, BlockLayout(shape, ProcessGrid(dims)));
    // Rows i = sig_i sqrt(2/(M+1)) sin(pi (i+1)(m+1)/(M+1)): orthogonal, of norm sig_i.
    const Shape off = Y.offset(), box = Y.local().shape();
    const std::size_t cols = box[0] ? Y.local().size() / box[0] : 0;
    for (std::size_t j = 0; j < cols; ++j) {
      const std::size_t gm = global_column(shape, off, box, j);
      for (std::size_t i = 0; i < box[0]; ++i) {
        const double gi = static_cast<double>(off[0] + i);
        Y.local()[i + j * box[0]] = sig[off[0] + i] * std::sqrt(2.0 / (M + 1)) *
                                    std::sin(std::numbers::pi * (gi + 1) * static_cast<double>(gm + 1) / (M + 1));
      }
    }
    const Spectrum sp = unfolding_spectrum(Y);
    for (std::size_t k = 0; k < 6; ++k) CHECK(sp.sigma[k] == Approx(sig[k]).epsilon(1e-10));
    // The left singular vectors are the unit vectors (up to sign).
    for (std::size_t k = 0; k < 6; ++k) CHECK(std::abs(sp.U[k + k * 6]) == Approx(1.0).epsilon(1e-10));
  }
}

TEST_CASE("NNDSVD start: nonnegative, the same at every process count, closer than a random start", "[svd]") {
  const Comm& comm = test::comm();
  Comm self = Comm::self();
  const Shape shape{8, 12, 10};
  const std::size_t R = 3;
  const auto cons = parse_constraints("nonnegative");
  auto serial = make_planted<double>(self, shape, R, 0.01, 21, std::nullopt, true);
  Tucker1<double> ms(serial.Y, R);
  Factors fs;
  init_nndsvd(ms, fs, unfolding_spectrum(serial.Y), cons, cons);
  for (const auto& dims : test::all_grids(comm.size(), shape.size())) {
    INFO("grid " << ProcessGrid(dims).to_string());
    auto dist = make_planted<double>(comm, shape, R, 0.01, 21, ProcessGrid(dims), true);
    Tucker1<double> md(dist.Y, R);
    Factors fd, fr;
    init_nndsvd(md, fd, unfolding_spectrum(dist.Y), cons, cons);
    double neg = 0;
    for (double v : fd.A.span()) neg += v < 0;
    for (double v : fd.B.span()) neg += v < 0;
    CHECK(comm.allreduce(neg) == 0);
    // Same start as on one process (rows of A compared directly; B through the model's error).
    for (std::size_t r = 0; r < R; ++r)
      for (std::size_t i = 0; i < md.rows_local(); ++i)
        CHECK(fd.A(i, r) == Approx(fs.A(md.row_offset() + i, r)).epsilon(1e-10).margin(1e-12));
    SolverOptions o;
    o.maxiter = 0;
    const double e_nndsvd = solve(md, fd, cons, cons, o).stats.front().rel_error;
    const double e_serial = solve(ms, fs, cons, cons, o).stats.front().rel_error;
    CHECK(e_nndsvd == Approx(e_serial).epsilon(1e-10));
    init_random(md, fr, 1, true, cons, cons);
    const double e_random = solve(md, fr, cons, cons, o).stats.front().rel_error;
    INFO("start rel_error: nndsvd " << e_nndsvd << ", random " << e_random);
    CHECK(e_nndsvd < e_random);
  }
}
