// `unmix audio` end to end: the talk's guitar + flute recording separated and scored against its stems
// (files and their contents), and bad input refused with a clear message, a non-zero exit and no output.
#include <catch2/catch.hpp>

#include <sndfile.h>

#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "../support/cli_checks.hpp"
#include "../support/test_support.hpp"
#include "unmix/io/signal.hpp"

using unmix::test::lines_of;
using unmix::test::run_unmix;
using unmix::test::shared_data;
namespace fs = std::filesystem;

namespace {

fs::path fresh_dir(const std::string& name) { return unmix::test::fresh_cli_dir("audio", name); }

std::vector<std::string> cells(const std::string& line) {
  std::vector<std::string> out;
  std::stringstream ss(line);
  std::string c;
  while (std::getline(ss, c, ',')) out.push_back(c);
  return out;
}

void write_wav(const fs::path& p, const std::vector<double>& y, int rate, int channels = 1) {
  SF_INFO info{};
  info.samplerate = rate;
  info.channels = channels;
  info.format = SF_FORMAT_WAV | SF_FORMAT_PCM_16;
  SNDFILE* f = sf_open(p.string().c_str(), SFM_WRITE, &info);
  REQUIRE(f != nullptr);
  if (!y.empty()) sf_writef_double(f, y.data(), static_cast<sf_count_t>(y.size() / static_cast<std::size_t>(channels)));
  sf_close(f);
}

} // namespace

TEST_CASE("audio separates guitar and flute and writes the sources, tables, scores and plots", "[audio]") {
  const fs::path d = fresh_dir("good");
  const fs::path out = d / "sep";
  const auto r =
      run_unmix(2, {"audio", shared_data("audio/flute_and_guitar.wav"), "--out", out.string(), "--reference",
                    shared_data("audio/only_guitar.wav"), "--reference", shared_data("audio/only_flute.wav")});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(r.out.find("2 source(s) from 10 notes") != std::string::npos);
  CHECK(r.err.find("working at 5512.") != std::string::npos);
  // Both sources: the recording's length and rate, and between them the mixture's band below 2.76 kHz.
  const unmix::io::Signal mix = unmix::io::read_signal_wav(shared_data("audio/flute_and_guitar.wav"));
  std::vector<double> sum(mix.y.size(), 0.0);
  for (int h = 1; h <= 2; ++h) {
    const unmix::io::Signal s = unmix::io::read_signal_wav((out / ("source_" + std::to_string(h) + ".wav")).string());
    CHECK(s.rate == 44100);
    REQUIRE(s.y.size() == mix.y.size());
    for (std::size_t t = 0; t < s.y.size(); ++t) sum[t] += s.y[t];
  }
  double e = 0, n = 0;
  for (std::size_t t = 0; t < sum.size(); ++t) {
    e += (sum[t] - mix.y[t]) * (sum[t] - mix.y[t]);
    n += mix.y[t] * mix.y[t];
  }
  CHECK(std::sqrt(e / n) < 0.1); // what the band limit and 16-bit rounding leave out
  const auto src = lines_of(out / "sources.csv");
  REQUIRE(src.size() == 3);
  CHECK(src[0] == "source,notes,energy_share");
  CHECK(std::stod(cells(src[1])[2]) >= std::stod(cells(src[2])[2]));
  CHECK(std::stod(cells(src[1])[2]) + std::stod(cells(src[2])[2]) == Approx(1.0).margin(1e-5));
  const auto sc = lines_of(out / "scores.csv");
  REQUIRE(sc.size() == 3);
  CHECK(sc[0] == "reference,source,sdr_db,sdr_mixture_db,sdr_improvement_db,sdr_full_rate_db");
  for (std::size_t i = 1; i < 3; ++i) {
    INFO(sc[i]);
    CHECK(std::stod(cells(sc[i])[4]) > 6.0); // seed 1: 10.8 and 11.8 dB measured
  }
  CHECK(cells(sc[1])[1] != cells(sc[2])[1]);
  CHECK(unmix::test::read_attribute((out / "results.h5").string(), "sources") == "2.000000");
  std::vector<hsize_t> dims;
  unmix::test::read_dataset((out / "results.h5").string(), "B", &dims);
  CHECK(dims == std::vector<hsize_t>{10, 151});
  unmix::test::read_dataset((out / "results.h5").string(), "magnitude", &dims);
  CHECK(dims == std::vector<hsize_t>{70, 151});
  if (r.err.find("gnuplot not found") == std::string::npos) {
    CHECK(r.err.find("not drawn") == std::string::npos);
    CHECK(fs::file_size(out / "spectrograms.png") > 1000);
    CHECK(fs::file_size(out / "notes.png") > 1000);
  }
  // Without --overwrite an existing folder is kept; with it, replaced.
  const auto again = run_unmix(1, {"audio", shared_data("audio/flute_and_guitar.wav"), "--out", out.string()});
  CHECK(again.exit_code != 0);
  CHECK(again.err.find("--overwrite") != std::string::npos);
  CHECK(fs::exists(out / "scores.csv"));
  const auto over = run_unmix(1, {"audio", shared_data("audio/flute_and_guitar.wav"), "--out", out.string(),
                                  "--overwrite", "--plots", "none", "--sources", "3"});
  INFO(over.err);
  REQUIRE(over.exit_code == 0);
  CHECK(!fs::exists(out / "scores.csv"));
  CHECK(fs::exists(out / "source_3.wav"));
  // A reference of another length is scored over the mixture's length, with a warning, not stretched: the
  // guitar stem cut to its first half scores the first half like the whole stem and the rest as silence.
  {
    unmix::io::Signal g = unmix::io::read_signal_wav(shared_data("audio/only_guitar.wav"));
    g.y.resize(g.y.size() / 2);
    unmix::io::write_wav((d / "half_guitar.wav").string(), g.y, 44100);
    const auto h = run_unmix(1, {"audio", shared_data("audio/flute_and_guitar.wav"), "--out", (d / "half").string(),
                                 "--plots", "none", "--reference", (d / "half_guitar.wav").string()});
    INFO(h.err);
    REQUIRE(h.exit_code == 0);
    CHECK(h.err.find("scored over the mixture's length") != std::string::npos);
    const auto hs = lines_of(d / "half" / "scores.csv");
    REQUIRE(hs.size() == 2);
    CHECK(std::stod(cells(hs[1])[3]) < std::stod(cells(sc[1])[3])); // the mixture scores worse against half a stem
  }
  const auto help = run_unmix(0, {"audio", "--help"});
  CHECK(help.exit_code == 0);
  CHECK(help.out.find("--sources") != std::string::npos);
  CHECK(help.out.find("--reference") != std::string::npos);
}

