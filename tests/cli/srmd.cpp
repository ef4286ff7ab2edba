// `unmix srmd` end to end: a good run (files and their contents) and every kind of bad input (a clear
// error, a non-zero exit and no output left behind).
#include <catch2/catch.hpp>

#include <sndfile.h>

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "../support/cli_checks.hpp"
#include "../support/test_support.hpp"

using unmix::test::run_unmix;
using unmix::test::shared_data;
namespace fs = std::filesystem;

namespace {

fs::path fresh_dir(const std::string& name) { return unmix::test::fresh_cli_dir("srmd", name); }

void write(const fs::path& p, const std::string& text) {
  std::ofstream out(p);
  out << text;
}

std::vector<std::vector<double>> read_numeric_csv(const fs::path& p, std::string& header) {
  std::ifstream in(p);
  std::getline(in, header);
  std::vector<std::vector<double>> rows;
  std::string line;
  while (std::getline(in, line)) {
    std::stringstream ss(line);
    std::string c;
    std::vector<double> r;
    while (std::getline(ss, c, ',')) r.push_back(std::stod(c));
    rows.push_back(r);
  }
  return rows;
}

std::size_t files_in(const fs::path& d) {
  std::size_t n = 0;
  for (const auto& e : fs::directory_iterator(d)) n += e.is_regular_file();
  return n;
}

/// A uniformly sampled two-tone CSV with `m` rows.
std::string two_tones(std::size_t m) {
  std::string s = "t,y\n";
  for (std::size_t i = 0; i < m; ++i) {
    const double t = static_cast<double>(i) / static_cast<double>(m - 1);
    char line[80];
    std::snprintf(line, sizeof line, "%.17g,%.17g\n", t, std::cos(2 * M_PI * 5 * t) + std::sin(2 * M_PI * 20 * t));
    s += line;
  }
  return s;
}

} // namespace

TEST_CASE("srmd separates the two tones of ex0 and writes modes, features and plots", "[srmd]") {
  const fs::path d = fresh_dir("good");
  const std::string in = shared_data("srmd/signals/ex0_minimal.csv");
  const auto r =
      run_unmix(2, {"srmd", in, "--out", (d / "modes.csv").string(), "--eps", "1", "--frq-scale", "1", "--seed", "3"});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(r.err.find("using column 'y_input'") != std::string::npos);
  std::string header;
  const auto modes = read_numeric_csv(d / "modes.csv", header);
  std::string h2;
  const auto truth = read_numeric_csv(in, h2); // t,y_input,y_clean,mode1,mode2
  REQUIRE(header.rfind("t,mode1,mode2", 0) == 0);
  REQUIRE(modes.size() == 200);
  REQUIRE(truth.size() == 200);
  // Time column copied; the two largest modes are the 5 Hz and 20 Hz tones (either order by norm).
  double et = 0, e_a = 0, e_b = 0, n_a = 0, n_b = 0, e_sum = 0, n_y = 0;
  for (std::size_t i = 0; i < 200; ++i) {
    et = std::max(et, std::abs(modes[i][0] - truth[i][0]));
    double s = 0;
    for (std::size_t k = 1; k < modes[i].size(); ++k) s += modes[i][k];
    e_sum += (s - truth[i][1]) * (s - truth[i][1]);
    n_y += truth[i][1] * truth[i][1];
  }
  CHECK(et <= 1e-12);
  CHECK(std::sqrt(e_sum / n_y) <= 0.25); // the modes sum to the signal up to r plus dropped noise points
  double best = 1e9;
  for (int swap = 0; swap < 2; ++swap) {
    e_a = e_b = n_a = n_b = 0;
    for (std::size_t i = 0; i < 200; ++i) {
      const double m1 = modes[i][swap ? 2 : 1], m2 = modes[i][swap ? 1 : 2];
      e_a += (m1 - truth[i][3]) * (m1 - truth[i][3]);
      e_b += (m2 - truth[i][4]) * (m2 - truth[i][4]);
      n_a += truth[i][3] * truth[i][3];
      n_b += truth[i][4] * truth[i][4];
    }
    best = std::min(best, std::max(std::sqrt(e_a / n_a), std::sqrt(e_b / n_b)));
  }
  CHECK(best <= 0.35);

  const auto feats = read_numeric_csv(d / "modes_features.csv", header);
  CHECK(header == "tau,f,weight,cluster");
  REQUIRE(feats.size() > 20);
  for (const auto& f : feats) {
    CHECK(f.size() == 4);
    CHECK(f[0] >= -0.3);
    CHECK(f[0] <= 1.3);
    CHECK(f[1] >= 0);
    CHECK(f[1] <= 100.5);
    CHECK(f[2] != 0);
    CHECK((f[3] == -1 || (f[3] >= 1 && f[3] <= static_cast<double>(modes[0].size() - 1))));
  }
  for (const char* png : {"modes_tf.png", "modes_modes.png"}) {
    std::ifstream p(d / png, std::ios::binary);
    char magic[4] = {};
    p.read(magic, 4);
    CHECK(std::string(magic + 1, 3) == "PNG");
  }
  CHECK(files_in(d) == 4); // no temporary files left

  // The same seed gives byte-identical modes at 1 process.
  const auto r1 = run_unmix(0, {"srmd", in, "--out", (d / "one.csv").string(), "--eps", "1", "--frq-scale", "1",
                                "--seed", "3", "--plots", "none", "-q"});
  REQUIRE(r1.exit_code == 0);
  std::ifstream a(d / "modes.csv"), b(d / "one.csv");
  std::stringstream sa, sb;
  sa << a.rdbuf();
  sb << b.rdbuf();
  CHECK(sa.str() == sb.str());
}

