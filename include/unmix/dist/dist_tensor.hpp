#pragma once
// A tensor block-partitioned over a process grid. Each process holds its box as a dense column-major
// Tensor; reductions across processes are methods here, so the maths above never sees MPI.
#include <map>
#include <memory>
#include <span>

#include "unmix/core/mpi.hpp"
#include "unmix/core/tensor.hpp"
#include "unmix/dist/layout.hpp"

namespace unmix {

/// Communicators over subsets of a process grid, made once and cached. `free_modes` is a bit mask of
/// grid modes: the processes in one sub-communicator differ only in those modes' coordinates.
class GridComms {
public:
  GridComms(const Comm& comm, ProcessGrid grid);
  const Comm& comm() const { return *comm_; }
  const ProcessGrid& grid() const { return grid_; }
  const std::vector<int>& coords() const { return coords_; }
  const Comm& sub(unsigned free_modes) const;
  unsigned all_modes() const { return (1u << grid_.order()) - 1u; }

private:
  const Comm* comm_;
  ProcessGrid grid_;
  std::vector<int> coords_;
  mutable std::map<unsigned, std::unique_ptr<Comm>> cache_;
};

/// What a model needs to know of the data's values before it starts: the sum of squares and the range of the
/// finite entries, and the count of entries that are NaN or infinite (global, the same on every process).
struct ValueSummary {
  double sum2 = 0, min = 0, max = 0, nonfinite = 0;
};

template <class T> class DistTensor {
public:
  DistTensor(const Comm& comm, BlockLayout layout)
      : comms_(std::make_shared<GridComms>(comm, layout.grid())), layout_(std::move(layout)),
        offset_(layout_.box_offset(comm.rank())), local_(layout_.box_shape(comm.rank())) {
    if (layout_.grid().size() != comm.size())
      throw ConfigError("process grid " + layout_.grid().to_string() + " has " + std::to_string(layout_.grid().size()) +
                        " processes but the job has " + std::to_string(comm.size()));
  }

  /// With this process's box given (moved in; its shape must be the layout's box for this process).
  DistTensor(const Comm& comm, BlockLayout layout, Tensor<T>&& local)
      : comms_(std::make_shared<GridComms>(comm, layout.grid())), layout_(std::move(layout)),
        offset_(layout_.box_offset(comm.rank())), local_(std::move(local)) {
    if (layout_.grid().size() != comm.size())
      throw ConfigError("process grid " + layout_.grid().to_string() + " has " + std::to_string(layout_.grid().size()) +
                        " processes but the job has " + std::to_string(comm.size()));
    if (local_.shape() != layout_.box_shape(comm.rank()))
      throw Error("DistTensor: a local box of shape " + shape_string(local_.shape()) + " where the layout gives " +
                  shape_string(layout_.box_shape(comm.rank())));
  }

  const Comm& comm() const { return comms_->comm(); }
  const GridComms& comms() const { return *comms_; }
  std::shared_ptr<GridComms> comms_ptr() const { return comms_; }
  const BlockLayout& layout() const { return layout_; }
  const ProcessGrid& grid() const { return layout_.grid(); }
  const Shape& global_shape() const { return layout_.global_shape(); }
  const Shape& offset() const { return offset_; }
  Tensor<T>& local() { return local_; }
  const Tensor<T>& local() const { return local_; }

  /// Global sums over all processes (each entry counted once).
  double sum() const;
  double norm2_squared() const;
  /// Collective over all processes.
  ValueSummary summary() const;

private:
  std::shared_ptr<GridComms> comms_;
  BlockLayout layout_;
  Shape offset_;
  Tensor<T> local_;
};

extern template class DistTensor<float>;
extern template class DistTensor<double>;

/// Copies values of the box (offset `off`, extents `ext`) of a column-major tensor of shape `global` into `out`:
/// the box's values `first` to `first + out.size()` in its own column-major order, a run along the first mode at a
/// time (first = 0 and out.size() = the box's size copy it whole).
template <class T>
void copy_box(std::span<const T> whole, const Shape& global, const Shape& off, const Shape& ext, std::size_t first,
              std::span<T> out);

/// The tensor `whole` (column-major, of `layout`'s global shape), read on process `root` only, as a DistTensor
/// over `comm`: the root sends every other process its box, one box at a time (in messages of at most 8 MiB,
/// or mpi_message_bytes() where smaller), so that no process but the root ever holds more than its own block.
/// Collective; a `whole` of the wrong size on the root is refused on every process before any block is sent.
template <class T>
DistTensor<T> scatter_whole(const Comm& comm, BlockLayout layout, std::span<const T> whole, int root = 0);

} // namespace unmix
