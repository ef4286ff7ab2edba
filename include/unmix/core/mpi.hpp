#pragma once
// RAII MPI environment and a communicator wrapper with typed collectives. Every MPI call goes through
// check(), and the wrapped communicators use MPI_ERRORS_RETURN, so failures surface as MpiError.
#include <mpi.h>

#include <complex>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "unmix/core/error.hpp"

namespace unmix {

/// Throws MpiError with MPI's own message when rc is not MPI_SUCCESS.
void mpi_check(int rc, const char* what);

template <class T> MPI_Datatype mpi_type();
template <> inline MPI_Datatype mpi_type<double>() { return MPI_DOUBLE; }
template <> inline MPI_Datatype mpi_type<float>() { return MPI_FLOAT; }
template <> inline MPI_Datatype mpi_type<int>() { return MPI_INT; }
template <> inline MPI_Datatype mpi_type<long>() { return MPI_LONG; }
template <> inline MPI_Datatype mpi_type<long long>() { return MPI_LONG_LONG; }
template <> inline MPI_Datatype mpi_type<unsigned long>() { return MPI_UNSIGNED_LONG; }
template <> inline MPI_Datatype mpi_type<unsigned long long>() { return MPI_UNSIGNED_LONG_LONG; }
template <> inline MPI_Datatype mpi_type<char>() { return MPI_CHAR; }
template <> inline MPI_Datatype mpi_type<unsigned char>() { return MPI_UNSIGNED_CHAR; }

/// Owns MPI for the life of the program (main creates exactly one).
class Environment {
public:
  Environment(int& argc, char**& argv);
  ~Environment();
  Environment(const Environment&) = delete;
  Environment& operator=(const Environment&) = delete;
  /// Abort every process of the job (used when one rank fails outside a collective).
  [[noreturn]] static void abort(int code);
};

enum class Op { sum, max, min, land, lor };

/// A communicator. Constructed from an existing one it duplicates it (the library never uses
/// MPI_COMM_WORLD itself) and sets MPI_ERRORS_RETURN. Move-only; frees the duplicate.
class Comm {
public:
  Comm() = default;
  /// Duplicates `c` and sets MPI_ERRORS_RETURN on the duplicate.
  explicit Comm(MPI_Comm c);
  static Comm world() { return Comm(MPI_COMM_WORLD); }
  /// A communicator of this one process alone.
  static Comm self() { return Comm(MPI_COMM_SELF); }
  ~Comm();
  Comm(Comm&& o) noexcept;
  Comm& operator=(Comm&& o) noexcept;
  Comm(const Comm&) = delete;
  Comm& operator=(const Comm&) = delete;

  int rank() const { return rank_; }
  int size() const { return size_; }
  MPI_Comm raw() const { return comm_; }
  bool valid() const { return comm_ != MPI_COMM_NULL; }

  void barrier() const;
  /// Processes with the same color form a new communicator, ordered by key then rank.
  Comm split(int color, int key) const;

  template <class T> void allreduce(std::span<T> data, Op op = Op::sum) const {
    if (size_ == 1 || data.empty()) return;
    mpi_check(MPI_Allreduce(MPI_IN_PLACE, data.data(), static_cast<int>(data.size()), mpi_type<T>(), mpi_op(op), comm_),
              "MPI_Allreduce");
  }
  template <class T> T allreduce(T value, Op op = Op::sum) const {
    allreduce(std::span<T>(&value, 1), op);
    return value;
  }
  template <class T> void bcast(std::span<T> data, int root) const {
    if (size_ == 1 || data.empty()) return;
    mpi_check(MPI_Bcast(data.data(), static_cast<int>(data.size()), mpi_type<T>(), root, comm_), "MPI_Bcast");
  }
  std::string bcast(const std::string& s, int root) const;
  /// Every process contributes `local` (any length); all receive the concatenation in rank order.
  template <class T> std::vector<T> allgatherv(std::span<const T> local) const {
    int n = static_cast<int>(local.size());
    std::vector<int> counts(static_cast<size_t>(size_)), displs(static_cast<size_t>(size_));
    mpi_check(MPI_Allgather(&n, 1, MPI_INT, counts.data(), 1, MPI_INT, comm_), "MPI_Allgather");
    int total = 0;
    for (int p = 0; p < size_; ++p) {
      displs[static_cast<size_t>(p)] = total;
      total += counts[static_cast<size_t>(p)];
    }
    std::vector<T> out(static_cast<size_t>(total));
    mpi_check(
        MPI_Allgatherv(local.data(), n, mpi_type<T>(), out.data(), counts.data(), displs.data(), mpi_type<T>(), comm_),
        "MPI_Allgatherv");
    return out;
  }

  /// Personalized exchange: send[sdispls[q] .. + scounts[q]) goes to process q, and what process p sends
  /// lands at recv[rdispls[p] .. + rcounts[p]) (counts and offsets in elements, one per process).
  template <class T>
  void alltoallv(std::span<const T> send, const std::vector<int>& scounts, const std::vector<int>& sdispls,
                 std::span<T> recv, const std::vector<int>& rcounts, const std::vector<int>& rdispls) const {
    mpi_check(MPI_Alltoallv(send.data(), scounts.data(), sdispls.data(), mpi_type<T>(), recv.data(), rcounts.data(),
                            rdispls.data(), mpi_type<T>(), comm_),
              "MPI_Alltoallv");
  }

  /// True on every process if `flag` is true on any process (one collective).
  bool any(bool flag) const { return allreduce(flag ? 1 : 0, Op::max) != 0; }

  static MPI_Op mpi_op(Op op);

private:
  MPI_Comm comm_ = MPI_COMM_NULL;
  int rank_ = 0;
  int size_ = 1;
};

/// Run `f` on every rank; if it throws on any rank, every rank learns about it (one collective) and
/// the exception (or a summary naming the failing rank) is rethrown on every rank. Use it around work
/// that may fail on some ranks only, before the next collective.
template <class F> void collective_try(const Comm& comm, F&& f);

/// Used by collective_try: agree on failure. Returns the message of the lowest failing rank.
std::string agree_on_error(const Comm& comm, const std::string& local_error, int* failing_rank);

template <class F> void collective_try(const Comm& comm, F&& f) {
  std::string msg;
  int kind = 0;
  try {
    f();
  } catch (const ConfigError& e) {
    msg = e.what();
    kind = 1;
  } catch (const DataError& e) {
    msg = e.what();
    kind = 2;
  } catch (const IoError& e) {
    msg = e.what();
    kind = 3;
  } catch (const std::exception& e) {
    msg = e.what();
    kind = 4;
  }
  int failing = -1;
  const int kind_all = comm.allreduce(kind, Op::max);
  if (kind_all == 0) return;
  std::string agreed = agree_on_error(comm, kind ? msg : std::string(), &failing);
  switch (kind_all) {
  case 1: throw ConfigError(agreed);
  case 2: throw DataError(agreed);
  case 3: throw IoError(agreed);
  default: throw Error(agreed);
  }
}

} // namespace unmix

namespace unmix {
/// Non-blocking barrier on MPI_COMM_WORLD, polled for at most `seconds`: true if every rank called
/// it in time. Used only by main, after an error, to decide between a clean exit and MPI_Abort.
bool all_ranks_arrive(double seconds);
/// UNMIX_ERROR_GRACE (seconds) or 5.
double error_grace_seconds();
} // namespace unmix
