#include "common.hpp"

#include <cctype>
#include <cmath>
#include <fstream>
#include <iostream>
#include <sstream>

#include "unmix/core/error.hpp"
#include "unmix/io/hdf5.hpp"

namespace unmix::cli {

namespace {

/// The message of a Boost option error. Boost's what() replaces each placeholder (%value%, %option%, ...)
/// until none is left, so a value or option name that itself contains one (`--maxiter %value%`) never
/// ends; such messages are built here in one pass instead.
struct OptionErrorText : po::error_with_option_name {
  static std::string of(const po::error& e) {
    const auto* named = dynamic_cast<const po::error_with_option_name*>(&e);
    if (!named) return e.what();
    std::map<std::string, std::string> subs = named->*(&OptionErrorText::m_substitutions);
    subs["canonical_option"] = named->get_option_name();
    bool placeholder = false;
    for (const auto& kv : subs) placeholder = placeholder || kv.second.find('%') != std::string::npos;
    if (!placeholder) return e.what();
    const std::string& t = named->m_error_template;
    std::string out;
    for (std::size_t i = 0; i < t.size();) {
      const auto end = t[i] == '%' ? t.find('%', i + 1) : std::string::npos;
      const auto it = end == std::string::npos ? subs.end() : subs.find(t.substr(i + 1, end - i - 1));
      if (it == subs.end()) {
        out += t[i++];
      } else {
        out += it->second;
        i = end + 1;
      }
    }
    return out;
  }
};

} // namespace

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
    throw ConfigError(OptionErrorText::of(e) + " (see 'unmix " + command + " --help')");
  }
  for (const auto& p : positional)
    if (!out.vm.count(p)) throw ConfigError("missing " + p + " (usage: unmix " + command + " " + usage + ")");
  out.quiet = out.vm["quiet"].as<bool>();
  return out;
}

double parse_bytes(const std::string& text, const char* option) {
  std::size_t used = 0;
  double v = -1;
  try {
    v = std::stod(text, &used);
  } catch (...) {
    used = 0;
  }
  const std::string unit = text.substr(used);
  const std::string units = "KMGT";
  const auto k = unit.size() == 1 ? units.find(static_cast<char>(std::toupper(static_cast<unsigned char>(unit[0]))))
                                  : std::string::npos;
  if (used == 0 || !(v > 0) || k == std::string::npos)
    throw ConfigError(std::string(option) + " '" + text + "': give a positive size with a unit, e.g. 64G or 500M");
  return v * std::pow(1024.0, static_cast<double>(k + 1));
}

