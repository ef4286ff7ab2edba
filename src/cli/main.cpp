// unmix: separate mixed signals into their sources.
#include <cstring>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include "common.hpp"
#include "unmix/core/error.hpp"
#include "unmix/core/mpi.hpp"

namespace {

struct Entry {
  unmix::cli::Command fn;
  const char* summary;
};

const std::map<std::string, Entry>& commands() {
  static const std::map<std::string, Entry> table = {
      {"audio", {unmix::cli::cmd_audio, "separate the instruments of one recording (STFT, factorization, grouping)"}},
      {"info", {unmix::cli::cmd_info, "list the datasets of an HDF5 file with shape, type and statistics"}},
      {"synth", {unmix::cli::cmd_synth, "write a planted low-rank nonnegative tensor and its true factors"}},
      {"factorize",
       {unmix::cli::cmd_factorize,
        "constrained factorization of a dataset: Tucker-1 Y = B x1 A, CP (--model cp) or Tucker (--model tucker)"}},
      {"rank", {unmix::cli::cmd_rank, "estimate the number of sources: factorize at many ranks, pick by curvature"}},
      {"sediment",
       {unmix::cli::cmd_sediment, "sediment provenance: grain tables -> densities -> sources, proportions, labels"}},
      {"spatial",
       {unmix::cli::cmd_spatial, "spatial transcriptomics: spots x genes -> cell-type proportions and profiles"}},
      {"srmd", {unmix::cli::cmd_srmd, "split one signal into modes (sparse random mode decomposition)"}},
  };
  return table;
}

void usage(std::ostream& os) {
  os << "usage: unmix <command> [options]   (unmix <command> --help for details)\n\n"
        "unmix recovers the sources of mixed signals. Run it under mpirun to use several processes.\n\n"
        "commands:\n";
  for (const auto& [name, e] : commands())
    os << "  " << name << std::string(12 - name.size(), ' ') << e.summary << "\n";
  os << "\nunmix " << UNMIX_VERSION << "\n";
}

int exit_code(const std::exception& e) {
  if (dynamic_cast<const unmix::ConfigError*>(&e)) return 2;
  if (dynamic_cast<const unmix::DataError*>(&e)) return 3;
  if (dynamic_cast<const unmix::IoError*>(&e)) return 4;
  if (dynamic_cast<const unmix::MpiError*>(&e)) return 5;
  return 1;
}

} // namespace

int main(int argc, char** argv) {
  unmix::Environment env(argc, argv);
  int rank = 0, size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
    if (rank == 0) usage(args.empty() ? std::cerr : std::cout);
    return args.empty() ? 2 : 0;
  }
  if (args[0] == "--version") {
    if (rank == 0) std::cout << "unmix " << UNMIX_VERSION << "\n";
    return 0;
  }
  auto it = commands().find(args[0]);
  if (it == commands().end()) {
    if (rank == 0) std::cerr << "error: unknown command '" << args[0] << "' (see 'unmix --help')\n";
    return 2;
  }
  const std::vector<std::string> rest(args.begin() + 1, args.end());
  int code = 0;
  try {
    unmix::Comm world = unmix::Comm::world();
    code = it->second.fn(rest, world);
  } catch (const unmix::cli::HelpShown&) {
    code = 0;
  } catch (const std::exception& e) {
    // Either every rank failed alike (bad options, bad input found collectively), or this rank
    // failed alone while others may wait in a collective. A barrier on MPI_COMM_WORLD, which the
    // library never uses, tells the two apart: it completes only if every rank got here.
    code = exit_code(e);
    if (unmix::all_ranks_arrive(unmix::error_grace_seconds())) {
      if (rank == 0) std::cerr << "error: " << e.what() << std::endl;
    } else {
      std::cerr << "error: " << (size > 1 ? "(rank " + std::to_string(rank) + ") " : std::string()) << e.what()
                << std::endl;
      unmix::Environment::abort(code);
    }
  }
  return code;
}
