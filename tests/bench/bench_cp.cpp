// Per-iteration time of the CP solver against the machine's limits, measured in the same run.
//
//   mpirun -n P bench_cp [--shape 200x200x200] [--rank 10] [--iters 20] [--precision double]
//                        [--bpp 1]   (also time the exact block solves to --target)
//                        [--target 1e-6] [--max-iters 2000]
//
// Prints one line per configuration (key=value, machine-readable): the median time per iteration of the
// default nonnegative CP factorization (projected gradient, momentum, fixed iteration count) with the
// dimension tree (two passes over the local Y per iteration) and without it (one pass per mode);
// the memory floor (passes x bytes of the local Y / STREAM-triad bandwidth measured now, all processes at
// once, on buffers as large as the local Y) and the compute floor (passes x 2 R flops per local entry /
// the rate of a large square GEMM measured now), each for the tree's two passes; the ratio of the time to
// the larger floor; the peak resident memory per process against the local Y. With --bpp 1, the time and
// iterations to reach --target (relative error) on the planted noise-free problem, projected gradient
// against exact nonnegative least-squares block solves, from the same seeded start.

#include <cstdio>
#include <string>
#include <vector>

extern "C" char* openblas_get_corename(void);

#include "unmix/core/mpi.hpp"
#include "unmix/core/resources.hpp"
#include "unmix/model/cp.hpp"
#include "unmix/model/planted.hpp"
#include "unmix/solver/cp_solver.hpp"

#include "bench_common.hpp"

using namespace unmix;
using namespace unmix::bench;

namespace {

struct Timing {
  double seconds = 0, rel_error = 0;
  std::size_t passes = 0, iterations = 0;
};

/// `iters` iterations from `start`; the median seconds per iteration (the first left out) over processes'
/// maxima, the final relative error and the passes over the local Y the solve made.
template <class T>
Timing timed_solve(const CP<T>& m, const CpFactors& start, const std::vector<ConstraintList>& cons, int iters,
                   bool bpp = false, double target = 0) {
  CpFactors f = start;
  SolverOptions o;
  o.tol.clear();
  if (target > 0) o.tol = {{Stat::rel_error, target}};
  o.maxiter = static_cast<std::size_t>(iters);
  o.bpp = bpp;
  const std::size_t before = m.passes();
  const auto res = solve_cp(m, f, cons, o);
  std::vector<double> per;
  for (std::size_t i = 2; i < res.stats.size(); ++i) per.push_back(res.stats[i].seconds - res.stats[i - 1].seconds);
  const Comm& comm = m.data().comm();
  Timing t;
  t.seconds = target > 0 ? comm.allreduce(res.stats.back().seconds, Op::max) : comm.allreduce(median(per), Op::max);
  t.rel_error = res.stats.back().rel_error;
  t.passes = m.passes() - before;
  t.iterations = res.iterations;
  return t;
}

template <class T>
void run(const Comm& comm, const Shape& shape, std::size_t R, int iters, bool bpp, double target, int max_iters) {
  auto pl = make_planted_cp<T>(comm, shape, R, 0.0, 1);
  CP<T> tree(pl.Y, R), plain(pl.Y, R, false);
  const std::vector<ConstraintList> cons(shape.size(), parse_constraints("nonnegative"));
  CpFactors f0;
  init_random_cp(tree, f0, 1, true, cons);
  const Timing t_tree = timed_solve(tree, f0, cons, iters), t_plain = timed_solve(plain, f0, cons, iters);
  const double peak = comm.allreduce(static_cast<double>(peak_resident_bytes()), Op::max);
  const std::size_t entries = pl.Y.local().size();
  const double ybytes = static_cast<double>(entries * sizeof(T));
  const double bw = triad_bandwidth(comm, std::max<std::size_t>(entries, 1 << 20));
  const double rate = gemm_rate<T>(comm, 2000);
  const double passes = tree.uses_tree() ? 2.0 : static_cast<double>(shape.size());
  const double mem_floor = passes * ybytes / bw;
  const double flop_floor = passes * 2.0 * static_cast<double>(entries) * static_cast<double>(R) / rate;
  const double floor = std::max(mem_floor, flop_floor);
  if (comm.rank() == 0)
    std::printf("bench=cp procs=%d shape=%s R=%zu precision=%s grid=%s local_Y_MB=%.1f tree=%d iter_ms=%.2f "
                "iter_ms_one_pass_per_mode=%.2f speedup=%.2f passes_per_iter=%.0f mem_floor_ms=%.2f "
                "compute_floor_ms=%.2f ratio_to_floor=%.2f triad_GBps_per_proc=%.1f gemm_GFLOPs_per_proc=%.1f "
                "peak_MB=%.1f peak_over_Y=%.2f final_rel_error=%.4g blas_core=%s iters=%d\n",
                comm.size(), shape_string(shape).c_str(), R, sizeof(T) == 8 ? "double" : "float",
                pl.Y.grid().to_string().c_str(), ybytes / 1e6, tree.uses_tree() ? 1 : 0, 1e3 * t_tree.seconds,
                1e3 * t_plain.seconds, t_plain.seconds / t_tree.seconds, passes, 1e3 * mem_floor, 1e3 * flop_floor,
                t_tree.seconds / floor, bw / 1e9, rate / 1e9, peak / 1e6, peak / ybytes, t_tree.rel_error,
                openblas_get_corename(), iters);
  if (comm.rank() == 0) warn_blas_core(openblas_get_corename());
  if (bpp)
    for (const bool exact : {false, true}) {
      const Timing t = timed_solve(tree, f0, cons, max_iters, exact, target);
      if (comm.rank() == 0)
        std::printf("bench=cp_accuracy procs=%d shape=%s R=%zu solver=%s target=%g reached=%d seconds=%.3f "
                    "iterations=%zu rel_error=%.3g\n",
                    comm.size(), shape_string(shape).c_str(), R, exact ? "bpp" : "pg", target,
                    t.rel_error <= target ? 1 : 0, t.seconds, t.iterations, t.rel_error);
    }
}

} // namespace

int main(int argc, char** argv) {
  Environment env(argc, argv);
  Comm comm = Comm::world();
  const Args args(
      argc, argv,
      "usage: mpirun -n P bench_cp [--shape 200x200x200] [--rank 10] [--iters 20] [--precision double|float]\n"
      "                [--bpp 1 --target 1e-6 --max-iters 2000]   (time to --target, projected gradient\n"
      "                against exact block solves)\n",
      {"--shape", "--rank", "--iters", "--precision", "--bpp", "--target", "--max-iters"}, comm.rank() == 0);
  if (args.stop() >= 0) return args.stop();
  const std::string shape = args.text("--shape", "200x200x200"), precision = args.text("--precision", "double");
  const auto R = static_cast<std::size_t>(args.number("--rank", 10));
  const int iters = static_cast<int>(args.number("--iters", 20)),
            max_iters = static_cast<int>(args.number("--max-iters", 2000));
  const bool bpp = args.flag("--bpp");
  const double target = args.number("--target", 1e-6);
  try {
    if (precision == "float")
      run<float>(comm, parse_shape(shape), R, iters, bpp, target, max_iters);
    else
      run<double>(comm, parse_shape(shape), R, iters, bpp, target, max_iters);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
