// How fast one core reads memory, by access pattern: all processes at once, each on its own buffer, so
// that a run at 1, 2, ... processes shows what each core gets when the others read too.
//
//   mpirun -n P bench_memory [--mb 1024] [--tile-kib 384] [--reps 3]
//
// The single-pass iteration reads each tile of Y once, from memory, while the multiply-adds of the
// previous tile run; how fast one core can pull a tile into its caches sets its pace where memory is the
// limit. One line per pattern (GB/s per process, the median over the repetitions of the slowest
// process's time), and the STREAM triad measured the same way for scale:
//   sum            one stream of vector loads over the buffer (the hardware prefetchers alone)
//   sum_streamsK   K streams at once (the buffer in K parts, a cache line of each in turn)
//   tile_pf_streamsK  the buffer in tiles of --tile-kib; while summing tile t (one stream), software
//                  prefetches (prefetcht2) of tile t+1 as K streams, spread over the sum: how the
//                  single-pass iteration reads the next tile (tile_products_impl.hpp)
//   ahead_pf_dD    one stream, each line prefetched D lines ahead (the textbook distance prefetch)
// Measured on the 16-core Intel host of ../shared/device (two calls a few minutes apart, GB/s per core):
// 1 process: sum 7.6 / 7.6, sum_streams4 15.9 / 14.0, tile_pf_streams1 13.9 (the stride variant then) / 8.9,
// tile_pf_streams8 15.8, triad 13.9 / 13.7; 16 processes: sum 4.8 / 5.0, sum_streams4 6.6 / 7.5, triad 6.0 /
// 6.5. Several demand streams read faster than one, but the same streams as prefetches of the next tile
// inside the tile products were slower than one (the pass's read-ahead modes were compared there).
// The triad counts 24 bytes per element (two loads and a store, as STREAM does); the others count the
// bytes read.

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <vector>

#include "unmix/core/mpi.hpp"
#include "unmix/core/tensor.hpp"

#include "bench_common.hpp"

using namespace unmix;
using unmix::bench::Args;

namespace {

double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n == 0 ? 0 : (n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]));
}

typedef double V8 __attribute__((vector_size(64), aligned(64)));

// Sum of the 8 doubles of one cache line into acc.
inline void add_line(V8& acc, const double* p) { acc += *reinterpret_cast<const V8*>(p); }

template <int Hint> inline void prefetch(const char* p) { __builtin_prefetch(p, 0, Hint); }

// Lines [0, lines) of y in K streams (K parts read a line of each in turn).
double sum_streams(const double* y, std::size_t lines, std::size_t K) {
  V8 acc[8] = {};
  const std::size_t part = lines / K;
  for (std::size_t l = 0; l < part; ++l)
    for (std::size_t k = 0; k < K; ++k) add_line(acc[k & 7], y + 8 * (k * part + l));
  for (std::size_t l = part * K; l < lines; ++l) add_line(acc[0], y + 8 * l);
  double s = 0;
  for (auto& a : acc)
    for (int i = 0; i < 8; ++i) s += a[i];
  return s;
}

// Tiles of tile_lines; while summing tile t, tile t+1 is prefetched (prefetcht2) as K streams: its K
// parts, a line of each in turn, spread evenly over the sum of tile t.
double tile_prefetch(const double* y, std::size_t lines, std::size_t tile_lines, std::size_t K) {
  V8 acc[4] = {};
  const char* base = reinterpret_cast<const char*>(y);
  for (std::size_t t0 = 0; t0 < lines; t0 += tile_lines) {
    const std::size_t n = std::min(tile_lines, lines - t0);
    const std::size_t next_lines = std::min(lines, t0 + n + tile_lines) - (t0 + n);
    const std::size_t part = (next_lines + K - 1) / K; // lines per stream
    const char* next = base + 64 * (t0 + n);
    std::size_t issued = 0; // lines of each part so far
    for (std::size_t l = 0; l < n; ++l) {
      // Spread: after line l of this tile, (l + 1) part / n lines of each part.
      const std::size_t due = std::min(part, (l + 1) * part / n + 1);
      for (; issued < due; ++issued)
        for (std::size_t k = 0; k < K; ++k)
          if (k * part + issued < next_lines) prefetch<1>(next + 64 * (k * part + issued));
      add_line(acc[l & 3], y + 8 * (t0 + l));
    }
  }
  double s = 0;
  for (auto& a : acc)
    for (int i = 0; i < 8; ++i) s += a[i];
  return s;
}

