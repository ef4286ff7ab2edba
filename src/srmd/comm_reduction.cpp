#include "unmix/srmd/comm_reduction.hpp"

#include <algorithm>

namespace unmix::srmd {

void CommReduction::sum(std::span<long long> values) const {
  if (comm_->size() == 1) return; // the sum over one part is the part itself
  comm_->allreduce(values, Op::sum);
}

void CommReduction::gather(std::span<const double> local, std::span<double> full) const {
  if (comm_->size() == 1) {
    std::copy(local.begin(), local.end(), full.begin());
    return;
  }
  const std::vector<double> all = comm_->allgatherv(local);
  if (all.size() != full.size())
    throw Error("gather: the parts hold " + std::to_string(all.size()) + " values, expected " +
                std::to_string(full.size()));
  std::copy(all.begin(), all.end(), full.begin());
}

} // namespace unmix::srmd
