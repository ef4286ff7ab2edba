// Main of every MPI test binary. After each test case the ranks agree on whether any of them failed
// (so every rank reports the same result). A rank that failed while others still wait inside the test
// case cannot reach that agreement; after a grace period it reports and aborts the whole job, so a
// failure on one rank never hangs the others.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <cstdio>
#include <iostream>

#include "../support/test_support.hpp"
#include "unmix/core/mpi.hpp"

namespace unmix::test {
void set_comm(Comm* c);
}

namespace {

struct RankAgreement : Catch::TestEventListenerBase {
  using TestEventListenerBase::TestEventListenerBase;
  void testCaseEnded(const Catch::TestCaseStats& stats) override {
    const bool failed = !stats.totals.assertions.allPassed() || stats.totals.testCases.failed > 0;
    if (failed) {
      // Everyone else may be blocked in a collective of the test case: wait for them only briefly.
      int rank = 0;
      MPI_Comm_rank(MPI_COMM_WORLD, &rank);
      if (!unmix::all_ranks_arrive(unmix::error_grace_seconds())) {
        std::fprintf(stderr,
                     "rank %d: test case '%s' failed here while other ranks did not finish it; aborting the job\n",
                     rank, stats.testInfo.name.c_str());
        std::fflush(stderr);
        unmix::Environment::abort(3);
      }
    } else {
      // Matches the barrier of a failing rank, if any; otherwise all pass through together.
      unmix::all_ranks_arrive(1e9);
    }
  }
};

} // namespace

CATCH_REGISTER_LISTENER(RankAgreement)

int main(int argc, char** argv) {
  unmix::Environment env(argc, argv);
  int failed = 0, total = 0;
  {
    unmix::Comm world = unmix::Comm::world();
    unmix::test::set_comm(&world);
    Catch::Session session;
    if (const int rc = session.applyCommandLine(argc, argv); rc != 0) return rc;
    // Only rank 0 writes Catch's report; the other ranks report failures through stderr.
    if (world.rank() != 0) session.configData().reporterName = "compact";
    failed = session.run();
    total = world.allreduce(failed, unmix::Op::max);
    int anyfail = world.allreduce(failed > 0 ? 1 : 0, unmix::Op::sum);
    if (world.rank() == 0 && anyfail)
      std::fprintf(stderr, "%d of %d ranks had failing test cases\n", anyfail, world.size());
    unmix::test::set_comm(nullptr);
  }
  return total > 0 ? 1 : 0;
}
