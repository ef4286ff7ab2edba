#include "unmix/io/signal.hpp"

#include <sndfile.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>

#include "unmix/core/error.hpp"

namespace unmix::io {

namespace {

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string trim(const std::string& s) {
  const auto a = s.find_first_not_of(" \t\r\"");
  if (a == std::string::npos) return "";
  const auto b = s.find_last_not_of(" \t\r\"");
  return s.substr(a, b - a + 1);
}

std::vector<std::string> split(const std::string& line) {
  std::vector<std::string> out;
  std::stringstream ss(line);
  std::string cell;
  while (std::getline(ss, cell, ',')) out.push_back(trim(cell));
  if (!line.empty() && line.back() == ',') out.push_back("");
  return out;
}

bool parse_number(const std::string& s, double& v) {
  if (s.empty()) return false;
  const std::string l = lower(s);
  if (l == "nan" || l == "-nan" || l == "+nan") {
    v = std::nan("");
    return true;
  }
  char* end = nullptr;
  v = std::strtod(s.c_str(), &end);
  return end && *end == '\0';
}

} // namespace

Signal read_signal_csv(const std::string& path, const std::string& column) {
  std::ifstream in(path);
  if (!in) throw IoError("cannot open '" + path + "' for reading (does the file exist?)");
  std::string line;
  if (!std::getline(in, line)) throw DataError("'" + path + "' is empty: expected a header and at least two rows");
  const std::vector<std::string> header = split(line);
  if (header.size() < 2)
    throw DataError("'" + path + "': the header names " + std::to_string(header.size()) +
                    " column(s); expected a time column and a signal column");
  std::size_t tcol = 0;
  for (std::size_t j = 0; j < header.size(); ++j)
    if (lower(header[j]) == "t" || lower(header[j]) == "time") {
      tcol = j;
      break;
    }
  Signal s;
  std::size_t ycol = header.size();
  if (column.empty()) {
    ycol = tcol == 0 ? 1 : 0;
    s.notes.push_back("using column '" + header[ycol] + "' (choose another with --column)");
  } else {
    for (std::size_t j = 0; j < header.size(); ++j)
      if (header[j] == column) ycol = j;
    if (ycol == header.size()) {
      char* end = nullptr;
      const long k = std::strtol(column.c_str(), &end, 10);
      if (end && *end == '\0' && k >= 1 && static_cast<std::size_t>(k) <= header.size())
        ycol = static_cast<std::size_t>(k - 1);
    }
    if (ycol == header.size()) {
      std::string names;
      for (const auto& h : header) names += (names.empty() ? "" : ", ") + h;
      throw ConfigError("'" + path + "' has no column '" + column + "' (columns: " + names + ")");
    }
    if (ycol == tcol) throw ConfigError("column '" + column + "' is the time column; choose a signal column");
  }
  s.column = header[ycol];
  std::size_t row = 1;
  while (std::getline(in, line)) {
    ++row;
    if (trim(line).empty()) continue;
    const auto cells = split(line);
    if (cells.size() != header.size())
      throw DataError("'" + path + "' row " + std::to_string(row) + " has " + std::to_string(cells.size()) +
                      " fields, the header " + std::to_string(header.size()));
    double tv = 0, yv = 0;
    if (!parse_number(cells[tcol], tv))
      throw DataError("'" + path + "' row " + std::to_string(row) + ": time '" + cells[tcol] + "' is not a number");
    if (!parse_number(cells[ycol], yv))
      throw DataError("'" + path + "' row " + std::to_string(row) + ": value '" + cells[ycol] + "' is not a number");
    if (std::isnan(yv) || std::isinf(yv))
      throw DataError("'" + path + "' row " + std::to_string(row) + ": the sample is " +
                      (std::isnan(yv) ? "NaN" : "infinite") + "; remove or interpolate it");
    if (!std::isfinite(tv)) throw DataError("'" + path + "' row " + std::to_string(row) + ": the time is not finite");
    s.t.push_back(tv);
    s.y.push_back(yv);
  }
  return s;
}

Signal read_signal_wav(const std::string& path, std::optional<int> channel) {
  if (!std::filesystem::exists(path)) throw IoError("cannot open '" + path + "': no such file");
  SF_INFO info{};
  SNDFILE* raw = sf_open(path.c_str(), SFM_READ, &info);
  if (!raw) throw IoError("cannot read '" + path + "' as audio: " + sf_strerror(nullptr));
  std::unique_ptr<SNDFILE, int (*)(SNDFILE*)> f(raw, sf_close);
  const int C = info.channels;
  if (channel && (*channel < 1 || *channel > C))
    throw ConfigError("--channel " + std::to_string(*channel) + " is out of range: '" + path + "' has " +
                      std::to_string(C) + " channel(s)");
  std::vector<double> buf(static_cast<std::size_t>(info.frames) * static_cast<std::size_t>(C));
  const sf_count_t got = sf_readf_double(f.get(), buf.data(), info.frames);
  if (got < 0) throw IoError("reading '" + path + "' failed: " + sf_strerror(f.get()));
  Signal s;
  s.rate = info.samplerate;
  const auto n = static_cast<std::size_t>(got);
  s.t.resize(n);
  s.y.resize(n);
  for (std::size_t i = 0; i < n; ++i) {
    s.t[i] = static_cast<double>(i) / info.samplerate;
    if (channel) {
      s.y[i] = buf[i * static_cast<std::size_t>(C) + static_cast<std::size_t>(*channel - 1)];
    } else {
      double sum = 0;
      for (int c = 0; c < C; ++c) sum += buf[i * static_cast<std::size_t>(C) + static_cast<std::size_t>(c)];
      s.y[i] = sum / C;
    }
    if (!std::isfinite(s.y[i]))
      throw DataError("'" + path + "' sample " + std::to_string(i + 1) + " is not a finite number");
  }
  if (channel) {
    s.column = "channel " + std::to_string(*channel);
  } else if (C > 1) {
    s.column = "mix-down of " + std::to_string(C) + " channels";
    s.notes.push_back("'" + path + "' has " + std::to_string(C) +
                      " channels: using their average (mix-down); pick one with --channel K");
  } else {
    s.column = "channel 1";
  }
  return s;
}

std::size_t write_wav(const std::string& path, const std::vector<double>& y, int rate) {
  SF_INFO info{};
  info.samplerate = rate;
  info.channels = 1;
  info.format = SF_FORMAT_WAV | SF_FORMAT_PCM_16;
  SNDFILE* f = sf_open(path.c_str(), SFM_WRITE, &info);
  if (!f) throw IoError("cannot write '" + path + "': " + sf_strerror(nullptr));
  std::unique_ptr<SNDFILE, int (*)(SNDFILE*)> guard(f, sf_close);
  std::size_t clipped = 0;
  std::vector<double> out(y);
  for (double& v : out)
    if (!(std::abs(v) <= 1.0)) {
      v = std::isnan(v) ? 0.0 : std::copysign(1.0, v);
      ++clipped;
    }
  // Without this, libsndfile scales doubles by 32767 and lets +1.0 wrap around.
  sf_command(f, SFC_SET_CLIPPING, nullptr, SF_TRUE);
  const sf_count_t n = static_cast<sf_count_t>(out.size());
  if (sf_write_double(f, out.data(), n) != n) throw IoError("cannot write '" + path + "': " + sf_strerror(f));
  if (sf_close(guard.release()) != 0) throw IoError("cannot finish writing '" + path + "' (disk full?)");
  return clipped;
}

Signal read_signal(const std::string& path, const std::string& column, std::optional<int> channel) {
  const std::string ext = lower(std::filesystem::path(path).extension().string());
  if (ext == ".wav" || ext == ".flac" || ext == ".ogg" || ext == ".aiff" || ext == ".aif")
    return read_signal_wav(path, channel);
  return read_signal_csv(path, column);
}

void require_uniform_time(const std::vector<double>& t, double rel_tol) {
  if (t.size() < 2) return;
  const double step = (t.back() - t.front()) / static_cast<double>(t.size() - 1);
  for (std::size_t i = 1; i < t.size(); ++i) {
    const double d = t[i] - t[i - 1];
    if (!(d > 0))
      throw DataError("time stamps must increase strictly: sample " + std::to_string(i + 1) + " repeats or goes back");
    if (std::abs(d - step) > rel_tol * step)
      throw DataError("time stamps are not uniform (step " + std::to_string(d) + " before sample " +
                      std::to_string(i + 1) + ", mean step " + std::to_string(step) +
                      "); srmd needs uniformly sampled signals: resample the signal first");
  }
}

} // namespace unmix::io
