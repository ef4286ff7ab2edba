// `unmix spatial` end to end on the mouse olfactory bulb section (files and their contents, the rank
// estimate's honest warning) and bad input refused with a clear message, a non-zero exit and no output.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "../support/cli_checks.hpp"
#include "../support/test_support.hpp"

using unmix::test::lines_of;
using unmix::test::run_unmix;
using unmix::test::shared_data;
namespace fs = std::filesystem;

namespace {

const std::string counts = shared_data("transcriptomics/mOB_counts_genes15928_x_spots262.mtx.gz");
const std::string spots = shared_data("transcriptomics/spots_pos_layer.csv");

} // namespace

TEST_CASE("spatial finds the olfactory bulb's cell types and writes proportions, profiles, agreement and maps",
          "[spatial]") {
  const fs::path d = unmix::test::fresh_cli_dir("spatial", "good");
  const fs::path out = d / "mob";
  const auto r = run_unmix(2, {"spatial", counts, "--spots", spots, "--genes", shared_data("transcriptomics/genes.txt"),
                               "--label-column", "layer", "--rank", "5", "--out", out.string()});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(r.out.find("5 cell types from 262 spots x 1000 genes") != std::string::npos);
  const auto at = r.out.find("adjusted Rand index ");
  REQUIRE(at != std::string::npos);
  CHECK(std::stod(r.out.substr(at + 20)) > 0.55); // 0.623 measured
  const auto prop = lines_of(out / "proportions.csv");
  REQUIRE(prop.size() == 263);
  CHECK(prop[0] == "spot,x,y,label,dominant,type_1,type_2,type_3,type_4,type_5");
  CHECK(prop[1].rfind("1,16.001,16.036,3: Outer Plexiform Layer,", 0) == 0);
  const auto agree = lines_of(out / "agreement.csv");
  REQUIRE(agree.size() == 6); // header + 5 layers (NA spots left out)
  std::size_t total = 0;
  for (std::size_t i = 1; i < agree.size(); ++i) {
    std::stringstream ss(agree[i]);
    std::string c;
    std::getline(ss, c, ',');
    while (std::getline(ss, c, ',')) total += std::stoul(c);
  }
  CHECK(total == 260);
  const auto prof = lines_of(out / "profiles.csv");
  CHECK(prof.size() == 1 + 5 * 20);
  CHECK(prof[1].rfind("1,1,", 0) == 0);
  CHECK(unmix::test::read_attribute((out / "results.h5").string(), "rank") == "5.000000");
  std::vector<hsize_t> dims;
  unmix::test::read_dataset((out / "results.h5").string(), "A", &dims);
  CHECK(dims == std::vector<hsize_t>{262, 5});
  if (r.err.find("gnuplot not found") == std::string::npos) CHECK(fs::file_size(out / "maps.png") > 1000);

  // An annotation column without a single annotation: a warning, no agreement, no failure.
  {
    std::ofstream na(d / "na.csv");
    na << "x,y,layer\n";
    const auto table = lines_of(spots);
    for (std::size_t i = 1; i < table.size(); ++i) {
      const std::string& line = table[i];
      std::stringstream ss(line);
      std::string c, x, y;
      std::getline(ss, c, ',');
      std::getline(ss, c, ',');
      std::getline(ss, x, ',');
      std::getline(ss, y, ',');
      na << x << "," << y << ",NA\n";
    }
  }
  const auto n = run_unmix(1, {"spatial", counts, "--spots", (d / "na.csv").string(), "--label-column", "layer",
                               "--rank", "5", "--out", (d / "na").string(), "--plots", "none"});
  INFO(n.err);
  REQUIRE(n.exit_code == 0);
  CHECK(n.err.find("annotates 0 spot(s)") != std::string::npos);
  CHECK(n.out.find("adjusted Rand index") == std::string::npos);
  CHECK(!fs::exists(d / "na" / "agreement.csv"));

  // The estimate: this section's error curve has no clear bend, and the run says so.
  const auto a = run_unmix(2, {"spatial", counts, "--spots", spots, "--rank", "auto", "--max-rank", "6", "--out",
                               (d / "auto").string(), "--plots", "none"});
  INFO(a.err);
  REQUIRE(a.exit_code == 0);
  const auto sweep = lines_of(d / "auto" / "rank_sweep.csv");
  CHECK(sweep.size() == 7);
  if (a.out.find("1 cell types (estimated)") != std::string::npos)
    CHECK(a.err.find("no clear bend") != std::string::npos);
}

