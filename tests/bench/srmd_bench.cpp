// SRMD timings. Usage:
//   srmd_bench examples [REPEATS]   ex0 (N = 10 m) and ex1 (N = 16000) of ../shared/data/srmd/signals,
//                                   median seconds per run (the reference Python takes 0.08 s and 1.27 s)
//   srmd_bench scale M N WFRAC      a synthetic M-sample signal (a tone plus a chirp on [0, 1]) with N
//                                   features of width WFRAC * L, features split over the MPI processes;
//                                   prints the phase times (peak memory: run under /usr/bin/time -v)
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <numbers>
#include <sstream>
#include <string>
#include <vector>

#include "unmix/core/mpi.hpp"
#include "unmix/srmd/comm_reduction.hpp"
#include "unmix/srmd/features.hpp"
#include "unmix/srmd/spgl1.hpp"
#include "unmix/srmd/srmd.hpp"

using namespace unmix;
using namespace unmix::srmd;
using Clock = std::chrono::steady_clock;

namespace {

double since(Clock::time_point a) { return std::chrono::duration<double>(Clock::now() - a).count(); }

void load(const std::string& path, std::vector<double>& t, std::vector<double>& y) {
  std::ifstream in(path);
  if (!in) {
    std::fprintf(stderr, "cannot open %s\n", path.c_str());
    std::exit(2);
  }
  std::string line;
  std::getline(in, line);
  while (std::getline(in, line)) {
    std::stringstream ss(line);
    std::string a, b;
    std::getline(ss, a, ',');
    std::getline(ss, b, ',');
    t.push_back(std::stod(a));
    y.push_back(std::stod(b));
  }
}

double median_time(int repeats, const std::vector<double>& t, const std::vector<double>& y, SrmdOptions o,
                   std::size_t* iters) {
  std::vector<double> times;
  for (int k = 0; k < repeats; ++k) {
    o.seed = static_cast<std::uint64_t>(k + 1);
    const auto a = Clock::now();
    const SrmdResult r = srmd::srmd(t, y, o);
    times.push_back(since(a));
    *iters += r.iterations;
  }
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

} // namespace

int main(int argc, char** argv) {
  Environment env(argc, argv);
  Comm world = Comm::world();
  const std::string what = argc > 1 ? argv[1] : "examples";
  if (what == "examples") {
    const int repeats = argc > 2 ? std::atoi(argv[2]) : 11;
    const char* base = std::getenv("UNMIX_SHARED_DATA");
    const std::string dir = std::string(base ? base : "../shared/data") + "/srmd/signals/";
    std::vector<double> t0, y0, t1, y1;
    load(dir + "ex0_minimal.csv", t0, y0);
    load(dir + "ex1_discontinuous.csv", t1, y1);
    SrmdOptions o0;
    o0.eps = 1.0;
    o0.frq_scale = 1.0;
    SrmdOptions o1;
    o1.eps = 0.1;
    o1.min_samples = 3;
    o1.r = 0.06;
    o1.n_modes = 3;
    o1.n_features = 16000;
    std::size_t it0 = 0, it1 = 0;
    const double s0 = median_time(repeats, t0, y0, o0, &it0);
    const double s1 = median_time(repeats, t1, y1, o1, &it1);
    std::printf("ex0: m = %zu, N = %zu: %.4f s per run (median of %d; mean SPGL1 iterations %.0f); reference 0.08 s: "
                "%.1fx\n",
                t0.size(), 10 * t0.size(), s0, repeats, static_cast<double>(it0) / repeats, 0.08 / s0);
    std::printf("ex1: m = %zu, N = 16000: %.4f s per run (median of %d; mean SPGL1 iterations %.0f); reference 1.27 "
                "s: %.1fx\n",
                t1.size(), s1, repeats, static_cast<double>(it1) / repeats, 1.27 / s1);
    return 0;
  }
  if (what == "scale" && argc >= 5) {
    const std::size_t m = std::strtoul(argv[2], nullptr, 10), N = std::strtoul(argv[3], nullptr, 10);
    const double wfrac = std::atof(argv[4]);
    std::vector<double> t(m), y(m);
    for (std::size_t i = 0; i < m; ++i) {
      t[i] = static_cast<double>(i) / static_cast<double>(m - 1);
      const double f_tone = 0.01 * static_cast<double>(m), f0 = 0.03 * static_cast<double>(m);
      // A tone at 1 % of the sample rate and a chirp from 3 % to 8 %.
      y[i] = std::cos(2 * std::numbers::pi * f_tone * t[i]) +
             0.8 * std::sin(2 * std::numbers::pi * (f0 * t[i] + 0.025 * static_cast<double>(m) * t[i] * t[i]));
    }
    SrmdOptions o;
    o.n_features = N;
    o.w = wfrac * (t.back() - t.front());
    o.seed = 1;
    const CommReduction red(world);
    // Phase timings: the dictionary alone, then the whole decomposition (which builds it again).
    world.barrier();
    auto a = Clock::now();
    const SrmdPlan plan = plan_srmd(t, y, o);
    const int P = world.size(), p = world.rank();
    const std::size_t b = block_first(N, P, p), e = block_first(N, P, p + 1);
    double build_s = 0, adj_s = 0;
    std::size_t stored = 0;
    {
      const FeatureDictionary dict(t, draw_features(o.seed, b, e, plan.t0, plan.L, plan.max_frq), o.w, b, N, red);
      build_s = since(a);
      stored = dict.stored();
      std::vector<double> g(N);
      world.barrier();
      a = Clock::now();
      for (int k = 0; k < 5; ++k) dict.adjoint(y, g);
      adj_s = since(a) / 5;
    }
    world.barrier();
    a = Clock::now();
    const SrmdResult r = srmd::srmd(t, y, o, red);
    const double total = since(a);
    const double stored_all = world.allreduce(static_cast<double>(stored));
    if (world.rank() == 0)
      std::printf("scale: m = %zu, N = %zu, w = %g L, %d process(es): %.0f stored entries (%.1f per feature, %.2f GB "
                  "in all); dictionary build %.2f s, one adjoint product %.3f s; srmd total %.2f s: %zu SPGL1 "
                  "iterations (%s), %zu nonzero weights, %zu modes\n",
                  m, N, wfrac, world.size(), stored_all, stored_all / static_cast<double>(N), stored_all * 8e-9,
                  build_s, adj_s, total, r.iterations, to_string(r.status), r.nonzeros, r.n_modes);
    return 0;
  }
  std::fprintf(stderr, "usage: srmd_bench examples [REPEATS] | srmd_bench scale M N WFRAC\n");
  return 2;
}