template <int Hint> double ahead_prefetch(const double* y, std::size_t lines, std::size_t D) {
  V8 acc[4] = {};
  const char* base = reinterpret_cast<const char*>(y);
  for (std::size_t l = 0; l < lines; ++l) {
    if (l + D < lines) prefetch<Hint>(base + 64 * (l + D));
    add_line(acc[l & 3], y + 8 * l);
  }
  double s = 0;
  for (auto& a : acc)
    for (int i = 0; i < 8; ++i) s += a[i];
  return s;
}

} // namespace

int main(int argc, char** argv) {
  Environment env(argc, argv);
  Comm comm = Comm::world();
  std::size_t mb = 1024, tile_kib = 384;
  int reps = 3;
  const Args args(argc, argv, "usage: mpirun -n P bench_memory [--mb 1024] [--tile-kib 384] [--reps 3]\n",
                  {"--mb", "--tile-kib", "--reps"}, comm.rank() == 0);
  if (args.stop() >= 0) return args.stop();
  for (const auto& [k, v] : args.values()) {
    if (k == "--mb")
      mb = std::stoul(v);
    else if (k == "--tile-kib")
      tile_kib = std::stoul(v);
    else if (k == "--reps")
      reps = std::max(1, std::stoi(v));
  }
  const std::size_t n = mb * (std::size_t{1} << 20) / sizeof(double) / 8 * 8;
  const std::size_t lines = n / 8, tile_lines = tile_kib * 1024 / 64;
  Tensor<double> buf({n}, 1.0); // aligned, large pages as the data gets (tensor.hpp)
  const double* y = buf.data();
  double keep = 0;
  auto measure = [&](const std::string& name, double bytes, auto&& body) {
    std::vector<double> rates;
    for (int r = 0; r < reps; ++r) {
      comm.barrier();
      const double t0 = now();
      keep += body();
      const double t = comm.allreduce(now() - t0, Op::max);
      rates.push_back(bytes / t);
    }
    if (comm.rank() == 0)
      std::printf("bench=memory procs=%d MB_per_proc=%zu pattern=%s GBps_per_proc=%.2f GBps_all=%.1f\n", comm.size(),
                  mb, name.c_str(), 1e-9 * median(rates), 1e-9 * median(rates) * comm.size());
    std::fflush(stdout);
  };
  const double bytes = 8.0 * static_cast<double>(n);
  {
    Tensor<double> tb({n}, 1.0), tc({n}, 2.0);
    double *a = buf.data(), *b = tb.data(), *c = tc.data();
    int rep = 0;
    measure("triad", 3 * bytes, [&] {
      const double s = 3.0 + rep++;
      for (std::size_t i = 0; i < n; ++i) a[i] = b[i] + s * c[i];
      return a[n / 2];
    });
  }
  for (std::size_t K : {1, 2, 4, 8, 16})
    measure(K == 1 ? "sum" : "sum_streams" + std::to_string(K), bytes, [&] { return sum_streams(y, lines, K); });
  for (std::size_t K : {1, 2, 4, 8})
    measure("tile_pf_streams" + std::to_string(K), bytes, [&] { return tile_prefetch(y, lines, tile_lines, K); });
  for (std::size_t D : {64, 256})
    measure("ahead_pf_d" + std::to_string(D), bytes, [&] { return ahead_prefetch<1>(y, lines, D); });
  volatile double sink = keep;
  (void)sink;
  return 0;
}
