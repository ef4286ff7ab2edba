#include "unmix/dist/dist_tensor.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

namespace unmix {

GridComms::GridComms(const Comm& comm, ProcessGrid grid)
    : comm_(&comm), grid_(std::move(grid)), coords_(grid_.coords(comm.rank())) {}

const Comm& GridComms::sub(unsigned free_modes) const {
  auto it = cache_.find(free_modes);
  if (it != cache_.end()) return *it->second;
  // Color: the coordinates in the fixed modes; key: the rank (keeps grid order inside).
  int color = 0;
  for (std::size_t n = grid_.order(); n-- > 0;) {
    const bool free_mode = (free_modes >> n) & 1u;
    color = color * grid_.dim(n) + (free_mode ? 0 : coords_[n]);
  }
  auto c = std::make_unique<Comm>(comm_->split(color, comm_->rank()));
  const Comm& ref = *c;
  cache_.emplace(free_modes, std::move(c));
  return ref;
}

template <class T> double DistTensor<T>::sum() const {
  double s = 0;
  for (T v : local_.span()) s += static_cast<double>(v);
  return comm().allreduce(s);
}

template <class T> double DistTensor<T>::norm2_squared() const {
  double s = 0;
  for (T v : local_.span()) s += static_cast<double>(v) * static_cast<double>(v);
  return comm().allreduce(s);
}

template <class T> ValueSummary DistTensor<T>::summary() const {
  double s2 = 0, mn = std::numeric_limits<double>::infinity(), mx = -mn, bad = 0;
  for (T v : local_.span()) {
    const double d = static_cast<double>(v);
    if (!std::isfinite(d)) {
      bad += 1;
      continue;
    }
    s2 += d * d;
    mn = std::min(mn, d);
    mx = std::max(mx, d);
  }
  ValueSummary out;
  out.sum2 = comm().allreduce(s2);
  out.min = comm().allreduce(mn, Op::min);
  out.max = comm().allreduce(mx, Op::max);
  out.nonfinite = comm().allreduce(bad);
  return out;
}

template class DistTensor<float>;
template class DistTensor<double>;

template <class T>
void copy_box(std::span<const T> whole, const Shape& global, const Shape& off, const Shape& ext, std::span<T> out) {
  const std::size_t N = global.size(), count = shape_size(ext);
  if (out.size() != count || whole.size() != shape_size(global) || off.size() != N || ext.size() != N)
    throw Error("copy_box: the box does not match the arrays");
  if (count == 0) return;
  // idx runs over the box's modes 1..N-1; each step copies one run of ext[0] values along mode 0.
  std::vector<std::size_t> idx(N, 0);
  for (std::size_t at = 0; at < count; at += ext[0]) {
    std::size_t g = off[0], stride = global[0];
    for (std::size_t n = 1; n < N; ++n) {
      g += (off[n] + idx[n]) * stride;
      stride *= global[n];
    }
    std::copy_n(whole.begin() + static_cast<std::ptrdiff_t>(g), ext[0], out.begin() + static_cast<std::ptrdiff_t>(at));
    for (std::size_t n = 1; n < N; ++n) {
      if (++idx[n] < ext[n]) break;
      idx[n] = 0;
    }
  }
}

template <class T>
DistTensor<T> scatter_whole(const Comm& comm, BlockLayout layout, std::span<const T> whole, int root) {
  const Shape global = layout.global_shape();
  const bool bad = comm.rank() == root && whole.size() != shape_size(global);
  if (comm.any(bad))
    throw Error("scatter_whole: process " + std::to_string(root) + " holds " +
                (comm.rank() == root ? std::to_string(whole.size()) + " values" : std::string("a tensor")) +
                " that does not have the shape " + shape_string(global));
  DistTensor<T> out(comm, std::move(layout));
  const std::size_t piece = std::max<std::size_t>(1, std::min<std::size_t>(mpi_message_bytes() / sizeof(T), INT32_MAX));
  constexpr int tag = 7302;
  if (comm.rank() != root) {
    std::span<T> mine = out.local().span();
    for (std::size_t at = 0; at < mine.size(); at += piece)
      mpi_check(MPI_Recv(mine.data() + at, static_cast<int>(std::min(piece, mine.size() - at)), mpi_type<T>(), root,
                         tag, comm.raw(), MPI_STATUS_IGNORE),
                "MPI_Recv");
    return out;
  }
  std::vector<T> box;
  for (int q = 0; q < comm.size(); ++q) {
    const Shape ext = out.layout().box_shape(q);
    if (q == root) {
      copy_box(whole, global, out.offset(), ext, out.local().span());
      continue;
    }
    box.resize(shape_size(ext));
    copy_box(whole, global, out.layout().box_offset(q), ext, std::span<T>(box));
    for (std::size_t at = 0; at < box.size(); at += piece)
      mpi_check(MPI_Send(box.data() + at, static_cast<int>(std::min(piece, box.size() - at)), mpi_type<T>(), q, tag,
                         comm.raw()),
                "MPI_Send");
  }
  return out;
}

template void copy_box<float>(std::span<const float>, const Shape&, const Shape&, const Shape&, std::span<float>);
template void copy_box<double>(std::span<const double>, const Shape&, const Shape&, const Shape&, std::span<double>);
template DistTensor<float> scatter_whole<float>(const Comm&, BlockLayout, std::span<const float>, int);
template DistTensor<double> scatter_whole<double>(const Comm&, BlockLayout, std::span<const double>, int);

} // namespace unmix
