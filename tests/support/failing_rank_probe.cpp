// Not a test of unmix: a probe for the MPI test harness. The last rank fails an assertion while every
// other rank enters a collective that the failing rank never joins. The harness must end the job.
#include <catch2/catch.hpp>

#include "test_support.hpp"

TEST_CASE("one rank fails while the others wait in a collective") {
  const auto& c = unmix::test::comm();
  if (c.rank() == c.size() - 1) {
    REQUIRE(c.rank() == -1); // fails on this rank only
  }
  c.barrier(); // the failing rank never arrives here
}
