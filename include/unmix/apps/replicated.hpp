#pragma once
// Pieces the applications share: a tensor built on one process (from a count matrix or one recording) and
// spread to the others in blocks, or a small one that every process holds whole (from a few files),
// factorized distributed over the processes like `unmix factorize`, the factors then gathered on every
// process; and the output folder written under a temporary name.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "unmix/constraints/constraints.hpp"
#include "unmix/core/mpi.hpp"
#include "unmix/core/tensor.hpp"
#include "unmix/dist/dist_tensor.hpp"
#include "unmix/io/hdf5.hpp"
#include "unmix/solver/solver.hpp"

namespace unmix::apps {

/// The factorization settings of an application (every rank it tries uses them).
struct FitSettings {
  std::string constraint_A = "nonnegative", constraint_B = "nonnegative";
  SolverOptions solver;
  std::size_t starts = 1; ///< random starts; the lowest objective is kept
  std::optional<std::string> grid;
};

/// One factorization, gathered on every process.
struct Fit {
  std::size_t rank = 0;
  std::vector<double> A; ///< I x R, column-major
  std::vector<double> B; ///< R x (the other axes), column-major (r fastest)
  SolveResult result;
  std::uint64_t seed = 0; ///< the seed of the kept start
};

/// A factor's constraint spec as --constraint gives it (`factor` "A" or "B"); linear constraints, which
/// need matrices from a file, are refused (ConfigError naming the option).
ConstraintList parse_factor_spec(const std::string& spec, const char* factor);

/// Factorizes Y (column-major, `shape`, the mixtures along axis 0), which every process holds whole, at
/// rank R, distributed over `comm` (the process grid `s.grid` or the default one). `mixtures` names axis 0
/// in messages ("sinks", "frames"). Collective.
Fit factorize_replicated(const Shape& shape, const std::vector<double>& Y, std::size_t R, const FitSettings& s,
                         const Comm& comm, const std::string& mixtures);

/// The block layout of a fit of a tensor of `shape` over `comm`: the grid `s.grid`, or the default one.
BlockLayout fit_layout(const Shape& shape, const FitSettings& s, const Comm& comm);

/// A tensor that only process 0 holds whole (column-major, `shape`; `whole` is read there only), spread over
/// `comm` in blocks as the fit lays it out (the grid `s.grid` or the default one): every other process receives
/// its own block and never the whole. Collective.
DistTensor<double> spread_from_root(const Shape& shape, std::span<const double> whole, const FitSettings& s,
                                    const Comm& comm);

/// factorize_replicated's fit of a tensor already spread in blocks (spread_from_root), over its processes.
/// Collective.
Fit factorize_distributed(const DistTensor<double>& Y, std::size_t R, const FitSettings& s,
                          const std::string& mixtures);

/// The rank sweep: factorizations at r = 1..max_rank and their final relative errors; `chosen` is picked by
/// maximum curvature (pick_rank) of their running minimum (a rank-r fit can always do as well as a rank r-1
/// one, so an error above the previous one is a fit that stopped early).
struct RankSweep {
  std::vector<double> errors;
  std::size_t chosen = 0;
  std::vector<Fit> fits; ///< fits[r - 1]
};
RankSweep sweep_ranks(const Shape& shape, const std::vector<double>& Y, std::size_t max_rank, const FitSettings& s,
                      const Comm& comm, const std::string& mixtures,
                      const std::function<void(std::size_t r, double err)>& progress = {});
RankSweep sweep_ranks(const DistTensor<double>& Y, std::size_t max_rank, const FitSettings& s,
                      const std::string& mixtures, const std::function<void(std::size_t r, double err)>& progress = {});

/// Writes what every application's results.h5 holds about its fit: the `stats` table (one row per iteration)
/// and the attributes unmix_version, rank, seed, processes, constraint_A/B, stop_reason, iterations,
/// rel_error and option.NAME for each option given. Collective.
void write_fit_record(const h5::File& f, const Fit& fit, const FitSettings& s, const Comm& comm,
                      const std::map<std::string, std::string>& options);

/// Seconds since `t0` on the steady clock.
double seconds_since(std::chrono::steady_clock::time_point t0);

/// One number printf-formatted (`f` holds one conversion for a double), e.g. format_number("%.4f", x).
std::string format_number(const char* f, double v);

/// Writes a text file (call on one process, inside a collective_try).
void write_text(const std::string& path, const std::string& text);

/// A fixed-length string dataset (C strings, null padded) of the names, written by rank 0. Collective.
void write_strings(const h5::File& f, const std::string& name, const std::vector<std::string>& v);

/// A folder written under a temporary name (FINAL.tmp.PID) and renamed when complete: an existing one is
/// replaced only with `overwrite`, and only at commit() (without it, a folder that appeared there while the run
/// was going is never replaced: commit() fails instead); without commit() the temporary folder is removed.
class AtomicDir {
public:
  AtomicDir(const Comm& comm, std::string final_path, bool overwrite);
  ~AtomicDir();
  AtomicDir(const AtomicDir&) = delete;
  AtomicDir& operator=(const AtomicDir&) = delete;
  const std::string& tmp() const { return tmp_; }
  std::string file(const std::string& name) const { return tmp_ + "/" + name; }
  void commit(); ///< collective
  /// `text` with the temporary folder's name replaced by the final one (for messages about files inside).
  std::string as_final(std::string text) const;

private:
  const Comm* comm_;
  std::string final_, tmp_;
  bool overwrite_ = false;
  bool done_ = false;
};

} // namespace unmix::apps
