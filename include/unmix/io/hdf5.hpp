#pragma once
// Parallel HDF5: every HDF5 call is wrapped once (h5_call) and throws IoError with HDF5's own message.
// Files are opened with the MPI-IO driver; reads and writes of distributed data are collective, each
// process moving only its own hyperslab.
#include <hdf5.h>

#include <functional>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "unmix/core/mpi.hpp"
#include "unmix/core/tensor.hpp"
#include "unmix/dist/dist_tensor.hpp"

namespace unmix::h5 {

/// Owns an hid_t and closes it with the right H5*close.
class Handle {
public:
  using Closer = herr_t (*)(hid_t);
  Handle() = default;
  Handle(hid_t id, Closer closer) : id_(id), closer_(closer) {}
  ~Handle() { reset(); }
  Handle(Handle&& o) noexcept : id_(std::exchange(o.id_, H5I_INVALID_HID)), closer_(o.closer_) {}
  Handle& operator=(Handle&& o) noexcept {
    if (this != &o) {
      reset();
      id_ = std::exchange(o.id_, H5I_INVALID_HID);
      closer_ = o.closer_;
    }
    return *this;
  }
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
  hid_t id() const { return id_; }
  operator hid_t() const { return id_; }
  void reset();

private:
  hid_t id_ = H5I_INVALID_HID;
  Closer closer_ = nullptr;
};

/// Checks the result of an HDF5 call (negative = failure) and throws IoError naming `what` and
/// `context` (the file and dataset), with the innermost messages of HDF5's error stack.
long long check(long long rc, const char* what, const std::string& context);

struct DatasetInfo {
  std::string name; // full path inside the file, e.g. "/Y_1025_points"
  Shape dims;       // as C and h5py show them (slowest first)
  std::string type; // "float64", "int32", "string", ...
  bool numeric = false;
};

class File {
public:
  /// Opens an existing file for reading, collectively over `comm`. Clear errors for a missing,
  /// unreadable or non-HDF5 file.
  static File open_read(const Comm& comm, const std::string& path);
  /// Creates (truncates) a file for writing, collectively.
  static File create(const Comm& comm, const std::string& path);

  const std::string& path() const { return path_; }
  hid_t id() const { return file_.id(); }
  const Comm& comm() const { return *comm_; }

  std::vector<DatasetInfo> datasets() const;
  DatasetInfo info(const std::string& dataset) const; // throws DataError naming the datasets there
  bool has(const std::string& dataset) const;

  /// Reads the hyperslab [start, start+count) (C order dims) as doubles into `out` (C order).
  /// Collective: every process calls it, possibly with an empty count.
  void read_slab(const std::string& dataset, const Shape& start, const Shape& count, std::vector<double>& out) const;
  /// Reads a whole (small) dataset on every process, C order.
  std::vector<double> read_all(const std::string& dataset, Shape* dims = nullptr) const;

  /// Creates a float64/float32 dataset of C-order `dims` (collective), to be filled by write_into.
  template <class T> void create_dataset(const std::string& dataset, const Shape& dims) const;
  /// Writes each process's hyperslab [start, start+count) (C-order data) of an existing dataset.
  /// Collective: every process calls it, possibly with an empty count.
  template <class T>
  void write_into(const std::string& dataset, const Shape& start, const Shape& count, std::span<const T> data) const;
  /// Creates a float64/float32 dataset of C-order `dims` and writes each process's hyperslab
  /// (`start`, `count`, C-order data); processes that contribute nothing pass an empty count.
  template <class T>
  void write_slab(const std::string& dataset, const Shape& dims, const Shape& start, const Shape& count,
                  std::span<const T> data) const;
  template <class T, class Alloc>
  void write_slab(const std::string& dataset, const Shape& dims, const Shape& start, const Shape& count,
                  const std::vector<T, Alloc>& data) const {
    write_slab<T>(dataset, dims, start, count, std::span<const T>(data));
  }
  /// A small array that every process holds identically: written once (rank 0's data).
  template <class T>
  void write_replicated(const std::string& dataset, const Shape& dims, std::span<const T> data) const;
  template <class T, class Alloc>
  void write_replicated(const std::string& dataset, const Shape& dims, const std::vector<T, Alloc>& data) const {
    write_replicated<T>(dataset, dims, std::span<const T>(data));
  }

  void attr(const std::string& name, const std::string& value) const;
  void attr(const std::string& name, double value) const;
  void attr(const std::string& name, long long value) const;
  /// An unsigned 64-bit integer (seeds take all 64 bits).
  void attr(const std::string& name, unsigned long long value) const;
  std::optional<std::string> attr_string(const std::string& name) const;
  std::optional<double> attr_double(const std::string& name) const;
  /// A table: one float64 column per name, written as a compound dataset (one row per entry).
  void write_table(const std::string& dataset, const std::vector<std::string>& columns,
                   const std::vector<std::vector<double>>& rows) const;
  std::vector<std::vector<double>> read_table(const std::string& dataset, std::vector<std::string>* columns) const;

