// Plots through gnuplot: quoting, inline data, the images made atomically, failures reported (never
// fatal), and the two plots' commands (convergence of a solve, the rank curve) carrying the right data.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "../support/test_support.hpp"
#include "unmix/io/gnuplot.hpp"
#include "unmix/pipeline/factorize.hpp"
#include "unmix/rank/pipeline.hpp"

using namespace unmix;
namespace fs = std::filesystem;

namespace {

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// The rows of datablock `name` in `commands`, each a line of text.
std::vector<std::string> block_rows(const std::string& commands, const std::string& name) {
  std::istringstream in(commands);
  std::vector<std::string> rows;
  bool inside = false;
  for (std::string line; std::getline(in, line);) {
    if (line == "$" + name + " << EOD") {
      inside = true;
    } else if (inside && line == "EOD") {
      break;
    } else if (inside) {
      rows.push_back(line);
    }
  }
  return rows;
}

std::vector<IterationStats> solve_like(std::size_t n, bool stationarity) {
  std::vector<IterationStats> stats(n);
  for (std::size_t k = 0; k < n; ++k) {
    stats[k].iteration = static_cast<double>(k);
    stats[k].rel_error = 0.5 * std::pow(0.99, static_cast<double>(k)) + 1e-3;
    stats[k].rel_stationarity = stationarity && k % 10 == 0 ? std::pow(0.97, static_cast<double>(k)) : 0.0;
  }
  return stats;
}

// Sets PATH for one scope.
struct PathFor {
  std::string previous;
  explicit PathFor(const char* path) : previous(std::getenv("PATH") ? std::getenv("PATH") : "") {
    setenv("PATH", path, 1);
  }
  ~PathFor() { setenv("PATH", previous.c_str(), 1); }
  PathFor(const PathFor&) = delete;
  PathFor& operator=(const PathFor&) = delete;
};

} // namespace

TEST_CASE("gnuplot strings and inline data are written exactly", "[plots]") {
  CHECK(gnuplot::quote("it's a_b") == "'it''s a_b'");
  CHECK(gnuplot::datablock("d", {{1, 0.5, NAN}, {2, 0.25, INFINITY}, {3, 1e-12, -2}}) ==
        "$d << EOD\n1 0.5 NaN\n2 0.25 NaN\n3 1e-12 -2\nEOD\n");
  CHECK(gnuplot::terminal("svg", 700, 450).find("set terminal svg noenhanced size 700,450") == 0);
  CHECK(gnuplot::terminal("png", 10, 20).find("set terminal pngcairo noenhanced size 10,20") == 0);
  // The plot beside an output never takes the output's own name.
  CHECK(gnuplot::image_beside("out/result.h5") == "out/result.svg");
  CHECK(gnuplot::image_beside("result") == "result.svg");
  CHECK(gnuplot::image_beside("a.b/result.svg") == "a.b/result.svg.svg");
}

TEST_CASE("the convergence plot carries every iteration up to 2000 rows, the last one always", "[plots]") {
  const auto small = convergence_plot(solve_like(50, true), "x.h5 Y: rank 3");
  const auto rows = block_rows(small, "stats");
  REQUIRE(rows.size() == 50);
  CHECK(rows[0] == "0 0.501 1");
  CHECK(rows[10].substr(0, 3) == "10 ");
  CHECK(rows[11].find("NaN") != std::string::npos); // stationarity not computed there: left out
  CHECK(small.find("axes x1y2") != std::string::npos);
  CHECK(small.find("set title 'x.h5 Y: rank 3'") != std::string::npos);
  // No stationarity anywhere: one curve, no second axis (a log axis with no point would fail).
  const auto plain = convergence_plot(solve_like(50, false), "t");
  CHECK(plain.find("axes x1y2") == std::string::npos);
  CHECK(plain.find("logscale y2") == std::string::npos);
  // 5001 iterations: every third one, the last too.
  const auto big = block_rows(convergence_plot(solve_like(5001, true), "t"), "stats");
  CHECK(big.size() == 1668);
  CHECK(big[1].substr(0, 2) == "3 ");
  CHECK(big.back().substr(0, 5) == "5000 ");
  const auto big2 = block_rows(convergence_plot(solve_like(5003, true), "t"), "stats");
  CHECK(big2.size() == 1669);
  CHECK(big2.back().substr(0, 5) == "5002 ");
}

