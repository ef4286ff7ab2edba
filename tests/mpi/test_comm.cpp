// Comm's collectives with more data than one MPI call may carry: MPI counts and offsets are int, so
// Comm splits larger data into several calls. The limit is lowered here to a few bytes so that every
// path (pieces of allreduce and bcast, per-process broadcasts of allgatherv, point-to-point pieces of
// alltoallv) runs at small sizes; the results must equal those of the single calls exactly.
#include <catch2/catch.hpp>

#include <numeric>

#include "../support/test_support.hpp"
#include "unmix/core/mpi.hpp"
#include "unmix/model/planted.hpp"
#include "unmix/model/tucker1.hpp"
#include "unmix/multiscale/multiscale.hpp"
#include "unmix/solver/solver.hpp"

using namespace unmix;

namespace {

// Sets the message limit for one scope.
struct MessageBytes {
  std::size_t previous;
  explicit MessageBytes(std::size_t bytes) : previous(set_mpi_message_bytes(bytes)) {}
  ~MessageBytes() { set_mpi_message_bytes(previous); }
  MessageBytes(const MessageBytes&) = delete;
  MessageBytes& operator=(const MessageBytes&) = delete;
};

// Values that identify who sent them and where: exact in double.
double tag(int from, int to, std::size_t j) { return 1e6 * from + 1e3 * to + static_cast<double>(j); }

} // namespace

TEST_CASE("allreduce and bcast in pieces equal single calls", "[comm]") {
  const Comm& comm = test::comm();
  const int P = comm.size();
  for (std::size_t bytes : {std::size_t{1} << 30, std::size_t{24}, std::size_t{8}, std::size_t{1}}) {
    MessageBytes limit(bytes);
    INFO("message limit " << bytes << " bytes");
    std::vector<double> v(37);
    for (std::size_t i = 0; i < v.size(); ++i) v[i] = tag(comm.rank(), 0, i);
    comm.allreduce(std::span<double>(v));
    std::size_t wrong = 0;
    for (std::size_t i = 0; i < v.size(); ++i)
      if (v[i] != 1e6 * P * (P - 1) / 2 + static_cast<double>(P * i)) ++wrong;
    CHECK(wrong == 0);

    std::vector<long> m(11);
    for (std::size_t i = 0; i < m.size(); ++i) m[i] = (comm.rank() + 1) * static_cast<long>(i % 5);
    comm.allreduce(std::span<long>(m), Op::max);
    for (std::size_t i = 0; i < m.size(); ++i) CHECK(m[i] == P * static_cast<long>(i % 5));

    const int root = P - 1;
    std::vector<double> b(29, -1.0);
    if (comm.rank() == root)
      for (std::size_t i = 0; i < b.size(); ++i) b[i] = tag(root, 1, i);
    comm.bcast(std::span<double>(b), root);
    wrong = 0;
    for (std::size_t i = 0; i < b.size(); ++i)
      if (b[i] != tag(root, 1, i)) ++wrong;
    CHECK(wrong == 0);

    const std::string text = comm.bcast(comm.rank() == 0 ? std::string("nonnegative+l1scale_rows") : std::string(), 0);
    CHECK(text == "nonnegative+l1scale_rows");
  }
}

TEST_CASE("allgatherv beyond one message: every part in rank order", "[comm]") {
  const Comm& comm = test::comm();
  const int P = comm.size();
  // Rank p contributes 7p + 3 values (rank 1 none when there are three or more: empty parts too).
  auto count = [P](int p) { return (P >= 3 && p == 1) ? std::size_t{0} : static_cast<std::size_t>(7 * p + 3); };
  for (std::size_t bytes : {std::size_t{1} << 30, std::size_t{40}, std::size_t{8}}) {
    MessageBytes limit(bytes);
    INFO("message limit " << bytes << " bytes");
    std::vector<double> mine(count(comm.rank()));
    for (std::size_t j = 0; j < mine.size(); ++j) mine[j] = tag(comm.rank(), 2, j);
    const std::vector<double> all = comm.allgatherv<double>(mine);
    std::vector<double> want;
    for (int p = 0; p < P; ++p)
      for (std::size_t j = 0; j < count(p); ++j) want.push_back(tag(p, 2, j));
    CHECK(all == want);
  }
}

TEST_CASE("alltoallv beyond one message: point-to-point pieces land where the single call puts them", "[comm]") {
  const Comm& comm = test::comm();
  const auto P = static_cast<std::size_t>(comm.size());
  const auto me = static_cast<std::size_t>(comm.rank());
  // p sends (p + 2q + 1) mod 5 values to q (some none), with gaps of 2 between the parts of both buffers.
  auto count = [](std::size_t p, std::size_t q) { return (p + 2 * q + 1) % 5; };
  std::vector<std::size_t> sc(P), sd(P), rc(P), rd(P);
  std::size_t sn = 0, rn = 0;
  for (std::size_t q = 0; q < P; ++q) {
    sd[q] = sn + 2;
    sc[q] = count(me, q);
    sn = sd[q] + sc[q];
    rd[q] = rn + 2;
    rc[q] = count(q, me);
    rn = rd[q] + rc[q];
  }
  std::vector<double> send(sn, -7.0);
  for (std::size_t q = 0; q < P; ++q)
    for (std::size_t j = 0; j < sc[q]; ++j) send[sd[q] + j] = tag(comm.rank(), static_cast<int>(q), j);
  for (std::size_t bytes : {std::size_t{1} << 30, std::size_t{16}, std::size_t{8}}) {
    MessageBytes limit(bytes);
    INFO("message limit " << bytes << " bytes");
    std::vector<double> recv(rn, -1.0);
    comm.alltoallv(std::span<const double>(send), sc, sd, std::span<double>(recv), rc, rd);
    std::vector<double> want(rn, -1.0);
    for (std::size_t p = 0; p < P; ++p)
      for (std::size_t j = 0; j < rc[p]; ++j) want[rd[p] + j] = tag(static_cast<int>(p), comm.rank(), j);
    CHECK(recv == want);
  }
  // Counts that run past a buffer are refused on the process that gives them, before any message.
  std::vector<std::size_t> too_many = sc;
  too_many[0] = sn + 1;
  std::vector<double> recv(rn);
  CHECK_THROWS_AS(comm.alltoallv(std::span<const double>(send), too_many, sd, std::span<double>(recv), rc, rd), Error);
}