TEST_CASE("srmd reads WAV files: several channels are mixed down (and said so) or one is picked", "[srmd]") {
  const fs::path d = fresh_dir("wav");
  const fs::path wav = d / "stereo.wav";
  std::vector<double> buf(2 * 400); // interleaved: channel 1 a 5 Hz tone, channel 2 a 40 Hz sine
  {
    SF_INFO info{};
    info.samplerate = 400;
    info.channels = 2;
    info.format = SF_FORMAT_WAV | SF_FORMAT_DOUBLE;
    SNDFILE* f = sf_open(wav.string().c_str(), SFM_WRITE, &info);
    REQUIRE(f != nullptr);
    for (int i = 0; i < 400; ++i) {
      const double t = i / 400.0;
      buf[2 * static_cast<std::size_t>(i)] = std::cos(2 * M_PI * 5 * t);
      buf[2 * static_cast<std::size_t>(i) + 1] = std::sin(2 * M_PI * 40 * t);
    }
    sf_writef_double(f, buf.data(), 400);
    sf_close(f);
  }
  // The same samples written as CSV (t = i / 400, 17 significant digits: the same doubles): the WAV
  // runs must give exactly the modes of the CSV runs, so the right samples were read.
  auto csv_of = [&](const fs::path& p, auto value) {
    std::ofstream out(p);
    out << "t,y\n";
    char line[96];
    for (int i = 0; i < 400; ++i) {
      std::snprintf(line, sizeof line, "%.17g,%.17g\n", i / 400.0, value(i));
      out << line;
    }
  };
  csv_of(d / "ch1_samples.csv", [&](int i) { return buf[2 * static_cast<std::size_t>(i)]; });
  csv_of(d / "mix_samples.csv",
         [&](int i) { return (buf[2 * static_cast<std::size_t>(i)] + buf[2 * static_cast<std::size_t>(i) + 1]) / 2; });
  auto srmd_run = [&](const fs::path& in, const std::string& out, std::vector<std::string> extra) {
    std::vector<std::string> args{"srmd", in.string(),   "--out", (d / out).string(), "--eps",
                                  "1",    "--frq-scale", "1",     "--plots",          "none"};
    args.insert(args.end(), extra.begin(), extra.end());
    return run_unmix(0, args);
  };
  const auto mix = srmd_run(wav, "mix.csv", {});
  INFO(mix.err);
  REQUIRE(mix.exit_code == 0);
  CHECK(mix.err.find("mix-down") != std::string::npos);
  const auto one = srmd_run(wav, "ch1.csv", {"--channel", "1"});
  REQUIRE(one.exit_code == 0);
  REQUIRE(srmd_run(d / "ch1_samples.csv", "ch1_from_csv.csv", {}).exit_code == 0);
  REQUIRE(srmd_run(d / "mix_samples.csv", "mix_from_csv.csv", {}).exit_code == 0);
  std::string header, header_csv;
  const auto m1 = read_numeric_csv(d / "ch1.csv", header);
  REQUIRE(m1.size() == 400);
  CHECK(m1[1][0] == Approx(1.0 / 400));
  CHECK(m1 == read_numeric_csv(d / "ch1_from_csv.csv", header_csv));
  CHECK(read_numeric_csv(d / "mix.csv", header) == read_numeric_csv(d / "mix_from_csv.csv", header_csv));
  // Channel 1 is a single 5 Hz tone: the largest mode follows it (correlation near 1) and has none of
  // channel 2's 40 Hz sine (correlation near 0).
  double tt = 0, mm = 0, tm = 0, ss = 0, sm = 0;
  for (std::size_t i = 0; i < 400; ++i) {
    const double tone = buf[2 * i], sine = buf[2 * i + 1], mode = m1[i][1];
    tt += tone * tone;
    ss += sine * sine;
    mm += mode * mode;
    tm += tone * mode;
    sm += sine * mode;
  }
  CHECK(tm / std::sqrt(tt * mm) >= 0.95);
  CHECK(std::abs(sm) / std::sqrt(ss * mm) <= 0.05);
  const auto bad = run_unmix(0, {"srmd", wav.string(), "--out", (d / "x.csv").string(), "--channel", "3"});
  CHECK(bad.exit_code != 0);
  CHECK(bad.err.find("error: --channel 3 is out of range") != std::string::npos);
}

