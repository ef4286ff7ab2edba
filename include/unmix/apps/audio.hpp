#pragma once
// Instrument separation from one recording (MPI-free maths of `unmix audio`): the magnitude of the
// mixture's short-time Fourier transform, frames x frequencies, is a nonnegative Tucker-1 mixture of a
// few spectra ("notes"): |S|^T ~ A B, A (frames x R) the activations, B (R x frequencies) the spectra.
// Notes of one instrument share a timbre, so their spectra on a logarithmic frequency axis are shifted
// copies of each other; the notes are grouped into instruments by their best-shift correlation there, each
// instrument's magnitude A_g B_g is rebuilt, given the mixture's phase (or used as a soft mask on the
// mixture's transform), and turned back into a signal by the inverse transform.
#include <complex>
#include <cstddef>
#include <string>
#include <vector>

namespace unmix::audio {

/// Band-limited resampling by Fourier interpolation: the n-sample signal's spectrum truncated (fewer samples)
/// or padded with zeros (more), as a periodic signal. A sum of sinusoids below both Nyquist frequencies
/// with whole cycles over the signal is reproduced exactly (to rounding). n_out >= 1.
std::vector<double> resample(const std::vector<double>& x, std::size_t n_out);

/// The periodic Hann window of `length` samples, w[n] = sin^2(pi n / length).
std::vector<double> hann(std::size_t length);

/// A short-time Fourier transform with centred frames: frame f holds the `window` samples centred on sample
/// f * hop (zeros beyond the signal), times the periodic Hann window; frames = floor((length - 1) / hop) + 2,
/// so that every sample lies between two frame centres and the inverse is well conditioned for any hop up
/// to window / 2. S is freqs x frames (freqs = window / 2 + 1), column-major.
struct Stft {
  std::size_t window = 0, hop = 0, length = 0;
  std::size_t freqs = 0, frames = 0;
  std::vector<std::complex<double>> S;
  double at_abs(std::size_t k, std::size_t f) const { return std::abs(S[k + freqs * f]); }
};

/// ConfigError unless 2 <= window, 1 <= hop <= window / 2 and the signal has at least one sample.
Stft stft(const std::vector<double>& x, std::size_t window, std::size_t hop);

/// The signal (`layout.length` samples) whose transform is closest to `S` (freqs x frames of `layout`'s
/// shape) in the least-squares sense: windowed overlap-add divided by the summed squared window. Inverts
/// stft exactly (to rounding).
std::vector<double> istft(const Stft& layout, const std::vector<std::complex<double>>& S);

/// The spectrum b[0..freqs) (linear frequency bins 0..Nyquist, bin k at k / (freqs - 1) of Nyquist) read at
/// `bins_per_octave` points per octave from bin 1 up to the Nyquist bin, by linear interpolation.
std::vector<double> log_frequency(const double* b, std::size_t stride, std::size_t freqs, std::size_t bins_per_octave);

/// The largest correlation of u and v over all relative shifts (zeros beyond their ends), divided by
/// ||u|| ||v||: 1 for a shifted copy that stays within the axis, 0 when either is zero.
double shift_similarity(const std::vector<double>& u, const std::vector<double>& v);

struct GroupOptions {
  std::size_t sources = 2;          ///< merge until this many groups remain; 0: merge while similar enough
  double threshold = 0.7;           ///< with sources == 0: merge groups whose mean similarity reaches this
  std::size_t bins_per_octave = 24; ///< resolution of the logarithmic axis
};

struct Grouping {
  std::size_t components = 0;     ///< R
  std::vector<double> similarity; ///< R x R, symmetric, 1 on the diagonal for nonzero spectra
  std::vector<int> group;         ///< per component, 0 .. groups-1
  std::size_t groups = 0;
};

/// Groups the R spectra (rows of B, R x freqs column-major) into instruments by average linkage: the two
/// groups with the highest mean similarity between their members merge, until `sources` groups remain (or,
/// with sources == 0, until no two groups reach `threshold`). Groups are numbered by their lowest component.
/// ConfigError for a threshold outside (0, 1] or more sources than components.
Grouping group_spectra(const double* B, std::size_t R, std::size_t freqs, const GroupOptions& opt);

/// Renumbers the groups in decreasing order of their share of the model's energy sum over frames and
/// frequencies of (A_g B_g)^2 (A: frames x R, B: R x freqs); returns those shares (summing to 1).
std::vector<double> order_groups_by_energy(Grouping& g, const double* A, std::size_t frames, const double* B,
                                           std::size_t freqs);

enum class Rebuild {
  mask, ///< S_g = S * V_g / sum_h V_h: a soft mask of the mixture's transform (the sources sum to the mixture)
  phase ///< S_g = V_g * S / |S|: the group's magnitude with the mixture's phase
};
Rebuild parse_rebuild(const std::string& s); // "mask" or "phase"; ConfigError otherwise

/// The transforms of the groups' signals: V_g = (A_g B_g)^T (freqs x frames), combined with the mixture's
/// transform as `how` says. One Stft (the mixture's layout) per group.
std::vector<Stft> separate(const Stft& mixture, const double* A, const double* B, std::size_t R, const Grouping& g,
                           Rebuild how);

/// Signal-to-distortion ratio in dB, 10 log10(sum ref^2 / sum (ref - est)^2) over the common length
/// (+inf for an exact estimate, -inf for a zero reference).
double sdr(const std::vector<double>& ref, const std::vector<double>& est);

/// The assignment of estimates to references (each reference its own estimate, when there are at least as many
/// estimates) that maximizes the summed SDR; assignment[i] is the estimate of reference i. Exhaustive over
/// permutations: for up to 8 estimates.
std::vector<std::size_t> best_assignment(const std::vector<std::vector<double>>& refs,
                                         const std::vector<std::vector<double>>& ests);

} // namespace unmix::audio
