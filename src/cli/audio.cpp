// unmix audio: the instruments of one recording, separated by a nonnegative factorization of its
// short-time Fourier transform and a grouping of the learned notes by timbre.
#include <cstdio>

#include "common.hpp"
#include "unmix/apps/audio_pipeline.hpp"

namespace unmix::cli {

int cmd_audio(const std::vector<std::string>& args, const Comm& world) {
  const audio::RunConfig d = audio::default_config();
  po::options_description in("Input");
  in.add_options()("channel", po::value<int>(), "channel to use (1-based; default: the average of the channels)")(
      "reference", po::value<std::vector<std::string>>()->composing(),
      "a true source recording, at the same rate (repeatable; several channels are averaged, --channel picks "
      "the mixture's only): the separated sources are matched to the references and scored "
      "(signal-to-distortion ratio, dB) in scores.csv");
  po::options_description tf("Transform");
  tf.add_options()("downsample", po::value<long>()->default_value(static_cast<long>(d.downsample)),
                   "work at the recording's rate divided by this (band-limited resampling; the band above the new "
                   "Nyquist frequency is left out of the sources); 1 keeps the rate")(
      "window", po::value<long>()->default_value(static_cast<long>(d.window)),
      "STFT window length in samples at the working rate (periodic Hann)")(
      "hop", po::value<long>()->default_value(static_cast<long>(d.hop)),
      "STFT hop in samples (at most half the window)");
  po::options_description model("Model");
  model.add_options()("rank,r", po::value<long>()->default_value(static_cast<long>(d.rank)),
                      "number of notes (spectra) the magnitude is factorized into")(
      "constraint,c", po::value<std::vector<std::string>>()->composing(),
      "constraints as A=SPEC (activations, frames x notes) or B=SPEC (spectra); default nonnegative for both "
      "(see unmix factorize --help)")("seed", po::value<unsigned long long>()->default_value(1), "random seed")(
      "starts", po::value<long>()->default_value(1), "random starts; the best fit is kept")(
      "maxiter", po::value<long>()->default_value(static_cast<long>(d.factor.solver.maxiter)),
      "iteration limit")("tol", po::value<std::vector<std::string>>()->composing(),
                         "stopping rule NAME=VALUE (repeatable; see unmix factorize --help). Default: rel_error=0.085")(
      "grid", po::value<std::string>(), "process grid over frames x frequencies, e.g. 2x1");
  po::options_description group("Grouping");
  group.add_options()("sources", po::value<long>()->default_value(static_cast<long>(d.grouping.sources)),
                      "number of instruments: the notes are grouped by average linkage of their similarity (their "
                      "spectra on a logarithmic frequency axis, correlated at the best relative shift, i.e. change of "
                      "pitch) until this many groups remain; 0: until no two groups reach --threshold")(
      "threshold",
      po::value<double>()->default_value(d.grouping.threshold, apps::format_number("%g", d.grouping.threshold)),
      "with --sources 0: groups whose mean similarity reaches this merge")(
      "bins-per-octave", po::value<long>()->default_value(static_cast<long>(d.grouping.bins_per_octave)),
      "resolution of the logarithmic frequency axis")(
      "rebuild", po::value<std::string>()->default_value("mask"),
      "mask: each source's share of the model as a soft mask on the mixture's transform (the sources add up to "
      "the mixture); phase: each source's modelled magnitude with the mixture's phase");
  po::options_description out("Output");
  out.add_options()("out,o", po::value<std::string>(),
                    "output folder: source_1.wav ... (loudest first, at the recording's rate), sources.csv, "
                    "results.h5, scores.csv (with --reference), spectrograms and notes plots")(
      "overwrite", po::bool_switch(), "replace an existing output folder")(
      "plots", po::value<std::string>()->default_value("png"), "plot format: png, svg or none");
  po::options_description desc;
  desc.add(in).add(tf).add(model).add(group).add(out);
  Parsed p = parse("audio", "MIXTURE.wav --out DIR [options]   (MIXTURE: WAV, FLAC, OGG or AIFF)", desc, {"input"},
                   args, world);
  const auto& vm = p.vm;
  audio::RunConfig cfg = d;
  if (!vm.count("input")) throw ConfigError("no recording given: unmix audio MIXTURE.wav --out DIR");
  if (!vm.count("out")) throw ConfigError("no output folder given: use --out DIR");
  cfg.input = vm["input"].as<std::string>();
  if (vm.count("channel")) cfg.channel = vm["channel"].as<int>();
  if (vm.count("reference")) cfg.references = vm["reference"].as<std::vector<std::string>>();

  cfg.downsample = read_count(vm, "downsample", 1);
  cfg.window = read_count(vm, "window", 4);
  cfg.hop = read_count(vm, "hop", 1);
  cfg.rank = read_count(vm, "rank", 1);
  read_fit_options(vm, cfg.factor);
  cfg.grouping.threshold = vm["threshold"].as<double>();
  cfg.grouping.sources = read_count(vm, "sources", 0);
  cfg.grouping.bins_per_octave = read_count(vm, "bins-per-octave", 1);
  cfg.rebuild = audio::parse_rebuild(vm["rebuild"].as<std::string>());
  cfg.out_dir = vm["out"].as<std::string>();
  cfg.overwrite = vm["overwrite"].as<bool>();
  cfg.plot_format = vm["plots"].as<std::string>();
  cfg.options_text = options_text(vm);

  audio::RunSummary s = audio::run(cfg, world, [&](const std::string& line) { note(world, p.quiet, line); });
  for (const auto& w : s.warnings) warn(world, w);
  if (world.rank() == 0) {
    std::printf("%zu source(s) from %zu notes; relative error %.4f; %.3f s on %d process%s\n", s.grouping.groups,
                s.grouping.components, s.fit.result.stats.back().rel_error, s.seconds_total, world.size(),
                world.size() > 1 ? "es" : "");
    for (std::size_t h = 0; h < s.grouping.groups; ++h) {
      std::printf("  source %zu: %5.1f %% of the energy, notes", h + 1, 100 * s.energy_share[h]);
      for (std::size_t r = 0; r < s.grouping.components; ++r)
        if (static_cast<std::size_t>(s.grouping.group[r]) == h) std::printf(" %zu", r + 1);
      std::printf("\n");
    }
    for (const auto& sc : s.scores)
      std::printf("  %s -> source %zu: SDR %.2f dB (the mixture itself: %.2f dB; improvement %.2f dB); at the "
                  "recording's rate %.2f dB\n",
                  sc.reference.c_str(), sc.source + 1, sc.sdr, sc.sdr_mixture, sc.sdr - sc.sdr_mixture, sc.sdr_full);
    std::printf("wrote %s\n", cfg.out_dir.c_str());
    std::fflush(stdout);
  }
  return 0;
}

} // namespace unmix::cli
