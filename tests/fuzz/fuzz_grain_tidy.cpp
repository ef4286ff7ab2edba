// libFuzzer target: a tidy grain table (csv::parse -> sediment::parse_tidy -> validate) and, when it is
// accepted, the density tensor built from it on a small grid. Bad input must end in unmix::Error.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "fuzz_support.hpp"
#include "unmix/apps/sediment.hpp"
#include "unmix/core/error.hpp"
#include "unmix/io/csv.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  using namespace unmix;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    const csv::Table t = csv::parse(text, "fuzz.csv");
    const sediment::GrainTable g = sediment::parse_tidy(t);
    fuzz::require(g.features.size() == g.file.size(), "one file per feature");
    fuzz::require(g.grains.size() == g.sinks.size(), "one grain list per sink");
    for (const auto& sink : g.grains)
      for (const auto& gr : sink) fuzz::require(gr.values.size() == g.features.size(), "one value per feature");
    sediment::validate(g);
    if (g.grain_count() > 2000 || g.features.size() > 16) return 0; // keep each input fast
    sediment::KdeOptions opts;
    opts.grid_points = 16;
    const sediment::KdeTensor T = sediment::build_tensor(g, opts);
    for (double y : T.Y) fuzz::require(std::isfinite(y) && y >= 0, "density tensor entries finite and >= 0");
  } catch (const Error&) {
  }
  return 0;
}
