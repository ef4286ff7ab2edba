// The tile products against plain double sums, for every instruction set the processor has, every
// register-block size and the row and column remainders.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "unmix/core/error.hpp"
#include "unmix/core/rng.hpp"
#include "unmix/kernels/blas.hpp"
#include "unmix/kernels/tile_products.hpp"

using namespace unmix;

namespace {

template <class T> std::vector<T> random_values(std::size_t n, std::uint64_t seed) {
  CounterRng rng(seed, 0);
  std::vector<T> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<T>(rng.uniform(i) - 0.3);
  return v;
}

// Any summation order of K products with fused or separate multiply-adds errs by at most
// (K + 1) u sum |terms| (u the unit roundoff of T); that is the bound checked.
template <class T> void check_sizes(std::size_t I, std::size_t n, std::size_t R, std::size_t ldy) {
  const double u = std::numeric_limits<T>::epsilon() / 2;
  const auto Y = random_values<T>(ldy * n, 1);
  const auto A = random_values<T>(I * R, 2);
  const auto B = random_values<T>(R * n, 3);
  std::vector<T> C(n * R, T(7));
  tile_yta<T>(I, n, R, Y.data(), ldy, A.data(), C.data());
  std::vector<T> Q = random_values<T>(I * R, 4);
  const std::vector<T> Q0 = Q;
  tile_ybt<T>(I, n, R, Y.data(), ldy, B.data(), Q.data());
  double worst_c = 0, worst_q = 0;
  for (std::size_t j = 0; j < n; ++j)
    for (std::size_t r = 0; r < R; ++r) {
      double s = 0, a = 0;
      for (std::size_t i = 0; i < I; ++i) {
        s += double(Y[i + j * ldy]) * double(A[i + r * I]);
        a += std::abs(double(Y[i + j * ldy]) * double(A[i + r * I]));
      }
      worst_c = std::max(worst_c, std::abs(double(C[j + r * n]) - s) / (a + 1e-300));
    }
  for (std::size_t i = 0; i < I; ++i)
    for (std::size_t r = 0; r < R; ++r) {
      double s = double(Q0[i + r * I]), a = std::abs(s);
      for (std::size_t j = 0; j < n; ++j) {
        s += double(Y[i + j * ldy]) * double(B[r + j * R]);
        a += std::abs(double(Y[i + j * ldy]) * double(B[r + j * R]));
      }
      worst_q = std::max(worst_q, std::abs(double(Q[i + r * I]) - s) / (a + 1e-300));
    }
  INFO("isa " << tile_products_isa() << " I " << I << " n " << n << " R " << R << " ldy " << ldy);
  CHECK(worst_c <= double(I + 1) * u);
  CHECK(worst_q <= double(n + 2) * u);
}

} // namespace

TEST_CASE("tile products equal plain sums on every instruction set", "[tile_products]") {
  const std::string original = tile_products_isa();
  int sets = 0;
  for (const char* isa : {"baseline", "avx2", "avx512"}) {
    if (!tile_products_use(isa)) continue;
    ++sets;
    for (std::size_t R : {1, 2, 3, 5, 6, 7, 10, 12, 13, 24, 25, 40})
      for (std::size_t I : {1, 7, 16, 33, 100})
        for (std::size_t n : {1, 3, 4, 9}) {
          check_sizes<double>(I, n, R, I);
          check_sizes<float>(I, n, R, I);
        }
    check_sizes<double>(2000, 32, 10, 2000);
    check_sizes<double>(57, 11, 10, 64); // leading dimension larger than I
    check_sizes<float>(2000, 64, 10, 2000);
  }
  CHECK(sets >= 1);
  CHECK_FALSE(tile_products_use("sse9"));
  REQUIRE(tile_products_use(original.c_str()));
  CHECK(std::string(tile_products_isa()) == original);
}

