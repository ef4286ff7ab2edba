// Parallel HDF5: the same dataset read at any process count and grid gives the same tensor, and
// distributed writes read back exactly.
#include <catch2/catch.hpp>

#include <filesystem>
#include <functional>

#include "../support/test_support.hpp"
#include "unmix/io/hdf5.hpp"
#include "unmix/model/planted.hpp"

using namespace unmix;

namespace {

// Entries of a distributed tensor that differ from the same entries of the whole tensor (read on one process).
template <class T> std::size_t mismatches(const DistTensor<T>& part, const DistTensor<T>& whole) {
  const Shape& gs = whole.global_shape();
  const Shape off = part.offset(), box = part.local().shape();
  const std::size_t N = gs.size();
  std::size_t wrong = 0;
  Shape idx(N, 0);
  for (std::size_t li = 0; li < part.local().size(); ++li) {
    std::size_t gi = 0;
    for (std::size_t d = 0, stride = 1; d < N; stride *= gs[d], ++d) gi += (off[d] + idx[d]) * stride;
    if (part.local()[li] != whole.local()[gi]) ++wrong;
    for (std::size_t d = 0; d < N; ++d) {
      if (++idx[d] < box[d]) break;
      idx[d] = 0;
    }
  }
  return wrong;
}

// Sets the piece size of reading and writing for one scope.
struct PieceBytes {
  std::size_t previous;
  explicit PieceBytes(std::size_t bytes) : previous(h5::set_io_piece_bytes(bytes)) {}
  ~PieceBytes() { h5::set_io_piece_bytes(previous); }
  PieceBytes(const PieceBytes&) = delete;
  PieceBytes& operator=(const PieceBytes&) = delete;
};

// The box [at, at + count) of a column-major tensor, as a tensor of its own.
Tensor<double> box_of(const Tensor<double>& X, const Shape& at, const Shape& count) {
  Tensor<double> out(count);
  const std::size_t N = count.size();
  Shape idx(N, 0);
  for (std::size_t k = 0; k < out.size(); ++k) {
    std::size_t src = 0;
    for (std::size_t d = N, stride = X.size(); d-- > 0;) {
      stride /= X.extent(d);
      src += (at[d] + idx[d]) * stride;
    }
    out[k] = X[src];
    for (std::size_t d = 0; d < N; ++d) {
      if (++idx[d] < count[d]) break;
      idx[d] = 0;
    }
  }
  return out;
}

} // namespace

TEST_CASE("reading a dataset at any process count and grid yields the same tensor", "[io]") {
  const Comm& comm = test::comm();
  Comm self = Comm::self();
  const std::string path = test::shared_data("sediment/geodata.h5");
  for (int axis : {2, 0, 1}) {
    auto whole = h5::read_distributed<double>(self, path, "Y_257_points", axis, std::nullopt);
    const Shape& gs = whole.global_shape();
    if (axis == 2) CHECK(gs == Shape{20, 257, 7});
    if (axis == 0) CHECK(gs == Shape{257, 7, 20});
    for (const auto& dims : test::all_grids(comm.size(), 3)) {
      ProcessGrid g(dims);
      INFO("mixture axis " << axis << ", grid " << g.to_string());
      auto part = h5::read_distributed<double>(comm, path, "Y_257_points", axis, g.to_string());
      CHECK(part.global_shape() == gs);
      CHECK(mismatches(part, whole) == 0);
      // Nothing lost or counted twice: the global sums agree.
      CHECK(part.sum() == Approx(whole.sum()).epsilon(1e-13));
    }
  }
  // Known facts about the data: every fibre (sink, feature) sums to 1 (the largest deviation in the
  // file is 1.1e-6: the total over 140 fibres is 139.99999).
  auto Y = h5::read_distributed<double>(self, path, "Y_1025_points", 2, std::nullopt);
  const auto& L = Y.local();
  for (std::size_t s = 0; s < 20; ++s)
    for (std::size_t f = 0; f < 7; ++f) {
      double sum = 0;
      for (std::size_t k = 0; k < 1025; ++k) sum += L[s + 20 * (k + 1025 * f)];
      CHECK(std::abs(sum - 1.0) < 2e-6);
    }
}

TEST_CASE("distributed writes read back exactly, in the tensor's own axis order", "[io]") {
  const Comm& comm = test::comm();
  const std::string path = test::scratch_dir() + "/roundtrip.h5";
  const Shape shape{4, 6, 5};
  for (const auto& dims : test::all_grids(comm.size(), 3)) {
    ProcessGrid g(dims);
    INFO("grid " << g.to_string());
    auto pl = make_planted<double>(comm, shape, 2, 0.0, 3, g);
    {
      h5::File f = h5::File::create(comm, path);
      h5::write_distributed(f, "Y", shape, pl.Y.offset(), pl.Y.local(), true);
    }
    // Read back with mixture axis 0 on another grid (the default one) and whole on one process.
    auto back = h5::read_distributed<double>(comm, path, "Y", 0, std::nullopt);
    Comm self = Comm::self();
    auto whole = h5::read_distributed<double>(self, path, "Y", 0, std::nullopt);
    auto truth = make_planted<double>(self, shape, 2, 0.0, 3);
    CHECK(whole.local().vec() == truth.Y.local().vec());
    h5::File f = h5::File::open_read(comm, path);
    Tensor<double> box = h5::read_box(f, "Y", pl.Y.offset(), pl.Y.local().shape());
    CHECK(box.vec() == pl.Y.local().vec());
    CHECK(back.sum() == Approx(truth.Y.sum()).epsilon(1e-14));
  }
}

