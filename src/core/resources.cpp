#include "unmix/core/resources.hpp"

#include <sys/resource.h>

namespace unmix {

std::size_t peak_resident_bytes() {
  rusage ru{};
  if (getrusage(RUSAGE_SELF, &ru) != 0) return 0;
  return static_cast<std::size_t>(ru.ru_maxrss) * 1024; // Linux reports kibibytes
}

} // namespace unmix
