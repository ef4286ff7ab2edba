#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include "unmix/core/mpi.hpp"

int main(int argc, char** argv) {
  unmix::Environment env(argc, argv); // serial tests use MPI_COMM_SELF communicators
  return Catch::Session().run(argc, argv);
}
