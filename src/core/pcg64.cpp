#include "unmix/core/pcg64.hpp"

#include <array>

namespace unmix {

namespace {

using u128 = unsigned __int128;

constexpr u128 kMultiplier = (static_cast<u128>(0x2360ED051FC65DA4ULL) << 64) | 0x4385DF649FCCF645ULL;

// NumPy's SeedSequence (pool of four 32-bit words) for an integer entropy, and generate_state for
// four 64-bit words. The constants are those of NumPy's bit_generator module.
constexpr std::uint32_t kInitA = 0x43b0d7e5, kMultA = 0x931e8875, kInitB = 0x8b51f9dd, kMultB = 0x58f38ded;
constexpr std::uint32_t kMixL = 0xca01f9dd, kMixR = 0x4973f715;

std::array<std::uint64_t, 4> seed_sequence_state(std::uint64_t seed) {
  // The integer as little-endian 32-bit words (zero is one word).
  std::array<std::uint32_t, 2> entropy{static_cast<std::uint32_t>(seed), static_cast<std::uint32_t>(seed >> 32)};
  const std::size_t n_entropy = (seed >> 32) != 0 ? 2 : 1;
  std::uint32_t hash_const = kInitA;
  auto hashmix = [&hash_const](std::uint32_t v) {
    v ^= hash_const;
    hash_const *= kMultA;
    v *= hash_const;
    v ^= v >> 16;
    return v;
  };
  auto mix = [](std::uint32_t x, std::uint32_t y) {
    std::uint32_t r = kMixL * x - kMixR * y;
    r ^= r >> 16;
    return r;
  };
  std::array<std::uint32_t, 4> pool{};
  for (std::size_t i = 0; i < pool.size(); ++i) pool[i] = hashmix(i < n_entropy ? entropy[i] : 0u);
  for (std::size_t src = 0; src < pool.size(); ++src)
    for (std::size_t dst = 0; dst < pool.size(); ++dst)
      if (src != dst) pool[dst] = mix(pool[dst], hashmix(pool[src]));

  std::uint32_t hb = kInitB;
  std::array<std::uint32_t, 8> words{};
  for (std::size_t i = 0; i < words.size(); ++i) {
    std::uint32_t v = pool[i % pool.size()];
    v ^= hb;
    hb *= kMultB;
    v *= hb;
    v ^= v >> 16;
    words[i] = v;
  }
  std::array<std::uint64_t, 4> out{};
  for (std::size_t i = 0; i < out.size(); ++i)
    out[i] = static_cast<std::uint64_t>(words[2 * i]) | (static_cast<std::uint64_t>(words[2 * i + 1]) << 32);
  return out;
}

} // namespace

Pcg64::Pcg64(std::uint64_t seed) {
  const auto v = seed_sequence_state(seed);
  const u128 init_state = (static_cast<u128>(v[0]) << 64) | v[1];
  const u128 init_seq = (static_cast<u128>(v[2]) << 64) | v[3];
  inc_ = (init_seq << 1) | 1u;
  state_ = 0;
  state_ = state_ * kMultiplier + inc_;
  state_ += init_state;
  state_ = state_ * kMultiplier + inc_;
}

std::uint64_t Pcg64::next_u64() {
  state_ = state_ * kMultiplier + inc_;
  const auto x = static_cast<std::uint64_t>(state_ >> 64) ^ static_cast<std::uint64_t>(state_);
  const unsigned rot = static_cast<unsigned>(state_ >> 122);
  return (x >> rot) | (x << ((64u - rot) & 63u));
}

void Pcg64::advance(std::uint64_t delta) {
  // Brown's jump-ahead for an LCG: compose the affine map x -> a x + c with itself bit by bit.
  u128 acc_mult = 1, acc_plus = 0, cur_mult = kMultiplier, cur_plus = inc_;
  while (delta > 0) {
    if (delta & 1u) {
      acc_mult *= cur_mult;
      acc_plus = acc_plus * cur_mult + cur_plus;
    }
    cur_plus = (cur_mult + 1) * cur_plus;
    cur_mult *= cur_mult;
    delta >>= 1;
  }
  state_ = acc_mult * state_ + acc_plus;
}

} // namespace unmix
