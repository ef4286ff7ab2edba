// Bad input to the real binary under mpirun at 1, 2, 3 and 4 processes: one clear `error:` line, a
// non-zero exit, quickly, no signal death, and no output or temporary file left behind.
#include <catch2/catch.hpp>

#include <hdf5.h>

#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>

#include "../support/test_support.hpp"

namespace fs = std::filesystem;
using unmix::test::run_unmix;
using unmix::test::shared_data;

namespace {

std::string dir() {
  static const std::string d = unmix::test::temp_dir("cli-errors");
  return d;
}

/// A small HDF5 file with one float64 dataset of the given C-order dims and values.
std::string write_h5(const std::string& name, const std::vector<hsize_t>& dims, const std::vector<double>& values,
                     const std::string& dataset = "Y") {
  const std::string path = dir() + "/" + name;
  hid_t f = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  hid_t s = H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr);
  hid_t d = H5Dcreate2(f, dataset.c_str(), H5T_NATIVE_DOUBLE, s, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  H5Dwrite(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, values.data());
  H5Dclose(d);
  H5Sclose(s);
  H5Fclose(f);
  return path;
}

std::string write_string_h5(const std::string& name) {
  const std::string path = dir() + "/" + name;
  hid_t f = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  hid_t t = H5Tcopy(H5T_C_S1);
  H5Tset_size(t, 8);
  hsize_t n = 3;
  hid_t s = H5Screate_simple(1, &n, nullptr);
  hid_t d = H5Dcreate2(f, "Y", t, s, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  const char data[24] = "abcdefghijklmnopqrstuvw";
  H5Dwrite(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, data);
  H5Dclose(d);
  H5Sclose(s);
  H5Tclose(t);
  H5Fclose(f);
  return path;
}

std::vector<double> ramp(std::size_t n, double offset = 1.0) {
  std::vector<double> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = offset + static_cast<double>((i * 7) % 11);
  return v;
}

struct Case {
  std::string name;
  std::vector<std::string> args;
  std::string expect; // a fragment of the error line
  bool warning_only = false;
};

int count_error_lines(const std::string& err) {
  std::istringstream in(err);
  std::string line;
  int n = 0;
  while (std::getline(in, line))
    if (line.rfind("error:", 0) == 0) ++n;
  return n;
}

bool leftovers(const std::string& out) {
  if (fs::exists(out)) return true;
  for (const auto& e : fs::directory_iterator(fs::path(out).parent_path()))
    if (e.path().filename().string().rfind(fs::path(out).filename().string() + ".tmp", 0) == 0) return true;
  return false;
}

} // namespace

TEST_CASE("bad input gives one clear error line at every process count", "[errors]") {
  const std::string geo = shared_data("sediment/geodata.h5");
  // Fixtures.
  const std::string good = write_h5("good.h5", {6, 5, 4}, ramp(120));
  const std::string vec = write_h5("vector.h5", {30}, ramp(30));
  const std::string strings = write_string_h5("strings.h5");
  std::vector<double> nan = ramp(120);
  nan[17] = std::numeric_limits<double>::quiet_NaN();
  const std::string nanfile = write_h5("nan.h5", {6, 5, 4}, nan);
  const std::string zeros = write_h5("zeros.h5", {6, 5, 4}, std::vector<double>(120, 0.0));
  const std::string badinit = write_h5("badinit.h5", {6, 2}, ramp(12), "A");
  {
    // A truncated copy of a real file, and a text file with an .h5 name.
    std::ifstream in(geo, std::ios::binary);
    std::vector<char> buf(200000);
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    std::ofstream(dir() + "/truncated.h5", std::ios::binary).write(buf.data(), in.gcount());
    std::ofstream(dir() + "/text.h5") << "sink,feature,value\n1,2,3\n";
  }
  const std::string out = dir() + "/out.h5";
  const std::string existing = dir() + "/existing.h5";
  std::ofstream(existing) << "keep me";

  const std::vector<Case> cases = {
      {"missing file", {"info", dir() + "/nope.h5"}, "no such file"},
      {"missing file (factorize)", {"factorize", dir() + "/nope.h5", "--rank", "2", "--out", out}, "no such file"},
      {"missing dataset", {"factorize", geo, "--dataset", "Z", "--rank", "2", "--out", out}, "has no dataset 'Z'"},
      {"ambiguous dataset", {"factorize", geo, "--rank", "2", "--out", out}, "choose one with --dataset"},
      {"truncated HDF5", {"info", dir() + "/truncated.h5"}, "truncated or corrupt"},
      {"not HDF5", {"factorize", dir() + "/text.h5", "--rank", "2", "--out", out}, "not HDF5"},
      {"wrong dimensionality", {"factorize", vec, "--rank", "2", "--out", out}, "needs at least 2"},
      {"mixture axis out of range",
       {"factorize", good, "--mixture-axis", "3", "--rank", "2", "--out", out},
       "--mixture-axis 3 is out of range"},
      {"non-numeric data", {"factorize", strings, "--rank", "2", "--out", out}, "numeric"},
      {"grid does not match", {"factorize", good, "--grid", "1x7x1", "--rank", "2", "--out", out}, "--grid"},
      {"rank 0", {"factorize", good, "--rank", "0", "--out", out}, "--rank must be at least 1"},
      {"rank too large", {"factorize", good, "--rank", "7", "--out", out}, "at most 6"},
      {"unknown constraint",
       {"factorize", good, "--rank", "2", "--constraint", "B=positive", "--out", out},
       "positive"},
      {"NaN in Y", {"factorize", nanfile, "--rank", "2", "--out", out}, "NaN"},
      {"all-zero tensor", {"factorize", zeros, "--rank", "2", "--out", out}, "all zeros"},
      {"init of the wrong shape", {"factorize", good, "--rank", "2", "--init", badinit, "--out", out}, "--init"},
      {"unwritable output", {"factorize", good, "--rank", "2", "--out", "/proc/nonexistent/out.h5"}, "does not exist"},
      {"existing output", {"factorize", good, "--rank", "2", "--maxiter", "3", "--out", existing}, "--overwrite"},
      {"unknown option", {"factorize", good, "--rank", "2", "--bogus", "--out", out}, "bogus"},
      {"bad tolerance", {"factorize", good, "--rank", "2", "--tol", "speed=3", "--out", out}, "speed"},
      {"bad synth shape", {"synth", "--shape", "4xAx3", "--rank", "2", "--out", out}, "--shape"},
      {"contradictory start",
       {"factorize", good, "--rank", "2", "--init", badinit, "--resume", badinit, "--out", out},
       "--resume and --init contradict"},
      {"resume from a non-checkpoint",
       {"factorize", good, "--rank", "2", "--resume", badinit, "--out", out},
       "not an unmix checkpoint"},
      {"checkpoint interval without a file",
       {"factorize", good, "--rank", "2", "--checkpoint-every", "5", "--out", out},
       "needs --checkpoint"},
      {"bad precision", {"factorize", good, "--rank", "2", "--precision", "half", "--out", out}, "--precision 'half'"},
      {"bad update order", {"factorize", good, "--rank", "2", "--order", "sideways", "--out", out}, "--order"},
      {"zero inner steps", {"factorize", good, "--rank", "2", "--inner", "0", "--out", out}, "--inner must be"},
      {"negative time limit", {"factorize", good, "--rank", "2", "--max-time", "-1", "--out", out}, "--max-time"},
      {"scale that cannot be compensated",
       {"factorize", good, "--rank", "2", "--constraint", "B=l1scale_12slices", "--out", out},
       "absorb the scale exactly"},
      {"a scale of A that B's constraints would not keep",
       {"factorize", good, "--rank", "2", "--constraint", "A=l1scale_columns", "--constraint", "B=simplex_1slices",
        "--out", out},
       "B absorbs the scale of A after its own step and would no longer satisfy B=simplex_1slices"},
      {"info of a directory", {"info", dir()}, "is a directory"},
      {"placeholder text in a value",
       {"factorize", good, "--rank", "2", "--maxiter", "%value%", "--out", out},
       "('%value%') for option '--maxiter' is invalid"},
  };
  for (int np : {1, 2, 3, 4}) {
    for (const auto& c : cases) {
      INFO(c.name << " at " << np << " processes");
      const auto r = run_unmix(np, c.args, 60);
      INFO("exit " << r.exit_code << "\nstderr:\n" << r.err << "\nstdout:\n" << r.out);
      CHECK(!r.timed_out);
      CHECK(r.seconds < 30);
      CHECK(r.exit_code != 0);
      CHECK(r.exit_code < 128); // no signal death
      CHECK(count_error_lines(r.err) == 1);
      CHECK(r.err.find(c.expect) != std::string::npos);
      CHECK(!leftovers(out));
    }
  }
  // The existing file was left alone.
  std::ifstream in(existing);
  std::string content;
  std::getline(in, content);
  CHECK(content == "keep me");
}

TEST_CASE("negative data under nonnegative constraints is a warning, not an error", "[errors]") {
  std::vector<double> v = ramp(120);
  v[5] = -2.0;
  const std::string neg = write_h5("negative.h5", {6, 5, 4}, v);
  const std::string out = dir() + "/neg_out.h5";
  for (int np : {1, 3}) {
    fs::remove(out);
    const auto r = run_unmix(np, {"factorize", neg, "--rank", "2", "--maxiter", "5", "--out", out, "-q"}, 60);
    INFO(r.err);
    CHECK(r.exit_code == 0);
    CHECK(r.err.find("warning: the data has negative entries") != std::string::npos);
    CHECK(count_error_lines(r.err) == 0);
    CHECK(fs::exists(out));
  }
}

TEST_CASE("info prints both geodata datasets with the right shapes and sums", "[errors]") {
  for (int np : {1, 2, 3, 4}) {
    const auto r = run_unmix(np, {"info", shared_data("sediment/geodata.h5")}, 60);
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
    CHECK(r.out.find("/Y_1025_points") != std::string::npos);
    CHECK(r.out.find("1025 x 7 x 20") != std::string::npos);
    CHECK(r.out.find("257 x 7 x 20") != std::string::npos);
    CHECK(r.out.find("139.99999") != std::string::npos); // 140 fibres each summing to 1
    CHECK(r.out.find("float64") != std::string::npos);
  }
}
