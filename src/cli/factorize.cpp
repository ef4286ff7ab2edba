// unmix factorize: constrained Tucker-1 or CP factorization of an HDF5 dataset.
#include <unistd.h>

#include <csignal>
#include <cstdlib>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <sstream>

#include "common.hpp"
#include "unmix/io/gnuplot.hpp"
#include "unmix/io/hdf5.hpp"
#include "unmix/pipeline/factorize.hpp"

namespace unmix::cli {

namespace {

/// Exit status of a run stopped by a signal after writing its checkpoint (EX_TEMPFAIL: try again).
constexpr int kExitInterrupted = 75;

volatile std::sig_atomic_t g_stop_signal = 0;
extern "C" void on_stop_signal(int sig) { g_stop_signal = sig; }
int stop_signal() { return g_stop_signal; }
const char* signal_name(int sig) {
  switch (sig) {
  case SIGTERM: return "SIGTERM";
  case SIGUSR1: return "SIGUSR1";
  case SIGINT: return "SIGINT";
  default: return "a signal";
  }
}
/// SIGTERM, SIGUSR1 (what SLURM sends before a time limit) and SIGINT finish the current iteration,
/// write a checkpoint on every rank and stop.
void install_stop_signals() {
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  for (int sig : {SIGTERM, SIGUSR1, SIGINT}) sigaction(sig, &sa, nullptr);
}

/// Progress on stderr from rank 0: a bar when stderr is a terminal, otherwise a line every few seconds.
class Progress {
public:
  explicit Progress(bool quiet) : quiet_(quiet), tty_(isatty(STDERR_FILENO)), t0_(std::chrono::steady_clock::now()) {}
  void operator()(const IterationStats& s, std::size_t maxiter) {
    if (quiet_) return;
    const double t = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count();
    const double rate = t > 0 ? s.iteration / t : 0;
    if (tty_) {
      if (t - last_ < 0.1 && s.iteration < static_cast<double>(maxiter)) return;
      last_ = t;
      const int width = 30;
      const int done = static_cast<int>(width * s.iteration / static_cast<double>(std::max<std::size_t>(maxiter, 1)));
      std::fprintf(stderr, "\r[%s%s] %6.0f/%zu  %7.1f it/s  rel_error %.6f  stationarity %.3g ",
                   std::string(static_cast<std::size_t>(done), '#').c_str(),
                   std::string(static_cast<std::size_t>(width - done), ' ').c_str(), s.iteration, maxiter, rate,
                   s.rel_error, s.stationarity);
      dirty_ = true;
    } else if (t - last_ >= 5.0) {
      last_ = t;
      std::fprintf(stderr, "iteration %.0f/%zu  %.1f it/s  rel_error %.6f  stationarity %.3g\n", s.iteration, maxiter,
                   rate, s.rel_error, s.stationarity);
    }
  }
  void end() {
    if (dirty_) std::fprintf(stderr, "\n");
    dirty_ = false;
  }

private:
  bool quiet_, tty_, dirty_ = false;
  std::chrono::steady_clock::time_point t0_;
  double last_ = 0;
};

} // namespace

int cmd_factorize(const std::vector<std::string>& args, const Comm& world) {
  po::options_description io("Input and output");
  io.add_options()("dataset,d", po::value<std::string>(), "dataset to factorize (default: the file's only dataset)")(
      "mixture-axis", po::value<int>()->default_value(0),
      "axis of the dataset (as h5py shows it) that indexes the mixtures; files written by Julia show their axes "
      "reversed, e.g. 2 for geodata.h5")("out,o", po::value<std::string>()->required(),
                                         "output HDF5 file: A (I x R), B (R x the other axes), stats, options")(
      "overwrite", po::bool_switch(), "replace an existing output file")(
      "no-plot", po::bool_switch(),
      "do not write the convergence plot beside the output (its name with .svg): relative error per iteration, and the "
      "stationarity where it was computed; drawn by gnuplot")(
      "precision", po::value<std::string>()->default_value("double"), "store Y as float or double")(
      "memory-limit", po::value<std::string>(),
      "memory the processes of one node may use together, e.g. 64G (K, M, G, T: powers of 1024, as SLURM's "
      "--mem). Default: the job's limit (cgroup), else the node's memory. A dataset that cannot fit is refused "
      "before it is read")(
      "grid", po::value<std::string>(),
      "process grid over the axes, mixture axis first, e.g. 1x2x2 (default: chosen to keep communication small)");
  po::options_description model("Model");
  model.add_options()(
      "model", po::value<std::string>()->default_value("tucker1"),
      "tucker1: Y = B x1 A (A: I x R mixing proportions, B: R sources of the other axes' shape); cp: Y = a sum of R "
      "rank-one tensors, one factor per axis (A: factor 0, B: the sources formed from the others, factor_1 ...: "
      "each other axis's factor, in the input's order); tucker: Y = a core G times a factor per axis (A: factor 0, "
      "B: the sources G x1 F1 x2 F2 ..., core: G with the mixture axis first, factor_1 ...). cp and tucker take "
      "fixed ranks, a random start or --init FILE (the datasets of an earlier output of the same model), and no "
      "multiscale")(
      "rank,r", po::value<std::string>()->required(),
      "number of sources R, or auto: sweep --ranks and keep the rank of maximum curvature (see unmix rank); with "
      "--model tucker one rank per axis, mixture axis first, e.g. 3,4,2 (a single R: R on every axis)")(
      "ranks", po::value<std::string>()->default_value(""),
      "with --rank auto: candidate ranks FIRST:LAST[:STEP] or a list (default 1 to min(I, M, "
      "12))")("groups", po::value<int>()->default_value(0),
              "with --rank auto: process groups solving candidates concurrently (default: "
              "automatic)")("curvature", po::value<std::string>()->default_value("finite-differences"),
                            "with --rank auto: finite-differences, splines, circles, breakpoints or kneedle")(
      "multiscale", po::bool_switch(),
      "solve coarse to fine along --continuous-axes, each solution interpolated to the next grid as the start")(
      "continuous-axes", po::value<std::string>()->default_value(""),
      "with --multiscale: dataset axes (as h5py shows them, comma separated) that discretize a continuous variable")(
      "constraint,c", po::value<std::vector<std::string>>()->composing(),
      "constraints, as A=SPEC or B=SPEC or SPEC for both; SPEC joins names with '+', e.g. "
      "B=l1scale_average12slices+nonnegative, A=simplex_rows, A=linear:FILE.h5, none. Default: nonnegative. Names: "
      "nonnegative, clamp:LO:HI, binary, {l1normalize,simplex,l2normalize,linftynormalize,l1scale,l2scale,linftyscale}_"
      "{whole,rows,columns,1slices,12slices,average12slices}, linear:FILE.h5. With --model cp or tucker, A constrains "
      "factor 0 and B every other factor (each a matrix: scaled normalizations act on columns, e.g. l1scale_columns); "
      "tucker's core takes core=SPEC, entrywise only (default: nonnegative when B is, else none)")(
      "init", po::value<std::string>()->default_value("random"),
      "start: random, nndsvd (from the leading singular vectors of Y(1), computed with ScaLAPACK), or an HDF5 file "
      "with A and B (e.g. an earlier output)")("seed", po::value<unsigned long long>()->default_value(1),
                                               "random seed (same seed and process count: same result)");
  po::options_description solver("Solver");
  solver.add_options()("maxiter", po::value<long>()->default_value(1000), "iteration limit")(
      "tol", po::value<std::vector<std::string>>()->composing(),
      "stop when a statistic reaches a tolerance, NAME=VALUE, repeatable; the first met stops the run. NAME: "
      "rel_error, objective, stationarity, rel_stationarity (relative to the start), grad_norm, rel_decrease "
      "(relative objective decrease, met only by a decrease, not by a rise), obj_ratio, rel_change. Default: "
      "stationarity=1")("max-time", po::value<double>()->default_value(0), "wall-clock limit in seconds (0: none)")(
      "momentum", po::value<std::string>()->default_value("on"), "block extrapolation (Xu & Yin): on or off")(
      "delta", po::value<double>()->default_value(0.9999), "momentum safeguard delta")(
      "subblock", po::bool_switch(), "one step constant per row of B and column of A instead of one per factor")(
      "order", po::value<std::string>()->default_value("fixed"),
      "update order: fixed (B then A), random (shuffle all steps), random-grouped (shuffle factors, keep each "
      "factor's steps together), recursive (shuffle factors and steps within them)")(
      "inner", po::value<long>()->default_value(1),
      "steps per block and iteration, the product with Y formed once (1: the reference's single step); extra "
      "steps apply to blocks with entrywise constraints, each column/row stopping on its own")(
      "inner-tol", po::value<double>()->default_value(0.1),
      "a column/row stops its extra steps when a step moves it by less than this fraction of its first")(
      "block-solver", po::value<std::string>()->default_value("pg"),
      "extra steps as projected gradient (pg) or HALS sweeps (hals: exact coordinate minimization); bpp: a "
      "factor whose only constraint is nonnegative is solved exactly each iteration (nonnegative least squares "
      "by block principal pivoting), other factors keep pg")(
      "extrapolate", po::bool_switch(),
      "with --block-solver bpp, when both factors are only nonnegative: after each exact solve, extrapolate the "
      "factor (Ang & Gillis; X^ = max(0, X + beta (X - X_prev)), beta adapted to the error) and solve the other "
      "factor against it, instead of --momentum; usually several times fewer iterations to a small error");
  po::options_description restart("Checkpoints (for long runs and preemptible jobs)");
  restart.add_options()("checkpoint", po::value<std::string>(),
                        "write the complete solver state to FILE (atomically) every --checkpoint-every, and when "
                        "stopped by SIGTERM, SIGUSR1 or SIGINT (without this option a signal writes OUT.ckpt.h5)")(
      "checkpoint-every", po::value<std::string>(), "N (iterations) or Ns (seconds, e.g. 600s) between checkpoints")(
      "resume", po::value<std::string>(),
      "continue from a checkpoint of the same input and options, at the same process count; the result is "
      "bit-identical to an uninterrupted run");
  po::options_description desc;
  desc.add(io).add(model).add(solver).add(restart);
  Parsed p = parse("factorize", "IN.h5 --rank R --out OUT.h5 [options]", desc, {"input"}, args, world);
  const auto& vm = p.vm;

  FactorizeConfig cfg;
  read_common_factorize_options(vm, world, cfg);
  const std::string rank_text = vm["rank"].as<std::string>();
  if (rank_text == "auto") {
    cfg.rank_auto = true;
    cfg.auto_ranks = vm["ranks"].as<std::string>();
    cfg.groups = vm["groups"].as<int>();
    cfg.curvature = vm["curvature"].as<std::string>();
  } else {
    // A number, or (--model tucker) one number per axis separated by commas.
    std::vector<std::size_t> list;
    std::size_t pos = 0;
    while (pos <= rank_text.size()) {
      const std::size_t c = rank_text.find(',', pos);
      const std::string w = rank_text.substr(pos, c == std::string::npos ? std::string::npos : c - pos);
      long rank = 0;
      std::size_t used = 0;
      try {
        rank = std::stol(w, &used);
      } catch (const std::exception&) {
        used = 0;
      }
      if (used == 0 || used != w.size())
        throw ConfigError("--rank '" + rank_text + "': give a number of sources, auto, or with --model tucker one " +
                          "rank per axis (e.g. 3,4,2)");
      if (rank < 1) throw ConfigError("--rank must be at least 1 (got " + std::to_string(rank) + ")");
      list.push_back(static_cast<std::size_t>(rank));
      if (c == std::string::npos) break;
      pos = c + 1;
    }
    cfg.rank = list[0];
    if (list.size() > 1) {
      if (cfg.model != "tucker")
        throw ConfigError("--rank '" + rank_text + "': one rank per axis is for --model tucker; --model " + cfg.model +
                          " takes one number");
      cfg.ranks = list;
    }
  }
  cfg.multiscale = vm["multiscale"].as<bool>();
  {
    const std::string axes = vm["continuous-axes"].as<std::string>();
    if (cfg.multiscale && axes.empty()) throw ConfigError("--multiscale needs --continuous-axes, e.g. 1,2");
    if (!cfg.multiscale && !axes.empty()) throw ConfigError("--continuous-axes is used only with --multiscale");
    std::size_t pos = 0;
    while (!axes.empty() && pos <= axes.size()) {
      const std::size_t c = axes.find(',', pos);
      const std::string w = axes.substr(pos, c == std::string::npos ? std::string::npos : c - pos);
      long a = -1;
      std::size_t used = 0;
      try {
        a = std::stol(w, &used);
      } catch (const std::exception&) {
        used = 0;
      }
      if (used == 0 || used != w.size() || a < 0)
        throw ConfigError("--continuous-axes '" + axes + "': give dataset axes as numbers, e.g. 1,2");
      cfg.continuous_axes.push_back(static_cast<int>(a));
      if (c == std::string::npos) break;
      pos = c + 1;
    }
  }
  if (cfg.multiscale && cfg.rank_auto) throw ConfigError("--multiscale with --rank auto is not supported; pick a rank");
  cfg.init = vm["init"].as<std::string>();
  if (vm.count("grid")) cfg.grid = vm["grid"].as<std::string>();
  cfg.options_text = options_text(vm);

  if (vm.count("checkpoint")) cfg.checkpoint = vm["checkpoint"].as<std::string>();
  if (vm.count("checkpoint-every")) {
    if (cfg.checkpoint.empty()) throw ConfigError("--checkpoint-every needs --checkpoint FILE");
    std::string e = vm["checkpoint-every"].as<std::string>();
    const bool seconds = !e.empty() && e.back() == 's';
    if (seconds) e.pop_back();
    double v = 0;
    try {
      std::size_t used = 0;
      v = std::stod(e, &used);
      if (used != e.size()) throw std::invalid_argument(e);
    } catch (const std::exception&) {
      throw ConfigError("--checkpoint-every '" + vm["checkpoint-every"].as<std::string>() +
                        "': write a number of iterations (100) or seconds (600s)");
    }
    if (!(v > 0)) throw ConfigError("--checkpoint-every must be positive");
    if (seconds)
      cfg.checkpoint_every_seconds = v;
    else
      cfg.checkpoint_every_iters = static_cast<std::size_t>(v);
  }
  if (vm.count("resume")) {
    cfg.resume = vm["resume"].as<std::string>();
    if (!vm["init"].defaulted()) throw ConfigError("--resume and --init contradict each other: give one");
  }
  if (cfg.checkpoint == cfg.out && !cfg.out.empty())
    throw ConfigError("--checkpoint and --out name the same file; give the checkpoint its own name");
  install_stop_signals();
  cfg.stop_requested = [] { return stop_signal() != 0; };

  Progress bar(p.quiet || world.rank() != 0);
  // Fault injection for the reliability tests: UNMIX_FAULT_RANK=r UNMIX_FAULT_ITER=k makes rank r alone
  // throw after iteration k (the other ranks go on into the next collective).
  long fault_rank = -1, fault_iter = -1;
  if (const char* fr = std::getenv("UNMIX_FAULT_RANK")) fault_rank = std::atol(fr);
  if (const char* fi = std::getenv("UNMIX_FAULT_ITER")) fault_iter = std::atol(fi);
  FactorizeSummary s = run_factorize(cfg, world, [&](const IterationStats& st, std::size_t mx) {
    bar(st, mx);
    if (world.rank() == fault_rank && st.iteration >= static_cast<double>(fault_iter))
      throw Error("injected fault on this rank (UNMIX_FAULT_RANK) at iteration " +
                  std::to_string(static_cast<long>(st.iteration)));
  });
  bar.end();
  for (const auto& w : s.warnings) warn(world, w);
  if (s.interrupted) {
    if (world.rank() == 0) {
      std::fprintf(stderr, "stopped by %s after iteration %zu: checkpoint written to %s; continue with --resume %s\n",
                   signal_name(stop_signal()), s.result.iterations, s.checkpoint_written.c_str(),
                   s.checkpoint_written.c_str());
      std::fflush(stderr);
    }
    return kExitInterrupted;
  }
  if (world.rank() == 0) {
    const auto& last = s.result.stats.back();
    std::string rank = std::to_string(cfg.rank_auto ? static_cast<std::size_t>(s.chosen_rank) : cfg.rank);
    if (cfg.model == "cp") rank = "CP rank " + rank;
    if (cfg.model == "tucker") rank = "Tucker ranks " + s.ranks;
    if (cfg.model == "tucker1") rank = "rank " + rank;
    std::printf("%s on %d process%s (grid %s): %zu iterations, relative error %.6g, %.3f s; %s\n", rank.c_str(),
                world.size(), world.size() > 1 ? "es" : "", s.grid.c_str(), s.result.iterations, last.rel_error,
                s.seconds, s.result.stop_reason.c_str());
    if (std::isfinite(s.core_consistency))
      std::printf("core consistency %.1f %% (100: the data support every component; low or negative: fewer would do)\n",
                  s.core_consistency);
    if (s.y_bytes > 0)
      std::printf("memory: peak %.3g GB per process (estimated before reading: %.3g GB), of which Y's block %.3g GB; "
                  "read in %.3f s\n",
                  s.peak_bytes / 1e9, s.estimate_bytes / 1e9, s.y_bytes / 1e9, s.read_seconds);
    std::printf("wrote %s\n", cfg.out.c_str());
    if (!vm["no-plot"].as<bool>()) {
      const std::filesystem::path svg = gnuplot::image_beside(cfg.out);
      const std::string title =
          std::filesystem::path(cfg.input).filename().string() + " " + cfg.dataset + ": " +
          (cfg.model == "tucker" ? "ranks " + s.ranks
                                 : "rank " + std::to_string(cfg.rank_auto ? s.chosen_rank : cfg.rank)) +
          ", " + s.result.stop_reason;
      const std::string why =
          gnuplot::make_image(svg, 700, 450, convergence_plot(s.result.stats, title), cfg.overwrite);
      if (why.empty())
        std::printf("plot %s\n", svg.string().c_str());
      else
        std::fprintf(stderr, "warning: plot '%s' not made (%s)\n", svg.string().c_str(), why.c_str());
    }
    std::fflush(stdout);
  }
  return 0;
}

} // namespace unmix::cli
