#pragma once
// The Reduction of the srmd operators over an MPI communicator (one part per process).
#include "unmix/core/mpi.hpp"
#include "unmix/srmd/operator.hpp"

namespace unmix::srmd {

class CommReduction final : public Reduction {
public:
  explicit CommReduction(const Comm& comm) : comm_(&comm) {}
  int parts() const override { return comm_->size(); }
  int part() const override { return comm_->rank(); }
  void sum(std::span<long long> values) const override;
  void gather(std::span<const double> local, std::span<double> full) const override;

private:
  const Comm* comm_;
};

} // namespace unmix::srmd
