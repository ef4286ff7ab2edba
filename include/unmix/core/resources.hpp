#pragma once
// What the process has used of the machine, and what the machine (or the job) allows.
#include <cstddef>
#include <string>

namespace unmix {

/// The largest resident set of this process since it started, in bytes (getrusage's ru_maxrss).
std::size_t peak_resident_bytes();

/// Hands the free memory the C library keeps in its heap back to the system (glibc's malloc_trim; nothing
/// elsewhere). Arrays under its adaptive mmap threshold (up to 32 MiB) come from that heap, and what they
/// leave free stays resident: called between phases that free many of them (the levels of a coarse-to-fine
/// solve), so that the next phase's peak does not sit on the last one's leftovers.
void release_free_heap();

/// Memory of this node as Linux reports it, in bytes; 0 where unknown.
struct NodeMemory {
  double total = 0;     ///< MemTotal of /proc/meminfo
  double available = 0; ///< MemAvailable: what can be had without swapping
  double job_limit = 0; ///< the smallest memory limit of this process's cgroup and its parents (SLURM's
                        ///< job, step and task limits); 0 when there is none
  /// The most the processes of this node may use together: the job's limit, else the node's memory.
  double ceiling() const;
};
NodeMemory node_memory();

/// Reads "MemTotal:  123 kB" style text (the format of /proc/meminfo) into total and available.
NodeMemory parse_meminfo(const std::string& text);

/// "12.3 GiB" or "500 MiB" (powers of 1024, as --memory-limit takes them; three significant digits).
std::string format_bytes(double bytes);

} // namespace unmix
