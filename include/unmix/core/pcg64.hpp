#pragma once
// NumPy's default bit generator, bit for bit: PCG64 (128-bit LCG, XSL-RR output) seeded from a
// non-negative integer through NumPy's SeedSequence, and doubles from the 53 high bits of a draw.
// `Pcg64(s)` followed by n calls of `uniform()` gives what `numpy.random.default_rng(s).random(n)`
// gives, so a seed means the same random features here as in Python tools built on NumPy.
// `advance` jumps ahead in O(log n) steps: a process can start at any index of the stream.
#include <cstdint>

namespace unmix {

class Pcg64 {
public:
  explicit Pcg64(std::uint64_t seed);
  /// The next 64 random bits.
  std::uint64_t next_u64();
  /// Uniform in [0, 1): (next_u64() >> 11) * 2^-53, as NumPy's random().
  double uniform() { return static_cast<double>(next_u64() >> 11) * (1.0 / 9007199254740992.0); }
  /// Skip the next `delta` draws.
  void advance(std::uint64_t delta);

private:
  unsigned __int128 state_ = 0, inc_ = 0;
};

} // namespace unmix
