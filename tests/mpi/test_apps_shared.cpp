// The applications' output folder (apps::AtomicDir): complete or absent, and never replacing a folder that
// appeared at its name while the run was going unless --overwrite was given; the replicated factorization
// refuses a rank the data cannot hold, naming both sizes.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>

#include "../support/test_support.hpp"
#include "unmix/apps/replicated.hpp"
#include "unmix/core/error.hpp"

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
