// The pieces of `unmix spatial`: MatrixMarket reading (plain and gzip, every supported variant, bad
// files), the spots' table, the preparation of the matrix against hand-computed values, and the adjusted
// Rand index against scikit-learn's documented values.
#include <catch2/catch.hpp>

#include <zlib.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "../support/test_support.hpp"
#include "unmix/apps/spatial.hpp"
#include "unmix/core/error.hpp"

using namespace unmix;
using namespace unmix::spatial;
namespace fs = std::filesystem;

namespace {

std::string put(const std::string& name, const std::string& text, bool gz = false) {
  const std::string path = test::temp_dir("spatial") + "/" + name;
  if (gz) {
    gzFile f = gzopen(path.c_str(), "wb");
    REQUIRE(f != nullptr);
    gzwrite(f, text.data(), static_cast<unsigned>(text.size()));
    gzclose(f);
  } else {
    std::ofstream(path) << text;
  }
  return path;
}

} // namespace

TEST_CASE("read_matrix_market: coordinate matrices, plain or gzip, general, symmetric or pattern", "[spatial]") {
  const std::string general = "%%MatrixMarket matrix coordinate integer general\n% a comment\n3 2 4\n1 1 5\n3 1 2\n"
                              "2 2 7\n3 2 1\n";
  for (bool gz : {false, true}) {
    const Coo m = read_matrix_market(put(gz ? "g.mtx.gz" : "g.mtx", general, gz));
    CHECK(m.rows == 3);
    CHECK(m.cols == 2);
    CHECK(m.row == std::vector<std::size_t>{0, 2, 1, 2});
    CHECK(m.col == std::vector<std::size_t>{0, 0, 1, 1});
    CHECK(m.value == std::vector<double>{5, 2, 7, 1});
  }
  const Coo s =
      read_matrix_market(put("s.mtx", "%%MatrixMarket matrix coordinate real symmetric\n2 2 2\n1 1 1.5\n2 1 -2\n"));
  CHECK(s.row == std::vector<std::size_t>{0, 1, 0});
  CHECK(s.col == std::vector<std::size_t>{0, 0, 1});
  CHECK(s.value == std::vector<double>{1.5, -2, -2});
  const Coo p = read_matrix_market(put("p.mtx", "%%MatrixMarket matrix coordinate pattern general\n2 3 2\n1 3\n2 1\n"));
  CHECK(p.value == std::vector<double>{1, 1});
  CHECK(p.col == std::vector<std::size_t>{2, 0});
  struct Bad {
    std::string text, message;
  };
  for (const Bad& b : std::vector<Bad>{
           {"", "is empty"},
           {"hello\n", "not a MatrixMarket matrix"},
           {"%%MatrixMarket matrix array real general\n2 2\n1\n2\n3\n4\n", "only the sparse 'coordinate'"},
           {"%%MatrixMarket matrix coordinate complex general\n1 1 1\n1 1 1 0\n", "not supported"},
           {"%%MatrixMarket matrix coordinate real general\n2 2\n", "expected 'rows columns entries'"},
           {"%%MatrixMarket matrix coordinate real general\n2 2 1\n3 1 1\n", "outside the 2 x 2 matrix"},
           {"%%MatrixMarket matrix coordinate real general\n2 2 1\n1 1 nan\n", "expected 'row column value'"},
           {"%%MatrixMarket matrix coordinate real general\n2 2 3\n1 1 1\n2 2 1\n", "ends after 2 of its 3 entries"},
           {"%%MatrixMarket matrix coordinate real general\n-3 2 1\n1 1 1\n", "is not a valid size"},
           {"%%MatrixMarket matrix coordinate real general\n3 2 7\n1 1 1\n", "is not a valid size"},
           {"%%MatrixMarket matrix coordinate real general\n3 2 100000000000000\n", "is not a valid size"},
       }) {
    INFO(b.text);
    try {
      read_matrix_market(put("bad.mtx", b.text));
      FAIL("no error");
    } catch (const DataError& e) {
      CHECK(std::string(e.what()).find(b.message) != std::string::npos);
    }
  }
  CHECK_THROWS_AS(read_matrix_market(test::temp_dir("spatial") + "/missing.mtx"), IoError);
  // Sizes whose cells pass 2^63 are refused (keys of spot and gene would overflow).
  CHECK_THROWS_WITH(read_matrix_market(put("huge.mtx", "%%MatrixMarket matrix coordinate real general\n1099511627776 "
                                                       "1099511627776 1\n1 1 1\n")),
                    Catch::Contains("larger than the 2^63 cells"));
}

