#include "unmix/apps/audio_pipeline.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <numeric>
#include <sstream>

#include "unmix/core/error.hpp"
#include "unmix/io/gnuplot.hpp"
#include "unmix/io/hdf5.hpp"
#include "unmix/io/signal.hpp"

namespace unmix::audio {

namespace {

using Clock = std::chrono::steady_clock;
constexpr auto& since = apps::seconds_since;
constexpr auto& fmt = apps::format_number;

std::size_t downsampled_length(std::size_t n, std::size_t factor) {
  return std::max<std::size_t>(1, (n + factor / 2) / factor);
}

void validate(const RunConfig& c) {
  if (c.input.empty()) throw ConfigError("no recording given: unmix audio MIXTURE.wav --out DIR");
  if (c.out_dir.empty()) throw ConfigError("no output folder given: use --out DIR");
  if (c.downsample < 1) throw ConfigError("--downsample must be at least 1 (1 keeps the recording's rate)");
  if (c.window < 4) throw ConfigError("--window must be at least 4 samples (got " + std::to_string(c.window) + ")");
  if (c.hop < 1 || c.hop > c.window / 2)
    throw ConfigError("--hop must be between 1 and half the window (" + std::to_string(c.window / 2) + "), got " +
                      std::to_string(c.hop));
  if (c.rank < 1) throw ConfigError("--rank (the number of notes) must be at least 1");
  if (!(c.grouping.threshold > 0 && c.grouping.threshold <= 1))
    throw ConfigError("--threshold must be in (0, 1], got " + fmt("%g", c.grouping.threshold));
  if (c.grouping.sources > c.rank)
    throw ConfigError("--sources " + std::to_string(c.grouping.sources) + " is more than the " +
                      std::to_string(c.rank) + " notes (--rank)");
  if (c.grouping.bins_per_octave > 1200)
    throw ConfigError("--bins-per-octave must be at most 1200 (a cent), got " +
                      std::to_string(c.grouping.bins_per_octave));
  if (!c.references.empty() && c.grouping.sources > 0 && c.references.size() > c.grouping.sources)
    throw ConfigError(std::to_string(c.references.size()) + " references but only " +
                      std::to_string(c.grouping.sources) + " sources (--sources): give at most as many references");
  if (!c.references.empty() && c.grouping.sources > 8)
    throw ConfigError("scoring against references is limited to 8 separated sources (--sources)");
  if (c.plot_format != "png" && c.plot_format != "svg" && c.plot_format != "none")
    throw ConfigError("--plots '" + c.plot_format + "': use png, svg or none");
  apps::parse_factor_spec(c.factor.constraint_A, "A");
  apps::parse_factor_spec(c.factor.constraint_B, "B");
}

// Rows (time s, frequency Hz, level dB) of a transform for a heat map; levels below floor_db are raised to it.
std::vector<std::vector<double>> level_rows(const Stft& s, double rate, double top) {
  std::vector<std::vector<double>> rows;
  rows.reserve(s.freqs * s.frames);
  for (std::size_t f = 0; f < s.frames; ++f)
    for (std::size_t k = 0; k < s.freqs; ++k) {
      const double m = s.at_abs(k, f);
      const double db = 20 * std::log10(std::max(m, 1e-12) / top);
      rows.push_back({static_cast<double>(f * s.hop) / rate,
                      static_cast<double>(k) * rate / static_cast<double>(s.window), std::max(db, -80.0)});
    }
  return rows;
}

std::string make_plots(const std::string& dir, const std::string& format, const Stft& mixture,
                       const std::vector<Stft>& parts, double rate, const Grouping& g, bool overwrite) {
  double top = 0;
  for (std::size_t i = 0; i < mixture.S.size(); ++i) top = std::max(top, std::abs(mixture.S[i]));
  if (!(top > 0)) top = 1;
  std::ostringstream p;
  const std::size_t panels = 1 + parts.size();
  p << gnuplot::datablock("mix", level_rows(mixture, rate, top));
  for (std::size_t h = 0; h < parts.size(); ++h)
    p << gnuplot::datablock("src" + std::to_string(h + 1), level_rows(parts[h], rate, top));
  p << "set multiplot layout " << panels << ",1\n"
    << "set xlabel 'time (s)'\nset ylabel 'frequency (Hz)'\nset cblabel 'dB'\nset cbrange [-80:0]\n"
    << "set palette rgbformulae 21,22,23\nset autoscale xfix\nset yrange [0:" << rate / 2 << "]\n";
  p << "set title 'mixture'\nplot $mix using 1:2:3 with image notitle\n";
  for (std::size_t h = 0; h < parts.size(); ++h)
    p << "set title " << gnuplot::quote("source " + std::to_string(h + 1)) << "\nplot $src" << h + 1
      << " using 1:2:3 with image notitle\n";
  p << "unset multiplot\n";
  std::string why = gnuplot::make_image(dir + "/spectrograms." + format, 900, static_cast<int>(220 * panels + 40),
                                        p.str(), overwrite);
  if (!why.empty()) return "spectrograms not drawn: " + why;

  // The notes ordered by source, so that each source is a block on the diagonal.
  const std::size_t R = g.components;
  std::vector<std::size_t> order(R);
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return g.group[a] < g.group[b]; });
  std::vector<std::vector<double>> cells;
  for (std::size_t a = 0; a < R; ++a)
    for (std::size_t b = 0; b < R; ++b)
      cells.push_back({static_cast<double>(a + 1), static_cast<double>(b + 1), g.similarity[order[a] + R * order[b]]});
  std::ostringstream q, tics, title;
  q << gnuplot::datablock("sim", cells);
  for (std::size_t a = 0; a < R; ++a) tics << (a ? ", " : "") << "'" << order[a] + 1 << "' " << a + 1;
  title << "notes by source:";
  for (std::size_t h = 0; h < g.groups; ++h) {
    title << (h ? "; " : " ") << h + 1 << " =";
    for (std::size_t r = 0; r < R; ++r)
      if (static_cast<std::size_t>(g.group[r]) == h) title << " " << r + 1;
  }
  q << "set title " << gnuplot::quote(title.str()) << "\nset xlabel 'note'\nset ylabel 'note'\nset cbrange [0:1]\n"
    << "set cblabel 'similarity (spectra on a log-frequency axis, best shift)'\n"
    << "set palette rgbformulae 21,22,23\nset xrange [0.5:" << static_cast<double>(R) + 0.5 << "]\nset yrange ["
    << static_cast<double>(R) + 0.5 << ":0.5]\nset size ratio -1\nset xtics (" << tics.str() << ")\nset ytics ("
    << tics.str() << ")\n";
  double edge = 0.5;
  for (std::size_t h = 0; h + 1 < g.groups; ++h) {
    edge += static_cast<double>(std::count(g.group.begin(), g.group.end(), static_cast<int>(h)));
    q << "set arrow from " << edge << ",0.5 to " << edge << "," << static_cast<double>(R) + 0.5
      << " nohead front lw 2 lc rgb 'blue'\nset arrow from 0.5," << edge << " to " << static_cast<double>(R) + 0.5
      << "," << edge << " nohead front lw 2 lc rgb 'blue'\n";
  }
  q << "plot $sim using 1:2:3 with image notitle, $sim using 1:2:(sprintf('%.2f', $3)) with labels notitle\n";
  why = gnuplot::make_image(dir + "/notes." + format, 700, 640, q.str(), overwrite);
  return why.empty() ? "" : "notes plot not drawn: " + why;
}

} // namespace

