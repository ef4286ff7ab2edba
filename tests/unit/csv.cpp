// The CSV reader: quoting, line ends, blank lines, cell classification and messages.
#include <catch2/catch.hpp>

#include <cmath>

#include "unmix/core/error.hpp"
#include "unmix/io/csv.hpp"

using namespace unmix;

TEST_CASE("CSV: quotes, CRLF, byte-order mark and blank lines", "[csv]") {
  const std::string text = "\xEF\xBB\xBFsink,grain,\"Age, Ma\"\r\nA,1,\"12.5\"\r\n\r\n\"B \"\"x\"\"\",2,\n";
  const csv::Table t = csv::parse(text, "mem.csv");
  REQUIRE(t.size() == 3);
  CHECK(t.rows[0] == std::vector<std::string>{"sink", "grain", "Age, Ma"});
  CHECK(t.rows[1] == std::vector<std::string>{"A", "1", "12.5"});
  CHECK(t.rows[2] == std::vector<std::string>{"B \"x\"", "2", ""});
  CHECK(t.line[2] == 4);
  CHECK(t.cell(2, 7).empty());
  CHECK(t.max_columns() == 3);
  CHECK(csv::quote("a,b") == "\"a,b\"");
  CHECK(csv::quote("plain") == "plain");
}

TEST_CASE("CSV: malformed quoting is an error naming file and line", "[csv]") {
  try {
    csv::parse("a,b\n\"open,1\n", "bad.csv");
    FAIL("no error");
  } catch (const DataError& e) {
    CHECK_THAT(e.what(), Catch::Contains("bad.csv") && Catch::Contains("line 2"));
  }
  CHECK_THROWS_AS(csv::parse("\"a\"x,1\n", "bad.csv"), DataError);
  CHECK_THROWS_AS(csv::read("/nonexistent/file.csv"), IoError);
}

TEST_CASE("CSV: cells are numbers, missing values or text", "[csv]") {
  double v = 0;
  CHECK(csv::parse_cell(" 1.5e2 ", v) == csv::CellKind::number);
  CHECK(v == 150.0);
  CHECK(csv::parse_cell("-0.25", v) == csv::CellKind::number);
  for (const char* m : {"", "  ", "NaN", "nan", "NA", "n/a", "null", "-"}) {
    CHECK(csv::parse_cell(m, v) == csv::CellKind::missing);
    CHECK(std::isnan(v));
  }
  for (const char* t : {"abc", "1.2.3", "12kg", "inf", "-Infinity"})
    CHECK(csv::parse_cell(t, v) == csv::CellKind::text);
  CHECK(csv::where("f.csv", 3, 2, "Age") == "file 'f.csv', row 3, column 2 ('Age')");
  CHECK(csv::where("f.csv", 0, 4) == "file 'f.csv', column 4");
}
