// unmix srmd SIGNAL --out modes.csv: split one signal into modes by Sparse Random Mode Decomposition.
// The random features are spread over the processes; every process gets the same modes, rank 0 writes.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <sstream>
#include <unistd.h>

#include "common.hpp"
#include "unmix/core/error.hpp"
#include "unmix/io/gnuplot.hpp"
#include "unmix/io/signal.hpp"
#include "unmix/srmd/comm_reduction.hpp"
#include "unmix/srmd/srmd.hpp"

namespace unmix::cli {

namespace {

namespace fs = std::filesystem;

/// A file written under a temporary name in the destination folder and renamed when complete; removed
/// if never committed.
class AtomicFile {
public:
  explicit AtomicFile(fs::path target) : target_(std::move(target)) {
    tmp_ = target_;
    tmp_ += ".tmp-" + std::to_string(::getpid());
  }
  ~AtomicFile() {
    if (!done_) {
      std::error_code ec;
      fs::remove(tmp_, ec);
    }
  }
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;
  const fs::path& tmp() const { return tmp_; }
  void commit() {
    std::error_code ec;
    fs::rename(tmp_, target_, ec);
    if (ec) throw IoError("cannot rename '" + tmp_.string() + "' to '" + target_.string() + "': " + ec.message());
    done_ = true;
  }

private:
  fs::path target_, tmp_;
  bool done_ = false;
};

void write_text(AtomicFile& f, const std::string& text) {
  std::ofstream out(f.tmp(), std::ios::binary);
  if (!out) throw IoError("cannot write '" + f.tmp().string() + "' (is the folder writable?)");
  out << text;
  out.close();
  if (!out) throw IoError("writing '" + f.tmp().string() + "' failed (disk full?)");
}

std::string g17(double v) {
  char b[40];
  std::snprintf(b, sizeof b, "%.17g", v);
  return b;
}

} // namespace

int cmd_srmd(const std::vector<std::string>& args, const Comm& world) {
  po::options_description io("Input and output");
  io.add_options()("out,o", po::value<std::string>()->required(),
                   "output CSV of the modes: columns t, mode1, mode2, ... (largest L2 norm first). Next to it: "
                   "STEM_features.csv (tau, f, weight, cluster of every kept feature), STEM_tf.EXT (time-frequency "
                   "scatter of the features) and STEM_modes.EXT (signal and modes)")(
      "column", po::value<std::string>(),
      "CSV input: the signal column, by header name or 1-based number (default: the first column that is not "
      "the time column 't'/'time'; without such a column the first column is the time)")(
      "channel", po::value<int>(), "WAV input: use channel K (1-based); default: the average of all channels")(
      "plots", po::value<std::string>()->default_value("png"), "plot format: png, svg or none (needs gnuplot)");
  po::options_description model("Decomposition (defaults as in the reference implementation)");
  model.add_options()("features,N", po::value<long>(), "number of random features N (default 10 x samples)")(
      "max-frq", po::value<double>(), "largest feature frequency (default 0.5 (m + 1) / L, just above Nyquist)")(
      "window,w", po::value<double>()->default_value(0.1),
      "feature width w in time units: Gaussian with s = w / 2, cut at |t - tau| = 1.5 w")(
      "residual,r", po::value<double>()->default_value(0.05),
      "relative residual r: the fit satisfies ||y - B a|| <= r ||y||; 0 < r < 1")(
      "eps", po::value<double>(), "DBSCAN radius in the (tau, f * frq-scale) plane (default 0.2 L)")(
      "frq-scale", po::value<double>(), "frequency scale before clustering (default L / max-frq)")(
      "min-samples", po::value<int>()->default_value(4), "DBSCAN: neighbours (self included) that make a core point")(
      "threshold", po::value<double>(),
      "keep only weights with |a| at or above this quantile (0..1) of the nonzero |a|")(
      "n-modes", po::value<int>(), "return at most K modes: the smallest ones are summed into the last")(
      "cutoff", po::value<double>(), "no clustering: two modes, features with f >= cutoff and f < cutoff")(
      "seed", po::value<unsigned long>()->default_value(0),
      "seed of the random features: drawn as numpy.random.default_rng(seed) draws them in the Python reference "
      "(srmdpy), so a seed gives the same features there; same modes at any process count")(
      "iter-lim", po::value<long>(), "SPGL1 iteration limit (default 10 x samples)");
  po::options_description all;
  all.add(io).add(model);
  Parsed p = parse("srmd",
                   "SIGNAL.(csv|wav) --out modes.csv [options]\n\n"
                   "Splits one signal into modes: a sparse sum of random time-frequency features (basis pursuit "
                   "denoise by SPGL1), clustered in the time-frequency plane (DBSCAN); one mode per cluster.\n"
                   "CSV input needs a header; time stamps must be uniform.",
                   all, {"signal"}, args, world);
  const auto& vm = p.vm;

  srmd::SrmdOptions opt;
  opt.w = vm["window"].as<double>();
  opt.r = vm["residual"].as<double>();
  opt.min_samples = vm["min-samples"].as<int>();
  opt.seed = vm["seed"].as<unsigned long>();
  if (vm.count("features")) {
    const long n = vm["features"].as<long>();
    if (n < 1) throw ConfigError("--features must be at least 1");
    opt.n_features = static_cast<std::size_t>(n);
  }
  if (vm.count("max-frq")) opt.max_frq = vm["max-frq"].as<double>();
  if (vm.count("eps")) opt.eps = vm["eps"].as<double>();
  if (vm.count("frq-scale")) opt.frq_scale = vm["frq-scale"].as<double>();
  if (vm.count("threshold")) opt.threshold = vm["threshold"].as<double>();
  if (vm.count("n-modes")) {
    opt.n_modes = vm["n-modes"].as<int>();
    if (opt.n_modes < 1) throw ConfigError("--n-modes must be at least 1");
  }
  if (vm.count("cutoff")) opt.cutoff = vm["cutoff"].as<double>();
  if (vm.count("iter-lim")) {
    const long n = vm["iter-lim"].as<long>();
    if (n < 1) throw ConfigError("--iter-lim must be at least 1");
    opt.spgl1.iter_lim = static_cast<std::size_t>(n);
  }
  if (!(opt.r > 0 && opt.r < 1))
    throw ConfigError("--residual (r) must lie strictly between 0 and 1, got " + g17(opt.r));
  if (opt.eps && !(*opt.eps > 0)) throw ConfigError("--eps must be positive, got " + g17(*opt.eps));
  if (opt.min_samples < 1)
    throw ConfigError("--min-samples must be at least 1, got " + std::to_string(opt.min_samples));
  if (!(opt.w > 0)) throw ConfigError("--window must be positive, got " + g17(opt.w));
  const std::string plots = vm["plots"].as<std::string>();
  if (plots != "png" && plots != "svg" && plots != "none")
    throw ConfigError("--plots must be png, svg or none, got '" + plots + "'");

  const std::string in_path = vm["signal"].as<std::string>();
  const fs::path out_path = vm["out"].as<std::string>();
  std::optional<int> channel;
  if (vm.count("channel")) channel = vm["channel"].as<int>();
  const std::string column = vm.count("column") ? vm["column"].as<std::string>() : std::string();

  io::Signal sig;
  collective_try(world, [&] {
    sig = io::read_signal(in_path, column, channel);
    if (sig.y.empty()) throw DataError("'" + in_path + "' holds no samples");
    if (sig.y.size() < 2) throw DataError("'" + in_path + "' holds a single sample; a signal needs at least two");
    io::require_uniform_time(sig.t);
    const fs::path dir = out_path.parent_path().empty() ? fs::path(".") : out_path.parent_path();
    if (!fs::is_directory(dir)) throw IoError("output folder '" + dir.string() + "' does not exist");
  });
  for (const auto& n : sig.notes) note(world, p.quiet, "srmd: " + n);
  note(world, p.quiet,
       "srmd: " + std::to_string(sig.y.size()) + " samples of " + sig.column + " from '" + in_path + "', " +
           std::to_string(world.size()) + " process(es)");

  const auto t_start = std::chrono::steady_clock::now();
  srmd::SrmdResult res;
  const srmd::CommReduction red(world);
  collective_try(world, [&] { (void)srmd::plan_srmd(sig.t, sig.y, opt); });
  res = srmd::srmd(sig.t, sig.y, opt, red); // collective; every failure mode is identical on all ranks
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();
  {
    std::ostringstream os;
    os << "srmd: " << res.plan.n_features << " features, " << res.nonzeros << " nonzero weights, " << res.weight.size()
       << " kept, " << res.n_modes << " mode(s); SPGL1 " << srmd::to_string(res.status) << " after " << res.iterations
       << " iterations, residual " << std::setprecision(4) << res.rnorm << " (target " << res.sigma << "); "
       << std::setprecision(3) << secs << " s";
    note(world, p.quiet, os.str());
  }
  if (res.status != srmd::Spgl1Status::root_found && res.status != srmd::Spgl1Status::bp_solution)
    warn(world, std::string("SPGL1 stopped with: ") + srmd::to_string(res.status));

  // Rank 0 writes every file under a temporary name and renames them only when all are complete.
  collective_try(world, [&] {
    if (world.rank() != 0) return;
    const fs::path stem = out_path.parent_path() / out_path.stem();
    const fs::path feat_path = stem.string() + "_features.csv";
    AtomicFile modes_f(out_path), feat_f(feat_path);
    {
      std::string s = "t";
      for (std::size_t k = 0; k < res.n_modes; ++k) s += ",mode" + std::to_string(k + 1);
      s += "\n";
      for (std::size_t i = 0; i < res.m; ++i) {
        s += g17(sig.t[i]);
        for (std::size_t k = 0; k < res.n_modes; ++k) {
          s += ',';
          s += g17(res.mode(k)[i]);
        }
        s += "\n";
      }
      write_text(modes_f, s);
    }
    {
      std::string s = "tau,f,weight,cluster\n";
      for (std::size_t j = 0; j < res.weight.size(); ++j)
        s += g17(res.tau[j]) + "," + g17(res.frq[j]) + "," + g17(res.weight[j]) + "," +
             std::to_string(res.label[j] >= 0 ? res.label[j] + 1 : -1) + "\n";
      write_text(feat_f, s);
    }
    std::vector<std::string> plot_notes;
    if (plots != "none") {
      const std::string ext = plots;
      const fs::path tf_path = stem.string() + "_tf." + ext, mp_path = stem.string() + "_modes." + ext;
      AtomicFile tf_f(tf_path), mp_f(mp_path), script(stem.string() + "_plot.gp");
      // Data for the mode plot: t, y, modes (read by gnuplot before the CSVs are renamed).
      std::ostringstream gp;
      gp << "set datafile separator ','\n"
         << gnuplot::terminal(plots, 1000, 700) << "set output " << gnuplot::quote(tf_f.tmp().string()) << "\n"
         << "set title 'Kept features (size: |weight|, colour: mode; grey: noise)'\n"
         << "set xlabel 'time tau'\nset ylabel 'frequency f'\nset key off\nset grid\n"
         << "set palette defined (0 'grey', 1 '#1f77b4', 2 '#d62728', 3 '#2ca02c', 4 '#9467bd', 5 '#ff7f0e', 6 "
            "'#8c564b')\n"
         << "set cbrange [0:6]\nunset colorbox\n"
         << "maxw = 1e-300\nstats " << gnuplot::quote(feat_f.tmp().string())
         << " using (abs($3)) nooutput\nmaxw = STATS_max\n"
         << "plot " << gnuplot::quote(feat_f.tmp().string())
         << " skip 1 using 1:2:(0.5 + 2.5 * abs($3) / maxw):($4 < 0 ? 0 : 1 + int($4 - 1) % 6) with points pt 7 ps "
            "variable lc palette\n"
         << "set output " << gnuplot::quote(mp_f.tmp().string()) << "\n";
      const std::size_t rows = res.n_modes + 1;
      gp << gnuplot::terminal(plots, 1000, static_cast<int>(180 * rows + 80)) << "set output "
         << gnuplot::quote(mp_f.tmp().string()) << "\n"
         << "set multiplot layout " << rows << ",1\nset xlabel ''\nset ylabel ''\nunset title\n"
         << "set lmargin 10\n";
      // First panel: the input signal (written to a small data file next to the others).
      AtomicFile ydata(stem.string() + "_signal.tmpdata");
      {
        std::string s;
        for (std::size_t i = 0; i < sig.y.size(); ++i) s += g17(sig.t[i]) + "," + g17(sig.y[i]) + "\n";
        write_text(ydata, s);
      }
      gp << "set title 'signal'\nplot " << gnuplot::quote(ydata.tmp().string()) << " using 1:2 with lines lc 'black'\n";
      for (std::size_t k = 0; k < res.n_modes; ++k)
        gp << "set title 'mode " << k + 1 << "'\nplot " << gnuplot::quote(modes_f.tmp().string())
           << " skip 1 using 1:" << k + 2 << " with lines lc '#1f77b4'\n";
      gp << "unset multiplot\n";
      write_text(script, gp.str());
      std::string why = gnuplot::run(script.tmp());
      if (why.empty() && !(fs::exists(tf_f.tmp()) && fs::exists(mp_f.tmp()))) why = "gnuplot wrote no image";
      if (why.empty()) {
        tf_f.commit();
        mp_f.commit();
        plot_notes.push_back("plots: " + tf_path.string() + ", " + mp_path.string());
      } else {
        plot_notes.push_back("warning: no plots written (" + why + ")");
      }
    }
    modes_f.commit();
    feat_f.commit();
    if (!p.quiet) {
      std::fprintf(stderr, "srmd: wrote %s and %s\n", out_path.string().c_str(), feat_path.string().c_str());
      for (const auto& n : plot_notes) std::fprintf(stderr, "srmd: %s\n", n.c_str());
    }
  });
  return 0;
}

} // namespace unmix::cli