TEST_CASE("MatrixMarketReader: entries a piece at a time, as the whole file gives them", "[spatial]") {
  const std::string text = "%%MatrixMarket matrix coordinate real symmetric\n% c\n4 4 5\n1 1 1\n2 1 2\n"
                           "% between entries\n3 2 3\n4 4 4\n4 1 5\n";
  const Coo whole = read_matrix_market(put("sym.mtx", text));
  CHECK(whole.value == std::vector<double>{1, 2, 2, 3, 3, 4, 5, 5}); // off-diagonal lines come with their mirror
  for (std::size_t piece : {1, 2, 3, 5, 9}) {
    INFO(piece);
    MatrixMarketReader in(put("sym.mtx", text));
    CHECK(in.rows() == 4);
    CHECK(in.cols() == 4);
    CHECK(in.lines() == 5);
    Coo m;
    std::size_t lines = 0, rounds = 0;
    while (const std::size_t got = in.read(m, piece)) {
      CHECK(got == std::min(piece, 5 - lines));
      lines += got;
      ++rounds;
    }
    CHECK(rounds == (5 + piece - 1) / piece);
    CHECK(m.row == whole.row);
    CHECK(m.col == whole.col);
    CHECK(m.value == whole.value);
  }
  // A truncated file fails in the piece that runs out, naming how far it got.
  MatrixMarketReader in(put("short.mtx", "%%MatrixMarket matrix coordinate integer general\n3 3 4\n1 1 1\n2 2 1\n"
                                         "3 3 1\n"));
  Coo m;
  CHECK(in.read(m, 2) == 2);
  CHECK_THROWS_WITH(in.read(m, 2), Catch::Contains("ends after 3 of its 4 entries"));
}

TEST_CASE("merge_counts and scale_genes: duplicates summed in key order; scales with partial columns combined",
          "[spatial]") {
  std::vector<CountEntry> e{{7, 1}, {2, 0.5}, {7, 2}, {0, 4}, {2, 0.25}};
  const std::size_t n = merge_counts(e);
  REQUIRE(n == 3);
  CHECK(e[0].key == 0);
  CHECK(e[0].value == 4);
  CHECK(e[1].key == 2);
  CHECK(e[1].value == 0.75);
  CHECK(e[2].key == 7);
  CHECK(e[2].value == 3);
  std::vector<CountEntry> neg{{1, 1}, {3, -0.5}};
  CHECK_THROWS_WITH(merge_counts(neg), Catch::Contains("negative value"));
  // Two genes over 4 spots; the box of spots 1-2 scaled with combine adding what the box of spots 3-4 would
  // give (its largest values, its sums, its squares about the mean) equals the whole columns scaled.
  const std::vector<double> whole{1, 3, 0, 4, /* gene 2 */ 2, 2, 2, 2};
  for (const std::string scale : {"max", "std", "none"}) {
    INFO(scale);
    std::vector<double> w = whole;
    const std::vector<double> want = scale_genes(w.data(), 4, 2, 4, scale, [](std::vector<double>&, bool) {});
    std::vector<double> top{whole[0], whole[1], whole[4], whole[5]}; // spots 1-2 of both genes
    std::size_t ct = 0;
    const std::vector<double> got = scale_genes(top.data(), 2, 2, 4, scale, [&](std::vector<double>& v, bool largest) {
      for (std::size_t k = 0; k < v.size(); ++k) {
        if (largest) {
          v[k] = std::max({v[k], whole[2 + 4 * k], whole[3 + 4 * k]});
        } else if (ct == 0) {
          v[k] += whole[2 + 4 * k] + whole[3 + 4 * k];
        } else {
          const double mean = (whole[4 * k] + whole[1 + 4 * k] + whole[2 + 4 * k] + whole[3 + 4 * k]) / 4;
          v[k] += (whole[2 + 4 * k] - mean) * (whole[2 + 4 * k] - mean) +
                  (whole[3 + 4 * k] - mean) * (whole[3 + 4 * k] - mean);
        }
      }
      ++ct;
    });
    for (std::size_t k = 0; k < 2; ++k) CHECK(got[k] == Approx(want[k]).epsilon(1e-15));
    for (std::size_t k = 0; k < 2; ++k)
      for (std::size_t s = 0; s < 2; ++s) CHECK(top[s + 2 * k] == Approx(w[s + 4 * k]).epsilon(1e-15));
  }
  // By hand: gene 1 max 4, std of {1, 3, 0, 4} = sqrt(2.5); gene 2 constant: std 0 -> 1.
  std::vector<double> w = whole;
  CHECK(scale_genes(w.data(), 4, 2, 4, "max", [](std::vector<double>&, bool) {}) == std::vector<double>{4, 2});
  w = whole;
  const std::vector<double> sd = scale_genes(w.data(), 4, 2, 4, "std", [](std::vector<double>&, bool) {});
  CHECK(sd[0] == Approx(std::sqrt(2.5)));
  CHECK(sd[1] == 1);
}