RunConfig default_config() {
  RunConfig c;
  c.factor.solver.maxiter = 2000;
  c.factor.solver.tol = {{Stat::rel_error, 0.085}};
  return c;
}

RunSummary run(const RunConfig& cfg, const Comm& comm, const std::function<void(const std::string&)>& note) {
  RunSummary sum;
  const auto t0 = Clock::now();
  auto say = [&](const std::string& s) {
    if (note) note(s);
  };
  validate(cfg);
  apps::AtomicDir out(comm, cfg.out_dir, cfg.overwrite);

  // Rank 0 reads the recording (and the references) and computes the transform.
  io::Signal mix;
  std::vector<io::Signal> refs;
  Stft spec;
  std::vector<double> work;      // the mixture at the working rate (rank 0)
  std::vector<double> magnitude; // frames x freqs, column-major: the tensor factorized
  std::vector<std::string> notes;
  collective_try(comm, [&] {
    if (comm.rank() != 0) return;
    mix = io::read_signal_wav(cfg.input, cfg.channel);
    notes = mix.notes;
    if (mix.y.size() < 2)
      throw DataError("'" + cfg.input + "' has " + std::to_string(mix.y.size()) + " sample(s): nothing to separate");
    if (std::all_of(mix.y.begin(), mix.y.end(), [](double v) { return v == 0.0; }))
      throw DataError(
          "'" + cfg.input + "' is silent (every sample is zero" +
          (mix.notes.empty() ? std::string() : std::string(" after averaging its channels; pick one with --channel")) +
          "): nothing to separate");
    for (const auto& r : cfg.references) {
      refs.push_back(io::read_signal_wav(r)); // references are mono, or mixed down (noted)
      for (const auto& n : refs.back().notes) notes.push_back("reference: " + n);
      if (refs.back().rate != mix.rate)
        throw DataError("reference '" + r + "' is sampled at " + fmt("%g", refs.back().rate) + " Hz, the mixture at " +
                        fmt("%g", mix.rate) + " Hz");
    }
    const std::size_t n = mix.y.size(), nw = downsampled_length(n, cfg.downsample);
    work = resample(mix.y, nw);
    if (nw < cfg.window)
      throw DataError("'" + cfg.input + "' has " + std::to_string(nw) +
                      " samples at the working rate, fewer than one " + std::to_string(cfg.window) +
                      "-sample window: lower --downsample or --window");
    spec = stft(work, cfg.window, cfg.hop);
    magnitude.resize(spec.frames * spec.freqs);
    for (std::size_t f = 0; f < spec.frames; ++f)
      for (std::size_t k = 0; k < spec.freqs; ++k) magnitude[f + spec.frames * k] = spec.at_abs(k, f);
    sum.rate = mix.rate;
    sum.samples = n;
    sum.work_samples = nw;
  });
  double shape_msg[4] = {sum.rate, static_cast<double>(sum.samples), static_cast<double>(spec.frames),
                         static_cast<double>(spec.freqs)};
  comm.bcast(std::span<double>(shape_msg, 4), 0);
  sum.rate = shape_msg[0];
  sum.samples = static_cast<std::size_t>(shape_msg[1]);
  sum.frames = static_cast<std::size_t>(shape_msg[2]);
  sum.freqs = static_cast<std::size_t>(shape_msg[3]);
  sum.work_samples = downsampled_length(sum.samples, cfg.downsample);
  sum.work_rate = sum.rate * static_cast<double>(sum.work_samples) / static_cast<double>(sum.samples);
  // The magnitudes exist whole on process 0 only; each process receives its block of them.
  const DistTensor<double> Yd = apps::spread_from_root({sum.frames, sum.freqs}, magnitude, cfg.factor, comm);
  for (const auto& n : notes) sum.warnings.push_back(n);
  say("read " + std::to_string(sum.samples) + " samples at " + fmt("%g", sum.rate) + " Hz; working at " +
      fmt("%.1f", sum.work_rate) + " Hz: " + std::to_string(sum.frames) + " frames x " + std::to_string(sum.freqs) +
      " frequencies");

  const auto tf = Clock::now();
  sum.fit = apps::factorize_distributed(Yd, cfg.rank, cfg.factor, "frames");
  sum.seconds_factorize = comm.allreduce(since(tf), Op::max);
  const auto& last = sum.fit.result.stats.back();
  say("factorized at rank " + std::to_string(cfg.rank) + ": relative error " + fmt("%.4f", last.rel_error) + " after " +
      std::to_string(sum.fit.result.iterations) + " iterations (" + sum.fit.result.stop_reason + ")");

  // Grouping and rebuilding: the same on every process (the factors are gathered everywhere), signals on rank 0.
  const std::size_t R = cfg.rank;
  sum.grouping = group_spectra(sum.fit.B.data(), R, sum.freqs, cfg.grouping);
  sum.energy_share = order_groups_by_energy(sum.grouping, sum.fit.A.data(), sum.frames, sum.fit.B.data(), sum.freqs);
  say("grouped " + std::to_string(R) + " notes into " + std::to_string(sum.grouping.groups) + " source(s)");
  std::vector<Stft> parts;
  std::string plot_warning;
  collective_try(comm, [&] {
    if (comm.rank() != 0) return;
    parts = separate(spec, sum.fit.A.data(), sum.fit.B.data(), R, sum.grouping, cfg.rebuild);
    for (const Stft& p : parts) {
      sum.sources_work.push_back(istft(p, p.S));
      sum.sources.push_back(resample(sum.sources_work.back(), sum.samples));
    }
    if (!refs.empty()) {
      std::vector<std::vector<double>> ref_work, ref_full;
      for (std::size_t i = 0; i < refs.size(); ++i) {
        // Compared sample by sample with the mixture's sources: a reference of another length is cut or padded
        // with silence at its end (never stretched by the resampling).
        ref_full.push_back(refs[i].y);
        if (ref_full.back().size() != sum.samples) {
          sum.warnings.push_back("reference '" + cfg.references[i] + "' has " + std::to_string(refs[i].y.size()) +
                                 " samples, the mixture " + std::to_string(sum.samples) +
                                 ": scored over the mixture's length (cut or padded with silence at the end)");
          ref_full.back().resize(sum.samples, 0.0);
        }
        ref_work.push_back(resample(ref_full.back(), sum.work_samples));
      }
      const std::vector<std::size_t> match = best_assignment(ref_work, sum.sources_work);
      for (std::size_t i = 0; i < refs.size(); ++i) {
        Score s;
        s.reference = cfg.references[i];
        s.source = match[i];
        s.sdr = sdr(ref_work[i], sum.sources_work[match[i]]);
        s.sdr_mixture = sdr(ref_work[i], work);
        s.sdr_full = sdr(ref_full[i], sum.sources[match[i]]);
        sum.scores.push_back(s);
      }
    }
    std::size_t clipped = 0;
    for (std::size_t h = 0; h < sum.sources.size(); ++h)
      clipped += io::write_wav(out.file("source_" + std::to_string(h + 1) + ".wav"), sum.sources[h],
                               static_cast<int>(std::lround(sum.rate)));
    if (clipped > 0)
      sum.warnings.push_back(std::to_string(clipped) +
                             " samples of the separated sources lay outside [-1, 1] and were "
                             "clipped in the WAV files (results.h5 has the sources' spectra)");
    std::ostringstream s;
    s << "source,notes,energy_share\n";
    for (std::size_t h = 0; h < sum.grouping.groups; ++h) {
      s << h + 1 << ",";
      bool first = true;
      for (std::size_t r = 0; r < R; ++r)
        if (static_cast<std::size_t>(sum.grouping.group[r]) == h) {
          s << (first ? "" : " ") << r + 1;
          first = false;
        }
      s << "," << fmt("%.6f", sum.energy_share[h]) << "\n";
    }
    apps::write_text(out.file("sources.csv"), s.str());
    if (!sum.scores.empty()) {
      std::ostringstream c;
      c << "reference,source,sdr_db,sdr_mixture_db,sdr_improvement_db,sdr_full_rate_db\n";
      for (const auto& sc : sum.scores)
        c << sc.reference << "," << sc.source + 1 << "," << fmt("%.4f", sc.sdr) << "," << fmt("%.4f", sc.sdr_mixture)
          << "," << fmt("%.4f", sc.sdr - sc.sdr_mixture) << "," << fmt("%.4f", sc.sdr_full) << "\n";
      apps::write_text(out.file("scores.csv"), c.str());
    }
  });
  {
    h5::File f = h5::File::create(comm, out.file("results.h5"));
    // The magnitudes exist on process 0 only, which writes them.
    const bool root = comm.rank() == 0;
    std::vector<double> A(sum.frames * R), B(R * sum.freqs), Y(root ? sum.frames * sum.freqs : 0), S(R * R);
    for (std::size_t i = 0; i < sum.frames; ++i)
      for (std::size_t r = 0; r < R; ++r) A[i * R + r] = sum.fit.A[i + sum.frames * r];
    for (std::size_t r = 0; r < R; ++r)
      for (std::size_t k = 0; k < sum.freqs; ++k) B[r * sum.freqs + k] = sum.fit.B[r + R * k];
    for (std::size_t i = 0; root && i < sum.frames; ++i)
      for (std::size_t k = 0; k < sum.freqs; ++k) Y[i * sum.freqs + k] = magnitude[i + sum.frames * k];
    for (std::size_t a = 0; a < R; ++a)
      for (std::size_t b = 0; b < R; ++b) S[a * R + b] = sum.grouping.similarity[a + R * b];
    std::vector<double> freq(sum.freqs), times(sum.frames), group(R);
    for (std::size_t k = 0; k < sum.freqs; ++k)
      freq[k] = static_cast<double>(k) * sum.work_rate / static_cast<double>(cfg.window);
    for (std::size_t i = 0; i < sum.frames; ++i) times[i] = static_cast<double>(i * cfg.hop) / sum.work_rate;
    for (std::size_t r = 0; r < R; ++r) group[r] = sum.grouping.group[r] + 1;
    f.write_replicated<double>("A", {sum.frames, R}, A);
    f.write_replicated<double>("B", {R, sum.freqs}, B);
    f.write_replicated<double>("magnitude", {sum.frames, sum.freqs}, Y);
    f.write_replicated<double>("frequency_hz", {sum.freqs}, freq);
    f.write_replicated<double>("time_s", {sum.frames}, times);
    f.write_replicated<double>("similarity", {R, R}, S);
    f.write_replicated<double>("source_of_note", {R}, group);
    f.write_replicated<double>("energy_share", {sum.grouping.groups}, sum.energy_share);
    apps::write_fit_record(f, sum.fit, cfg.factor, comm, cfg.options_text);
    f.attr("input", cfg.input);
    f.attr("sample_rate_hz", sum.rate);
    f.attr("working_rate_hz", sum.work_rate);
    f.attr("window", static_cast<long long>(cfg.window));
    f.attr("hop", static_cast<long long>(cfg.hop));
    f.attr("sources", static_cast<long long>(sum.grouping.groups));
  }
  collective_try(comm, [&] {
    if (comm.rank() != 0 || cfg.plot_format == "none") return;
    plot_warning = make_plots(out.tmp(), cfg.plot_format, spec, parts, sum.work_rate, sum.grouping, true);
  });
  if (!plot_warning.empty()) sum.warnings.push_back(out.as_final(plot_warning));
  out.commit();
  sum.seconds_total = comm.allreduce(since(t0), Op::max);
  return sum;
}

} // namespace unmix::audio
