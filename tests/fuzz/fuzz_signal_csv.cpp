// libFuzzer target: a signal CSV file (io::read_signal_csv, then require_uniform_time). The first byte
// picks the --column argument; the rest is the file. Bad input must end in unmix::Error.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz_support.hpp"
#include "unmix/core/error.hpp"
#include "unmix/io/signal.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  using namespace unmix;
  static const fuzz::ScratchFile file(".csv");
  if (size == 0) return 0;
  static const char* const columns[] = {"", "2", "y", "t", "0", "3", "time", "99999999999999999999"};
  const std::string column = columns[data[0] % 8];
  file.write(data + 1, size - 1);
  try {
    const io::Signal s = io::read_signal_csv(file.path(), column);
    fuzz::require(s.t.size() == s.y.size(), "as many times as samples");
    for (double y : s.y) fuzz::require(std::isfinite(y), "samples finite");
    for (double t : s.t) fuzz::require(std::isfinite(t), "times finite");
    io::require_uniform_time(s.t);
  } catch (const Error&) {
  }
  return 0;
}
