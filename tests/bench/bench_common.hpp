#pragma once
// What the benchmarks share: the machine's limits measured in the same run (STREAM-triad bandwidth, the
// rate of a large GEMM), medians, and shape parsing. For tests/bench only.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <initializer_list>
#include <map>
#include <string>
#include <vector>

#include "unmix/core/mpi.hpp"
#include "unmix/core/tensor.hpp"
#include "unmix/kernels/blas.hpp"

namespace unmix::bench {

using Clock = std::chrono::steady_clock;

inline double now() { return std::chrono::duration<double>(Clock::now().time_since_epoch()).count(); }

inline double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n == 0 ? 0 : (n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]));
}

/// Whether OpenBLAS runs GEMM kernels narrower than the processor's vectors: a processor with AVX-512 and a
/// core other than OpenBLAS's AVX-512 ones (an OPENBLAS_CORETYPE in the environment, or a processor the library
/// does not know). On a Zen 5 core with OPENBLAS_CORETYPE=Haswell set by the machine's environment, a 2000 x 2000
/// DGEMM ran at 54 GFLOP/s against 88 with the core OpenBLAS 0.3.21 picks itself (Cooperlake): the compute floor
/// came out 1.6 x too high and the ratios to it below 1.
inline bool blas_core_narrower(const char* core) {
#if defined(__x86_64__)
  __builtin_cpu_init();
  if (!__builtin_cpu_supports("avx512f")) return false;
  const std::string c = core ? core : "";
  for (const char* wide : {"SkylakeX", "Cooperlake", "SapphireRapids"})
    if (c == wide) return false;
  return true;
#else
  (void)core;
  return false;
#endif
}

/// The warning for blas_core_narrower, on standard error (the caller prints it once, on rank 0).
inline void warn_blas_core(const char* core) {
  if (!blas_core_narrower(core)) return;
  std::fprintf(stderr,
               "warning: OpenBLAS picked its %s kernels on a processor with AVX-512%s: the compute floor printed is "
               "too low for this machine; rerun with OPENBLAS_CORETYPE=SkylakeX\n",
               core ? core : "(unnamed)", std::getenv("OPENBLAS_CORETYPE") ? " (as OPENBLAS_CORETYPE asked)" : "");
}

/// STREAM triad a = b + s c on three buffers of n doubles each; returns bytes/s per process (the
/// median of several repetitions, all processes running at once).
inline double triad_bandwidth(const Comm& comm, std::size_t n) {
  // Tensors, so that the buffers get the large pages the data gets (tensor.hpp).
  Tensor<double> ta({n}, 0.0), tb({n}, 1.0), tc({n}, 2.0);
  double *a = ta.data(), *b = tb.data(), *c = tc.data();
  std::vector<double> rates;
  for (int rep = 0; rep < 5; ++rep) {
    comm.barrier();
    const double t0 = now();
    const double s = 3.0 + rep;
    for (std::size_t i = 0; i < n; ++i) a[i] = b[i] + s * c[i];
    const double t = comm.allreduce(now() - t0, Op::max);
    rates.push_back(3.0 * 8.0 * static_cast<double>(n) / t);
  }
  volatile double sink = a[n / 2];
  (void)sink;
  return median(rates);
}

/// Rate of a square GEMM of order n on every process at once (flop/s per process).
template <class T> inline double gemm_rate(const Comm& comm, std::size_t n) {
  std::vector<T> A(n * n, T(1.0)), B(n * n, T(0.5)), C(n * n, T(0));
  std::vector<double> rates;
  for (int rep = 0; rep < 4; ++rep) {
    comm.barrier();
    const double t0 = now();
    blas::gemm<T>(blas::Trans::N, blas::Trans::N, n, n, n, T(1), A.data(), n, B.data(), n, T(0), C.data(), n);
    const double t = comm.allreduce(now() - t0, Op::max);
    if (rep > 0) rates.push_back(2.0 * std::pow(static_cast<double>(n), 3) / t);
  }
  return median(rates);
}

inline Shape parse_shape(const std::string& s) {
  Shape out;
  std::size_t pos = 0;
  while (pos < s.size()) {
    const std::size_t x = s.find('x', pos);
    out.push_back(std::stoul(s.substr(pos, x == std::string::npos ? std::string::npos : x - pos)));
    if (x == std::string::npos) break;
    pos = x + 1;
  }
  return out;
}

/// Options as "--key value" pairs. `known` lists the keys a bench takes: --help or -h prints `usage` and
/// stop() is 0; a key not in `known`, or one without its value, prints an error and the usage, and stop() is 2,
/// so that a misspelt option never runs the defaults unnoticed. Only `print` (rank 0) prints.
class Args {
public:
  Args(int argc, char** argv, const char* usage, std::initializer_list<const char*> known, bool print) {
    for (int i = 1; i < argc && stop_ < 0; i += 2) {
      const std::string k = argv[i];
      if (k == "--help" || k == "-h") {
        if (print) std::printf("%s", usage);
        stop_ = 0;
      } else if (std::find_if(known.begin(), known.end(), [&](const char* x) { return k == x; }) == known.end() ||
                 i + 1 >= argc) {
        if (print)
          std::fprintf(stderr, "error: %s %s\n%s", i + 1 >= argc ? "no value for" : "unknown option", k.c_str(), usage);
        stop_ = 2;
      } else {
        values_[k] = argv[i + 1];
      }
    }
  }
  /// -1: go on; else the exit status (0 after --help, 2 after a bad option).
  int stop() const { return stop_; }
  std::string text(const std::string& key, const std::string& fallback) const {
    const auto it = values_.find(key);
    return it == values_.end() ? fallback : it->second;
  }
  double number(const std::string& key, double fallback) const {
    const auto it = values_.find(key);
    return it == values_.end() ? fallback : std::stod(it->second);
  }
  bool flag(const std::string& key) const {
    const std::string v = text(key, "0");
    return v == "1" || v == "yes";
  }
  /// The pairs in the order of their keys (for benches that read them in a loop of their own).
  const std::map<std::string, std::string>& values() const { return values_; }

private:
  std::map<std::string, std::string> values_;
  int stop_ = -1;
};

} // namespace unmix::bench
