#pragma once
// RAII MPI environment and a communicator wrapper with typed collectives. Every MPI call goes through
// check(), and the wrapped communicators use MPI_ERRORS_RETURN, so failures surface as MpiError.
#include <mpi.h>

#include <algorithm>
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

/// The most bytes one MPI call of Comm's collectives carries (1 GiB): larger data goes in several calls
/// (MPI counts and offsets are int). set_mpi_message_bytes() changes it for the whole process and returns
/// the previous value; tests set a few bytes so that the pieces are exercised at small sizes. Every
/// process of a communicator must use the same value.
std::size_t mpi_message_bytes();
std::size_t set_mpi_message_bytes(std::size_t bytes);

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
  /// The processes of this communicator that share this node's memory.
  Comm split_node() const;

  // Collectives take any number of elements: MPI counts are int, so data larger than one message
  // (mpi_message_bytes(), 1 GiB unless changed) goes in several calls, never through a count that wraps.

  template <class T> void allreduce(std::span<T> data, Op op = Op::sum) const {
    if (size_ == 1 || data.empty()) return;
    const std::size_t piece = message_elements<T>();
    for (std::size_t at = 0; at < data.size(); at += piece)
      mpi_check(MPI_Allreduce(MPI_IN_PLACE, data.data() + at, static_cast<int>(std::min(piece, data.size() - at)),
                              mpi_type<T>(), mpi_op(op), comm_),
                "MPI_Allreduce");
  }
  template <class T> T allreduce(T value, Op op = Op::sum) const {
    allreduce(std::span<T>(&value, 1), op);
    return value;
  }
  template <class T> void bcast(std::span<T> data, int root) const {
    if (size_ == 1 || data.empty()) return;
    const std::size_t piece = message_elements<T>();
    for (std::size_t at = 0; at < data.size(); at += piece)
      mpi_check(
          MPI_Bcast(data.data() + at, static_cast<int>(std::min(piece, data.size() - at)), mpi_type<T>(), root, comm_),
          "MPI_Bcast");
  }
  std::string bcast(const std::string& s, int root) const;
  /// Every process contributes `local` (any length); all receive the concatenation in rank order.
  template <class T> std::vector<T> allgatherv(std::span<const T> local) const {
    const auto P = static_cast<std::size_t>(size_);
    unsigned long long n = local.size();
    std::vector<unsigned long long> counts(P);
    mpi_check(MPI_Allgather(&n, 1, MPI_UNSIGNED_LONG_LONG, counts.data(), 1, MPI_UNSIGNED_LONG_LONG, comm_),
              "MPI_Allgather");
    std::vector<std::size_t> at(P + 1, 0);
    for (std::size_t p = 0; p < P; ++p) at[p + 1] = at[p] + counts[p];
    std::vector<T> out(at[P]);
    if (at[P] <= message_elements<T>()) {
      std::vector<int> c(P), d(P);
      for (std::size_t p = 0; p < P; ++p) {
        c[p] = static_cast<int>(counts[p]);
        d[p] = static_cast<int>(at[p]);
      }
      mpi_check(MPI_Allgatherv(local.data(), c[static_cast<std::size_t>(rank_)], mpi_type<T>(), out.data(), c.data(),
                               d.data(), mpi_type<T>(), comm_),
                "MPI_Allgatherv");
      return out;
    }
    // Too large for int offsets: each process broadcasts its part, in pieces (every process knows every count).
    std::copy(local.begin(), local.end(),
              out.begin() + static_cast<std::ptrdiff_t>(at[static_cast<std::size_t>(rank_)]));
    for (std::size_t p = 0; p < P; ++p) bcast(std::span<T>(out.data() + at[p], counts[p]), static_cast<int>(p));
    return out;
  }

  /// Personalized exchange: send[sdispls[q] .. + scounts[q]) goes to process q, and what process p sends
  /// lands at recv[rdispls[p] .. + rcounts[p]) (counts and offsets in elements, one per process, any size).
  template <class T>
  void alltoallv(std::span<const T> send, const std::vector<std::size_t>& scounts,
                 const std::vector<std::size_t>& sdispls, std::span<T> recv, const std::vector<std::size_t>& rcounts,
                 const std::vector<std::size_t>& rdispls) const {
    const auto P = static_cast<std::size_t>(size_);
    if (scounts.size() != P || sdispls.size() != P || rcounts.size() != P || rdispls.size() != P)
      throw Error("alltoallv: counts and offsets need one entry per process");
    std::size_t extent = 0;
    for (std::size_t q = 0; q < P; ++q) {
      if (sdispls[q] + scounts[q] > send.size() || rdispls[q] + rcounts[q] > recv.size())
        throw Error("alltoallv: a count runs past the end of its buffer");
      extent = std::max({extent, sdispls[q] + scounts[q], rdispls[q] + rcounts[q]});
    }
    const std::size_t piece = message_elements<T>();
    if (allreduce(extent > piece ? 1 : 0, Op::max) == 0) {
      std::vector<int> sc(P), sd(P), rc(P), rd(P);
      for (std::size_t q = 0; q < P; ++q) {
        sc[q] = static_cast<int>(scounts[q]);
        sd[q] = static_cast<int>(sdispls[q]);
        rc[q] = static_cast<int>(rcounts[q]);
        rd[q] = static_cast<int>(rdispls[q]);
      }
      mpi_check(MPI_Alltoallv(send.data(), sc.data(), sd.data(), mpi_type<T>(), recv.data(), rc.data(), rd.data(),
                              mpi_type<T>(), comm_),
                "MPI_Alltoallv");
      return;
    }
    // Offsets beyond int: point-to-point messages of at most one piece each, straight from and into the
    // buffers (messages between two processes with the same tag arrive in the order sent).
    std::vector<MPI_Request> requests;
    auto post = [&](auto* base, const std::vector<std::size_t>& counts, const std::vector<std::size_t>& displs,
                    bool receive) {
      for (std::size_t q = 0; q < P; ++q)
        for (std::size_t at = 0; at < counts[q]; at += piece) {
          const int n = static_cast<int>(std::min(piece, counts[q] - at));
          MPI_Request r;
          if (receive)
            mpi_check(MPI_Irecv(const_cast<T*>(base) + displs[q] + at, n, mpi_type<T>(), static_cast<int>(q),
                                kExchangeTag, comm_, &r),
                      "MPI_Irecv");
          else
            mpi_check(MPI_Isend(base + displs[q] + at, n, mpi_type<T>(), static_cast<int>(q), kExchangeTag, comm_, &r),
                      "MPI_Isend");
          requests.push_back(r);
        }
    };
    post(recv.data(), rcounts, rdispls, true);
    post(send.data(), scounts, sdispls, false);
    mpi_check(MPI_Waitall(static_cast<int>(requests.size()), requests.data(), MPI_STATUSES_IGNORE), "MPI_Waitall");
  }

  /// True on every process if `flag` is true on any process (one collective).
  bool any(bool flag) const { return allreduce(flag ? 1 : 0, Op::max) != 0; }

  static MPI_Op mpi_op(Op op);

private:
  static constexpr int kExchangeTag = 7301;
  template <class T> static std::size_t message_elements() {
    return std::clamp<std::size_t>(mpi_message_bytes() / sizeof(T), 1, static_cast<std::size_t>(INT32_MAX));
  }

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
