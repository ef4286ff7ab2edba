#pragma once
// Shared pieces of the subcommands: option parsing with --help and --config, progress output.
#include <boost/program_options.hpp>

#include <map>
#include <string>
#include <vector>

#include "unmix/apps/replicated.hpp"
#include "unmix/core/mpi.hpp"
#include "unmix/pipeline/factorize.hpp"

namespace unmix::cli {

namespace po = boost::program_options;

/// Thrown by parse() after printing help: the subcommand returns 0.
struct HelpShown {};

struct Parsed {
  po::variables_map vm;
  bool quiet = false;
};

/// Parses `args` (without the subcommand name) against `desc` plus the common options --help,
/// --config FILE and --quiet. Positional arguments are bound to `positional` names in order.
/// On --help, rank 0 prints `usage` and the options and HelpShown is thrown. Unknown or malformed
/// options throw ConfigError naming the option.
Parsed parse(const std::string& command, const std::string& usage, po::options_description desc,
             const std::vector<std::string>& positional, const std::vector<std::string>& args, const Comm& comm);

/// The options factorize and rank share, read into `cfg`: --dataset (default: the file's only dataset),
/// --mixture-axis, --constraint, --precision, --out, --overwrite, and the solver options that the
/// command defines (--maxiter, --tol, --max-time, --momentum, --delta, --subblock, --seed, and where
/// present --order, --inner, --inner-tol, --block-solver). Throws ConfigError for bad values.
/// "64G", "500M", "2T", "1048576K" (powers of 1024, as SLURM's --mem); ConfigError naming `option` otherwise.
double parse_bytes(const std::string& text, const char* option);

void read_common_factorize_options(const po::variables_map& vm, const Comm& world, FactorizeConfig& cfg);

/// A whole-number option (stored as long) of at least `min`, as a count; ConfigError "--NAME must be at least MIN".
std::size_t read_count(const po::variables_map& vm, const char* name, long min);

/// The factorization options the applications share, into `f`: --constraint A=SPEC / B=SPEC (repeatable),
/// --seed, --starts (>= 1), --grid (if given), --maxiter (>= 0) and --tol (if given, replacing f's rules).
void read_fit_options(const po::variables_map& vm, apps::FitSettings& f);

/// Every option of a parsed command line as text (lists joined by ';'), for the output's attributes.
std::map<std::string, std::string> options_text(const po::variables_map& vm);

/// Prints a line on stderr from rank 0 only (unless quiet).
void note(const Comm& comm, bool quiet, const std::string& line);
void warn(const Comm& comm, const std::string& line); // "warning: ..." on rank 0, always

using Command = int (*)(const std::vector<std::string>& args, const Comm& world);

int cmd_audio(const std::vector<std::string>& args, const Comm& world);
int cmd_info(const std::vector<std::string>& args, const Comm& world);
int cmd_synth(const std::vector<std::string>& args, const Comm& world);
int cmd_factorize(const std::vector<std::string>& args, const Comm& world);
int cmd_spatial(const std::vector<std::string>& args, const Comm& world);
int cmd_srmd(const std::vector<std::string>& args, const Comm& world);
int cmd_sediment(const std::vector<std::string>& args, const Comm& world);
int cmd_rank(const std::vector<std::string>& args, const Comm& world);

} // namespace unmix::cli