TEST_CASE("a factorization and a multiscale redistribution give the same numbers with tiny messages", "[comm]") {
  const Comm& comm = test::comm();
  const Shape shape{5, 9, 6, 4};
  const std::size_t R = 2;
  const auto consA = parse_constraints("nonnegative"), consB = parse_constraints("l1scale_average12slices+nonnegative");
  auto run = [&](const std::vector<int>& dims) {
    auto planted = make_planted<double>(comm, shape, R, 0.01, 4, ProcessGrid(dims));
    Tucker1<double> model(planted.Y, R);
    Factors f;
    init_random(model, f, 3, true, consA, consB);
    SolverOptions o;
    o.maxiter = 15;
    o.tol.clear();
    auto r = solve(model, f, consA, consB, o);
    DistTensor<double> coarse = coarsen(planted.Y, {1, 2}, Shape{5, 5, 4, 4});
    std::vector<double> out(f.A.span().begin(), f.A.span().end());
    out.insert(out.end(), f.B.span().begin(), f.B.span().end());
    out.insert(out.end(), coarse.local().span().begin(), coarse.local().span().end());
    out.push_back(r.stats.back().rel_error);
    return out;
  };
  for (const auto& dims : test::all_grids(comm.size(), shape.size())) {
    INFO("grid " << ProcessGrid(dims).to_string());
    const std::vector<double> whole = run(dims);
    MessageBytes limit(16);
    const std::vector<double> pieces = run(dims);
    CHECK(pieces == whole);
  }
}

// The real thing, beyond int: about 2.2 GB per buffer, 6.6 GB per process at 2 processes. Hidden from
// the test run (memory); run by hand: mpirun -n 2 tests/mpi.test_comm "[.comm_large]".
TEST_CASE("collectives with more than 2^31 elements", "[.comm_large]") {
  const Comm& comm = test::comm();
  const auto P = static_cast<std::size_t>(comm.size());
  const auto me = static_cast<std::size_t>(comm.rank());
  const std::size_t big = (std::size_t{1} << 31) + 4099;
  auto byte = [](std::size_t i, std::size_t who) { return static_cast<unsigned char>((i * 31 + who * 7) & 0xff); };

  // allreduce (max) of 2^31 + 4099 bytes: each element's largest contribution.
  std::vector<unsigned char> v(big);
  for (std::size_t i = 0; i < big; ++i) v[i] = byte(i, me);
  comm.allreduce(std::span<unsigned char>(v), Op::max);
  std::size_t wrong = 0;
  for (std::size_t i = 0; i < big; i += 1) {
    unsigned char want = 0;
    for (std::size_t p = 0; p < P; ++p) want = std::max(want, byte(i, p));
    if (v[i] != want) ++wrong;
  }
  CHECK(wrong == 0);
  std::vector<unsigned char>().swap(v);

  // allgatherv: the whole exceeds int offsets.
  const std::size_t part = big / P + me;
  std::vector<unsigned char> mine(part);
  for (std::size_t i = 0; i < part; ++i) mine[i] = byte(i, me);
  auto all = comm.allgatherv<unsigned char>(mine);
  std::vector<unsigned char>().swap(mine);
  std::size_t at = 0;
  wrong = 0;
  for (std::size_t p = 0; p < P; ++p)
    for (std::size_t i = 0; i < big / P + p; ++i, ++at)
      if (all[at] != byte(i, p)) ++wrong;
  CHECK(at == all.size());
  CHECK(wrong == 0);

  std::vector<unsigned char>().swap(all);

  // alltoallv: 2^31 + 4099 bytes to the next process, at an offset beyond int in both buffers.
  const std::size_t gap = std::size_t{1} << 20, next = (me + 1) % P, prev = (me + P - 1) % P;
  std::vector<std::size_t> sc(P, 0), sd(P, 0), rc(P, 0), rd(P, 0);
  sc[next] = big;
  sd[next] = gap;
  rc[prev] = big;
  rd[prev] = gap;
  std::vector<unsigned char> send(gap + big), recv(gap + big, 0);
  for (std::size_t i = 0; i < big; ++i) send[gap + i] = byte(i, me);
  comm.alltoallv(std::span<const unsigned char>(send), sc, sd, std::span<unsigned char>(recv), rc, rd);
  wrong = 0;
  for (std::size_t i = 0; i < big; ++i)
    if (recv[gap + i] != byte(i, prev)) ++wrong;
  CHECK(wrong == 0);
}
