#include "common.hpp"

#include <fstream>
#include <iostream>
#include <sstream>

#include "unmix/core/error.hpp"

namespace unmix::cli {

Parsed parse(const std::string& command, const std::string& usage, po::options_description desc,
             const std::vector<std::string>& positional, const std::vector<std::string>& args, const Comm& comm) {
  po::options_description common("Common options");
  common.add_options()("help,h", "show this help and exit")(
      "config", po::value<std::string>(), "read options from FILE (lines 'name = value'; the command line wins)")(
      "quiet,q", po::bool_switch(), "print no progress, only results and errors");
  po::options_description all;
  all.add(desc).add(common);
  po::options_description hidden;
  for (const auto& p : positional) hidden.add_options()(p.c_str(), po::value<std::string>());
  po::options_description cmdline;
  cmdline.add(all).add(hidden);
  po::positional_options_description pos;
  for (const auto& p : positional) pos.add(p.c_str(), 1);

  Parsed out;
  try {
    po::store(po::command_line_parser(args).options(cmdline).positional(pos).run(), out.vm);
    if (out.vm.count("help")) {
      if (comm.rank() == 0) std::cout << "usage: unmix " << command << " " << usage << "\n\n" << all << std::flush;
      throw HelpShown{};
    }
    if (out.vm.count("config")) {
      const std::string file = out.vm["config"].as<std::string>();
      std::ifstream in(file);
      if (!in) throw ConfigError("--config: cannot open '" + file + "'");
      po::options_description fileopts;
      fileopts.add(desc).add(hidden);
      po::store(po::parse_config_file(in, fileopts), out.vm);
    }
    po::notify(out.vm);
  } catch (const po::error& e) {
    throw ConfigError(std::string(e.what()) + " (see 'unmix " + command + " --help')");
  }
  for (const auto& p : positional)
    if (!out.vm.count(p)) throw ConfigError("missing " + p + " (usage: unmix " + command + " " + usage + ")");
  out.quiet = out.vm["quiet"].as<bool>();
  return out;
}

std::map<std::string, std::string> options_text(const po::variables_map& vm) {
  std::map<std::string, std::string> m;
  for (const auto& [name, value] : vm) {
    std::ostringstream os;
    const auto& v = value.value();
    if (auto s = boost::any_cast<std::string>(&v))
      os << *s;
    else if (auto l = boost::any_cast<long>(&v))
      os << *l;
    else if (auto i = boost::any_cast<int>(&v))
      os << *i;
    else if (auto d = boost::any_cast<double>(&v))
      os << *d;
    else if (auto b = boost::any_cast<bool>(&v))
      os << (*b ? "true" : "false");
    else if (auto u = boost::any_cast<unsigned long long>(&v))
      os << *u;
    else if (auto vs = boost::any_cast<std::vector<std::string>>(&v))
      for (std::size_t k = 0; k < vs->size(); ++k) os << (k ? ";" : "") << (*vs)[k];
    m[name] = os.str();
  }
  return m;
}

void note(const Comm& comm, bool quiet, const std::string& line) {
  if (!quiet && comm.rank() == 0) std::cerr << line << std::endl;
}

void warn(const Comm& comm, const std::string& line) {
  if (comm.rank() == 0) std::cerr << "warning: " << line << std::endl;
}

} // namespace unmix::cli
