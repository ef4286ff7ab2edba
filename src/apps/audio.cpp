#include "unmix/apps/audio.hpp"

#include <fftw3.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <numbers>
#include <numeric>
#include <type_traits>

#include "unmix/core/error.hpp"

namespace unmix::audio {

namespace {

// One real-to-complex or complex-to-real transform of a fixed length, planned once (FFTW_ESTIMATE: no
// timing runs, the same plan every time), with its own aligned buffers.
class RealFft {
public:
  explicit RealFft(std::size_t n)
      : bins_(n / 2 + 1), real_(static_cast<double*>(fftw_malloc(sizeof(double) * n)), fftw_free),
        spec_(static_cast<fftw_complex*>(fftw_malloc(sizeof(fftw_complex) * bins_)), fftw_free),
        forward_(nullptr, fftw_destroy_plan), backward_(nullptr, fftw_destroy_plan) {
    if (n > static_cast<std::size_t>(std::numeric_limits<int>::max()))
      throw DataError("a transform of " + std::to_string(n) + " samples is longer than FFTW's plans take (2^31 - 1)");
    if (!real_ || !spec_) throw std::bad_alloc();
    const int len = static_cast<int>(n);
    forward_.reset(fftw_plan_dft_r2c_1d(len, real_.get(), spec_.get(), FFTW_ESTIMATE));
    backward_.reset(fftw_plan_dft_c2r_1d(len, spec_.get(), real_.get(), FFTW_ESTIMATE | FFTW_DESTROY_INPUT));
    if (!forward_ || !backward_) throw Error("FFTW could not plan a transform of length " + std::to_string(n));
  }

