#pragma once
// Plan, then execute: the process grid and the block layout are value objects, testable without MPI.
#include <cstddef>
#include <string>
#include <vector>

#include "unmix/core/tensor.hpp"

namespace unmix {

/// A Cartesian grid of processes over the modes of a tensor. Rank r has coordinates with mode 0
/// varying fastest: r = c0 + p0 * (c1 + p1 * (c2 + ...)).
class ProcessGrid {
public:
  ProcessGrid() = default;
  explicit ProcessGrid(std::vector<int> dims);

  const std::vector<int>& dims() const { return dims_; }
  std::size_t order() const { return dims_.size(); }
  int dim(std::size_t mode) const { return dims_[mode]; }
  int size() const { return size_; }
  std::vector<int> coords(int rank) const;
  int rank_of(const std::vector<int>& coords) const;
  std::string to_string() const; // "1x2x2"

  /// Parse "1x2x2" (or "1,2,2"); checks the order and that the product is nprocs.
  static ProcessGrid parse(const std::string& text, std::size_t order, int nprocs);
  /// The default grid for a Tucker-1 problem: the mixture mode is never split (A stays whole on every
  /// process and only I x R and R x R pieces are reduced); the process count is split over the other
  /// modes, each prime factor going to the mode with the largest extent per process.
  static ProcessGrid default_for(const Shape& shape, int nprocs, std::size_t mixture_mode = 0);

private:
  std::vector<int> dims_;
  int size_ = 1;
};

/// Contiguous blocks along one mode: J split into p blocks, the first J % p of them one longer.
/// Blocks may be empty when p > J.
struct BlockPartition {
  std::size_t extent = 0;
  int parts = 1;
  std::size_t offset(int k) const {
    const std::size_t base = extent / static_cast<std::size_t>(parts), rem = extent % static_cast<std::size_t>(parts),
                      kk = static_cast<std::size_t>(k);
    return kk * base + (kk < rem ? kk : rem);
  }
  std::size_t size(int k) const {
    const std::size_t base = extent / static_cast<std::size_t>(parts), rem = extent % static_cast<std::size_t>(parts);
    return base + (static_cast<std::size_t>(k) < rem ? 1 : 0);
  }
  /// The block holding global index i, in O(1).
  int owner(std::size_t i) const {
    const std::size_t base = extent / static_cast<std::size_t>(parts), rem = extent % static_cast<std::size_t>(parts);
    const std::size_t big = rem * (base + 1);
    if (i < big) return static_cast<int>(i / (base + 1));
    return static_cast<int>(rem + (i - big) / base);
  }
};

/// Which process owns which box of a tensor.
class BlockLayout {
public:
  BlockLayout() = default;
  BlockLayout(Shape global, ProcessGrid grid);

  const Shape& global_shape() const { return global_; }
  const ProcessGrid& grid() const { return grid_; }
  const BlockPartition& partition(std::size_t mode) const { return parts_[mode]; }

  /// The box of a process: offsets and extents per mode.
  Shape box_offset(int rank) const;
  Shape box_shape(int rank) const;
  /// The rank owning a global multi-index, in O(order).
  int owner(const Shape& index) const;

private:
  Shape global_;
  ProcessGrid grid_;
  std::vector<BlockPartition> parts_;
};

} // namespace unmix