TEST_CASE("tile products equal plain sums for every split of R into blocks", "[tile_products]") {
  // Every block size 1..12 is a separate instantiation; the default limit (6) uses only some of them.
  for (int limit = 1; limit <= 12; ++limit) {
    REQUIRE(tile_products_rank_block(limit));
    for (std::size_t R : {4, 7, 10, 12, 13, 24, 25})
      for (std::size_t I : {7, 33, 100})
        for (std::size_t n : {1, 9}) {
          check_sizes<double>(I, n, R, I);
          check_sizes<float>(I, n, R, I);
        }
  }
  REQUIRE(tile_products_rank_block(0));
  CHECK_FALSE(tile_products_rank_block(13));
  CHECK_FALSE(tile_products_rank_block(-1));
  CHECK_FALSE(tile_products_rank_block(0, 13));
}

TEST_CASE("the second product's own block limit gives the same sums, bit for bit", "[tile_products]") {
  // Each entry of Q is summed over the tile's columns in the same order whatever the blocks of R. Mode 0:
  // the rule's flag 16 (one block of up to 12) would override the limit.
  for (std::size_t R : {3, 10, 13}) {
    const std::size_t I = 203, n = 17;
    const auto Y = random_values<double>(I * n, 5);
    const auto B = random_values<double>(R * n, 6);
    REQUIRE(tile_products_rank_block(0));
    std::vector<double> Q0(I * R, 0.25);
    tile_ybt<double>(I, n, R, Y.data(), I, B.data(), Q0.data(), nullptr, 0, 0);
    for (int second = 1; second <= 12; ++second) {
      REQUIRE(tile_products_rank_block(0, second));
      std::vector<double> Q(I * R, 0.25);
      tile_ybt<double>(I, n, R, Y.data(), I, B.data(), Q.data(), nullptr, 0, 0);
      INFO("R " << R << " second limit " << second);
      CHECK(Q == Q0);
    }
  }
  REQUIRE(tile_products_rank_block(0));
}

// The cases of the block-flag tests: every instruction set the processor has, and these R, I and n; the
// instruction set in use restored after.
template <class F> void over_flag_cases(F&& f) {
  const std::string original = tile_products_isa();
  for (const char* isa : {"baseline", "avx2", "avx512"}) {
    if (!tile_products_use(isa)) continue;
    for (std::size_t R : {1, 5, 10, 12, 13, 25})
      for (std::size_t I : {7, 33, 2000})
        for (std::size_t n : {1, 9, 24}) f(isa, R, I, n);
  }
  REQUIRE(tile_products_use(original.c_str()));
}

TEST_CASE("the first product in one block of R (mode flag 8) gives the same sums, bit for bit", "[tile_products]") {
  // Y^T A sums each column of Y against each column of A in the same order whatever the blocks of R and
  // whatever is read ahead; flag 8 only changes the blocks (up to 12 instead of 6). Checked with a next
  // tile to read (bits 1 and 2 and the spread mode 4 take paths of their own) on every instruction set.
  over_flag_cases([](const char* isa, std::size_t R, std::size_t I, std::size_t n) {
    const auto Y = random_values<double>(I * 2 * n, 31);
    const auto A = random_values<double>(I * R, 32);
    const auto Yf = random_values<float>(I * 2 * n, 31);
    const auto Af = random_values<float>(I * R, 32);
    std::vector<double> plain(n * R);
    std::vector<float> plainf(n * R);
    tile_yta<double>(I, n, R, Y.data(), I, A.data(), plain.data(), nullptr, 0, 0);
    tile_yta<float>(I, n, R, Yf.data(), I, Af.data(), plainf.data(), nullptr, 0, 0);
    for (int mode : {0, 3, 4}) {
      std::vector<double> C(n * R, -1.0);
      std::vector<float> Cf(n * R, -1.0f);
      tile_yta<double>(I, n, R, Y.data(), I, A.data(), C.data(), Y.data() + n * I, n * I, tile_one_block | mode);
      tile_yta<float>(I, n, R, Yf.data(), I, Af.data(), Cf.data(), Yf.data() + n * I, n * I, tile_one_block | mode);
      INFO("isa " << isa << " R " << R << " I " << I << " n " << n << " mode " << (tile_one_block | mode));
      CHECK(C == plain);
      CHECK(Cf == plainf);
    }
  });
  // The modes that can be set: 0-4, 8-12, 16-20 and 24-28.
  for (int mode : {-1, 0, 4, 8, 11, 12, 16, 20, 24, 28}) CHECK(tile_products_prefetch(mode));
  for (int mode : {-2, 5, 7, 13, 15, 21, 23, 29, 32}) CHECK_FALSE(tile_products_prefetch(mode));
  REQUIRE(tile_products_prefetch(-1));
}

