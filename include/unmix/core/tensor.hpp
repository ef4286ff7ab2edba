#pragma once
// A dense N-way tensor, column-major: mode 1 (index 0) varies fastest. Its mode-1 unfolding is the
// I x (J1...J(N-1)) column-major matrix over the same memory.
#include <cstddef>
#include <new>
#include <numeric>
#include <span>
#include <string>
#include <vector>

#include "unmix/core/error.hpp"

namespace unmix {

using Shape = std::vector<std::size_t>;

inline std::size_t shape_size(const Shape& s) {
  return std::accumulate(s.begin(), s.end(), std::size_t{1}, std::multiplies<>());
}
std::string shape_string(const Shape& s); // "20 x 7 x 1025"

/// Asks for transparent huge pages (madvise MADV_HUGEPAGE) on the 2 MiB-aligned part of an allocation
/// of at least 8 MiB that is not yet touched; a hint only (nothing happens where the kernel has them off
/// or the call fails). Streaming passes over tensors of gigabytes on 4 KiB pages take a TLB miss per
/// page, each a page-table walk (two nested ones under a hypervisor).
void advise_large_pages(void* p, std::size_t bytes);

/// The alignment of a tensor's storage of `bytes` bytes: 64 (a cache line, so that vector loads of
/// aligned rows never straddle two lines), and 2 MiB from 4 MiB up (so that all of a large tensor can sit
/// on 2 MiB pages). The C library's allocator returns large blocks 16 bytes past a page boundary: every
/// 64-byte load of such data touches two lines.
constexpr std::size_t storage_alignment(std::size_t bytes) {
  return bytes >= (std::size_t{4} << 20) ? std::size_t{2} << 20 : 64;
}

/// std::allocator with storage_alignment(): what Tensor stores its values in.
template <class T> struct AlignedAllocator {
  using value_type = T;
  AlignedAllocator() = default;
  template <class U> AlignedAllocator(const AlignedAllocator<U>&) noexcept {}
  T* allocate(std::size_t n) {
    if (n > static_cast<std::size_t>(-1) / sizeof(T)) throw std::bad_array_new_length();
    return static_cast<T*>(::operator new (n * sizeof(T), std::align_val_t{storage_alignment(n * sizeof(T))}));
  }
  void deallocate(T* p, std::size_t n) noexcept {
    ::operator delete (p, n * sizeof(T), std::align_val_t{storage_alignment(n * sizeof(T))});
  }
  template <class U> bool operator==(const AlignedAllocator<U>&) const noexcept { return true; }
};

template <class T> using AlignedVector = std::vector<T, AlignedAllocator<T>>;

template <class T> class Tensor {
public:
  using value_type = T;
  Tensor() = default;
  /// Large tensors (the data) ask the kernel for 2 MiB pages before their memory is first touched
  /// (advise_large_pages), so that a pass over them costs few TLB misses.
  explicit Tensor(Shape shape, T fill = T(0)) : shape_(std::move(shape)) {
    const std::size_t n = shape_size(shape_);
    data_.reserve(n);
    advise_large_pages(data_.data(), n * sizeof(T));
    data_.assign(n, fill);
  }
  /// From values in column-major order: copied from a std::vector, taken over from an AlignedVector.
  Tensor(Shape shape, const std::vector<T>& data)
      : Tensor(std::move(shape), AlignedVector<T>(data.begin(), data.end())) {}
  Tensor(Shape shape, AlignedVector<T>&& data) : shape_(std::move(shape)), data_(std::move(data)) {
    if (data_.size() != shape_size(shape_))
      throw DataError("tensor data has " + std::to_string(data_.size()) + " values but shape " + shape_string(shape_) +
                      " needs " + std::to_string(shape_size(shape_)));
  }

  const Shape& shape() const { return shape_; }
  std::size_t order() const { return shape_.size(); }
  std::size_t extent(std::size_t mode) const { return mode < shape_.size() ? shape_[mode] : 1; }
  std::size_t size() const { return data_.size(); }
  bool empty() const { return data_.empty(); }
  T* data() { return data_.data(); }
  const T* data() const { return data_.data(); }
  std::span<T> span() { return data_; }
  std::span<const T> span() const { return data_; }
  AlignedVector<T>& vec() { return data_; }
  const AlignedVector<T>& vec() const { return data_; }

  /// Rows of the mode-1 unfolding (the first extent) and its columns (the product of the others).
  std::size_t rows() const { return shape_.empty() ? 0 : shape_[0]; }
  std::size_t cols() const { return rows() == 0 ? 0 : data_.size() / rows(); }

  /// Linear index of a multi-index (column-major).
  std::size_t linear(std::span<const std::size_t> idx) const {
    std::size_t lin = 0, stride = 1;
    for (std::size_t n = 0; n < shape_.size(); ++n) {
      lin += idx[n] * stride;
      stride *= shape_[n];
    }
    return lin;
  }
  T& operator[](std::size_t i) { return data_[i]; }
  const T& operator[](std::size_t i) const { return data_[i]; }
  /// Matrix access on the mode-1 unfolding.
  T& operator()(std::size_t i, std::size_t j) { return data_[i + j * rows()]; }
  const T& operator()(std::size_t i, std::size_t j) const { return data_[i + j * rows()]; }

  /// Same data, new shape of the same size.
  void reshape(Shape s) {
    if (shape_size(s) != data_.size())
      throw DataError("cannot reshape " + shape_string(shape_) + " to " + shape_string(s));
    shape_ = std::move(s);
  }

private:
  Shape shape_;
  AlignedVector<T> data_;
};

/// Permute the modes: out.shape[k] = in.shape[perm[k]] (a full copy; used for small data and I/O).
template <class T> Tensor<T> permute(const Tensor<T>& in, std::span<const std::size_t> perm);

extern template Tensor<float> permute(const Tensor<float>&, std::span<const std::size_t>);
extern template Tensor<double> permute(const Tensor<double>&, std::span<const std::size_t>);

} // namespace unmix
