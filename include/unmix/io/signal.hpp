#pragma once
// One-dimensional signals from CSV (a header, a time column and value columns) or WAV (libsndfile).
#include <cstddef>
#include <optional>
#include <string>
#include <vector>

namespace unmix::io {

struct Signal {
  std::vector<double> t, y;
  double rate = 0;                // samples per second (WAV; 0 for CSV)
  std::string column;             // the column or channel read, in words
  std::vector<std::string> notes; // what was chosen on the user's behalf (mix-down, default column)
};

/// CSV with a header row. The time column is the one named `t` or `time` (case-insensitive), else
/// the first; the value column is `column` (a header name or a 1-based number), by default the first
/// column that is not the time column. Throws IoError (unreadable) or DataError (bad content).
Signal read_signal_csv(const std::string& path, const std::string& column = "");

/// WAV (any format libsndfile reads), t = sample index / sample rate. Several channels: `channel`
/// (1-based) picks one, otherwise the channels are averaged (noted in Signal::notes).
Signal read_signal_wav(const std::string& path, std::optional<int> channel = std::nullopt);

/// Writes `y` (samples in [-1, 1]) as a mono 16-bit PCM WAV at `rate` samples per second, clipping what lies
/// outside; returns how many samples were clipped. Throws IoError when the file cannot be written.
std::size_t write_wav(const std::string& path, const std::vector<double>& y, int rate);

/// By extension: .wav/.flac/.ogg/.aiff through libsndfile, anything else as CSV.
Signal read_signal(const std::string& path, const std::string& column = "", std::optional<int> channel = std::nullopt);

/// Throws DataError unless the time stamps are uniform within `rel_tol` of the mean step (and strictly
/// increasing); the message names the first offending row.
void require_uniform_time(const std::vector<double>& t, double rel_tol = 1e-3);

} // namespace unmix::io
