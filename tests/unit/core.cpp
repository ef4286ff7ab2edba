#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdint>
#include <set>
#include <vector>

#include "unmix/core/resources.hpp"
#include "unmix/core/rng.hpp"
#include "unmix/core/tensor.hpp"
#include "unmix/dist/layout.hpp"

using namespace unmix;

TEST_CASE("tensor is column-major with mode 1 fastest", "[core]") {
  Tensor<double> t({2, 3, 4});
  for (std::size_t i = 0; i < t.size(); ++i) t[i] = static_cast<double>(i);
  const std::size_t idx[] = {1, 2, 3};
  CHECK(t.linear(idx) == 1 + 2 * 2 + 3 * 6);
  CHECK(t.rows() == 2);
  CHECK(t.cols() == 12);
  CHECK(t(1, 5) == 11.0);
  CHECK_THROWS_AS(Tensor<double>({2, 2}, std::vector<double>(3)), DataError);
}

TEST_CASE("large tensors (asking for 2 MiB pages) hold their fill like small ones", "[core]") {
  // 12 MB of float and 24 MiB of double: above the size where the constructor advises large pages.
  const Tensor<float> f({1000, 3001}, 2.5f);
  REQUIRE(f.size() == 3001000u);
  CHECK(std::count(f.span().begin(), f.span().end(), 2.5f) == 3001000);
  Tensor<double> d({3, std::size_t{1} << 20}, -1.0);
  CHECK(std::count(d.span().begin(), d.span().end(), -1.0) == static_cast<long>(d.size()));
  d[d.size() - 1] = 4.0;
  CHECK(d(2, (std::size_t{1} << 20) - 1) == 4.0);
  // The advice is a hint on touched or untouched memory, at any alignment, and never changes contents.
  std::vector<char> bytes((std::size_t{20} << 20) + 123, 7);
  advise_large_pages(bytes.data() + 13, bytes.size() - 13);
  advise_large_pages(bytes.data(), 100);
  advise_large_pages(nullptr, 0);
  CHECK(std::count(bytes.begin(), bytes.end(), 7) == static_cast<long>(bytes.size()));
}

TEST_CASE("tensor storage starts on a cache line, and large storage on a 2 MiB boundary", "[core]") {
  // The C library returns large blocks 16 bytes past a page: 64-byte vector loads would then straddle
  // two lines each. Every way a tensor gets storage keeps the alignment.
  auto offset = [](const void* p, std::size_t a) { return reinterpret_cast<std::uintptr_t>(p) % a; };
  for (std::size_t n : {1u, 3u, 1000u, 20000u, 300000u}) {
    const Tensor<double> d({n}, 1.0);
    const Tensor<float> f({n, 2}, 1.0f);
    CHECK(offset(d.data(), 64) == 0);
    CHECK(offset(f.data(), 64) == 0);
    const Tensor<double> copy = d;
    CHECK(offset(copy.data(), 64) == 0);
    CHECK(std::equal(copy.span().begin(), copy.span().end(), d.span().begin(), d.span().end()));
    const Tensor<double> from_vector({n}, std::vector<double>(n, 3.0));
    CHECK(offset(from_vector.data(), 64) == 0);
    CHECK(from_vector[n - 1] == 3.0);
  }
  static_assert(storage_alignment(64) == 64 && storage_alignment((std::size_t{4} << 20) - 8) == 64);
  static_assert(storage_alignment(std::size_t{4} << 20) == std::size_t{2} << 20);
  Tensor<double> big({std::size_t{1} << 20}, 0.5); // 8 MiB
  CHECK(offset(big.data(), std::size_t{2} << 20) == 0);
  Tensor<double> moved = std::move(big);
  CHECK(offset(moved.data(), std::size_t{2} << 20) == 0);
  moved.vec().resize(moved.size() + 1, 2.0); // regrows through the same allocator
  CHECK(offset(moved.data(), std::size_t{2} << 20) == 0);
  CHECK(moved[0] == 0.5);
  CHECK(moved[moved.size() - 1] == 2.0);
}

TEST_CASE("permute moves every entry to its permuted index", "[core]") {
  Tensor<double> t({2, 3, 4});
  for (std::size_t i = 0; i < t.size(); ++i) t[i] = static_cast<double>(i);
  const std::size_t perm[] = {2, 0, 1};
  Tensor<double> p = permute(t, perm);
  REQUIRE(p.shape() == Shape{4, 2, 3});
  for (std::size_t a = 0; a < 2; ++a)
    for (std::size_t b = 0; b < 3; ++b)
      for (std::size_t c = 0; c < 4; ++c) {
        const std::size_t in[] = {a, b, c}, out[] = {c, a, b};
        CHECK(p[p.linear(out)] == t[t.linear(in)]);
      }
}

