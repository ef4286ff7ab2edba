// The maths of `unmix audio` against direct references: Fourier resampling of band-limited signals, the
// STFT against a direct DFT and its exact inverse, the log-frequency axis, the shift similarity, the
// grouping of planted harmonic notes, the rebuilding rules and the scores.
#include <catch2/catch.hpp>

#include <cmath>
#include <complex>
#include <numbers>
#include <vector>

#include "unmix/apps/audio.hpp"
#include "unmix/core/error.hpp"
#include "unmix/core/rng.hpp"

using namespace unmix;
using namespace unmix::audio;

namespace {

constexpr double pi = std::numbers::pi;

/// sum_j a_j cos(2 pi c_j t / n + p_j) at t = 0 .. n-1 scaled to `len` samples over the same span: c_j whole cycles.
std::vector<double> tones(std::size_t len, const std::vector<double>& cycles, const std::vector<double>& amp,
                          const std::vector<double>& phase) {
  std::vector<double> x(len, 0.0);
  for (std::size_t t = 0; t < len; ++t)
    for (std::size_t j = 0; j < cycles.size(); ++j)
      x[t] += amp[j] * std::cos(2 * pi * cycles[j] * static_cast<double>(t) / static_cast<double>(len) + phase[j]);
  return x;
}

double max_abs_diff(const std::vector<double>& a, const std::vector<double>& b) {
  REQUIRE(a.size() == b.size());
  double m = 0;
  for (std::size_t i = 0; i < a.size(); ++i) m = std::max(m, std::abs(a[i] - b[i]));
  return m;
}

std::vector<double> noise(std::size_t n, std::uint64_t seed) {
  const CounterRng rng(seed, 0);
  std::vector<double> x(n);
  for (std::size_t i = 0; i < n; ++i) x[i] = rng.normal(i);
  return x;
}

/// A harmonic spectrum on `freqs` linear bins: partial h (1-based) at bin h * f0 with weight w[h-1], each
/// spread over its two nearest bins.
std::vector<double> harmonic(std::size_t freqs, double f0, const std::vector<double>& w) {
  std::vector<double> b(freqs, 0.0);
  for (std::size_t h = 1; h <= w.size(); ++h) {
    const double pos = f0 * static_cast<double>(h);
    const auto k = static_cast<std::size_t>(pos);
    if (k + 1 >= freqs) break;
    const double frac = pos - static_cast<double>(k);
    b[k] += w[h - 1] * (1 - frac);
    b[k + 1] += w[h - 1] * frac;
  }
  return b;
}

} // namespace

TEST_CASE("resample: band-limited signals are reproduced at any length, down and up", "[audio]") {
  const std::vector<double> cycles{0, 3, 17, 40}, amp{0.5, 1.0, -0.7, 0.3}, phase{0, 0.3, 1.1, -2.0};
  for (std::size_t n : {1000ul, 1001ul, 4096ul})
    for (std::size_t m : {125ul, 126ul, 333ul, 1000ul, 2999ul, 8000ul}) {
      const auto y = resample(tones(n, cycles, amp, phase), m);
      CHECK(max_abs_diff(y, tones(m, cycles, amp, phase)) < 1e-11);
    }
  // A cosine exactly at the shorter length's Nyquist frequency keeps its values at the shorter length's
  // sample times (the even-length Nyquist bins).
  const auto up = resample(tones(100, {50}, {1}, {0}), 300);
  for (std::size_t t = 0; t < 300; t += 3)
    CHECK(up[t] == Approx(std::cos(pi * static_cast<double>(t / 3))).margin(1e-12));
  const auto down = resample(tones(300, {50}, {1}, {0.4}), 100);
  CHECK(max_abs_diff(down, tones(100, {50}, {std::cos(0.4)}, {0})) < 1e-12);
  // Content above the new Nyquist frequency is removed, not folded back.
  const auto low = resample(tones(800, {5, 150}, {1, 1}, {0, 0}), 200);
  CHECK(max_abs_diff(low, tones(200, {5}, {1}, {0})) < 1e-12);
  CHECK(resample(std::vector<double>{2.5}, 4) == std::vector<double>{2.5, 2.5, 2.5, 2.5});
  CHECK_THROWS_AS(resample({}, 4), ConfigError);
}