TEST_CASE("read_gene_names: one per line, plain or gzip, or a 10x features.tsv's name column", "[spatial]") {
  CHECK(read_gene_names(put("genes.txt", "Gad1\nSlc17a7 \r\nMbp\n"), 3) ==
        std::vector<std::string>{"Gad1", "Slc17a7", "Mbp"});
  const std::string features = "ENSMUSG00000070880\tGad1\tGene Expression\n"
                               "ENSMUSG00000070570\tSlc17a7\tGene Expression\nENSMUSG00000041607\tMbp\n";
  for (bool gz : {false, true})
    CHECK(read_gene_names(put(gz ? "features.tsv.gz" : "features.tsv", features, gz), 3) ==
          std::vector<std::string>{"Gad1", "Slc17a7", "Mbp"});
  CHECK_THROWS_WITH(read_gene_names(put("two.txt", "a\nb\n"), 3),
                    Catch::Contains("names 2 genes; the counts have 3 rows"));
  CHECK_THROWS_AS(read_gene_names(test::temp_dir("spatial") + "/none.txt", 1), IoError);
}

TEST_CASE("read_spots with barcodes: rows matched by name, in any order, others left out", "[spatial]") {
  // A 10x-style positions table: more spots than columns (off-tissue ones), another order.
  const std::string table = put("positions.csv", "barcode,in_tissue,array_row,array_col,pxl_row,pxl_col\n"
                                                 "AAAC-1,0,0,0,10,20\nCCCT-1,1,0,2,11,21\nGGGA-1,1,1,1,12,22\n"
                                                 "TTTG-1,1,1,3,13,23\n");
  for (bool gz : {false, true}) {
    const std::vector<std::string> codes =
        read_barcodes(put(gz ? "barcodes.tsv.gz" : "barcodes.tsv", "TTTG-1\nCCCT-1\nGGGA-1\n", gz));
    CHECK(codes == std::vector<std::string>{"TTTG-1", "CCCT-1", "GGGA-1"});
    const Spots s = read_spots(table, "pxl_col", "pxl_row", "", "barcode", "", codes);
    CHECK(s.id == codes);
    CHECK(s.x == std::vector<double>{23, 21, 22});
    CHECK(s.y == std::vector<double>{13, 11, 12});
  }
  CHECK_THROWS_WITH(read_spots(table, "pxl_col", "pxl_row", "", "barcode", "", {"CCCT-1", "ACGT-1"}),
                    Catch::Contains("no row for barcode 'ACGT-1' (column 2 of the counts)"));
  CHECK_THROWS_WITH(read_spots(put("twice.csv", "barcode,x,y\nA,1,1\nB,2,2\nA,3,3\n"), "x", "y", "", "", "", {"A"}),
                    Catch::Contains("names spot 'A' on rows 2 and 4"));
  CHECK_THROWS_AS(read_spots(table, "pxl_col", "pxl_row", "", "barcode", "in_tissue", {"CCCT-1"}), ConfigError);
  CHECK_THROWS_WITH(read_barcodes(put("dup.tsv", "A\nB\nA\n")), Catch::Contains("'A' on lines 1 and 3"));
  CHECK_THROWS_WITH(read_barcodes(put("empty.tsv", "")), Catch::Contains("is empty"));
}

