// libFuzzer target: --ranks specs (parse_rank_list: FIRST:LAST[:STEP] or a list). An accepted spec gives
// a sorted list of distinct ranks >= 1. Bad specs must end in unmix::Error, quickly.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "fuzz_support.hpp"
#include "unmix/core/error.hpp"
#include "unmix/rank/sweep.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  using namespace unmix;
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    const std::vector<std::size_t> ranks = parse_rank_list(text);
    fuzz::require(!ranks.empty(), "at least one rank");
    for (std::size_t i = 0; i < ranks.size(); ++i) {
      fuzz::require(ranks[i] >= 1, "ranks >= 1");
      if (i > 0) fuzz::require(ranks[i] > ranks[i - 1], "sorted and distinct");
    }
  } catch (const Error&) {
  }
  return 0;
}
