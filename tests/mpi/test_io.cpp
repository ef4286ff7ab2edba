// Parallel HDF5: the same dataset read at any process count and grid gives the same tensor, and
// distributed writes read back exactly.
#include <catch2/catch.hpp>

#include <filesystem>
#include <functional>

#include "../support/test_support.hpp"
#include "unmix/io/hdf5.hpp"
#include "unmix/model/planted.hpp"

using namespace unmix;

namespace {} // namespace

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
      const Shape off = part.offset(), box = part.local().shape();
      std::size_t mismatches = 0;
      for (std::size_t c = 0; c < box[2]; ++c)
        for (std::size_t b = 0; b < box[1]; ++b)
          for (std::size_t a = 0; a < box[0]; ++a) {
            const std::size_t li = a + box[0] * (b + box[1] * c);
            const std::size_t gi = (off[0] + a) + gs[0] * ((off[1] + b) + gs[1] * (off[2] + c));
            if (part.local()[li] != whole.local()[gi]) ++mismatches;
          }
      CHECK(mismatches == 0);
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
