// libFuzzer target: an audio file read through libsndfile (io::read_signal on a .wav name, which
// reaches io::read_signal_wav; libsndfile recognizes every format it knows by content). The first byte
// picks --channel (0: none, the mix-down); the rest is the file. Bad input must end in unmix::Error.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <optional>

#include "fuzz_support.hpp"
#include "unmix/core/error.hpp"
#include "unmix/io/signal.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  using namespace unmix;
  static const fuzz::ScratchFile file(".wav");
  if (size == 0) return 0;
  std::optional<int> channel;
  if (data[0] % 4) channel = data[0] % 4 == 3 ? -1 : data[0] % 4;
  file.write(data + 1, size - 1);
  try {
    const io::Signal s = io::read_signal(file.path(), "", channel);
    fuzz::require(s.t.size() == s.y.size(), "as many times as samples");
    for (double y : s.y) fuzz::require(std::isfinite(y), "samples finite");
    for (double t : s.t) fuzz::require(std::isfinite(t), "times finite");
  } catch (const Error&) {
  }
  return 0;
}