TEST_CASE("the second product in one block of R (mode flag 16) gives the same sums, bit for bit", "[tile_products]") {
  // Q's entries are summed over the tile's columns in order whatever the blocks of R and whatever is read
  // ahead; flag 16 only changes the blocks (up to 12 instead of 6). With a next tile to read (bit 2 and the
  // spread mode 4 take paths of their own), in double, float, and float summed into a double Q.
  over_flag_cases([](const char* isa, std::size_t R, std::size_t I, std::size_t n) {
    const auto Y = random_values<double>(I * 2 * n, 41);
    const auto B = random_values<double>(R * n, 42);
    const auto Yf = random_values<float>(I * 2 * n, 41);
    const auto Bf = random_values<float>(R * n, 42);
    std::vector<double> plain(I * R, 0.5), plain_wide(I * R, 0.5);
    std::vector<float> plainf(I * R, 0.5f);
    tile_ybt<double>(I, n, R, Y.data(), I, B.data(), plain.data(), nullptr, 0, 0);
    tile_ybt<float>(I, n, R, Yf.data(), I, Bf.data(), plainf.data(), nullptr, 0, 0);
    tile_ybt_double_sum(I, n, R, Yf.data(), I, Bf.data(), plain_wide.data(), nullptr, 0, 0);
    for (int mode : {0, 2, 3, 4, tile_one_block | 4}) {
      const int flagged = tile_second_one_block | mode;
      std::vector<double> Q(I * R, 0.5), Qw(I * R, 0.5);
      std::vector<float> Qf(I * R, 0.5f);
      tile_ybt<double>(I, n, R, Y.data(), I, B.data(), Q.data(), Y.data() + n * I, n * I, flagged);
      tile_ybt<float>(I, n, R, Yf.data(), I, Bf.data(), Qf.data(), Yf.data() + n * I, n * I, flagged);
      tile_ybt_double_sum(I, n, R, Yf.data(), I, Bf.data(), Qw.data(), Yf.data() + n * I, n * I, flagged);
      INFO("isa " << isa << " R " << R << " I " << I << " n " << n << " mode " << flagged);
      CHECK(Q == plain);
      CHECK(Qf == plainf);
      CHECK(Qw == plain_wide);
    }
  });
}