TEST_CASE("audio rejects bad input with a clear message and leaves no output", "[audio]") {
  const fs::path d = fresh_dir("bad");
  { std::ofstream(d / "text.wav") << "not audio\n"; }
  std::vector<double> tone(40000);
  for (std::size_t t = 0; t < tone.size(); ++t) tone[t] = 0.5 * std::sin(0.05 * static_cast<double>(t));
  write_wav(d / "short.wav", std::vector<double>(1000, 0.1), 8000); // 125 samples after downsampling by 8
  write_wav(d / "silent.wav", std::vector<double>(40000, 0.0), 8000);
  write_wav(d / "one.wav", {0.5}, 8000);
  write_wav(d / "tone.wav", tone, 8000);
  write_wav(d / "tone16k.wav", tone, 16000);
  const std::string good = (d / "tone.wav").string();
  const std::vector<unmix::test::Refusal> cases = {
      {{(d / "missing.wav").string()}, "no such file"},
      {{(d / "text.wav").string()}, "cannot read"},
      {{(d / "one.wav").string()}, "1 sample(s)"},
      {{(d / "silent.wav").string()}, "silent"},
      {{(d / "short.wav").string()}, "fewer than one 300-sample window"},
      {{good, "--hop", "200"}, "--hop must be between 1 and half the window"},
      {{good, "--hop", "0"}, "--hop must be at least 1"},
      {{good, "--downsample", "0"}, "--downsample must be at least 1"},
      {{good, "--rank", "0"}, "--rank must be at least 1"},
      {{good, "--sources", "11"}, "is more than the 10 notes"},
      {{good, "--sources", "0", "--threshold", "0"}, "--threshold must be in (0, 1]"},
      {{good, "--rebuild", "wiener"}, "use mask"},
      {{good, "--bins-per-octave", "5000"}, "--bins-per-octave must be at most 1200"},
      {{good, "--sources", "9", "--rank", "10", "--reference", good}, "limited to 8 separated sources"},
      {{good, "--plots", "gif"}, "use png, svg or none"},
      {{good, "--channel", "2"}, "has 1 channel(s)"},
      {{good, "--constraint", "A=simplex_nope"}, "--constraint A=simplex_nope"},
      {{good, "--reference", (d / "tone16k.wav").string()}, "sampled at 16000 Hz"},
      {{good, "--downsample", "1", "--rank", "300"}, "the rank must be between 1 and"},
      {{good, "--reference", good, "--reference", good, "--reference", good}, "3 references but only 2"},
  };
  unmix::test::check_all_refused("audio", cases, (d / "out").string(), {1, 3}, [&] {
    CHECK(!fs::exists(d / "out"));
    std::size_t leftovers = 0;
    for (const auto& e : fs::directory_iterator(d)) leftovers += e.path().filename().string().rfind("out.", 0) == 0;
    CHECK(leftovers == 0);
  });
}
