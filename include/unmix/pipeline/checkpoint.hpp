#pragma once
// Checkpoints of a factorization: the complete solver state, written collectively and atomically
// (temporary name, fsync, rename), and read back to continue bit-identically.
#include <string>

#include "unmix/io/hdf5.hpp"
#include "unmix/model/cp.hpp"
#include "unmix/model/tucker.hpp"
#include "unmix/model/tucker1.hpp"
#include "unmix/solver/cp_solver.hpp"
#include "unmix/solver/solver.hpp"

namespace unmix {

/// Writes factors and state to `path` (replacing it atomically). `fingerprint` identifies the problem
/// and the options that must match on resume ("key=value" pairs joined by ';').
template <class T>
void write_checkpoint(const Comm& comm, const std::string& path, const Tucker1<T>& m, const Factors& f,
                      const SolverState& st, const std::string& fingerprint);

/// Reads a checkpoint written for the same problem; throws ConfigError naming every option that
/// differs from `fingerprint`, or IoError/DataError for an unreadable file.
template <class T>
void read_checkpoint(const Comm& comm, const std::string& path, const Tucker1<T>& m, Factors& f, SolverState& st,
                     const std::string& fingerprint);

/// The same for the CP and Tucker models (Model: CP<T> or Tucker<T>): every factor with its momentum history
/// and previous iterate (F_n, prev_n, last_n), the step constants and the schedule; for Tucker also the core
/// with its history (core, core_prev, core_last, core_L_last).
template <class Model>
void write_cp_checkpoint(const Comm& comm, const std::string& path, const Model& m, const CpFactors& f,
                         const CpSolverState& st, const std::string& fingerprint);
template <class Model>
void read_cp_checkpoint(const Comm& comm, const std::string& path, const Model& m, CpFactors& f, CpSolverState& st,
                        const std::string& fingerprint);

} // namespace unmix
