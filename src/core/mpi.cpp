#include "unmix/core/mpi.hpp"

#include <cstdlib>
#include <ctime>
#include <utility>

namespace unmix {

namespace {
std::size_t message_bytes = std::size_t{1} << 30;
}

std::size_t mpi_message_bytes() { return message_bytes; }

std::size_t set_mpi_message_bytes(std::size_t bytes) {
  return std::exchange(message_bytes, std::max<std::size_t>(bytes, 1));
}

void mpi_check(int rc, const char* what) {
  if (rc == MPI_SUCCESS) return;
  char buf[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(rc, buf, &len);
  throw MpiError(std::string(what) + " failed: " + std::string(buf, static_cast<size_t>(len)));
}

Environment::Environment(int& argc, char**& argv) {
  int initialized = 0;
  MPI_Initialized(&initialized);
  if (!initialized) {
    int provided = 0;
    mpi_check(MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided), "MPI_Init_thread");
  }
  // Errors on the world communicator (used only by main's last-resort abort) are returned too.
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
}

Environment::~Environment() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized) MPI_Finalize();
}

void Environment::abort(int code) {
  MPI_Abort(MPI_COMM_WORLD, code);
  std::_Exit(code);
}

Comm::Comm(MPI_Comm c) {
  mpi_check(MPI_Comm_dup(c, &comm_), "MPI_Comm_dup");
  mpi_check(MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN), "MPI_Comm_set_errhandler");
  mpi_check(MPI_Comm_rank(comm_, &rank_), "MPI_Comm_rank");
  mpi_check(MPI_Comm_size(comm_, &size_), "MPI_Comm_size");
}

Comm::~Comm() {
  if (comm_ != MPI_COMM_NULL) {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (!finalized) MPI_Comm_free(&comm_);
  }
}

Comm::Comm(Comm&& o) noexcept : comm_(std::exchange(o.comm_, MPI_COMM_NULL)), rank_(o.rank_), size_(o.size_) {}

Comm& Comm::operator=(Comm&& o) noexcept {
  if (this != &o) {
    if (comm_ != MPI_COMM_NULL) MPI_Comm_free(&comm_);
    comm_ = std::exchange(o.comm_, MPI_COMM_NULL);
    rank_ = o.rank_;
    size_ = o.size_;
  }
  return *this;
}

void Comm::barrier() const { mpi_check(MPI_Barrier(comm_), "MPI_Barrier"); }

namespace {
// Wraps a communicator MPI just created (the wrapper keeps a duplicate) and frees the original.
Comm adopt(MPI_Comm created) {
  Comm c(created);
  MPI_Comm_free(&created);
  return c;
}
} // namespace

Comm Comm::split(int color, int key) const {
  MPI_Comm out = MPI_COMM_NULL;
  mpi_check(MPI_Comm_split(comm_, color, key, &out), "MPI_Comm_split");
  return adopt(out);
}

Comm Comm::split_node() const {
  MPI_Comm out = MPI_COMM_NULL;
  mpi_check(MPI_Comm_split_type(comm_, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &out), "MPI_Comm_split_type");
  return adopt(out);
}

std::string Comm::bcast(const std::string& s, int root) const {
  unsigned long n = s.size();
  bcast(std::span<unsigned long>(&n, 1), root);
  std::string out = s;
  out.resize(n);
  bcast(std::span<char>(out.data(), n), root);
  return out;
}

MPI_Op Comm::mpi_op(Op op) {
  switch (op) {
  case Op::sum: return MPI_SUM;
  case Op::max: return MPI_MAX;
  case Op::min: return MPI_MIN;
  case Op::land: return MPI_LAND;
  case Op::lor: return MPI_LOR;
  }
  return MPI_SUM;
}

std::string agree_on_error(const Comm& comm, const std::string& local_error, int* failing_rank) {
  const int mine = local_error.empty() ? comm.size() : comm.rank();
  const int first = comm.allreduce(mine, Op::min);
  if (failing_rank) *failing_rank = first;
  std::string msg = comm.bcast(comm.rank() == first ? local_error : std::string(), first);
  return msg;
}

} // namespace unmix

namespace unmix {

bool all_ranks_arrive(double seconds) {
  MPI_Request req;
  if (MPI_Ibarrier(MPI_COMM_WORLD, &req) != MPI_SUCCESS) return false;
  const double t0 = MPI_Wtime();
  int done = 0;
  while (true) {
    if (MPI_Test(&req, &done, MPI_STATUS_IGNORE) != MPI_SUCCESS) return false;
    if (done) return true;
    if (MPI_Wtime() - t0 > seconds) return false;
    struct timespec ts {
      0, 1000000
    };
    nanosleep(&ts, nullptr);
  }
}

double error_grace_seconds() {
  if (const char* s = std::getenv("UNMIX_ERROR_GRACE")) {
    char* end = nullptr;
    const double v = std::strtod(s, &end);
    if (end != s && v > 0) return v;
  }
  return 5.0;
}

} // namespace unmix
