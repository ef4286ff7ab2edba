// libFuzzer target: wide grain tables, one CSV per feature (csv::parse -> sediment::parse_wide ->
// validate -> the density tensor on a small grid). The input holds up to four files separated by the
// byte 0x1E (ASCII record separator). Bad input must end in unmix::Error.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_support.hpp"
#include "unmix/apps/sediment.hpp"
#include "unmix/core/error.hpp"
#include "unmix/io/csv.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  using namespace unmix;
  std::string_view rest(reinterpret_cast<const char*>(data), size);
  std::vector<std::string_view> files;
  while (files.size() < 3) {
    const auto sep = rest.find('\x1e');
    if (sep == std::string_view::npos) break;
    files.push_back(rest.substr(0, sep));
    rest.remove_prefix(sep + 1);
  }
  files.push_back(rest);
  try {
    std::vector<csv::Table> tables;
    std::vector<std::string> names;
    for (std::size_t f = 0; f < files.size(); ++f) {
      const std::string path = "sinks_f" + std::to_string(f + 1) + ".csv";
      tables.push_back(csv::parse(files[f], path));
      names.push_back("f" + std::to_string(f + 1));
    }
    const sediment::GrainTable g = sediment::parse_wide(tables, names);
    fuzz::require(g.grains.size() == g.sinks.size(), "one grain list per sink");
    for (const auto& sink : g.grains)
      for (const auto& gr : sink) fuzz::require(gr.values.size() == g.features.size(), "one value per feature");
    sediment::validate(g);
    if (g.grain_count() > 2000 || g.sinks.size() > 64) return 0; // keep each input fast
    sediment::KdeOptions opts;
    opts.grid_points = 16;
    const sediment::KdeTensor T = sediment::build_tensor(g, opts);
    for (double y : T.Y) fuzz::require(std::isfinite(y) && y >= 0, "density tensor entries finite and >= 0");
  } catch (const Error&) {
  }
  return 0;
}