void read_common_factorize_options(const po::variables_map& vm, const Comm& world, FactorizeConfig& cfg) {
  if (vm.count("model")) cfg.model = vm["model"].as<std::string>();
  cfg.input = vm["input"].as<std::string>();
  if (vm.count("dataset")) {
    cfg.dataset = vm["dataset"].as<std::string>();
  } else {
    h5::File f = h5::File::open_read(world, cfg.input);
    std::vector<h5::DatasetInfo> list;
    collective_try(world, [&] { list = f.datasets(); });
    if (list.size() != 1) {
      std::string names;
      for (const auto& d : list) names += (names.empty() ? "" : ", ") + d.name;
      throw ConfigError("'" + cfg.input + "' has " + std::to_string(list.size()) + " datasets (" + names +
                        "); choose one with --dataset");
    }
    cfg.dataset = list[0].name;
  }
  cfg.mixture_axis = vm["mixture-axis"].as<int>();
  if (vm.count("constraint")) {
    bool setA = false, setB = false;
    for (const auto& c : vm["constraint"].as<std::vector<std::string>>()) {
      if (c.rfind("A=", 0) == 0) {
        cfg.constraint_A = c.substr(2);
        setA = true;
      } else if (c.rfind("B=", 0) == 0) {
        cfg.constraint_B = c.substr(2);
        setB = true;
      } else if (c.rfind("core=", 0) == 0) {
        cfg.constraint_core = c.substr(5);
        if (cfg.constraint_core.empty()) throw ConfigError("--constraint core=: give a SPEC (e.g. nonnegative, none)");
      } else {
        if (!setA) cfg.constraint_A = c;
        if (!setB) cfg.constraint_B = c;
      }
    }
  }
  cfg.precision = vm["precision"].as<std::string>();
  if (cfg.precision != "float" && cfg.precision != "double")
    throw ConfigError("--precision '" + cfg.precision + "': use float or double");
  if (vm.count("memory-limit")) cfg.memory_limit = parse_bytes(vm["memory-limit"].as<std::string>(), "--memory-limit");
  cfg.out = vm["out"].as<std::string>();
  cfg.overwrite = vm["overwrite"].as<bool>();
  SolverOptions& o = cfg.solver;
  const long maxiter = vm["maxiter"].as<long>();
  if (maxiter < 0) throw ConfigError("--maxiter must be 0 or more");
  o.maxiter = static_cast<std::size_t>(maxiter);
  if (vm.count("tol")) {
    o.tol.clear();
    for (const auto& t : vm["tol"].as<std::vector<std::string>>()) o.tol.push_back(parse_tolerance(t));
  }
  o.max_seconds = vm["max-time"].as<double>();
  if (!(o.max_seconds >= 0)) throw ConfigError("--max-time must be 0 or more seconds");
  const std::string mom = vm["momentum"].as<std::string>();
  if (mom != "on" && mom != "off") throw ConfigError("--momentum '" + mom + "': use on or off");
  o.momentum = mom == "on";
  o.delta = vm["delta"].as<double>();
  if (!(o.delta > 0 && o.delta < 1)) throw ConfigError("--delta must be in (0, 1)");
  o.subblock = vm["subblock"].as<bool>();
  o.seed = vm["seed"].as<unsigned long long>();
  if (vm.count("order")) {
    const std::string order = vm["order"].as<std::string>();
    if (order == "random")
      o.random_order = true;
    else if (order == "random-grouped")
      o.random_order = o.group_by_factor = true;
    else if (order == "recursive")
      o.recursive_random_order = true;
    else if (order != "fixed")
      throw ConfigError("--order '" + order + "': use fixed, random, random-grouped or recursive");
  }
  if (vm.count("inner")) {
    const long inner = vm["inner"].as<long>();
    if (inner < 1) throw ConfigError("--inner must be at least 1");
    o.inner = static_cast<std::size_t>(inner);
  }
  if (vm.count("inner-tol")) {
    o.inner_tol = vm["inner-tol"].as<double>();
    if (!(o.inner_tol >= 0 && o.inner_tol < 1)) throw ConfigError("--inner-tol must be in [0, 1)");
  }
  if (vm.count("block-solver")) {
    const std::string bs = vm["block-solver"].as<std::string>();
    if (bs != "pg" && bs != "hals" && bs != "bpp")
      throw ConfigError("--block-solver '" + bs + "': use pg, hals or bpp");
    o.hals = bs == "hals";
    o.bpp = bs == "bpp";
  }
  if (vm.count("extrapolate") && vm["extrapolate"].as<bool>()) {
    if (!o.bpp) throw ConfigError("--extrapolate needs --block-solver bpp (it extrapolates exactly solved factors)");
    o.extrapolate = true;
  }
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

std::size_t read_count(const po::variables_map& vm, const char* name, long min) {
  const long v = vm[name].as<long>();
  if (v < min) throw ConfigError(std::string("--") + name + " must be at least " + std::to_string(min));
  return static_cast<std::size_t>(v);
}

void read_fit_options(const po::variables_map& vm, apps::FitSettings& f) {
  if (vm.count("constraint"))
    for (const auto& c : vm["constraint"].as<std::vector<std::string>>()) {
      if (c.rfind("A=", 0) == 0)
        f.constraint_A = c.substr(2);
      else if (c.rfind("B=", 0) == 0)
        f.constraint_B = c.substr(2);
      else
        throw ConfigError("--constraint '" + c + "': write A=SPEC or B=SPEC");
    }
  f.solver.seed = vm["seed"].as<unsigned long long>();
  f.starts = read_count(vm, "starts", 1);
  if (vm.count("grid")) f.grid = vm["grid"].as<std::string>();
  const long maxiter = vm["maxiter"].as<long>();
  if (maxiter < 0) throw ConfigError("--maxiter must be 0 or more");
  f.solver.maxiter = static_cast<std::size_t>(maxiter);
  if (vm.count("tol")) {
    f.solver.tol.clear();
    for (const auto& t : vm["tol"].as<std::vector<std::string>>()) f.solver.tol.push_back(parse_tolerance(t));
  }
}

} // namespace unmix::cli
