// The command-line tests launch `mpirun ... unmix` themselves, so this process must not be an MPI
// process (a child mpirun would inherit the singleton's environment).
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
