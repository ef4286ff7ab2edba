#include "unmix/core/resources.hpp"

#include <sys/resource.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <vector>

namespace unmix {

std::size_t peak_resident_bytes() {
  rusage ru{};
  if (getrusage(RUSAGE_SELF, &ru) != 0) return 0;
  return static_cast<std::size_t>(ru.ru_maxrss) * 1024; // Linux reports kibibytes
}

void release_free_heap() {
#if defined(__GLIBC__)
  malloc_trim(0);
#endif
}

double NodeMemory::ceiling() const {
  if (job_limit > 0 && total > 0) return std::min(job_limit, total);
  return job_limit > 0 ? job_limit : total;
}

NodeMemory parse_meminfo(const std::string& text) {
  NodeMemory m;
  std::istringstream in(text);
  std::string key, unit;
  double value = 0;
  while (in >> key >> value) {
    std::getline(in, unit); // " kB" or nothing
    const double scale = unit.find("kB") != std::string::npos ? 1024.0 : 1.0;
    if (key == "MemTotal:") m.total = value * scale;
    if (key == "MemAvailable:") m.available = value * scale;
  }
  return m;
}

namespace {

std::string slurp(const std::string& path) {
  std::ifstream f(path);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

// A cgroup limit file: "max" or a number of bytes (cgroup v1 writes about 2^63 for none).
double limit_in(const std::string& path) {
  std::ifstream f(path);
  std::string v;
  if (!(f >> v) || v == "max") return 0;
  try {
    const double b = std::stod(v);
    return b > 0 && b < 1e18 ? b : 0;
  } catch (...) {
    return 0;
  }
}

// The smallest limit named `file` in the cgroup folder `dir` and its parents up to `root`.
double smallest_limit(const std::string& root, std::string dir, const std::string& file) {
  double best = 0;
  while (true) {
    const double b = limit_in(root + dir + "/" + file);
    if (b > 0 && (best == 0 || b < best)) best = b;
    if (dir.empty() || dir == "/") break;
    const auto cut = dir.find_last_of('/');
    dir = cut == std::string::npos || cut == 0 ? std::string() : dir.substr(0, cut);
  }
  return best;
}

} // namespace

NodeMemory node_memory() {
  NodeMemory m = parse_meminfo(slurp("/proc/meminfo"));
  // /proc/self/cgroup: "ID:controllers:path" lines; cgroup v2 has "0::path", v1 one line per controller.
  std::istringstream lines(slurp("/proc/self/cgroup"));
  std::string line;
  while (std::getline(lines, line)) {
    const auto a = line.find(':'), b = line.find(':', a + 1);
    if (a == std::string::npos || b == std::string::npos) continue;
    const std::string controllers = line.substr(a + 1, b - a - 1), path = line.substr(b + 1);
    double lim = 0;
    if (controllers.empty())
      lim = smallest_limit("/sys/fs/cgroup", path, "memory.max");
    else if (("," + controllers + ",").find(",memory,") != std::string::npos)
      lim = smallest_limit("/sys/fs/cgroup/memory", path, "memory.limit_in_bytes");
    if (lim > 0 && (m.job_limit == 0 || lim < m.job_limit)) m.job_limit = lim;
  }
  return m;
}

std::string format_bytes(double bytes) {
  char buf[32];
  if (bytes >= 1024.0 * 1024 * 1024)
    std::snprintf(buf, sizeof buf, "%.3g GiB", bytes / (1024.0 * 1024 * 1024));
  else
    std::snprintf(buf, sizeof buf, "%.3g MiB", bytes / (1024.0 * 1024));
  return buf;
}

} // namespace unmix
