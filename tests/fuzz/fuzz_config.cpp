// libFuzzer target: option parsing (cli::parse: Boost.Program_options) with an options description like
// `unmix factorize`'s. The first byte picks the mode: even, the rest is a `--config` file; odd, the rest
// is a command line, one argument per line. Values are then read back with their declared types, as the
// subcommands do. Bad input must end in unmix::Error (the help text ends in cli::HelpShown).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "../../src/cli/common.hpp"
#include "fuzz_support.hpp"
#include "unmix/core/error.hpp"
#include "unmix/core/mpi.hpp"

namespace po = boost::program_options;

namespace {

po::options_description options() {
  po::options_description io("Input and output");
  io.add_options()("dataset,d", po::value<std::string>(),
                   "dataset")("mixture-axis", po::value<int>()->default_value(0),
                              "mixture axis")("out,o", po::value<std::string>()->required(), "output")(
      "overwrite", po::bool_switch(), "overwrite")("grid", po::value<std::string>(), "process grid");
  po::options_description model("Model");
  model.add_options()("rank,r", po::value<std::string>()->required(), "rank")(
      "groups", po::value<int>()->default_value(0), "groups")("multiscale", po::bool_switch(), "multiscale")(
      "constraint,c", po::value<std::vector<std::string>>()->composing(),
      "constraints")("seed", po::value<unsigned long long>()->default_value(1), "seed");
  po::options_description solver("Solver");
  solver.add_options()("maxiter", po::value<long>()->default_value(1000),
                       "iteration limit")("tol", po::value<std::vector<std::string>>()->composing(), "tolerances")(
      "max-time", po::value<double>()->default_value(0),
      "time limit")("delta", po::value<double>()->default_value(0.9999),
                    "delta")("grid-points", po::value<std::size_t>()->default_value(256), "grid points")(
      "channel", po::value<int>(), "channel")("subblock", po::bool_switch(), "subblock");
  po::options_description desc;
  desc.add(io).add(model).add(solver);
  return desc;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  using namespace unmix;
  static const fuzz::ScratchFile file(".cfg");
  static const Comm comm; // rank 0 of 1, no MPI needed for parsing
  if (size == 0) return 0;
  std::vector<std::string> args;
  if (data[0] % 2 == 0) {
    file.write(data + 1, size - 1);
    args = {"in.h5", "--config", file.path()};
  } else {
    std::string_view rest(reinterpret_cast<const char*>(data + 1), size - 1);
    while (!rest.empty()) {
      const auto nl = rest.find('\n');
      args.emplace_back(rest.substr(0, nl));
      if (nl == std::string_view::npos) break;
      rest.remove_prefix(nl + 1);
    }
  }
  try {
    const cli::Parsed p =
        cli::parse("factorize", "IN.h5 --rank R --out OUT.h5 [options]", options(), {"input"}, args, comm);
    const auto& vm = p.vm;
    fuzz::require(vm.count("input") == 1 && vm.count("out") == 1 && vm.count("rank") == 1, "required options set");
    (void)vm["input"].as<std::string>();
    (void)vm["out"].as<std::string>();
    (void)vm["rank"].as<std::string>();
    (void)vm["mixture-axis"].as<int>();
    (void)vm["maxiter"].as<long>();
    (void)vm["max-time"].as<double>();
    (void)vm["seed"].as<unsigned long long>();
    (void)vm["grid-points"].as<std::size_t>();
    (void)vm["overwrite"].as<bool>();
    if (vm.count("constraint")) (void)vm["constraint"].as<std::vector<std::string>>();
    if (vm.count("tol")) (void)vm["tol"].as<std::vector<std::string>>();
    if (vm.count("channel")) (void)vm["channel"].as<int>();
  } catch (const Error&) {
  } catch (const cli::HelpShown&) {
  }
  return 0;
}
