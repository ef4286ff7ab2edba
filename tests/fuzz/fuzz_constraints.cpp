// libFuzzer target: constraint specs (parse_constraints). An accepted spec must print as a name that
// parses back to the same list, and applying it to a small factor must give finite values or an
// unmix::Error (a `linear` item without its matrices). Bad specs must end in unmix::Error.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "fuzz_support.hpp"
#include "unmix/constraints/constraints.hpp"
#include "unmix/core/error.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  using namespace unmix;
  const std::string spec(reinterpret_cast<const char*>(data), size);
  ConstraintList list;
  try {
    list = parse_constraints(spec);
  } catch (const Error&) {
    return 0;
  }
  const std::string name = list.name();
  if (!list.empty()) {
    ConstraintList again;
    try {
      again = parse_constraints(name);
    } catch (const Error&) {
      fuzz::require(false, "the name of an accepted spec parses");
    }
    fuzz::require(again.name() == name, "name -> parse -> name is the identity");
    fuzz::require(again.items.size() == list.items.size(), "as many items after the round trip");
  }
  (void)implies_nonnegative(list);
  (void)scale_compensable(list, 3, 0);
  // A 3 x 2 x 2 factor with mixed signs and a zero slice.
  std::vector<double> x = {0.5, -1.0, 2.0, 0.0, 0.0, 0.0, 3.0, 0.25, -0.5, 1.5, 0.0, 4.0};
  try {
    FactorView v = local_view(x, Shape{3, 2, 2}, 0);
    (void)apply(list, v);
    for (double e : x) fuzz::require(std::isfinite(e), "constrained values finite");
    (void)violation(list, v);
  } catch (const Error&) {
  }
  return 0;
}
