#include "test_support.hpp"

#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace unmix::test {

namespace {
Comm* g_comm = nullptr;
std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}
std::string quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}
} // namespace

void set_comm(Comm* c) { g_comm = c; }
const Comm& comm() {
  static Comm self_comm;
  if (g_comm) return *g_comm;
  if (!self_comm.valid()) self_comm = Comm::self();
  return self_comm;
}

std::vector<std::vector<int>> all_grids(int p, std::size_t order) {
  std::vector<std::vector<int>> out;
  std::vector<int> g(order, 1);
  // Mode by mode, every divisor of what is left; the last mode takes the rest.
  auto rec = [&](auto&& self, std::size_t n, int rest) -> void {
    if (n + 1 == order) {
      g[n] = rest;
      out.push_back(g);
      return;
    }
    for (int d = 1; d <= rest; ++d)
      if (rest % d == 0) {
        g[n] = d;
        self(self, n + 1, rest / d);
      }
  };
  if (order > 0) rec(rec, 0, p);
  return out;
}

std::string shared_data(const std::string& relative) {
  std::string base;
  if (const char* env = std::getenv("UNMIX_SHARED_DATA"); env && *env)
    base = env;
  else
    base = UNMIX_DEFAULT_SHARED_DATA;
  return (std::filesystem::path(base) / relative).string();
}

std::string temp_dir(const std::string& name) {
  const auto d = std::filesystem::temp_directory_path() / ("unmix-" + name + "-" + std::to_string(getpid()));
  std::filesystem::create_directories(d);
  return d.string();
}

std::string scratch_dir() {
  static std::string dir;
  if (dir.empty()) {
    std::string name = "unmix-test-" + std::to_string(getppid()) + "-" + std::to_string(comm().size());
    if (comm().rank() == 0) name += "";
    dir = comm().bcast((std::filesystem::temp_directory_path() / (name + "-" + std::to_string(getpid()))).string(), 0);
    if (comm().rank() == 0) std::filesystem::create_directories(dir);
    comm().barrier();
  }
  return dir;
}

RunResult run_shell(const std::string& command, double timeout_s) {
  RunResult r;
  const std::string base = (std::filesystem::temp_directory_path() /
                            ("unmix-run-" + std::to_string(getpid()) + "-" + std::to_string(std::rand())))
                               .string();
  const std::string full = "timeout -s KILL " + std::to_string(static_cast<int>(timeout_s)) + " sh -c " +
                           quote(command) + " >" + base + ".out 2>" + base + ".err";
  const auto t0 = std::chrono::steady_clock::now();
  const int st = std::system(full.c_str());
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (WIFEXITED(st))
    r.exit_code = WEXITSTATUS(st);
  else if (WIFSIGNALED(st))
    r.exit_code = 128 + WTERMSIG(st);
  r.timed_out = r.exit_code == 137 && r.seconds >= timeout_s - 1;
  r.out = slurp(base + ".out");
  r.err = slurp(base + ".err");
  std::filesystem::remove(base + ".out");
  std::filesystem::remove(base + ".err");
  return r;
}

RunResult run_unmix(int np, const std::vector<std::string>& args, double timeout_s) {
  std::string bin = UNMIX_BINARY_PATH;
  if (const char* env = std::getenv("UNMIX_BINARY"); env && *env) bin = env;
  std::string cmd;
  if (np > 0)
    cmd = "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1 "
          "OPENBLAS_NUM_THREADS=1 mpirun --oversubscribe -n " +
          std::to_string(np) + " ";
  cmd += quote(bin);
  for (const auto& a : args) {
    cmd += ' ';
    cmd += quote(a);
  }
  return run_shell(cmd, timeout_s);
}

std::vector<double> read_dataset(const std::string& path, const std::string& name, std::vector<hsize_t>* dims) {
  hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  if (f < 0) throw std::runtime_error("cannot open " + path);
  hid_t d = H5Dopen2(f, name.c_str(), H5P_DEFAULT);
  if (d < 0) {
    H5Fclose(f);
    throw std::runtime_error(path + " has no dataset " + name);
  }
  hid_t s = H5Dget_space(d);
  const int nd = H5Sget_simple_extent_ndims(s);
  std::vector<hsize_t> dd(static_cast<std::size_t>(nd));
  H5Sget_simple_extent_dims(s, dd.data(), nullptr);
  hsize_t n = 1;
  for (auto v : dd) n *= v;
  std::vector<double> out(n);
  H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, out.data());
  if (dims) *dims = dd;
  H5Sclose(s);
  H5Dclose(d);
  H5Fclose(f);
  return out;
}

namespace {
// Opens a root attribute of an HDF5 file and returns read(attribute, its type); "<missing>" if absent.
template <class Read> std::string with_attribute(const std::string& path, const std::string& name, Read&& read) {
  hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  if (f < 0) throw std::runtime_error("cannot open " + path);
  if (H5Aexists(f, name.c_str()) <= 0) {
    H5Fclose(f);
    return "<missing>";
  }
  hid_t a = H5Aopen(f, name.c_str(), H5P_DEFAULT);
  hid_t t = H5Aget_type(a);
  std::string out = read(a, t);
  H5Tclose(t);
  H5Aclose(a);
  H5Fclose(f);
  return out;
}
} // namespace

std::string read_attribute(const std::string& path, const std::string& name) {
  return with_attribute(path, name, [](hid_t a, hid_t t) {
    std::string out;
    if (H5Tget_class(t) == H5T_STRING) {
      out.resize(H5Tget_size(t));
      H5Aread(a, t, out.data());
      while (!out.empty() && out.back() == '\0') out.pop_back();
    } else {
      double v = 0;
      H5Aread(a, H5T_NATIVE_DOUBLE, &v);
      out = std::to_string(v);
    }
    return out;
  });
}

std::string read_integer_attribute(const std::string& path, const std::string& name) {
  return with_attribute(path, name, [](hid_t a, hid_t t) -> std::string {
    if (H5Tget_class(t) != H5T_INTEGER) return "<not an integer>";
    if (H5Tget_sign(t) == H5T_SGN_NONE) {
      unsigned long long v = 0;
      H5Aread(a, H5T_NATIVE_ULLONG, &v);
      return std::to_string(v);
    }
    long long v = 0;
    H5Aread(a, H5T_NATIVE_LLONG, &v);
    return std::to_string(v);
  });
}

} // namespace unmix::test
