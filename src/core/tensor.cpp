#include "unmix/core/tensor.hpp"

#include <cstdint>

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace unmix {

void advise_large_pages(void* p, std::size_t bytes) {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  constexpr std::uintptr_t huge = std::uintptr_t{2} << 20;
  if (!p || bytes < 4 * huge) return;
  const auto begin = (reinterpret_cast<std::uintptr_t>(p) + huge - 1) & ~(huge - 1);
  const auto end = (reinterpret_cast<std::uintptr_t>(p) + bytes) & ~(huge - 1);
  if (end > begin) (void)::madvise(reinterpret_cast<void*>(begin), end - begin, MADV_HUGEPAGE);
#else
  (void)p;
  (void)bytes;
#endif
}

std::string shape_string(const Shape& s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (i) out += " x ";
    out += std::to_string(s[i]);
  }
  return out.empty() ? "(scalar)" : out;
}

template <class T> Tensor<T> permute(const Tensor<T>& in, std::span<const std::size_t> perm) {
  const std::size_t N = in.order();
  if (perm.size() != N) throw DataError("permutation has the wrong length");
  Shape out_shape(N);
  for (std::size_t k = 0; k < N; ++k) out_shape[k] = in.shape()[perm[k]];
  Tensor<T> out(out_shape);
  // Strides of the input, in the order of the output's modes.
  std::vector<std::size_t> in_stride(N), stride_in_order(N);
  std::size_t s = 1;
  for (std::size_t n = 0; n < N; ++n) {
    in_stride[n] = s;
    s *= in.shape()[n];
  }
  for (std::size_t k = 0; k < N; ++k) stride_in_order[k] = in_stride[perm[k]];
  std::vector<std::size_t> idx(N, 0);
  std::size_t src = 0;
  for (std::size_t lin = 0; lin < out.size(); ++lin) {
    out[lin] = in[src];
    for (std::size_t k = 0; k < N; ++k) {
      if (++idx[k] < out_shape[k]) {
        src += stride_in_order[k];
        break;
      }
      src -= (out_shape[k] - 1) * stride_in_order[k];
      idx[k] = 0;
    }
  }
  return out;
}

template Tensor<float> permute(const Tensor<float>&, std::span<const std::size_t>);
template Tensor<double> permute(const Tensor<double>&, std::span<const std::size_t>);

} // namespace unmix