TEST_CASE("the rank plot carries each candidate's error and curvature and marks the chosen rank", "[plots]") {
  RankSweepResult res;
  for (std::size_t r = 1; r <= 5; ++r) {
    RankCandidate c;
    c.rank = r;
    c.rel_error = r >= 3 ? 0.01 / static_cast<double>(r) : 0.5 / static_cast<double>(r);
    res.candidates.push_back(c);
  }
  res.curvature = {NAN, 0.2, 1.5, 0.1, NAN};
  res.chosen_rank = 3;
  const std::string g = curve_plot(res, "data.h5 Y", "finite-differences");
  CHECK(block_rows(g, "sweep") ==
        std::vector<std::string>{"1 0.5 NaN", "2 0.25 0.2", "3 0.003333333333 1.5", "4 0.0025 0.1", "5 0.002 NaN"});
  CHECK(g.find("'chosen rank 3' at 3,") != std::string::npos);
  CHECK(g.find("'finite-differences curvature'") != std::string::npos);
  // Drawn by gnuplot: an SVG with the title and the label in it.
  const fs::path svg = fs::path(test::scratch_dir()) / "rank_plot.svg";
  fs::remove(svg);
  REQUIRE(gnuplot::make_image(svg, 700, 450, g) == "");
  const std::string text = slurp(svg);
  CHECK(text.find("<svg") != std::string::npos);
  CHECK(text.find("data.h5 Y") != std::string::npos);
  CHECK(text.find("chosen rank 3") != std::string::npos);
}

TEST_CASE("images are made whole or not at all, and a failure says why and keeps the script", "[plots]") {
  const fs::path dir = fs::path(test::scratch_dir()) / "plots";
  fs::remove_all(dir);
  fs::create_directories(dir);
  const std::string commands = convergence_plot(solve_like(200, true), "run's title");
  // PNG and SVG, chosen by the name.
  const fs::path png = dir / "conv.png", svg = dir / "conv.svg";
  REQUIRE(gnuplot::make_image(png, 640, 400, commands) == "");
  REQUIRE(gnuplot::make_image(svg, 640, 400, commands) == "");
  CHECK(slurp(png).substr(0, 8) == std::string("\x89PNG\r\n\x1a\n", 8));
  CHECK(slurp(svg).find("run's title") != std::string::npos);
  std::size_t files = 0;
  for (const auto& e : fs::directory_iterator(dir)) files += e.is_regular_file();
  CHECK(files == 2); // no script, no partial image left beside them
  // A command gnuplot refuses: no image, its message, the script kept for a run by hand.
  const fs::path bad = dir / "bad.svg";
  const std::string why = gnuplot::make_image(bad, 640, 400, "plot $nosuchblock using 1:2\n");
  INFO(why);
  CHECK(why.find("gnuplot: ") == 0);
  CHECK(why.find("its script is '" + (dir / "bad.svg.gp").string() + "'") != std::string::npos);
  CHECK(!fs::exists(bad));
  CHECK(!fs::exists(dir / "bad.svg.part"));
  const std::string script = slurp(dir / "bad.svg.gp");
  CHECK(script.find("set output " + gnuplot::quote(bad.string())) != std::string::npos);
  // No gnuplot on the PATH: said so, nothing made.
  {
    PathFor none("/nonexistent");
    const fs::path missing = dir / "missing.svg";
    CHECK(gnuplot::make_image(missing, 640, 400, commands).find("gnuplot not found") == 0);
    CHECK(!fs::exists(missing));
  }
  fs::remove_all(dir);
}
