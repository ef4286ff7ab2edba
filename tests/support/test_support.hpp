#pragma once
// Helpers shared by the tests.
#include <hdf5.h>

#include <string>
#include <vector>

#include "unmix/core/mpi.hpp"

namespace unmix::test {

/// The communicator of an MPI test binary (a duplicate of MPI_COMM_WORLD made by mpi_main.cpp).
const Comm& comm();

/// Every process grid over `order` modes whose product is p (all factorizations, in order).
std::vector<std::vector<int>> all_grids(int p, std::size_t order);

/// Absolute path of a file under ../shared/data (UNMIX_SHARED_DATA overrides the folder).
std::string shared_data(const std::string& relative);
/// A folder of this process under the system's temporary folder, made on first use, named
/// unmix-<name>-<pid> (for tests that are not MPI processes themselves).
std::string temp_dir(const std::string& name);
/// A fresh scratch folder for this test binary (same on every rank of an MPI test).
std::string scratch_dir();

struct RunResult {
  int exit_code = -1; // the process's exit status, or 128 + signal
  bool timed_out = false;
  double seconds = 0;
  std::string out, err; // stdout and stderr
};
/// Runs the unmix binary under mpirun with `np` processes (np = 0: without mpirun), with a time limit.
RunResult run_unmix(int np, const std::vector<std::string>& args, double timeout_s = 60);
/// A dataset of an HDF5 file read whole as doubles with the serial library (for tests that are not MPI
/// processes, reading what the unmix binary wrote); `dims` receives its shape.
std::vector<double> read_dataset(const std::string& path, const std::string& name,
                                 std::vector<hsize_t>* dims = nullptr);
/// A root attribute of an HDF5 file as text (numbers as std::to_string of a double), "<missing>" if absent.
std::string read_attribute(const std::string& path, const std::string& name);
/// A root integer attribute as exact decimal text, read with its own sign ("<missing>" if absent,
/// "<not an integer>" for another class).
std::string read_integer_attribute(const std::string& path, const std::string& name);

/// Runs any command line through /bin/sh with a time limit.
RunResult run_shell(const std::string& command, double timeout_s = 60);

} // namespace unmix::test