TEST_CASE("spatial with --barcodes matches a positions table's rows by name: the same fit", "[spatial]") {
  // The section's table shuffled (reversed), with a spot the counts do not have, and its barcodes in the counts'
  // order: the rows are matched by name and the fit is the plain run's.
  const fs::path d = unmix::test::fresh_cli_dir("spatial", "barcodes");
  const auto rows = lines_of(spots);
  REQUIRE(rows.size() == 263);
  {
    std::ofstream b(d / "barcodes.tsv"), t(d / "positions.csv");
    t << rows[0] << "\n";
    for (std::size_t i = rows.size() - 1; i >= 1; --i) t << rows[i] << "\n";
    t << "0,\"GHOSTSPOT\",0,0,NA\n";
    for (std::size_t i = 1; i < rows.size(); ++i) {
      const auto a = rows[i].find('"'), z = rows[i].find('"', a + 1);
      b << rows[i].substr(a + 1, z - a - 1) << "\n";
    }
  }
  auto run = [&](const std::vector<std::string>& extra, const std::string& name) {
    std::vector<std::string> args{"spatial", counts,    "--label-column", "layer", "--rank",
                                  "5",       "--plots", "none",           "--out", (d / name).string()};
    args.insert(args.end(), extra.begin(), extra.end());
    const auto r = run_unmix(2, args);
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
    return lines_of(d / name / "proportions.csv");
  };
  const auto plain = run({"--spots", spots, "--id-column", "barcode"}, "plain");
  const auto matched = run({"--spots", (d / "positions.csv").string(), "--barcodes", (d / "barcodes.tsv").string(),
                            "--id-column", "barcode"},
                           "matched");
  REQUIRE(plain.size() == 263);
  CHECK(matched == plain);
}

TEST_CASE("spatial rejects bad input with a clear message and leaves no output", "[spatial]") {
  const fs::path d = unmix::test::fresh_cli_dir("spatial", "bad");
  std::ofstream(d / "small.mtx") << "%%MatrixMarket matrix coordinate integer general\n3 2 3\n1 1 4\n2 2 5\n3 1 1\n";
  std::ofstream(d / "two.csv") << "x,y\n1,1\n2,1\n";
  std::ofstream(d / "three.csv") << "x,y\n1,1\n2,1\n3,1\n";
  std::ofstream(d / "genes2.txt") << "a\nb\n";
  std::ofstream(d / "one.tsv") << "a\n";
  std::ofstream(d / "bad.mtx") << "%%MatrixMarket matrix array real general\n1 1\n1\n";
  const std::string small = (d / "small.mtx").string(), two = (d / "two.csv").string();
  const std::vector<unmix::test::Refusal> cases = {
      {{(d / "missing.mtx").string(), "--spots", two, "--rank", "2"}, "no such file"},
      {{(d / "bad.mtx").string(), "--spots", two, "--rank", "1"}, "only the sparse 'coordinate'"},
      {{small, "--spots", (d / "three.csv").string(), "--rank", "2"}, "describes 3 spots; the counts have 2"},
      {{small, "--spots", two, "--rank", "2", "--x-column", "u"}, "no column 'u'"},
      {{small, "--spots", two, "--rank", "2", "--label-column", "layer"}, "no column 'layer'"},
      {{small, "--spots", two, "--rank", "2", "--genes", (d / "genes2.txt").string()}, "names 2 genes"},
      {{small, "--spots", two, "--rank", "2", "--barcodes", (d / "genes2.txt").string()}, "no row for barcode 'a'"},
      {{small, "--spots", two, "--rank", "2", "--barcodes", (d / "one.tsv").string()},
       "names 1 barcodes; the counts have 2 columns"},
      {{small, "--spots", two}, "--rank R (or --rank auto"},
      {{small, "--spots", two, "--rank", "two"}, "give a positive number or auto"},
      {{small, "--spots", two, "--rank", "3", "--min-spots", "1"}, "the rank must be between 1 and 2"},
      {{small, "--rank", "2"}, "no spots table given"},
      {{small, "--spots", two, "--rank", "2", "--top-genes", "0"}, "--top-genes must be at least 1"},
      {{small, "--spots", two, "--rank", "2", "--gene-scale", "log"}, "use max, std or none"},
      {{small, "--spots", two, "--rank", "2", "--min-spots", "3"}, "no gene is detected in 3 or more spots"},
      {{small, "--spots", two, "--rank", "2", "--plots", "gif"}, "use png, svg or none"},
      {{small, "--spots", two, "--rank", "2", "--constraint", "A=nope"}, "--constraint A=nope"},
      {{small, "--spots", two, "--rank", "1", "--min-spots", "1", "--constraint", "A=l1scale_columns+nonnegative",
        "--constraint", "B=clamp:0:1"},
       "B absorbs the scale of A"},
  };
  unmix::test::check_all_refused("spatial", cases, (d / "out").string(), {1, 3},
                                 [&] { CHECK(!fs::exists(d / "out")); });
}