TEST_CASE("stft: each frame is the windowed DFT of its centred samples; istft inverts it", "[audio]") {
  const std::vector<double> x = noise(1003, 7);
  for (auto [w, hop] : std::vector<std::pair<std::size_t, std::size_t>>{{300, 149}, {64, 32}, {63, 20}, {8, 1}}) {
    const Stft s = stft(x, w, hop);
    CHECK(s.freqs == w / 2 + 1);
    CHECK(s.frames == (x.size() - 1) / hop + 2);
    const std::vector<double> win = hann(w);
    for (std::size_t f : {std::size_t{0}, std::size_t{1}, s.frames / 2, s.frames - 1})
      for (std::size_t k : {std::size_t{0}, std::size_t{1}, w / 3, w / 2}) {
        std::complex<double> ref = 0;
        for (std::size_t i = 0; i < w; ++i) {
          const long t = static_cast<long>(f * hop + i) - static_cast<long>(w / 2);
          if (t < 0 || t >= static_cast<long>(x.size())) continue;
          ref += win[i] * x[static_cast<std::size_t>(t)] *
                 std::polar(1.0, -2 * pi * static_cast<double>(k * i) / static_cast<double>(w));
        }
        CHECK(std::abs(s.S[k + s.freqs * f] - ref) < 1e-10);
      }
    CHECK(max_abs_diff(istft(s, s.S), x) < 1e-12);
  }
  const std::vector<double> h4 = hann(4); // periodic: sin^2(pi n / 4)
  CHECK(h4[0] == 0.0);
  CHECK(h4[1] == Approx(0.5));
  CHECK(h4[2] == Approx(1.0));
  CHECK(h4[3] == Approx(0.5));
  CHECK_THROWS_AS(stft(x, 300, 151), ConfigError);
  CHECK_THROWS_AS(stft(x, 300, 0), ConfigError);
  CHECK_THROWS_AS(stft({}, 300, 149), DataError);
  const Stft s = stft(x, 64, 32);
  CHECK_THROWS_AS(istft(s, std::vector<std::complex<double>>(3)), DataError);
}

TEST_CASE("log_frequency reads the spectrum at 2^(j / bins_per_octave) bins", "[audio]") {
  std::vector<double> b(151);
  for (std::size_t k = 0; k < b.size(); ++k) b[k] = 3.0 * static_cast<double>(k) + 1; // linear: exact interpolation
  const auto l = log_frequency(b.data(), 1, b.size(), 12);
  REQUIRE(l.size() == static_cast<std::size_t>(std::floor(std::log2(150.0) * 12)) + 1);
  for (std::size_t j = 0; j < l.size(); ++j) CHECK(l[j] == Approx(3 * std::exp2(static_cast<double>(j) / 12) + 1));
  // A stride reads a row of a column-major matrix.
  std::vector<double> two(2 * b.size());
  for (std::size_t k = 0; k < b.size(); ++k) two[1 + 2 * k] = b[k];
  CHECK(log_frequency(two.data() + 1, 2, b.size(), 12) == l);
}

TEST_CASE("shift_similarity: the best lag's correlation over the norms", "[audio]") {
  const std::vector<double> u{0, 1, 2, 0, 0, 0}, v{0, 0, 0, 1, 2, 0};
  CHECK(shift_similarity(u, v) == Approx(1.0));
  CHECK(shift_similarity(u, u) == Approx(1.0));
  // [1,1,0] against [1,0,1]: at best one product of 1 -> 1 / (sqrt2 sqrt2).
  CHECK(shift_similarity({1, 1, 0}, {1, 0, 1}) == Approx(0.5));
  // Brute force on random vectors of different lengths.
  const auto a = noise(9, 1), c = noise(5, 2);
  double best = -1e300, na = 0, nc = 0;
  for (double x : a) na += x * x;
  for (double x : c) nc += x * x;
  for (long lag = -4; lag <= 8; ++lag) {
    double s = 0;
    for (long i = 0; i < 9; ++i)
      if (i - lag >= 0 && i - lag < 5) s += a[static_cast<std::size_t>(i)] * c[static_cast<std::size_t>(i - lag)];
    best = std::max(best, s);
  }
  CHECK(shift_similarity(a, c) == Approx(best / std::sqrt(na * nc)));
  CHECK(shift_similarity({0, 0}, {1, 2}) == 0.0);
}