TEST_CASE("read_spots: coordinates, annotation (missing values unannotated) and names", "[spatial]") {
  const std::string path = put("spots.csv", "\"col\",\"barcode\",\"x\",\"y\",\"layer\"\n1,\"AC\",1.5,2,\"L1\"\n"
                                            "2,\"GT\",3,4.25,NA\n3,\"TT\",5,6,\"L2\"\n");
  const Spots s = read_spots(path, "x", "y", "layer");
  CHECK(s.x == std::vector<double>{1.5, 3, 5});
  CHECK(s.y == std::vector<double>{2, 4.25, 6});
  CHECK(s.label == std::vector<std::string>{"L1", "", "L2"});
  CHECK(s.id == std::vector<std::string>{"1", "2", "3"}); // the first other column
  CHECK(read_spots(path, "x", "y", "", "barcode").id == std::vector<std::string>{"AC", "GT", "TT"});
  CHECK(read_spots(path, "x", "y", "").label.empty());
  CHECK_THROWS_WITH(read_spots(path, "x", "z", ""), Catch::Contains("no column 'z'"));
  CHECK_THROWS_WITH(read_spots(path, "x", "layer", ""), Catch::Contains("is not a number"));
  // An index column reorders the rows into the counts' column order, and must be a permutation.
  const std::string shuffled = put("shuffled.csv", "col,x,y\n2,20,2\n3,30,3\n1,10,1\n");
  const Spots o = read_spots(shuffled, "x", "y", "", "", "col");
  CHECK(o.x == std::vector<double>{10, 20, 30});
  CHECK(o.id == std::vector<std::string>{"3", "1", "2"}); // no name column: the file's row numbers
  CHECK_THROWS_WITH(read_spots(put("dup.csv", "col,x,y\n2,1,1\n2,1,1\n"), "x", "y", "", "", "col"),
                    Catch::Contains("column 2 is already described by row 2"));
  CHECK_THROWS_WITH(read_spots(put("far.csv", "col,x,y\n1,1,1\n3,1,1\n"), "x", "y", "", "", "col"),
                    Catch::Contains("is not a column of the counts (1 to 2)"));
  std::vector<std::string> names;
  CHECK(encode_labels(s.label, &names) == std::vector<int>{0, -1, 1});
  CHECK(names == std::vector<std::string>{"L1", "L2"});
}

