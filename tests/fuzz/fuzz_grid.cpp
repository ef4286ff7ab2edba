// libFuzzer target: --grid specs (ProcessGrid::parse). The first byte is the tensor order (0..5), the
// second the process count (1..256); the rest is the spec. An accepted grid must have that order and
// size, and its coordinates and block layout must be consistent. Bad specs must end in unmix::Error.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "fuzz_support.hpp"
#include "unmix/core/error.hpp"
#include "unmix/dist/layout.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  using namespace unmix;
  if (size < 2) return 0;
  const std::size_t order = data[0] % 6;
  const int nprocs = data[1] + 1;
  const std::string text(reinterpret_cast<const char*>(data + 2), size - 2);
  try {
    const ProcessGrid g = ProcessGrid::parse(text, order, nprocs);
    fuzz::require(g.order() == order && g.size() == nprocs, "the grid has the order and size asked for");
    Shape shape(order);
    for (std::size_t n = 0; n < order; ++n) shape[n] = 1 + (n * 7) % 5;
    const BlockLayout layout(shape, g);
    for (int r = 0; r < nprocs; ++r) {
      fuzz::require(g.rank_of(g.coords(r)) == r, "rank_of(coords(r)) == r");
      const Shape off = layout.box_offset(r), ext = layout.box_shape(r);
      for (std::size_t n = 0; n < order; ++n) fuzz::require(off[n] + ext[n] <= shape[n], "box inside the tensor");
    }
  } catch (const Error&) {
  }
  return 0;
}
