#include "unmix/dist/reducers.hpp"

#include <string>

namespace unmix {

FactorReducers::FactorReducers(const GridComms& comms, std::vector<int> grid_mode_of)
    : comms_(&comms), grid_mode_of_(std::move(grid_mode_of)) {
  const int order = static_cast<int>(comms.grid().order());
  unsigned used = 0;
  for (std::size_t k = 0; k < grid_mode_of_.size(); ++k) {
    const int g = grid_mode_of_[k];
    if (g < 0) continue;
    if (g >= order)
      throw ConfigError("factor mode " + std::to_string(k) + " is mapped to grid mode " + std::to_string(g) +
                        " but the process grid " + comms.grid().to_string() + " has only " + std::to_string(order) +
                        " modes");
    if ((used >> g) & 1u)
      throw ConfigError("two modes of a factor are mapped to grid mode " + std::to_string(g) +
                        "; each grid mode can split at most one factor mode");
    used |= 1u << g;
  }
}

unsigned FactorReducers::free_grid_modes(unsigned fixed_factor_modes) const {
  unsigned free_grid = 0;
  for (std::size_t k = 0; k < grid_mode_of_.size(); ++k) {
    const int g = grid_mode_of_[k];
    if (g >= 0 && !((fixed_factor_modes >> k) & 1u)) free_grid |= 1u << g;
  }
  return free_grid;
}

const SliceReducer& FactorReducers::operator()(unsigned fixed_factor_modes) const {
  const unsigned free_grid = free_grid_modes(fixed_factor_modes);
  if (free_grid == 0) return local_;
  auto it = cache_.find(free_grid);
  if (it != cache_.end()) return *it->second;
  auto r = std::make_unique<CommReducer>(comms_->sub(free_grid));
  const SliceReducer& ref = *r;
  cache_.emplace(free_grid, std::move(r));
  return ref;
}

FactorView factor_view(std::span<double> data, Shape shape, Shape global_shape, Shape offset, std::size_t rank_mode,
                       const FactorReducers& reducers) {
  FactorView v;
  v.data = data;
  v.shape = std::move(shape);
  v.global_shape = std::move(global_shape);
  v.offset = std::move(offset);
  v.rank_mode = rank_mode;
  const FactorReducers* red = &reducers;
  v.reducer = [red](unsigned fixed) -> const SliceReducer& { return (*red)(fixed); };
  return v;
}

} // namespace unmix
