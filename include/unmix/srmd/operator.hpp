#pragma once
// Linear operators for the sparse solvers: products with A and its transpose, nothing else. The
// solver keeps every vector whole on every process; a distributed operator hides how its columns are
// spread and combines partial products through an injected Reduction, so no MPI appears here.
#include <cstddef>
#include <span>
#include <vector>

namespace unmix::srmd {

/// y = A x and g = A^T r for an m x n matrix A, given as products only.
class LinearOperator {
public:
  virtual ~LinearOperator() = default;
  virtual std::size_t rows() const = 0;
  virtual std::size_t cols() const = 0;
  /// y (length rows) = A x (length cols).
  virtual void forward(std::span<const double> x, std::span<double> y) const = 0;
  /// g (length cols) = A^T r (length rows).
  virtual void adjoint(std::span<const double> r, std::span<double> g) const = 0;
};

/// A dense column-major m x n matrix.
class DenseOperator final : public LinearOperator {
public:
  DenseOperator(std::size_t m, std::size_t n, std::vector<double> column_major);
  std::size_t rows() const override { return m_; }
  std::size_t cols() const override { return n_; }
  void forward(std::span<const double> x, std::span<double> y) const override;
  void adjoint(std::span<const double> r, std::span<double> g) const override;
  const std::vector<double>& data() const { return a_; }

private:
  std::size_t m_, n_;
  std::vector<double> a_;
};

/// How the parts of a distributed operator combine their partial results. Every part (process) calls
/// each method collectively, in the same order.
class Reduction {
public:
  virtual ~Reduction() = default;
  /// Number of parts and this part's index.
  virtual int parts() const = 0;
  virtual int part() const = 0;
  /// In place: the element-wise sum over all parts (exact, integers).
  virtual void sum(std::span<long long> values) const = 0;
  /// `full` receives the concatenation of every part's `local`, in part order.
  virtual void gather(std::span<const double> local, std::span<double> full) const = 0;
};

/// The reduction of a single part: sum is the identity, gather copies.
class SerialReduction final : public Reduction {
public:
  int parts() const override { return 1; }
  int part() const override { return 0; }
  void sum(std::span<long long>) const override {}
  void gather(std::span<const double> local, std::span<double> full) const override;
};

} // namespace unmix::srmd
