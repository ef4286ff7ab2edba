#include "unmix/dist/layout.hpp"

#include <algorithm>
#include <limits>
#include <sstream>

#include "unmix/core/error.hpp"

namespace unmix {

ProcessGrid::ProcessGrid(std::vector<int> dims) : dims_(std::move(dims)) {
  size_ = 1;
  for (int d : dims_) {
    if (d < 1) throw ConfigError("process grid dimensions must be at least 1");
    if (size_ > std::numeric_limits<int>::max() / d)
      throw ConfigError("process grid " + to_string() + " has more processes than an int can count");
    size_ *= d;
  }
}

std::vector<int> ProcessGrid::coords(int rank) const {
  std::vector<int> c(dims_.size());
  for (std::size_t n = 0; n < dims_.size(); ++n) {
    c[n] = rank % dims_[n];
    rank /= dims_[n];
  }
  return c;
}

int ProcessGrid::rank_of(const std::vector<int>& coords) const {
  int r = 0;
  for (std::size_t n = dims_.size(); n-- > 0;) r = r * dims_[n] + coords[n];
  return r;
}

std::string ProcessGrid::to_string() const {
  std::string s;
  for (std::size_t n = 0; n < dims_.size(); ++n) {
    if (n) s += 'x';
    s += std::to_string(dims_[n]);
  }
  return s;
}

ProcessGrid ProcessGrid::parse(const std::string& text, std::size_t order, int nprocs) {
  std::vector<int> dims;
  std::string tok;
  std::string t = text;
  std::replace(t.begin(), t.end(), ',', 'x');
  std::stringstream ss(t);
  while (std::getline(ss, tok, 'x')) {
    try {
      std::size_t pos = 0;
      const int v = std::stoi(tok, &pos);
      if (pos != tok.size() || v < 1) throw std::invalid_argument(tok);
      dims.push_back(v);
    } catch (const std::exception&) {
      throw ConfigError("--grid '" + text + "': '" + tok +
                        "' is not a positive whole number; write the grid as e.g. 1x2x2");
    }
  }
  if (dims.size() != order)
    throw ConfigError("--grid '" + text + "' has " + std::to_string(dims.size()) + " dimensions but the tensor has " +
                      std::to_string(order) + " modes; give one process count per mode (mixture mode first)");
  ProcessGrid g(dims);
  if (g.size() != nprocs)
    throw ConfigError("--grid '" + text + "' has " + std::to_string(g.size()) + " processes but the job has " +
                      std::to_string(nprocs) +
                      "; make the product of the grid equal the process count, or leave --grid out");
  return g;
}

ProcessGrid ProcessGrid::default_for(const Shape& shape, int nprocs, std::size_t mixture_mode) {
  std::vector<int> dims(shape.size(), 1);
  if (shape.empty()) return ProcessGrid(dims);
  std::vector<int> primes;
  for (int n = nprocs, f = 2; n > 1;) {
    if (f * f > n) {
      primes.push_back(n);
      break;
    }
    if (n % f == 0) {
      primes.push_back(f);
      n /= f;
    } else {
      ++f;
    }
  }
  std::sort(primes.rbegin(), primes.rend());
  for (int p : primes) {
    std::size_t best = shape.size();
    double best_len = -1;
    for (std::size_t n = 0; n < shape.size(); ++n) {
      if (n == mixture_mode && shape.size() > 1) continue;
      const double len = static_cast<double>(shape[n]) / dims[n];
      if (len > best_len) {
        best_len = len;
        best = n;
      }
    }
    dims[best] *= p;
  }
  return ProcessGrid(dims);
}

BlockLayout::BlockLayout(Shape global, ProcessGrid grid) : global_(std::move(global)), grid_(std::move(grid)) {
  if (global_.size() != grid_.order())
    throw ConfigError("process grid " + grid_.to_string() + " does not match a tensor of order " +
                      std::to_string(global_.size()));
  for (std::size_t n = 0; n < global_.size(); ++n) parts_.push_back({global_[n], grid_.dim(n)});
}

Shape BlockLayout::box_offset(int rank) const {
  const auto c = grid_.coords(rank);
  Shape off(global_.size());
  for (std::size_t n = 0; n < global_.size(); ++n) off[n] = parts_[n].offset(c[n]);
  return off;
}

Shape BlockLayout::box_shape(int rank) const {
  const auto c = grid_.coords(rank);
  Shape s(global_.size());
  for (std::size_t n = 0; n < global_.size(); ++n) s[n] = parts_[n].size(c[n]);
  return s;
}

int BlockLayout::owner(const Shape& index) const {
  std::vector<int> c(global_.size());
  for (std::size_t n = 0; n < global_.size(); ++n) c[n] = parts_[n].owner(index[n]);
  return grid_.rank_of(c);
}

} // namespace unmix
