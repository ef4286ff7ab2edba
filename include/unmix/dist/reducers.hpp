#pragma once
// Slice reducers on communicators: how the MPI-free constraints module combines per-slice values of a
// distributed factor over the processes that share those slices.
#include <map>
#include <memory>
#include <vector>

#include "unmix/constraints/constraints.hpp"
#include "unmix/core/mpi.hpp"
#include "unmix/dist/dist_tensor.hpp"

namespace unmix {

/// A SliceReducer over every process of a communicator (sum and max by allreduce, gather by
/// allgatherv). Holds a reference: the communicator must outlive it.
class CommReducer final : public SliceReducer {
public:
  explicit CommReducer(const Comm& comm) : comm_(&comm) {}
  void sum(std::span<double> v) const override { comm_->allreduce(v, Op::sum); }
  void max(std::span<double> v) const override { comm_->allreduce(v, Op::max); }
  std::vector<double> gather(std::span<const double> v) const override { return comm_->allgatherv<double>(v); }
  int size() const override { return comm_->size(); }
  const Comm& comm() const { return *comm_; }

private:
  const Comm* comm_;
};

/// Reducers for a distributed factor: factor mode k is split along grid mode grid_mode_of[k] (-1: not
/// split, every process holds the whole extent). Slices whose fixed factor modes are `fixed` are shared
/// by the processes that differ only in the grid modes of the free factor modes. Grid modes that no
/// factor mode maps to replicate the factor and are always held fixed: each replica reduces on its own
/// (the replicas hold equal data, so they compute equal results).
///
/// operator() uses comms.sub(free grid modes), which is collective over the whole communicator the first
/// time a set of free grid modes is asked for: every process must ask for the same masks in the same
/// order (constraints::apply and violation do, since their sequence of reducer requests depends only on
/// the constraint list and the factor's order). A request with no free grid mode is answered by a local
/// reducer without communication. Results are cached; the GridComms must outlive this object.
class FactorReducers {
public:
  FactorReducers(const GridComms& comms, std::vector<int> grid_mode_of);
  const SliceReducer& operator()(unsigned fixed_factor_modes) const;
  /// The grid modes (bit mask) along which the processes sharing these slices differ.
  unsigned free_grid_modes(unsigned fixed_factor_modes) const;
  const std::vector<int>& grid_mode_of() const { return grid_mode_of_; }

private:
  const GridComms* comms_;
  std::vector<int> grid_mode_of_;
  LocalReducer local_;
  mutable std::map<unsigned, std::unique_ptr<CommReducer>> cache_;
};

/// A FactorView of a local block whose reducers come from `reducers` (which must outlive the view).
FactorView factor_view(std::span<double> data, Shape shape, Shape global_shape, Shape offset, std::size_t rank_mode,
                       const FactorReducers& reducers);

} // namespace unmix
