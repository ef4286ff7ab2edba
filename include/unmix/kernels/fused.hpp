#pragma once
// The single-pass Tucker-1 iteration kernel (MPI-free). One pass over the local Y, column tile by
// column tile, does the whole B step and gathers everything the A step needs while the tile is in
// cache:
//   M_t = A^T Y_t                                  (R x nt)
//   gradient statistics of the current point:    g_t = G B_t - M_t
//   momentum:        B^_t = B_t + omega (B_t - Bprev_t),  Bprev_t <- B_t
//   gradient step:   B_t <- project(B^_t - (G B^_t - M_t) / L)   (per-row 1/L)
//   Q += Y_t B_t^T (I x R, accumulated in double), P += B_t B_t^T (R x R)
// `project` must act entrywise (constraints that couple columns cannot be applied per tile). With
// `keep_unprojected`, B keeps the gradient step's values and Q and P are formed from the projected
// copy of each tile: for constraints that end in a rescaling of whole rows, which the caller applies to
// all of B after the pass and carries over to Q and P on I x R and R x R quantities.
#include <cstddef>
#include <functional>
#include <span>
#include <vector>

namespace unmix {

/// The read-ahead measurement of one model's passes, chosen jointly by the processes that run them
/// (see FusedStepInput::tuning). Owned by the caller; its fields are the pass's own.
struct FusedTuning {
  std::vector<int> modes;       // candidates (the rule's pick first)
  std::vector<double> per_pass; // seconds of each measured pass on this process, in order
  std::size_t passes = 0;       // passes begun
  int chosen = -1;              // the mode of all later passes (-1: still to decide)
  unsigned generation = 0;      // fused_read_ahead_tuning calls seen when the measurement began
  bool report = true;           // UNMIX_TILE_TUNE_LOG=1 prints the choice from this process
  bool alone = false;           // a process asked to measure alone (UNMIX_TILE_TUNE=alone): all of them do
};

struct FusedStepInput {
  const double* A = nullptr;      // I_p x R, column-major
  const double* G = nullptr;      // R x R, A^T A
  const double* inv_L = nullptr;  // R step sizes 1/L_r (the same value R times for a single constant)
  const double* omega = nullptr;  // R momentum weights (0: no extrapolation)
  bool nonnegative_stats = false; // stationarity counts entries with B > 0 or g < 0 only
  std::function<void(std::span<double> tile, std::size_t cols)> project; // entrywise projection
  /// B keeps the step's values; `project` acts on a copy of each tile, from which Q and P are formed.
  /// Only with single steps (inner_steps == 1, exact false).
  bool keep_unprojected = false;
  std::size_t inner_steps = 1; // steps on each column per pass (see kernels/inner.hpp)
  bool hals = false;           // the extra steps are HALS sweeps
  bool exact = false;          // then solve each column's nonnegative least squares exactly (BPP)
  /// >= 0 (with exact): extrapolate the solved tile, B^ = max(0, B + beta (B - Bprev)), where Bprev holds
  /// the previous plain solution; B gets B^ and Bprev the plain solution (Q and P are then of B^).
  double beta = -1;
  double inner_tol = 0.1;
  /// With `tuning`, the processes of a communicator measure the read-ahead together and keep the same choice: each
  /// calls the pass the same number of times with its own FusedTuning, and `agree` (a collective every process
  /// calls at the same pass) replaces each value of a vector by its largest over the processes. A measured pass
  /// then counts at its slowest process's time, which is what an iteration waits for. Without `tuning`, each
  /// process measures its own passes alone (as every process does with UNMIX_TILE_TUNE=alone, for comparisons).
  FusedTuning* tuning = nullptr;
  std::function<void(std::span<double>)> agree;
};

struct FusedStepOutput {
  double* Q = nullptr; // I_p x R, overwritten with Y B_new^T (local columns)
  double* P = nullptr; // R x R, overwritten with B_new B_new^T (local columns)
  double grad2 = 0;    // ||G B - A^T Y||^2 at the point before the step (local columns)
  double stat2 = 0;    // its normal-cone part
  double change2 = 0;  // ||B_new - Bprev_new||^2: the step (Bprev holds each tile's value before it, unless beta >= 0)
  double norm2 = 0;    // ||B_new||^2
};

/// Runs the pass. B and Bprev are R x M_p (column-major); Y is I_p x M_p.
template <class T>
void fused_b_step(const T* Y, std::size_t Ip, std::size_t Mp, std::size_t R, double* B, double* Bprev,
                  const FusedStepInput& in, FusedStepOutput& out);

/// X^ = max(0, X + beta (X - X_prev)) into X (n entries) and the plain X into X_prev: the extrapolation
/// after an exact block solve (SolverOptions::extrapolate), the same arithmetic in both iteration forms.
void extrapolate_solution(std::size_t n, double beta, double* X, double* X_prev);

/// Column tile width used by the pass for a given I_p and element size (about 384 KiB of Y per tile, 256 KiB
/// for double values on AVX2 (fused.cpp), so that the tile being used and the next one, read ahead, fit a
/// 1 MiB level-2 cache together; 8 to 1024 columns; UNMIX_TILE_KIB=64..4096 sets another size for experiments).
std::size_t fused_tile_columns(std::size_t Ip, std::size_t elem_size);

/// The pass measures which read-ahead of the next tile suits this machine on its first passes (after one
/// pass, each of the tile products' candidate modes on two passes, in turn; the sums are the same for
/// every mode) and keeps the fastest for all later passes over tiles of that shape in this process (with
/// FusedStepInput::tuning: the fastest at the slowest process, and a later model whose processes all hold a
/// choice for its shape starts with it).
/// fused_read_ahead_choice gives the mode chosen for tiles of Ip rows, rank R and elem_size-byte values (-1 while
/// measuring or when nothing was measured: a fixed mode, UNMIX_TILE_PREFETCH, or a single candidate).
/// fused_read_ahead_tuning(false) (or UNMIX_TILE_TUNE=0) uses the tile products' rule instead; either call forgets
/// earlier choices. Returns the previous setting.
int fused_read_ahead_choice(std::size_t Ip, std::size_t R, std::size_t elem_size);
bool fused_read_ahead_tuning(bool on);
/// fused_read_ahead_alone(true) (or UNMIX_TILE_TUNE=alone) makes this process measure alone even where the caller
/// offers a joint measurement; the processes of a joint one all go alone when any of them asks to (their first
/// agreement carries it). For comparisons. Returns the previous setting.
bool fused_read_ahead_alone(bool on);

/// Sets the tile size in KiB (64-4096; 0: the default or UNMIX_TILE_KIB) for later passes; false (nothing
/// changes) outside that range. For comparisons.
bool fused_tile_kib(int kib);

} // namespace unmix