  double* real() { return real_.get(); }
  std::complex<double>* spectrum() { return reinterpret_cast<std::complex<double>*>(spec_.get()); }
  std::size_t bins() const { return bins_; }
  void forward() { fftw_execute(forward_.get()); }
  void backward() { fftw_execute(backward_.get()); } // unnormalized: n times the inverse

private:
  template <class T> using Owned = std::unique_ptr<T, void (*)(void*)>;
  std::size_t bins_;
  Owned<double> real_;
  Owned<fftw_complex> spec_;
  std::unique_ptr<std::remove_pointer_t<fftw_plan>, void (*)(fftw_plan)> forward_, backward_;
};

} // namespace

std::vector<double> resample(const std::vector<double>& x, std::size_t n_out) {
  const std::size_t n = x.size();
  if (n == 0 || n_out == 0) throw ConfigError("resampling needs at least one sample in and out");
  if (n == n_out) return x;
  RealFft in(n), out(n_out);
  std::copy(x.begin(), x.end(), in.real());
  in.forward();
  std::complex<double>* X = in.spectrum();
  std::complex<double>* Y = out.spectrum();
  std::fill(Y, Y + out.bins(), std::complex<double>(0));
  // Bins strictly below both Nyquist frequencies carry over; a Nyquist bin of the shorter length is a cosine
  // that the longer length splits between its +/- frequency pair (half each); going down, the pair folds
  // onto the shorter length's Nyquist bin (twice the real part).
  const std::size_t shorter = std::min(n, n_out);
  const std::size_t common = (shorter + 1) / 2; // bins 0 .. common-1 are below the shorter Nyquist
  std::copy(X, X + common, Y);
  if (shorter % 2 == 0) {
    const std::size_t k = shorter / 2;
    Y[k] = n_out < n ? std::complex<double>(2 * X[k].real(), 0) : 0.5 * X[k];
  }
  out.backward();
  std::vector<double> y(n_out);
  const double scale = 1.0 / static_cast<double>(n);
  for (std::size_t i = 0; i < n_out; ++i) y[i] = out.real()[i] * scale;
  return y;
}

std::vector<double> hann(std::size_t length) {
  std::vector<double> w(length);
  for (std::size_t i = 0; i < length; ++i) {
    const double s = std::sin(std::numbers::pi * static_cast<double>(i) / static_cast<double>(length));
    w[i] = s * s;
  }
  return w;
}

Stft stft(const std::vector<double>& x, std::size_t window, std::size_t hop) {
  if (window < 2) throw ConfigError("the STFT window must be at least 2 samples (got " + std::to_string(window) + ")");
  if (hop < 1 || hop > window / 2)
    throw ConfigError("the STFT hop must be between 1 and half the window (" + std::to_string(window / 2) + "); got " +
                      std::to_string(hop));
  if (x.empty()) throw DataError("the signal has no samples");
  Stft s;
  s.window = window;
  s.hop = hop;
  s.length = x.size();
  s.freqs = window / 2 + 1;
  s.frames = (s.length - 1) / hop + 2;
  s.S.resize(s.freqs * s.frames);
  const std::vector<double> w = hann(window);
  RealFft fft(window);
  const std::ptrdiff_t half = static_cast<std::ptrdiff_t>(window / 2);
  const std::ptrdiff_t len = static_cast<std::ptrdiff_t>(s.length);
  for (std::size_t f = 0; f < s.frames; ++f) {
    const std::ptrdiff_t start = static_cast<std::ptrdiff_t>(f * hop) - half;
    for (std::size_t i = 0; i < window; ++i) {
      const std::ptrdiff_t t = start + static_cast<std::ptrdiff_t>(i);
      fft.real()[i] = t >= 0 && t < len ? w[i] * x[static_cast<std::size_t>(t)] : 0.0;
    }
    fft.forward();
    std::copy(fft.spectrum(), fft.spectrum() + s.freqs, s.S.begin() + static_cast<std::ptrdiff_t>(s.freqs * f));
  }
  return s;
}

std::vector<double> istft(const Stft& layout, const std::vector<std::complex<double>>& S) {
  if (S.size() != layout.freqs * layout.frames)
    throw DataError("inverse STFT: " + std::to_string(S.size()) + " values for a " + std::to_string(layout.freqs) +
                    " x " + std::to_string(layout.frames) + " transform");
  const std::size_t window = layout.window;
  const std::vector<double> w = hann(window);
  std::vector<double> y(layout.length, 0.0), norm(layout.length, 0.0);
  RealFft fft(window);
  const std::ptrdiff_t half = static_cast<std::ptrdiff_t>(window / 2);
  const std::ptrdiff_t len = static_cast<std::ptrdiff_t>(layout.length);
  const double inv_n = 1.0 / static_cast<double>(window);
  for (std::size_t f = 0; f < layout.frames; ++f) {
    std::copy(S.begin() + static_cast<std::ptrdiff_t>(layout.freqs * f),
              S.begin() + static_cast<std::ptrdiff_t>(layout.freqs * (f + 1)), fft.spectrum());
    // A real signal's transform has real DC and Nyquist bins; an edited one may not, and c2r ignores them.
    fft.backward();
    const std::ptrdiff_t start = static_cast<std::ptrdiff_t>(f * layout.hop) - half;
    for (std::size_t i = 0; i < window; ++i) {
      const std::ptrdiff_t t = start + static_cast<std::ptrdiff_t>(i);
      if (t < 0 || t >= len) continue;
      y[static_cast<std::size_t>(t)] += w[i] * fft.real()[i] * inv_n;
      norm[static_cast<std::size_t>(t)] += w[i] * w[i];
    }
  }
  for (std::size_t t = 0; t < layout.length; ++t) y[t] /= norm[t];
  return y;
}

std::vector<double> log_frequency(const double* b, std::size_t stride, std::size_t freqs, std::size_t bins_per_octave) {
  if (freqs < 3 || bins_per_octave < 1) return {};
  const double top = static_cast<double>(freqs - 1); // the Nyquist bin
  const std::size_t n = static_cast<std::size_t>(std::floor(std::log2(top) * static_cast<double>(bins_per_octave))) + 1;
  std::vector<double> out(n);
  for (std::size_t j = 0; j < n; ++j) {
    const double pos = std::min(top, std::exp2(static_cast<double>(j) / static_cast<double>(bins_per_octave)));
    const std::size_t k = std::min(static_cast<std::size_t>(pos), freqs - 2);
    const double frac = pos - static_cast<double>(k);
    out[j] = (1 - frac) * b[k * stride] + frac * b[(k + 1) * stride];
  }
  return out;
}

double shift_similarity(const std::vector<double>& u, const std::vector<double>& v) {
  const double nu = std::sqrt(std::inner_product(u.begin(), u.end(), u.begin(), 0.0));
  const double nv = std::sqrt(std::inner_product(v.begin(), v.end(), v.begin(), 0.0));
  if (!(nu > 0) || !(nv > 0)) return 0;
  const std::ptrdiff_t a = static_cast<std::ptrdiff_t>(u.size()), b = static_cast<std::ptrdiff_t>(v.size());
  double best = -std::numeric_limits<double>::infinity();
  for (std::ptrdiff_t lag = -(b - 1); lag < a; ++lag) { // u[i] against v[i - lag]
    double s = 0;
    for (std::ptrdiff_t i = std::max<std::ptrdiff_t>(0, lag); i < std::min(a, b + lag); ++i)
      s += u[static_cast<std::size_t>(i)] * v[static_cast<std::size_t>(i - lag)];
    best = std::max(best, s);
  }
  return best / (nu * nv);
}

Grouping group_spectra(const double* B, std::size_t R, std::size_t freqs, const GroupOptions& opt) {
  if (!(opt.threshold > 0 && opt.threshold <= 1))
    throw ConfigError("the grouping threshold must be in (0, 1]; got " + std::to_string(opt.threshold));
  if (opt.sources > R)
    throw ConfigError("--sources " + std::to_string(opt.sources) + " is more than the " + std::to_string(R) +
                      " notes (components) of the factorization");
  Grouping g;
  g.components = R;
  std::vector<std::vector<double>> logs(R);
  for (std::size_t r = 0; r < R; ++r) logs[r] = log_frequency(B + r, R, freqs, opt.bins_per_octave);
  g.similarity.assign(R * R, 0.0);
  for (std::size_t a = 0; a < R; ++a) {
    g.similarity[a + R * a] = shift_similarity(logs[a], logs[a]);
    for (std::size_t b = a + 1; b < R; ++b)
      g.similarity[a + R * b] = g.similarity[b + R * a] = shift_similarity(logs[a], logs[b]);
  }
  // Average linkage: `link` holds the mean similarity between the members of two groups (Lance-Williams
  // update on a merge); the most similar pair merges first, ties to the lowest indices.
  std::vector<std::vector<std::size_t>> members(R);
  for (std::size_t r = 0; r < R; ++r) members[r] = {r};
  std::vector<double> link = g.similarity;
  std::vector<bool> alive(R, true);
  for (std::size_t groups = R; groups > 1; --groups) {
    double best = -std::numeric_limits<double>::infinity();
    std::size_t ba = R, bb = R;
    for (std::size_t a = 0; a < R; ++a)
      for (std::size_t b = a + 1; alive[a] && b < R; ++b)
        if (alive[b] && link[a + R * b] > best) {
          best = link[a + R * b];
          ba = a;
          bb = b;
        }
    if (opt.sources > 0 ? groups <= opt.sources : best < opt.threshold) break;
    const double na = static_cast<double>(members[ba].size()), nb = static_cast<double>(members[bb].size());
    for (std::size_t k = 0; k < R; ++k)
      if (alive[k] && k != ba && k != bb)
        link[ba + R * k] = link[k + R * ba] = (na * link[ba + R * k] + nb * link[bb + R * k]) / (na + nb);
    members[ba].insert(members[ba].end(), members[bb].begin(), members[bb].end());
    members[bb].clear();
    alive[bb] = false;
  }
  // Groups numbered by their lowest component: ba < bb always, so a group's first slot is its lowest member.
  g.group.assign(R, -1);
  int next = 0;
  for (std::size_t r = 0; r < R; ++r)
    if (alive[r]) {
      for (std::size_t m : members[r]) g.group[m] = next;
      ++next;
    }
  g.groups = static_cast<std::size_t>(next);
  return g;
}

std::vector<double> order_groups_by_energy(Grouping& g, const double* A, std::size_t frames, const double* B,
                                           std::size_t freqs) {
  const std::size_t R = g.components;
  std::vector<double> energy(g.groups, 0.0), v(g.groups);
  for (std::size_t k = 0; k < freqs; ++k)
    for (std::size_t f = 0; f < frames; ++f) {
      std::fill(v.begin(), v.end(), 0.0);
      for (std::size_t r = 0; r < R; ++r) v[static_cast<std::size_t>(g.group[r])] += A[f + frames * r] * B[r + R * k];
      for (std::size_t h = 0; h < g.groups; ++h) energy[h] += v[h] * v[h];
    }
  std::vector<std::size_t> order(g.groups);
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return energy[a] > energy[b]; });
  std::vector<int> rename(g.groups);
  for (std::size_t i = 0; i < g.groups; ++i) rename[order[i]] = static_cast<int>(i);
  for (int& x : g.group) x = rename[static_cast<std::size_t>(x)];
  const double total = std::accumulate(energy.begin(), energy.end(), 0.0);
  std::vector<double> share(g.groups);
  for (std::size_t i = 0; i < g.groups; ++i) share[i] = total > 0 ? energy[order[i]] / total : 0.0;
  return share;
}