TEST_CASE("srmd rejects bad input with a clear message and leaves no output", "[srmd]") {
  const fs::path d = fresh_dir("bad");
  write(d / "empty.csv", "");
  write(d / "header_only.csv", "t,y\n");
  write(d / "one.csv", "t,y\n0,1\n");
  write(d / "nan.csv", "t,y\n0,1\n0.1,nan\n0.2,0\n0.3,1\n");
  write(d / "nonuniform.csv", "t,y\n0,1\n0.1,0\n0.25,1\n0.3,0\n0.4,1\n");
  write(d / "good.csv", two_tones(200));
  write(d / "zero.csv", "t,y\n0,0\n0.1,0\n0.2,0\n");
  const fs::path out_dir = d / "out";
  fs::create_directories(out_dir);
  const std::string out = (out_dir / "m.csv").string();
  const std::string good = (d / "good.csv").string();
  const std::vector<unmix::test::Refusal> cases = {
      {{(d / "missing.csv").string()}, "cannot open"},
      {{(d / "empty.csv").string()}, "is empty"},
      {{(d / "header_only.csv").string()}, "holds no samples"},
      {{(d / "one.csv").string()}, "single sample"},
      {{(d / "nan.csv").string()}, "NaN"},
      {{(d / "nonuniform.csv").string()}, "not uniform"},
      {{(d / "zero.csv").string()}, "zero everywhere"},
      {{good, "-r", "1"}, "strictly between 0 and 1"},
      {{good, "-r", "1.5"}, "strictly between 0 and 1"},
      {{good, "-r", "0"}, "strictly between 0 and 1"},
      {{good, "-r", "-0.1"}, "strictly between 0 and 1"},
      {{good, "--eps", "0"}, "--eps must be positive"},
      {{good, "--eps", "-1"}, "--eps must be positive"},
      {{good, "--min-samples", "0"}, "--min-samples must be at least 1"},
      {{good, "--column", "nope"}, "no column 'nope'"},
      // More neighbours required than there are features: every kept feature is noise.
      {{good, "--min-samples", "100000"}, "labelled noise by DBSCAN"},
  };
  unmix::test::check_all_refused("srmd", cases, out, {1, 2, 3, 4}, [&] { CHECK(files_in(out_dir) == 0); });
}
