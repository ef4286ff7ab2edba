#pragma once
// What the process has used of the machine so far.
#include <cstddef>

namespace unmix {

/// The largest resident set of this process since it started, in bytes (getrusage's ru_maxrss).
std::size_t peak_resident_bytes();

} // namespace unmix