Rebuild parse_rebuild(const std::string& s) {
  if (s == "mask") return Rebuild::mask;
  if (s == "phase") return Rebuild::phase;
  throw ConfigError("--rebuild '" + s +
                    "': use mask (soft mask of the mixture) or phase (magnitude with the "
                    "mixture's phase)");
}

std::vector<Stft> separate(const Stft& mixture, const double* A, const double* B, std::size_t R, const Grouping& g,
                           Rebuild how) {
  const std::size_t F = mixture.frames, K = mixture.freqs, G = g.groups;
  std::vector<Stft> out(G);
  for (Stft& s : out) {
    s = mixture;
    std::fill(s.S.begin(), s.S.end(), std::complex<double>(0));
  }
  std::vector<double> v(G);
  for (std::size_t f = 0; f < F; ++f)
    for (std::size_t k = 0; k < K; ++k) {
      std::fill(v.begin(), v.end(), 0.0);
      for (std::size_t r = 0; r < R; ++r) v[static_cast<std::size_t>(g.group[r])] += A[f + F * r] * B[r + R * k];
      const std::complex<double> x = mixture.S[k + K * f];
      const double mag = std::abs(x);
      const std::size_t at = k + K * f;
      if (how == Rebuild::mask) {
        const double total = std::accumulate(v.begin(), v.end(), 0.0);
        for (std::size_t h = 0; h < G; ++h) out[h].S[at] = total > 0 ? x * (v[h] / total) : x / static_cast<double>(G);
      } else {
        const std::complex<double> unit = mag > 0 ? x / mag : std::complex<double>(1, 0);
        for (std::size_t h = 0; h < G; ++h) out[h].S[at] = v[h] * unit;
      }
    }
  return out;
}