TEST_CASE("the rule reads ahead with the second product in one block for double on AVX-512 only, float there "
          "measures it as a candidate, and the first product's one block is a candidate there only",
          "[tile_products]") {
  // Flag 16 joins every candidate that reads ahead, for double values on AVX-512; float there keeps blocks of 6
  // in the rule's pick and has the flag beside each read-ahead among the candidates; the other instruction sets
  // never take it; a fixed mode keeps its flags as given.
  const std::string original = tile_products_isa();
  REQUIRE(tile_products_prefetch(-1));
  for (const char* isa : {"baseline", "avx2", "avx512"}) {
    if (!tile_products_use(isa)) continue;
    const bool wide = std::string(isa) == "avx512";
    for (std::size_t elem : {sizeof(double), sizeof(float)}) {
      const auto modes = tile_read_ahead_modes(2000, 24, 2000, 10, elem);
      REQUIRE(modes.size() >= 3);
      const bool is_double = elem == sizeof(double);
      for (int m : modes) {
        INFO("isa " << isa << " bytes " << elem << " mode " << m);
        const bool reads_ahead = (m & tile_read_ahead_bits) != 0;
        const bool second = (m & tile_second_one_block) != 0;
        if (is_double) CHECK(second == (wide && reads_ahead));
        if (!wide) CHECK(!second);
        if (second) CHECK(reads_ahead);
        if (!wide) CHECK((m & tile_one_block) == 0); // the first product in one block: AVX-512 only
        // No mode twice.
        CHECK(std::count(modes.begin(), modes.end(), m) == 1);
      }
      INFO("isa " << isa << " bytes " << elem);
      CHECK(std::any_of(modes.begin(), modes.end(), [](int m) { return (m & tile_one_block) != 0; }) == wide);
      CHECK(std::find(modes.begin(), modes.end(), 0) != modes.end());
      if (!is_double) {
        // The rule's pick for float never has the flag; with AVX-512 the candidates do, with and without it (the
        // whole next tile during the second product: 2, and 16 | 2, at 2000 x 24 tiles, which overfill the cache).
        CHECK((modes[0] & tile_second_one_block) == 0);
        CHECK((std::find(modes.begin(), modes.end(), tile_second_one_block | 2) != modes.end()) == wide);
        CHECK(std::find(modes.begin(), modes.end(), 2) != modes.end());
      }
    }
  }
  for (int fixed : {3, 4, tile_second_one_block | 2, tile_one_block | tile_second_one_block | 4}) {
    REQUIRE(tile_products_prefetch(fixed));
    const auto modes = tile_read_ahead_modes(96, 85, 96, 5, sizeof(double));
    REQUIRE(modes.size() == 1);
    CHECK(modes[0] == fixed); // 96 x 85 tiles fit the cache: bit 1 stays
  }
  REQUIRE(tile_products_prefetch(-1));
  REQUIRE(tile_products_use(original.c_str()));
}

TEST_CASE("the second product gives the same bits with AVX2 and AVX-512, remainder rows included", "[tile_products]") {
  // Each row of Q is summed over the columns in order with multiply-adds in either instruction set, whether the
  // row falls in a whole vector or among the I mod W rows after the last one (read with a mask): the vector width
  // does not change the sums. I runs over every remainder of 4, 8 and 16.
  const std::string original = tile_products_isa();
  if (!tile_products_use("avx2") || !tile_products_use("avx512")) {
    REQUIRE(tile_products_use(original.c_str()));
    SUCCEED("AVX2 and AVX-512 are not both available here");
    return;
  }
  for (std::size_t R : {1, 3, 5, 10, 13})
    for (std::size_t I = 1; I <= 40; ++I)
      for (std::size_t n : {1, 6, 24}) {
        const auto Y = random_values<double>(I * n, 21), B = random_values<double>(R * n, 22);
        const auto Yf = random_values<float>(I * n, 23), Bf = random_values<float>(R * n, 24);
        const auto Q0 = random_values<double>(I * R, 25);
        const auto Qf0 = random_values<float>(I * R, 26);
        std::vector<double> Q[2], Qw[2];
        std::vector<float> Qf[2];
        for (int k = 0; k < 2; ++k) {
          REQUIRE(tile_products_use(k == 0 ? "avx2" : "avx512"));
          Q[k] = Q0;
          Qw[k] = Q0;
          Qf[k] = Qf0;
          tile_ybt<double>(I, n, R, Y.data(), I, B.data(), Q[k].data());
          tile_ybt<float>(I, n, R, Yf.data(), I, Bf.data(), Qf[k].data());
          tile_ybt_double_sum(I, n, R, Yf.data(), I, Bf.data(), Qw[k].data());
        }
        INFO("I " << I << " n " << n << " R " << R);
        CHECK(Q[0] == Q[1]);
        CHECK(Qf[0] == Qf[1]);
        CHECK(Qw[0] == Qw[1]);
      }
  REQUIRE(tile_products_use(original.c_str()));
}