TEST_CASE("reading in pieces of any size gives the same tensor, in double and in float", "[io]") {
  const Comm& comm = test::comm();
  Comm self = Comm::self();
  // A 4-axis file written here, and a 3-axis one written by another program (Julia: axes reversed).
  const std::string mine = test::scratch_dir() + "/pieces.h5";
  const Shape shape{3, 5, 4, 6};
  {
    auto pl = make_planted<double>(self, shape, 2, 0.3, 7);
    h5::File f = h5::File::create(self, mine);
    h5::write_distributed(f, "Y", shape, pl.Y.offset(), pl.Y.local(), true);
  }
  comm.barrier();
  struct Case {
    std::string path, dataset;
    std::size_t axes;
    std::vector<std::size_t> piece_bytes; // one element per piece, parts of the last axis, rows, slabs
  };
  for (const Case& c :
       {Case{mine, "Y", 4, {8, 40, 8 * 6 * 2, 8 * 6 * 4 * 3}},
        Case{test::shared_data("sediment/geodata.h5"), "Y_257_points", 3, {8 * 257 * 3, 8 * 257 * 7 * 3}}})
    for (int axis = 0; axis < static_cast<int>(c.axes); ++axis) {
      const auto whole = h5::read_distributed<double>(self, c.path, c.dataset, axis, std::nullopt);
      const auto whole_f = h5::read_distributed<float>(self, c.path, c.dataset, axis, std::nullopt);
      for (std::size_t bytes : c.piece_bytes) {
        PieceBytes limit(bytes);
        for (const auto& dims : test::all_grids(comm.size(), c.axes)) {
          INFO(c.dataset << ", mixture axis " << axis << ", piece " << bytes << " bytes, grid "
                         << ProcessGrid(dims).to_string());
          const std::string grid = ProcessGrid(dims).to_string();
          CHECK(mismatches(h5::read_distributed<double>(comm, c.path, c.dataset, axis, grid), whole) == 0);
          CHECK(mismatches(h5::read_distributed<float>(comm, c.path, c.dataset, axis, grid), whole_f) == 0);
        }
      }
    }
  // float is the double value rounded once.
  const auto d = h5::read_distributed<double>(self, mine, "Y", 1, std::nullopt);
  const auto f = h5::read_distributed<float>(self, mine, "Y", 1, std::nullopt);
  std::size_t wrong = 0;
  for (std::size_t i = 0; i < d.local().size(); ++i)
    if (f.local()[i] != static_cast<float>(d.local()[i])) ++wrong;
  CHECK(wrong == 0);
}

TEST_CASE("writing in pieces of any size gives the same file, in double and in float, replicas included, pieces made "
          "as written",
          "[io]") {
  const Comm& comm = test::comm();
  Comm self = Comm::self();
  const std::string path = test::scratch_dir() + "/written_pieces.h5";
  for (const Shape& shape : {Shape{4, 6, 5}, Shape{3, 5, 4, 6}}) {
    const auto truth = make_planted<double>(self, shape, 2, 0.3, 5);
    const auto truth_f = make_planted<float>(self, shape, 2, 0.3, 5);
    // One value per piece, parts of the last axis, rows of it, slabs, the whole box at once.
    for (std::size_t bytes : {std::size_t{8}, std::size_t{24}, 8 * shape.back() * 2,
                              8 * shape.back() * shape[shape.size() - 2] * 2, std::size_t{64} << 20}) {
      PieceBytes limit(bytes);
      for (const auto& dims : test::all_grids(comm.size(), shape.size())) {
        ProcessGrid g(dims);
        INFO("shape " << shape_string(shape) << ", piece " << bytes << " bytes, grid " << g.to_string());
        const auto pl = make_planted<double>(comm, shape, 2, 0.3, 5, g);
        const auto pl_f = make_planted<float>(comm, shape, 2, 0.3, 5, g);
        {
          h5::File f = h5::File::create(comm, path);
          h5::write_distributed(f, "Y", shape, pl.Y.offset(), pl.Y.local(), true);
          h5::write_distributed(f, "Yf", shape, pl_f.Y.offset(), pl_f.Y.local(), true);
          // A replicated tensor (every process holds all of it): only rank 0 writes.
          h5::write_distributed(f, "R", shape, Shape(shape.size(), 0), truth.Y.local(), comm.rank() == 0);
          // The same, each piece formed only when it is written (as the sources of CP and Tucker are).
          h5::write_generated(f, "G", shape, pl.Y.offset(), pl.Y.local().shape(), true,
                              [&](const Shape& at, const Shape& count) { return box_of(pl.Y.local(), at, count); });
          h5::write_generated(f, "GR", shape, Shape(shape.size(), 0), shape, comm.rank() == 0,
                              [&](const Shape& at, const Shape& count) { return box_of(truth.Y.local(), at, count); });
        }
        comm.barrier();
        {
          h5::File f = h5::File::open_read(self, path);
          CHECK(f.info("Yf").type == "float32");
          CHECK(f.info("Y").dims == shape);
        }
        const auto back = h5::read_distributed<double>(self, path, "Y", 0, std::nullopt);
        const auto back_f = h5::read_distributed<float>(self, path, "Yf", 0, std::nullopt);
        const auto back_r = h5::read_distributed<double>(self, path, "R", 0, std::nullopt);
        CHECK(back.local().vec() == truth.Y.local().vec());
        CHECK(back_f.local().vec() == truth_f.Y.local().vec());
        CHECK(back_r.local().vec() == truth.Y.local().vec());
        CHECK(h5::read_distributed<double>(self, path, "G", 0, std::nullopt).local().vec() == truth.Y.local().vec());
        CHECK(h5::read_distributed<double>(self, path, "GR", 0, std::nullopt).local().vec() == truth.Y.local().vec());
        comm.barrier(); // all have closed the file before the next grid's writes
      }
    }
  }
}