  void close();

private:
  File(const Comm& comm, std::string path, Handle file)
      : comm_(&comm), path_(std::move(path)), file_(std::move(file)) {}
  const Comm* comm_;
  std::string path_;
  Handle file_;
};

/// Reads the box [start, start + count) of a dataset (C-order file axes, at least one) in pieces of at
/// most io_piece_bytes() of doubles, calling take(at, piece, values) for each: `at` the piece's position
/// in the box, `piece` its counts, `values` C order over it. Collective: every process calls it with its
/// own box (possibly empty), and all make the same number of reads.
using PieceFn = std::function<void(const Shape& at, const Shape& piece, const std::vector<double>& values)>;
void read_in_pieces(const File& f, const std::string& dataset, const Shape& start, const Shape& count,
                    const PieceFn& take);
/// The piece size of reading (read_in_pieces) and of write_distributed: 64 MiB unless changed; the same
/// on every process.
std::size_t io_piece_bytes();
/// Sets it and returns the previous one. Tests set a few bytes to exercise many pieces.
std::size_t set_io_piece_bytes(std::size_t bytes);

/// The memory a process needs to read a block of `block_values` values of `value_bytes` each with
/// read_distributed: the block and one read piece (of doubles); with `working`, what it holds beside the
/// block afterwards (a solve's arrays), the larger of the two (the piece is gone by then).
double read_footprint_bytes(double block_values, std::size_t value_bytes, double working = 0);

/// The memory check before reading, for `bytes_here` on each process of `comm` (collective): the processes
/// of each node sum them and compare with `memory_limit` (0: the job's cgroup limit, else the node's
/// memory); DataError on every process where they do not fit, naming `what`, the sizes and the remedies
/// (`advice`, if not empty, is one more, such as "use fewer --groups, "). read_distributed makes it for
/// its own block; callers that hold more than one read (`unmix rank`'s groups) make it for all.
/// `holds` names what bytes_here counts, for the message.
void require_memory(const Comm& comm, double bytes_here, double memory_limit, const std::string& what,
                    const std::string& advice = "", const std::string& holds = "their block and read buffer");

/// What a process will hold beside its block of Y once it is read (a solve's arrays), from the tensor's
/// and its block's shapes (mode order: the mixtures first) and whether the grid splits the mixture mode;
/// for the check before reading.
using WorkingBytes = std::function<double(const Shape& global, const Shape& box, bool mixture_split)>;

/// Reads `dataset` of `path` into a tensor distributed over `grid` (nullopt: the default grid).
/// The tensor's mode 0 is file axis `mixture_axis`; the other modes are the remaining file axes in
/// the order h5py shows them. Each process reads only its box, in pieces (read_in_pieces), so that
/// reading needs little more memory than the local block itself.
/// Before allocating, the processes of each node check that their blocks (and reading pieces) fit in
/// `memory_limit` bytes per node (0: the job's cgroup limit, else the node's memory) and throw DataError,
/// on every process, where they do not: a clear message instead of the system killing the job. `working`,
/// if given, adds what the caller will hold beside the block (`working_what` names it in the message).
template <class T>
DistTensor<T> read_distributed(const Comm& comm, const std::string& path, const std::string& dataset, int mixture_axis,
                               const std::optional<std::string>& grid, double memory_limit = 0,
                               const WorkingBytes& working = {}, const std::string& working_what = "");

/// Writes the local boxes of a distributed array (column-major local blocks, global `dims` in the
/// tensor's own mode order) as a C-order dataset with the same axis order. Only processes with
/// `owner` true contribute (replicas pass false). In pieces of io_piece_bytes(), so that writing needs
/// one piece of memory beside the block. Collective.
template <class T>
void write_distributed(const File& file, const std::string& dataset, const Shape& dims, const Shape& offset,
                       const Tensor<T>& local, bool owner);

/// The values of the box [at, at + count) of this process's box of an array, column-major (count's shape).
using BoxFn = std::function<Tensor<double>(const Shape& at, const Shape& count)>;
/// As write_distributed (float64), for an array that no process holds whole (the sources of CP and Tucker,
/// a product of factors): `make` forms each piece of this process's box (shape `box`) as it is written, so
/// writing needs about three quarters of a read piece (pieces of a quarter, each held three times while it is
/// formed and reordered) whatever the array's size. Collective.
void write_generated(const File& file, const std::string& dataset, const Shape& dims, const Shape& offset,
                     const Shape& box, bool owner, const BoxFn& make);

/// Reads the box [offset, offset+shape) of a dataset whose axes are in the tensor's own order (as unmix
/// writes factors) into a column-major tensor. Collective.
Tensor<double> read_box(const File& file, const std::string& dataset, const Shape& offset, const Shape& shape);

/// The checks before writing an output `kind` ("file", "folder") at `final_path`: a path is given (else
/// ConfigError naming `usage`, e.g. "--out FILE.h5"), it does not exist unless `overwrite`, and its
/// folder exists and is writable. Run it on one process.
void check_output_path(const std::string& final_path, bool overwrite, const std::string& kind,
                       const std::string& usage);

/// Write to `final_path` atomically: write `tmp_path()` first, then rename on success (rank 0), and
/// remove the temporary on failure.
class AtomicOutput {
public:
  AtomicOutput(const Comm& comm, std::string final_path, bool overwrite);
  ~AtomicOutput(); // removes the temporary if commit() was never reached
  const std::string& tmp_path() const { return tmp_; }
  const std::string& final_path() const { return final_; }
  void commit(); // collective
  AtomicOutput(const AtomicOutput&) = delete;
  AtomicOutput& operator=(const AtomicOutput&) = delete;

private:
  const Comm* comm_;
  std::string final_, tmp_;
  bool done_ = false;
};

} // namespace unmix::h5