TEST_CASE("float products added to a double Q equal the float tile sums added in double", "[tile_products]") {
  // tile_ybt_double_sum must give, bit for bit, what a zeroed float Q filled by tile_ybt<float> and then
  // added to the double Q gives: the same sums in float, converted once.
  const std::string original = tile_products_isa();
  for (const char* isa : {"baseline", "avx2", "avx512"}) {
    if (!tile_products_use(isa)) continue;
    for (std::size_t R : {1, 3, 5, 6, 10, 13})
      for (std::size_t I : {1, 7, 16, 33, 100, 2000})
        for (std::size_t n : {1, 4, 9, 49}) {
          const auto Y = random_values<float>(I * n, 11);
          const auto B = random_values<float>(R * n, 12);
          const auto Q0 = random_values<double>(I * R, 13);
          std::vector<float> Qf(I * R, 0.0f);
          tile_ybt<float>(I, n, R, Y.data(), I, B.data(), Qf.data());
          std::vector<double> expect = Q0, got = Q0;
          for (std::size_t k = 0; k < expect.size(); ++k) expect[k] += static_cast<double>(Qf[k]);
          tile_ybt_double_sum(I, n, R, Y.data(), I, B.data(), got.data());
          INFO("isa " << isa << " I " << I << " n " << n << " R " << R);
          CHECK(got == expect);
        }
  }
  REQUIRE(tile_products_use(original.c_str()));
}

// gemm splits m, n and k beyond the BLAS's int sizes into blocks; a lowered limit runs those blocks at
// small sizes. Every combination of transposes, leading dimensions larger than the rows, beta 0 (C's old
// values, here NaN, never read) and beta 0.5, against plain double sums with the same rounding bound.
TEST_CASE("gemm in blocks beyond the BLAS's int sizes equals plain sums", "[tile_products]") {
  using blas::Trans;
  const double u = std::numeric_limits<double>::epsilon() / 2;
  const std::size_t m = 13, n = 11, k = 17, pad = 3;
  for (std::size_t limit : {std::size_t{1} << 31, std::size_t{5}, std::size_t{1}}) {
    const std::size_t previous = blas::set_gemm_block_limit(limit);
    for (Trans ta : {Trans::N, Trans::T})
      for (Trans tb : {Trans::N, Trans::T})
        for (double beta : {0.0, 0.5}) {
          INFO("limit " << limit << ", transposes " << (ta == Trans::T) << (tb == Trans::T) << ", beta " << beta);
          const std::size_t lda = (ta == Trans::N ? m : k) + pad, ldb = (tb == Trans::N ? k : n) + pad, ldc = m + pad;
          const auto A = random_values<double>(lda * (ta == Trans::N ? k : m), 11);
          const auto B = random_values<double>(ldb * (tb == Trans::N ? n : k), 12);
          const auto C0 = random_values<double>(ldc * n, 13);
          std::vector<double> C = C0;
          if (beta == 0.0)
            for (double& c : C) c = std::numeric_limits<double>::quiet_NaN();
          blas::gemm<double>(ta, tb, m, n, k, 1.5, A.data(), lda, B.data(), ldb, beta, C.data(), ldc);
          double worst = 0;
          for (std::size_t j = 0; j < n; ++j)
            for (std::size_t i = 0; i < m; ++i) {
              double s = beta * C0[i + j * ldc], bound = std::abs(s);
              for (std::size_t l = 0; l < k; ++l) {
                const double a = ta == Trans::N ? A[i + l * lda] : A[l + i * lda];
                const double b = tb == Trans::N ? B[l + j * ldb] : B[j + l * ldb];
                s += 1.5 * a * b;
                bound += std::abs(1.5 * a * b);
              }
              worst = std::max(worst, std::abs(C[i + j * ldc] - s) / ((k + 2) * u * bound));
            }
          CHECK(worst <= 1.0);
          // The padding rows of C are left alone.
          std::size_t touched = 0;
          for (std::size_t j = 0; j < n; ++j)
            for (std::size_t i = m; i < ldc; ++i)
              if (!(std::isnan(C[i + j * ldc]) || C[i + j * ldc] == C0[i + j * ldc])) ++touched;
          CHECK(touched == 0);
        }
    blas::set_gemm_block_limit(previous);
  }
  // A leading dimension the BLAS cannot take is refused, not wrapped.
  double one = 1;
  CHECK_THROWS_AS(
      blas::gemm<double>(Trans::N, Trans::N, 1, 1, 1, 1.0, &one, std::size_t{1} << 32, &one, 1, 0.0, &one, 1), Error);
}