double sdr(const std::vector<double>& ref, const std::vector<double>& est) {
  const std::size_t n = std::min(ref.size(), est.size());
  double s = 0, e = 0;
  for (std::size_t i = 0; i < n; ++i) {
    s += ref[i] * ref[i];
    e += (ref[i] - est[i]) * (ref[i] - est[i]);
  }
  if (!std::isfinite(s) || !std::isfinite(e)) return std::numeric_limits<double>::quiet_NaN();
  if (!(s > 0)) return -std::numeric_limits<double>::infinity();
  if (!(e > 0)) return std::numeric_limits<double>::infinity();
  return 10 * std::log10(s / e);
}

std::vector<std::size_t> best_assignment(const std::vector<std::vector<double>>& refs,
                                         const std::vector<std::vector<double>>& ests) {
  if (refs.size() > ests.size())
    throw ConfigError(std::to_string(refs.size()) + " references but only " + std::to_string(ests.size()) +
                      " separated sources: give at most as many references as sources (or set --sources)");
  if (ests.size() > 8) throw ConfigError("scoring against references is limited to 8 separated sources");
  std::vector<std::vector<double>> score(refs.size(), std::vector<double>(ests.size()));
  for (std::size_t i = 0; i < refs.size(); ++i)
    for (std::size_t j = 0; j < ests.size(); ++j) score[i][j] = sdr(refs[i], ests[j]);
  std::vector<std::size_t> perm(ests.size()), best;
  std::iota(perm.begin(), perm.end(), std::size_t{0});
  double best_sum = -std::numeric_limits<double>::infinity();
  do {
    double sum = 0;
    for (std::size_t i = 0; i < refs.size(); ++i) sum += std::max(score[i][perm[i]], -1e300);
    if (best.empty() || sum > best_sum) {
      best_sum = sum;
      best.assign(perm.begin(), perm.begin() + static_cast<std::ptrdiff_t>(refs.size()));
    }
  } while (std::next_permutation(perm.begin(), perm.end()));
  return best;
}

} // namespace unmix::audio