TEST_CASE("group_spectra separates two planted timbres played at several pitches", "[audio]") {
  // Instrument X: a strong fundamental and a weak octave (flute-like); instrument Y: a weak fundamental and
  // strong upper partials. Notes at various pitches (bins), interleaved in B's rows.
  const std::size_t F = 151, R = 7;
  const std::vector<double> wx{1, 0.2}, wy{0.3, 1, 0.1, 0.9, 0.1, 0.5};
  const std::vector<std::pair<int, double>> notes{{0, 8.0},  {1, 9.5}, {0, 11.0}, {1, 12.5},
                                                  {0, 14.2}, {1, 8.3}, {0, 10.4}};
  std::vector<double> B(R * F);
  for (std::size_t r = 0; r < R; ++r) {
    const auto b = harmonic(F, notes[r].second, notes[r].first == 0 ? wx : wy);
    for (std::size_t k = 0; k < F; ++k) B[r + R * k] = b[k];
  }
  GroupOptions opt;
  const Grouping g = group_spectra(B.data(), R, F, opt);
  REQUIRE(g.groups == 2);
  for (std::size_t r = 0; r < R; ++r) CHECK(g.group[r] == notes[r].first); // numbered by lowest component
  for (std::size_t r = 0; r < R; ++r) CHECK(g.similarity[r + R * r] == Approx(1.0));
  for (std::size_t a = 0; a < R; ++a)
    for (std::size_t b = 0; b < R; ++b) CHECK(g.similarity[a + R * b] == g.similarity[b + R * a]);
  // By threshold: the last merge (two groups -> one) joins the instruments at their mean cross similarity,
  // and average linkage never merges at a higher level later than earlier, so a threshold just above that
  // mean stops at the two instruments and one just below it merges them.
  double across = 0;
  std::size_t na = 0;
  for (std::size_t a = 0; a < R; ++a)
    for (std::size_t b = a + 1; b < R; ++b)
      if (notes[a].first != notes[b].first) {
        across += g.similarity[a + R * b];
        ++na;
      }
  across /= static_cast<double>(na);
  GroupOptions th;
  th.sources = 0;
  th.threshold = across + 1e-9;
  const Grouping gt = group_spectra(B.data(), R, F, th);
  CHECK(gt.group == g.group);
  th.threshold = across - 1e-9;
  CHECK(group_spectra(B.data(), R, F, th).groups == 1);
  opt.sources = R;
  const Grouping each = group_spectra(B.data(), R, F, opt);
  CHECK(each.groups == R);
  for (std::size_t r = 0; r < R; ++r) CHECK(each.group[r] == static_cast<int>(r));
  opt.sources = R + 1;
  CHECK_THROWS_AS(group_spectra(B.data(), R, F, opt), ConfigError);
  th.threshold = 1.5;
  CHECK_THROWS_AS(group_spectra(B.data(), R, F, th), ConfigError);
}

TEST_CASE("group_spectra merges by average linkage", "[audio]") {
  // Four harmonic notes; the merges follow the similarities the function reports: first the most similar
  // pair, then the pair of groups with the highest mean similarity between their members.
  const std::size_t F = 151, R = 4;
  std::vector<double> B(R * F, 0.0);
  const std::vector<std::vector<double>> w{{1, 0.5, 0.25}, {1, 0.5, 0.3}, {1, 0, 0.6}, {1, 0.1, 0.9, 0.1, 0.5}};
  for (std::size_t r = 0; r < R; ++r) {
    const auto b = harmonic(F, 6.0 + 2.0 * static_cast<double>(r), w[r]);
    for (std::size_t k = 0; k < F; ++k) B[r + R * k] = b[k];
  }
  GroupOptions opt;
  opt.sources = 3;
  const Grouping g3 = group_spectra(B.data(), R, F, opt);
  const auto& S = g3.similarity;
  // The first merge joins the most similar pair.
  std::size_t ba = 0, bb = 1;
  for (std::size_t a = 0; a < R; ++a)
    for (std::size_t b = a + 1; b < R; ++b)
      if (S[a + R * b] > S[ba + R * bb]) ba = a, bb = b;
  CHECK(g3.group[ba] == g3.group[bb]);
  // The second merge: the remaining pair of groups with the highest mean similarity.
  opt.sources = 2;
  const Grouping g2 = group_spectra(B.data(), R, F, opt);
  std::vector<std::size_t> rest;
  for (std::size_t r = 0; r < R; ++r)
    if (r != ba && r != bb) rest.push_back(r);
  const double join_x = 0.5 * (S[ba + R * rest[0]] + S[bb + R * rest[0]]);
  const double join_y = 0.5 * (S[ba + R * rest[1]] + S[bb + R * rest[1]]);
  const double join_xy = S[rest[0] + R * rest[1]];
  if (join_xy >= std::max(join_x, join_y)) {
    CHECK(g2.group[rest[0]] == g2.group[rest[1]]);
  } else {
    const std::size_t with = join_x >= join_y ? rest[0] : rest[1];
    CHECK(g2.group[with] == g2.group[ba]);
  }
}

