#pragma once
// Counter-based random numbers: the value drawn for element k of stream s under seed is a pure
// function of (seed, s, k). A distributed factor is therefore identical whatever the process count:
// each process draws exactly the entries it owns.
#include <cmath>
#include <cstdint>
#include <numbers>

namespace unmix {

/// SplitMix64 finalizer: a bijective mix of 64 bits.
constexpr std::uint64_t mix64(std::uint64_t z) {
  z += 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

class CounterRng {
public:
  CounterRng(std::uint64_t seed, std::uint64_t stream) : key_(mix64(seed ^ mix64(stream + 0x51ed27))) {}
  std::uint64_t bits(std::uint64_t k) const { return mix64(key_ ^ mix64(k)); }
  /// Uniform in (0, 1): never exactly 0 or 1.
  double uniform(std::uint64_t k) const {
    return (static_cast<double>(bits(k) >> 11) + 0.5) * (1.0 / 9007199254740992.0);
  }
  /// Standard normal by Box-Muller from two uniforms of sub-counters of k.
  double normal(std::uint64_t k) const {
    const double u1 = uniform(2 * k), u2 = uniform(2 * k + 1);
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * std::numbers::pi * u2);
  }

private:
  std::uint64_t key_;
};

/// A small sequential generator (xoshiro-like quality is not needed): for shuffles and draws that
/// every process makes identically.
class SeqRng {
public:
  explicit SeqRng(std::uint64_t seed) : state_(mix64(seed)) {}
  std::uint64_t next() { return mix64(state_++); }
  double uniform() { return (static_cast<double>(next() >> 11) + 0.5) * (1.0 / 9007199254740992.0); }
  std::uint64_t below(std::uint64_t n) { return n ? next() % n : 0; }
  std::uint64_t state() const { return state_; }
  void set_state(std::uint64_t s) { state_ = s; }

private:
  std::uint64_t state_;
};

} // namespace unmix