TEST_CASE("prepare: library-size scaling, the most variable genes, per-gene scale", "[spatial]") {
  // 4 genes x 3 spots (library sizes 10, 20, 10; median 10).
  Coo m;
  m.rows = 4;
  m.cols = 3;
  auto add = [&](std::size_t g, std::size_t s, double v) {
    m.row.push_back(g);
    m.col.push_back(s);
    m.value.push_back(v);
  };
  add(0, 0, 5), add(0, 1, 10), add(0, 2, 5); // gene 0: the same share everywhere -> variance 0
  add(1, 0, 5), add(1, 2, 1);                // gene 1: 5, 0, 1
  add(2, 1, 10), add(2, 2, 4);               // gene 2: 0, 5 (after scaling), 4
  add(3, 2, 0);                              // gene 3: an explicit zero, never detected
  PrepareOptions o;
  o.top_genes = 2;
  o.min_spots = 1;
  o.scale = "none";
  const Prepared p = prepare(m, o);
  CHECK(p.library_size == std::vector<double>{10, 20, 10});
  REQUIRE(p.genes == 2);
  // Variances of log1p: gene 1 {log 6, 0, log 2}, gene 2 {0, log 6, log 5}.
  auto var = [](std::vector<double> v) {
    double mu = 0, s = 0;
    for (double x : v) mu += x / 3;
    for (double x : v) s += (x - mu) * (x - mu) / 3;
    return s;
  };
  const double v1 = var({std::log(6.0), 0, std::log(2.0)}), v2 = var({0, std::log(6.0), std::log(5.0)});
  REQUIRE(v1 != v2);
  const std::vector<std::size_t> order = v1 > v2 ? std::vector<std::size_t>{1, 2} : std::vector<std::size_t>{2, 1};
  CHECK(p.gene_index == order);
  const std::vector<double> g1{5, 0, 1}, g2{0, 5, 4};
  const auto& first = order[0] == 1 ? g1 : g2;
  for (std::size_t s = 0; s < 3; ++s) CHECK(p.Y[s] == Approx(first[s]));
  o.scale = "max";
  const Prepared q = prepare(m, o);
  for (std::size_t s = 0; s < 3; ++s) CHECK(q.Y[s] == Approx(first[s] / 5));
  CHECK(q.gene_scale[0] == Approx(5));
  o.scale = "std";
  const Prepared r = prepare(m, o);
  const double sd = std::sqrt(var(first));
  for (std::size_t s = 0; s < 3; ++s) CHECK(r.Y[s] == Approx(first[s] / sd));
  // The same counts with entries split in two (as some writers leave them) prepare to the same matrix.
  Coo split;
  split.rows = m.rows;
  split.cols = m.cols;
  for (std::size_t e = 0; e < m.value.size(); ++e)
    for (double part : {0.25, 0.75}) {
      split.row.push_back(m.row[e]);
      split.col.push_back(m.col[e]);
      split.value.push_back(part * m.value[e]);
    }
  const Prepared rs = prepare(split, o);
  CHECK(rs.gene_index == r.gene_index);
  REQUIRE(rs.Y.size() == r.Y.size());
  for (std::size_t i = 0; i < r.Y.size(); ++i) CHECK(rs.Y[i] == Approx(r.Y[i]));
  o.min_spots = 3; // only gene 0 is detected in all three spots
  CHECK(prepare(m, o).gene_index == std::vector<std::size_t>{0});
  o.min_spots = 4;
  CHECK_THROWS_AS(prepare(m, o), DataError);
  o.min_spots = 1;
  o.scale = "log";
  CHECK_THROWS_AS(prepare(m, o), ConfigError);
  o.scale = "max";
  m.cols = 4; // a spot without counts
  CHECK_THROWS_WITH(prepare(m, o), Catch::Contains("spot 4 has no counts"));
}

TEST_CASE("adjusted_rand_index matches scikit-learn's documented values; row_argmax", "[spatial]") {
  CHECK(adjusted_rand_index({0, 0, 1, 1}, {0, 0, 1, 1}) == Approx(1.0));
  CHECK(adjusted_rand_index({0, 0, 1, 1}, {1, 1, 0, 0}) == Approx(1.0));
  CHECK(adjusted_rand_index({0, 0, 1, 2}, {0, 0, 1, 1}) == Approx(0.5714285714285714));
  CHECK(adjusted_rand_index({0, 0, 1, 1}, {0, 1, 2, 3}) == Approx(0.0).margin(1e-15));
  CHECK(adjusted_rand_index({0, 0, 0, 0}, {0, 1, 2, 3}) == Approx(0.0).margin(1e-15));
  // Hand-computed: pairs together in both 2, in a 6, in b 3, of 15 -> (2 - 1.2) / (4.5 - 1.2).
  CHECK(adjusted_rand_index({0, 0, 0, 1, 1, 1}, {0, 0, 1, 1, 2, 2}) == Approx(0.8 / 3.3));
  // Unlabelled items (negative in b) are left out.
  CHECK(adjusted_rand_index({0, 0, 1, 1, 0}, {0, 0, 1, 1, -1}) == Approx(1.0));
  CHECK(row_argmax({0.1, 0.5, 0.2, 0.9, 0.5, 0.2}, 2, 3) == std::vector<int>{2, 1});
  CHECK(row_argmax({0.3, 0.3, 0.3, 0.1}, 2, 2) == std::vector<int>{0, 0}); // ties: the lowest index
}
