// The applications' output folder (apps::AtomicDir): complete or absent, and never replacing a folder that
// appeared at its name while the run was going unless --overwrite was given; the replicated factorization
// refuses a rank the data cannot hold, naming both sizes; a tensor built on process 0 reaches every process
// as exactly its block, and its fit equals the fit of the same tensor held whole everywhere.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>

#include "../support/test_support.hpp"
#include "unmix/apps/replicated.hpp"
#include "unmix/core/error.hpp"
#include "unmix/dist/dist_tensor.hpp"

using namespace unmix;
namespace fs = std::filesystem;

TEST_CASE("AtomicDir: a folder that appears during the run is kept unless overwriting", "[apps]") {
  const Comm& comm = test::comm();
  const std::string dir = test::scratch_dir();
  const std::string final_path = dir + "/result";
  {
    apps::AtomicDir out(comm, final_path, false);
    if (comm.rank() == 0) {
      apps::write_text(out.file("a.txt"), "new\n");
      fs::create_directories(final_path); // someone else's folder, empty
    }
    comm.barrier();
    CHECK_THROWS_WITH(out.commit(), Catch::Contains("appeared while this run was going"));
  }
  comm.barrier();
  if (comm.rank() == 0) {
    CHECK(fs::is_directory(final_path));
    CHECK(fs::is_empty(final_path)); // kept as it was
    std::size_t leftovers = 0;
    for (const auto& e : fs::directory_iterator(dir))
      leftovers += e.path().filename().string().find(".tmp.") != std::string::npos;
    CHECK(leftovers == 0); // the unfinished output is removed
    std::ofstream(final_path + "/mine.txt") << "precious\n";
  }
  comm.barrier();
  {
    apps::AtomicDir out(comm, final_path, true);
    if (comm.rank() == 0) apps::write_text(out.file("a.txt"), "new\n");
    out.commit();
  }
  if (comm.rank() == 0) {
    CHECK(fs::exists(final_path + "/a.txt"));
    CHECK(!fs::exists(final_path + "/mine.txt")); // replaced as asked
  }
  // Without --overwrite an existing folder is refused at the start.
  CHECK_THROWS_WITH(apps::AtomicDir(comm, final_path, false), Catch::Contains("--overwrite"));
}

TEST_CASE("factorize_replicated: a rank above what the data holds names both sizes", "[apps]") {
  const Comm& comm = test::comm();
  const std::vector<double> Y(20 * 3, 1.0);
  apps::FitSettings s;
  CHECK_THROWS_WITH(apps::factorize_replicated({20, 3}, Y, 4, s, comm, "spots"),
                    Catch::Contains("with 20 spots and 3 values each the rank must be between 1 and 3"));
  const apps::Fit f = apps::factorize_replicated({20, 3}, Y, 1, s, comm, "spots");
  CHECK(f.result.stats.back().rel_error < 1e-6); // a rank-one matrix
}

TEST_CASE("scatter_whole: each process receives exactly its box, in messages of any size", "[apps]") {
  const Comm& comm = test::comm();
  const Shape shape{7, 5, 4};
  std::vector<double> whole(shape_size(shape));
  for (std::size_t l = 0; l < whole.size(); ++l) whole[l] = static_cast<double>(l) + 0.25;
  const std::size_t saved = mpi_message_bytes();
  for (std::size_t bytes : {saved, std::size_t{24}}) { // 3 doubles a message: boxes go in many pieces
    set_mpi_message_bytes(bytes);
    for (const auto& dims : test::all_grids(comm.size(), shape.size()))
      for (int root : {0, comm.size() - 1}) {
        INFO("grid " << ProcessGrid(dims).to_string() << ", root " << root << ", " << bytes << " bytes a message");
        // Only the root's data is read: the others pass nothing.
        const std::span<const double> given =
            comm.rank() == root ? std::span<const double>(whole) : std::span<const double>();
        const DistTensor<double> Y = scatter_whole<double>(comm, BlockLayout(shape, ProcessGrid(dims)), given, root);
        const Shape& off = Y.offset();
        const Tensor<double>& loc = Y.local();
        std::size_t wrong = 0;
        for (std::size_t k = 0; k < loc.extent(2); ++k)
          for (std::size_t j = 0; j < loc.extent(1); ++j)
            for (std::size_t i = 0; i < loc.extent(0); ++i) {
              const std::size_t g = (off[0] + i) + shape[0] * ((off[1] + j) + shape[1] * (off[2] + k));
              wrong += loc[i + loc.extent(0) * (j + loc.extent(1) * k)] != whole[g];
            }
        CHECK(wrong == 0);
        CHECK(comm.allreduce(static_cast<double>(loc.size())) == static_cast<double>(whole.size()));
      }
  }
  set_mpi_message_bytes(saved);
  // A root holding the wrong number of values: refused on every process, before any block is sent.
  const std::vector<double> short_one(10, 1.0);
  CHECK_THROWS_WITH(
      scatter_whole<double>(comm, BlockLayout(shape, ProcessGrid::default_for(shape, comm.size())),
                            comm.rank() == 0 ? std::span<const double>(short_one) : std::span<const double>(), 0),
      Catch::Contains("does not have the shape 7 x 5 x 4"));
}

TEST_CASE("a tensor spread from process 0 is fitted exactly as the same tensor held whole", "[apps]") {
  const Comm& comm = test::comm();
  const Shape shape{12, 9};
  std::vector<double> Y(shape_size(shape));
  for (std::size_t j = 0; j < 9; ++j) // rank 2 plus a little structure
    for (std::size_t i = 0; i < 12; ++i)
      Y[i + 12 * j] = (1.0 + static_cast<double>(i % 3)) * (1.0 + static_cast<double>(j)) +
                      0.5 * static_cast<double>((i * j) % 4) + 0.01 * static_cast<double>((i + 2 * j) % 5);
  apps::FitSettings s;
  s.solver.maxiter = 200;
  s.solver.seed = 11;
  const apps::Fit whole = apps::factorize_replicated(shape, Y, 3, s, comm, "spots");
  const std::vector<double> none;
  const DistTensor<double> Yd = apps::spread_from_root(shape, comm.rank() == 0 ? Y : none, s, comm);
  const apps::Fit spread = apps::factorize_distributed(Yd, 3, s, "spots");
  CHECK(spread.A == whole.A);
  CHECK(spread.B == whole.B);
  CHECK(spread.result.iterations == whole.result.iterations);
  CHECK(spread.result.stats.back().rel_error == whole.result.stats.back().rel_error);
  CHECK(whole.result.stats.back().rel_error < 0.1);
  // The sweep over a spread tensor: the same fits as factorize_distributed gives rank by rank.
  const apps::RankSweep sw = apps::sweep_ranks(Yd, 3, s, "spots");
  REQUIRE(sw.fits.size() == 3);
  CHECK(sw.fits[2].A == spread.A);
  CHECK(sw.errors[2] == spread.result.stats.back().rel_error);
}
