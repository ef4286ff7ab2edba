#include "unmix/dist/dist_tensor.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

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

} // namespace unmix
