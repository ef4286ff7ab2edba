#pragma once
// `unmix audio` as one library call: one recording -> (downsampled) STFT magnitude -> nonnegative Tucker-1
// of frames x frequencies -> notes grouped into instruments -> one signal per instrument, written to a
// folder that appears complete or not at all. Rank 0 reads the recording and computes the transform; the
// magnitude is broadcast and factorized over all processes; rank 0 rebuilds and writes the sources.
#include <cstddef>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "unmix/apps/audio.hpp"
#include "unmix/apps/replicated.hpp"
#include "unmix/core/mpi.hpp"

namespace unmix::audio {

struct RunConfig {
  std::string input;          ///< WAV (or anything libsndfile reads)
  std::optional<int> channel; ///< 1-based; unset: the channels' average
  std::size_t downsample = 8; ///< work at rate / downsample (Fourier resampling); 1 keeps the rate
  std::size_t window = 300, hop = 149;
  std::size_t rank = 10; ///< notes (components)
  apps::FitSettings factor;
  GroupOptions grouping;
  Rebuild rebuild = Rebuild::mask;
  std::vector<std::string> references; ///< true sources, for scoring (optional)
  std::string out_dir;
  bool overwrite = false;
  std::string plot_format = "png"; ///< png, svg or none
  std::map<std::string, std::string> options_text;
};

/// The defaults of the method (rank 10, stop below 8.5 % relative error or after 2000 iterations).
RunConfig default_config();

struct Score {
  std::string reference;
  std::size_t source = 0; ///< the separated source matched to it (0-based)
  double sdr = 0;         ///< dB, at the working rate (the band the method sees)
  double sdr_mixture = 0; ///< the mixture itself as the estimate: the improvement is sdr - sdr_mixture
  double sdr_full = 0;    ///< dB, at the recording's rate
};

struct RunSummary {
  double rate = 0, work_rate = 0;
  std::size_t samples = 0, work_samples = 0, frames = 0, freqs = 0;
  apps::Fit fit;
  Grouping grouping;
  std::vector<double> energy_share;              ///< per source (group), decreasing
  std::vector<std::vector<double>> sources_work; ///< per source, at the working rate (rank 0)
  std::vector<std::vector<double>> sources;      ///< per source, at the recording's rate (rank 0)
  std::vector<Score> scores;                     ///< per reference, when given (rank 0)
  std::vector<std::string> warnings;
  double seconds_total = 0, seconds_factorize = 0;
};

/// Writes to `out_dir`: source_1.wav ... (decreasing energy, at the recording's rate), results.h5 (A, B, the
/// magnitude, similarity, groups, stats, options), sources.csv (per source: its notes and energy share),
/// scores.csv (with references), spectrograms.<fmt> and notes.<fmt> (with plots). Collective.
RunSummary run(const RunConfig& cfg, const Comm& comm, const std::function<void(const std::string&)>& note = {});

} // namespace unmix::audio