TEST_CASE("counter-based RNG is a pure function of (seed, stream, index)", "[core]") {
  CounterRng a(7, 1), b(7, 1), c(8, 1), d(7, 2);
  CHECK(a.uniform(12345) == b.uniform(12345));
  CHECK(a.uniform(12345) != c.uniform(12345));
  CHECK(a.uniform(12345) != d.uniform(12345));
  double mean = 0, var = 0;
  const int n = 200000;
  for (int k = 0; k < n; ++k) {
    const double z = a.normal(static_cast<std::uint64_t>(k));
    mean += z;
    var += z * z;
  }
  mean /= n;
  var = var / n - mean * mean;
  CHECK(std::abs(mean) < 0.01);
  CHECK(std::abs(var - 1.0) < 0.02);
}

TEST_CASE("block partition covers the extent, owner is the inverse, empty blocks allowed", "[core]") {
  for (std::size_t J : {0u, 1u, 5u, 7u, 16u, 1025u})
    for (int p : {1, 2, 3, 4, 7, 8}) {
      BlockPartition part{J, p};
      std::size_t covered = 0;
      for (int k = 0; k < p; ++k) {
        CHECK(part.offset(k) == covered);
        covered += part.size(k);
        for (std::size_t i = part.offset(k); i < part.offset(k) + part.size(k); ++i) CHECK(part.owner(i) == k);
      }
      CHECK(covered == J);
    }
}

TEST_CASE("block layout boxes tile the tensor exactly once", "[core]") {
  const Shape shape{5, 3, 7};
  for (auto dims : {std::vector<int>{1, 1, 4}, {2, 1, 2}, {1, 3, 1}, {6, 1, 1}, {1, 4, 2}}) {
    BlockLayout L(shape, ProcessGrid(dims));
    std::vector<int> hits(shape_size(shape), 0);
    for (int r = 0; r < L.grid().size(); ++r) {
      const Shape off = L.box_offset(r), box = L.box_shape(r);
      for (std::size_t a = 0; a < box[0]; ++a)
        for (std::size_t b = 0; b < box[1]; ++b)
          for (std::size_t c = 0; c < box[2]; ++c) {
            const Shape g{off[0] + a, off[1] + b, off[2] + c};
            hits[g[0] + shape[0] * (g[1] + shape[1] * g[2])]++;
            CHECK(L.owner(g) == r);
          }
    }
    for (int h : hits) CHECK(h == 1);
  }
}

TEST_CASE("process grid parsing and defaults", "[core]") {
  CHECK(ProcessGrid::parse("1x2x2", 3, 4).dims() == std::vector<int>{1, 2, 2});
  CHECK_THROWS_AS(ProcessGrid::parse("1x2x2", 3, 3), ConfigError);
  CHECK_THROWS_AS(ProcessGrid::parse("1x2", 3, 2), ConfigError);
  CHECK_THROWS_AS(ProcessGrid::parse("1xax2", 3, 2), ConfigError);
  const auto g = ProcessGrid::default_for({20, 1025, 7}, 4);
  CHECK(g.dims() == std::vector<int>{1, 4, 1});
  const auto g6 = ProcessGrid::default_for({20, 100, 100}, 6);
  CHECK(g6.dims()[0] == 1);
  CHECK(g6.size() == 6);
  for (int r = 0; r < 12; ++r) CHECK(ProcessGrid({3, 2, 2}).rank_of(ProcessGrid({3, 2, 2}).coords(r)) == r);
}

TEST_CASE("a process grid too large to count is refused, not overflowed", "[core]") {
  CHECK_THROWS_AS(ProcessGrid({1, 6662, 666662}), ConfigError);
  CHECK_THROWS_AS(ProcessGrid::parse("1x6662x666662", 3, 4), ConfigError);
}

TEST_CASE("node memory: /proc/meminfo parsed, the job's limit preferred, sizes printed", "[core]") {
  const NodeMemory m = parse_meminfo("MemTotal:       24684084 kB\nMemFree:        21000000 kB\n"
                                     "MemAvailable:   24107672 kB\nBuffers:          123456 kB\n");
  CHECK(m.total == 24684084.0 * 1024);
  CHECK(m.available == 24107672.0 * 1024);
  CHECK(m.job_limit == 0);
  CHECK(m.ceiling() == m.total);
  NodeMemory limited = m;
  limited.job_limit = 8.0 * 1024 * 1024 * 1024;
  CHECK(limited.ceiling() == limited.job_limit);
  limited.job_limit = 2 * m.total; // a limit above the node's memory does not raise it
  CHECK(limited.ceiling() == m.total);
  // This machine: something sensible.
  const NodeMemory here = node_memory();
  CHECK(here.total > 64e6);
  CHECK(here.available > 0);
  CHECK(here.available <= here.total);
  CHECK(format_bytes(500.0 * 1024 * 1024) == "500 MiB");
  CHECK(format_bytes(64.0 * 1024 * 1024 * 1024) == "64 GiB");
  CHECK(format_bytes(1.5 * 1024 * 1024 * 1024) == "1.5 GiB");
  CHECK(peak_resident_bytes() > std::size_t{1000000});
}