TEST_CASE("separate: masks add up to the mixture; phase keeps the model's magnitude", "[audio]") {
  const Stft mix = stft(noise(600, 3), 64, 16);
  const std::size_t F = mix.frames, K = mix.freqs, R = 3;
  const auto a = noise(F * R, 4), b = noise(R * K, 5);
  std::vector<double> A(a), B(b);
  for (double& v : A) v = std::abs(v);
  for (double& v : B) v = std::abs(v);
  B[1 + R * 2] = 0; // a frequency where one note is silent
  Grouping g;
  g.components = R;
  g.group = {0, 1, 0};
  g.groups = 2;
  const auto parts = separate(mix, A.data(), B.data(), R, g, Rebuild::mask);
  REQUIRE(parts.size() == 2);
  double worst = 0;
  for (std::size_t i = 0; i < mix.S.size(); ++i)
    worst = std::max(worst, std::abs(parts[0].S[i] + parts[1].S[i] - mix.S[i]));
  CHECK(worst < 1e-13);
  for (std::size_t f = 0; f < F; f += 5)
    for (std::size_t k = 0; k < K; k += 3) {
      const double v0 = A[f] * B[0 + R * k] + A[f + 2 * F] * B[2 + R * k], v1 = A[f + F] * B[1 + R * k];
      CHECK(std::abs(parts[0].S[k + K * f] - mix.S[k + K * f] * (v0 / (v0 + v1))) < 1e-13);
    }
  const auto sig0 = istft(parts[0], parts[0].S), sig1 = istft(parts[1], parts[1].S), x = istft(mix, mix.S);
  std::vector<double> sum(x.size());
  for (std::size_t t = 0; t < x.size(); ++t) sum[t] = sig0[t] + sig1[t];
  CHECK(max_abs_diff(sum, x) < 1e-12);
  const auto ph = separate(mix, A.data(), B.data(), R, g, Rebuild::phase);
  for (std::size_t f = 0; f < F; f += 7)
    for (std::size_t k = 0; k < K; k += 5) {
      const double v0 = A[f] * B[0 + R * k] + A[f + 2 * F] * B[2 + R * k];
      CHECK(std::abs(ph[0].S[k + K * f]) == Approx(v0).margin(1e-12));
      CHECK(std::arg(ph[0].S[k + K * f] * std::conj(mix.S[k + K * f])) == Approx(0).margin(1e-9));
    }
  CHECK(parse_rebuild("mask") == Rebuild::mask);
  CHECK_THROWS_AS(parse_rebuild("wiener"), ConfigError);
}

TEST_CASE("order_groups_by_energy renumbers loudest first and reports shares", "[audio]") {
  const std::size_t F = 4, K = 3, R = 3;
  std::vector<double> A(F * R, 0.0), B(R * K, 1.0);
  for (std::size_t f = 0; f < F; ++f) {
    A[f] = 1;         // note 0: amplitude 1
    A[f + F] = 3;     // note 1: amplitude 3
    A[f + 2 * F] = 1; // note 2: with note 0
  }
  Grouping g;
  g.components = R;
  g.group = {0, 1, 0};
  g.groups = 2;
  const auto share = order_groups_by_energy(g, A.data(), F, B.data(), K);
  CHECK(g.group == std::vector<int>{1, 0, 1});
  // Energies 9 and 4 per cell: shares 9/13 and 4/13.
  CHECK(share[0] == Approx(9.0 / 13));
  CHECK(share[1] == Approx(4.0 / 13));
}

TEST_CASE("sdr and best_assignment", "[audio]") {
  const std::vector<double> ref{1, 2, 3, 4}, est{1, 2, 3, 5};
  CHECK(sdr(ref, est) == Approx(10 * std::log10(30.0)));
  CHECK(std::isinf(sdr(ref, ref)));
  CHECK(sdr({0, 0}, {1, 1}) == -std::numeric_limits<double>::infinity());
  CHECK(std::isnan(sdr(ref, {1, 2, std::nan(""), 4}))); // a broken estimate scores nothing, not +inf
  const std::vector<std::vector<double>> refs{{1, 0, 0, 1}, {0, 1, 1, 0}};
  const std::vector<std::vector<double>> ests{{0.1, 0.9, 1.1, 0}, {0, 0, 0, 0}, {0.9, 0, 0.1, 1}};
  CHECK(best_assignment(refs, ests) == std::vector<std::size_t>{2, 0});
  CHECK_THROWS_AS(best_assignment(refs, {ests[0]}), ConfigError);
}
