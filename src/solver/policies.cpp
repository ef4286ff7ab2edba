#include "unmix/solver/policies.hpp"

#include <cstdio>

#include "unmix/core/error.hpp"

namespace unmix {

std::vector<std::string> IterationStats::columns() {
  return {"iteration",        "objective",  "rel_error", "grad_norm", "stationarity", "obj_ratio", "rel_decrease",
          "rel_stationarity", "rel_change", "L_A",       "L_B",       "seconds",      "scale"};
}

std::vector<double> IterationStats::row() const {
  return {iteration,        objective,  rel_error, grad_norm, stationarity, obj_ratio, rel_decrease,
          rel_stationarity, rel_change, L_A,       L_B,       seconds,      scale};
}

namespace {
struct StatName {
  Stat stat;
  const char* name;
};
constexpr StatName kStats[] = {{Stat::objective, "objective"},
                               {Stat::rel_error, "rel_error"},
                               {Stat::grad_norm, "grad_norm"},
                               {Stat::stationarity, "stationarity"},
                               {Stat::obj_ratio, "obj_ratio"},
                               {Stat::rel_decrease, "rel_decrease"},
                               {Stat::rel_stationarity, "rel_stationarity"},
                               {Stat::rel_change, "rel_change"}};
} // namespace

std::string stat_name(Stat s) {
  for (const auto& e : kStats)
    if (e.stat == s) return e.name;
  return "?";
}

Tolerance parse_tolerance(const std::string& text) {
  const auto eq = text.find('=');
  std::string names;
  for (const auto& e : kStats) names += std::string(names.empty() ? "" : ", ") + e.name;
  if (eq == std::string::npos) throw ConfigError("--tol '" + text + "': write NAME=VALUE, NAME one of " + names);
  const std::string key = text.substr(0, eq), val = text.substr(eq + 1);
  double v = 0;
  try {
    std::size_t used = 0;
    v = std::stod(val, &used);
    if (used != val.size()) throw std::invalid_argument(val);
  } catch (const std::exception&) {
    throw ConfigError("--tol '" + text + "': '" + val + "' is not a number");
  }
  if (!(v >= 0)) throw ConfigError("--tol '" + text + "': the tolerance must be 0 or more");
  for (const auto& e : kStats)
    if (key == e.name) return {e.stat, v};
  throw ConfigError("--tol '" + text + "': unknown statistic '" + key + "'; use one of " + names);
}

double stat_value(const IterationStats& s, Stat which) {
  switch (which) {
  case Stat::objective: return s.objective;
  case Stat::rel_error: return s.rel_error;
  case Stat::grad_norm: return s.grad_norm;
  case Stat::stationarity: return s.stationarity;
  case Stat::obj_ratio: return s.obj_ratio;
  case Stat::rel_decrease: return s.rel_decrease;
  case Stat::rel_stationarity: return s.rel_stationarity;
  case Stat::rel_change: return s.rel_change;
  }
  return 0;
}

bool tolerance_met(const std::vector<Tolerance>& tol, const IterationStats& s, std::string* which) {
  for (const auto& t : tol) {
    // Ratios and changes are undefined before the first iteration.
    const bool needs_history = t.stat == Stat::obj_ratio || t.stat == Stat::rel_decrease || t.stat == Stat::rel_change;
    if (needs_history && s.iteration < 1) continue;
    const double v = stat_value(s, t.stat);
    // An objective that rose (momentum can do that for an iteration) has not converged: a negative
    // relative decrease never meets its tolerance.
    if (t.stat == Stat::rel_decrease && v < 0) continue;
    if (v <= t.value) {
      if (which) {
        char buf[160];
        std::snprintf(buf, sizeof buf, "%s %.6g <= %g", stat_name(t.stat).c_str(), v, t.value);
        *which = buf;
      }
      return true;
    }
  }
  return false;
}

bool is_gradient_stat(Stat s) { return s == Stat::stationarity || s == Stat::grad_norm || s == Stat::rel_stationarity; }

} // namespace unmix
