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
void copy_box(std::span<const T> whole, const Shape& global, const Shape& off, const Shape& ext, std::size_t first,
              std::span<T> out) {
  const std::size_t N = global.size(), count = shape_size(ext);
  if (whole.size() != shape_size(global) || off.size() != N || ext.size() != N || first > count ||
      out.size() > count - first)
    throw Error("copy_box: the box does not match the arrays");
  if (out.empty()) return;
  for (std::size_t n = 0; n < N; ++n)
    if (off[n] + ext[n] > global[n]) throw Error("copy_box: the box does not match the arrays");
  // idx: the box position of the next value to copy (mode 0 fastest); each step copies a run along mode 0.
  std::vector<std::size_t> idx(N);
  for (std::size_t n = 0, rest = first; n < N; ++n) {
    idx[n] = rest % ext[n];
    rest /= ext[n];
  }
  for (std::size_t at = 0; at < out.size();) {
    std::size_t g = off[0] + idx[0], stride = global[0];
    for (std::size_t n = 1; n < N; ++n) {
      g += (off[n] + idx[n]) * stride;
      stride *= global[n];
    }
    const std::size_t run = std::min(ext[0] - idx[0], out.size() - at);
    std::copy_n(whole.begin() + static_cast<std::ptrdiff_t>(g), run, out.begin() + static_cast<std::ptrdiff_t>(at));
    at += run;
    idx[0] += run;
    for (std::size_t n = 0; n + 1 < N && idx[n] == ext[n]; ++n) {
      idx[n] = 0;
      ++idx[n + 1];
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
  // Messages of at most 8 MiB (or mpi_message_bytes()), packed one at a time: the root needs no more than that
  // beside the whole tensor and its own block.
  const std::size_t piece =
      std::clamp<std::size_t>(std::min(mpi_message_bytes(), std::size_t{8} << 20) / sizeof(T), 1, INT32_MAX);
  constexpr int tag = 7302;
  if (comm.rank() != root) {
    std::span<T> mine = out.local().span();
    for (std::size_t at = 0; at < mine.size(); at += piece)
      mpi_check(MPI_Recv(mine.data() + at, static_cast<int>(std::min(piece, mine.size() - at)), mpi_type<T>(), root,
                         tag, comm.raw(), MPI_STATUS_IGNORE),
                "MPI_Recv");
    return out;
  }
  std::vector<T> pack;
  for (int q = 0; q < comm.size(); ++q) {
    const Shape off = out.layout().box_offset(q), ext = out.layout().box_shape(q);
    const std::size_t count = shape_size(ext);
    if (q == root) {
      copy_box(whole, global, off, ext, 0, out.local().span());
      continue;
    }
    for (std::size_t at = 0; at < count; at += piece) {
      pack.resize(std::min(piece, count - at));
      copy_box(whole, global, off, ext, at, std::span<T>(pack));
      mpi_check(MPI_Send(pack.data(), static_cast<int>(pack.size()), mpi_type<T>(), q, tag, comm.raw()), "MPI_Send");
    }
  }
  return out;
}

template void copy_box<float>(std::span<const float>, const Shape&, const Shape&, const Shape&, std::size_t,
                              std::span<float>);
template void copy_box<double>(std::span<const double>, const Shape&, const Shape&, const Shape&, std::size_t,
                               std::span<double>);
template DistTensor<float> scatter_whole<float>(const Comm&, BlockLayout, std::span<const float>, int);
template DistTensor<double> scatter_whole<double>(const Comm&, BlockLayout, std::span<const double>, int);

} // namespace unmix
