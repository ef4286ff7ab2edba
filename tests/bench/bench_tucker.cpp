// Per-iteration time of the Tucker solver against the machine's limits, measured in the same run.
//
//   mpirun -n P bench_tucker [--shape 200x200x200] [--ranks 10,10,10] [--iters 20] [--precision double]
//                            [--tree 0]   (one pass per axis even where the dimension tree pays)
//
// Prints one line (key=value, machine-readable): the median time per iteration of the default nonnegative
// Tucker factorization (projected gradient, momentum, fixed iteration count; two passes over the local Y with
// the dimension tree, where it pays, else one per axis); the memory floor (those passes x bytes of the local Y /
// STREAM-triad bandwidth measured now, all processes at once, on buffers as large as the local Y) and the compute floor
// (the flops of each pass's first tensor-times-matrix product, 2 R_m per local entry for the axis m it takes first, /
// the rate of a large square GEMM measured now); the ratio of the time to the larger floor; the share of the time
// outside the N passes timed alone (the core step, the small contractions, constraints, reductions; negative when the
// passes alone ran slower than within the iterations); the peak resident memory per
// process against the local Y.

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

extern "C" char* openblas_get_corename(void);

#include "unmix/core/mpi.hpp"
#include "unmix/core/resources.hpp"
#include "unmix/model/planted.hpp"
#include "unmix/model/tucker.hpp"
#include "unmix/solver/cp_solver.hpp"

#include "bench_common.hpp"

using namespace unmix;
using namespace unmix::bench;

namespace {

std::vector<std::size_t> parse_ranks(const std::string& text, std::size_t order) {
  std::vector<std::size_t> r;
  std::size_t pos = 0;
  while (pos <= text.size()) {
    const std::size_t c = text.find(',', pos);
    r.push_back(static_cast<std::size_t>(std::stoul(text.substr(pos, c == std::string::npos ? c : c - pos))));
    if (c == std::string::npos) break;
    pos = c + 1;
  }
  if (r.size() == 1) r.assign(order, r[0]);
  if (r.size() != order) throw ConfigError("--ranks: one per axis");
  return r;
}

template <class T>
void run(const Comm& comm, const Shape& shape, const std::vector<std::size_t>& ranks, int iters, bool tree) {
  auto pl = make_planted_tucker<T>(comm, shape, ranks, 0.0, 1);
  Tucker<T> m(pl.Y, ranks, tree);
  const std::size_t N = shape.size();
  const std::vector<ConstraintList> cons(N + 1, parse_constraints("nonnegative"));
  CpFactors f;
  init_random_cp(m, f, 1, true, cons);
  SolverOptions o;
  o.tol.clear();
  o.maxiter = static_cast<std::size_t>(iters);
  const std::size_t before = m.passes();
  const auto res = solve_cp(m, f, cons, o);
  const double passes = static_cast<double>(m.passes() - before - 1) / static_cast<double>(iters); // less the start's
  std::vector<double> per;
  for (std::size_t i = 2; i < res.stats.size(); ++i) per.push_back(res.stats[i].seconds - res.stats[i - 1].seconds);
  const double t = comm.allreduce(median(per), Op::max);
  // The passes alone (as an iteration makes them: one per axis, or the last axis's and the contraction), for
  // the share of everything else.
  std::vector<double> pass;
  for (int k = 0; k < 5; ++k) {
    comm.barrier();
    const double t0 = now();
    if (m.uses_tree()) {
      const Tensor<double> P = m.partial(N - 1, f.F), C = m.contracted(f.F[N - 1]);
    } else {
      for (std::size_t n = 0; n < N; ++n) {
        const Tensor<double> P = m.partial(n, f.F);
      }
    }
    pass.push_back(now() - t0);
  }
  const double t_passes = comm.allreduce(median(pass), Op::max);
  const double peak = comm.allreduce(static_cast<double>(peak_resident_bytes()), Op::max);
  const std::size_t entries = pl.Y.local().size();
  const double ybytes = static_cast<double>(entries * sizeof(T));
  const double bw = triad_bandwidth(comm, std::max<std::size_t>(entries, 1 << 20));
  const double rate = gemm_rate<T>(comm, 2000);
  // Each pass's first product is along the axis that shrinks the block most (shape / rank largest); the tree's
  // contraction is along the last axis.
  auto first_product = [&](std::size_t skip) {
    std::size_t best = skip == 0 ? 1 : 0;
    for (std::size_t a = 0; a < N; ++a)
      if (a != skip && shape[a] * ranks[best] > shape[best] * ranks[a]) best = a;
    return 2.0 * static_cast<double>(entries) * static_cast<double>(ranks[best]);
  };
  double flops = 0;
  if (m.uses_tree())
    flops = first_product(N - 1) + 2.0 * static_cast<double>(entries) * static_cast<double>(ranks[N - 1]);
  else
    for (std::size_t skip = 0; skip < N; ++skip) flops += first_product(skip);
  const double mem_floor = passes * ybytes / bw, flop_floor = flops / rate, floor = std::max(mem_floor, flop_floor);
  if (comm.rank() == 0)
    std::printf("bench=tucker procs=%d shape=%s ranks=%s precision=%s grid=%s tree=%d local_Y_MB=%.1f iter_ms=%.2f "
                "passes_per_iter=%.1f passes_ms=%.2f outside_passes_share=%.3f mem_floor_ms=%.2f "
                "compute_floor_ms=%.2f ratio_to_floor=%.2f triad_GBps_per_proc=%.1f gemm_GFLOPs_per_proc=%.1f "
                "peak_MB=%.1f peak_over_Y=%.2f final_rel_error=%.4g blas_core=%s iters=%d\n",
                comm.size(), shape_string(shape).c_str(), shape_string(ranks).c_str(),
                sizeof(T) == 8 ? "double" : "float", pl.Y.grid().to_string().c_str(), m.uses_tree() ? 1 : 0,
                ybytes / 1e6, 1e3 * t, passes, 1e3 * t_passes, 1.0 - t_passes / t, 1e3 * mem_floor, 1e3 * flop_floor,
                t / floor, bw / 1e9, rate / 1e9, peak / 1e6, peak / ybytes, res.stats.back().rel_error,
                openblas_get_corename(), iters);
  if (comm.rank() == 0) warn_blas_core(openblas_get_corename());
}

} // namespace

int main(int argc, char** argv) {
  Environment env(argc, argv);
  Comm comm = Comm::world();
  const Args args(argc, argv,
                  "usage: mpirun -n P bench_tucker [--shape 200x200x200] [--ranks 10,10,10] [--iters 20]\n"
                  "                    [--precision double|float] [--tree 0]   (one pass per axis)\n",
                  {"--shape", "--ranks", "--iters", "--precision", "--tree"}, comm.rank() == 0);
  if (args.stop() >= 0) return args.stop();
  const std::string shape_text = args.text("--shape", "200x200x200"), precision = args.text("--precision", "double");
  const int iters = static_cast<int>(args.number("--iters", 20));
  const bool tree = args.number("--tree", 1) != 0;
  try {
    const Shape shape = parse_shape(shape_text);
    const auto ranks = parse_ranks(args.text("--ranks", "10"), shape.size());
    if (precision == "float")
      run<float>(comm, shape, ranks, iters, tree);
    else
      run<double>(comm, shape, ranks, iters, tree);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
