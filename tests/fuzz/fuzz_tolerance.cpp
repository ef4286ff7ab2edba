// libFuzzer target: --tol specs (parse_tolerance). An accepted spec names a known statistic and a
// tolerance >= 0 and can be tested against a row of statistics. Bad specs must end in unmix::Error.
#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz_support.hpp"
#include "unmix/core/error.hpp"
#include "unmix/solver/policies.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  using namespace unmix;
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    const Tolerance t = parse_tolerance(text);
    fuzz::require(t.value >= 0, "tolerance >= 0");
    fuzz::require(stat_name(t.stat) != "?", "a known statistic");
    fuzz::require(text.rfind(stat_name(t.stat) + "=", 0) == 0, "the statistic is the text before '='");
    IterationStats s;
    s.iteration = 3;
    s.objective = 2.5;
    s.rel_error = 0.1;
    std::string which;
    (void)tolerance_met({t}, s, &which);
  } catch (const Error&) {
  }
  return 0;
}
