#pragma once
// A small CSV reader (RFC 4180: comma separated, fields optionally in double quotes with "" for a quote,
// LF or CRLF line ends, a UTF-8 byte-order mark ignored). Cells stay text; number parsing is separate so
// callers decide what a missing value means. Every message names the file, the 1-based row and column,
// and the column's header when there is one.
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace unmix::csv {

struct Table {
  std::string path;                           ///< the file name, for messages
  std::vector<std::vector<std::string>> rows; ///< rows[r - 1] is row r of the file; blank lines dropped
  std::vector<std::size_t> line;              ///< line[r - 1]: the file line where row r starts

  std::size_t size() const { return rows.size(); }
  /// Cell (0-based row and column); "" past the end of a short row.
  const std::string& cell(std::size_t row, std::size_t col) const;
  /// The largest number of cells in any row.
  std::size_t max_columns() const;
};

/// Parses CSV text. Throws DataError naming `path` and the line on an unterminated quote or text after a
/// closing quote.
Table parse(std::string_view text, const std::string& path);
/// Reads a whole file as text; throws IoError when it is missing or unreadable.
std::string read_text(const std::string& path);
/// read_text + parse.
Table read(const std::string& path);

enum class CellKind { number, missing, text };

/// Classifies a cell (spaces around it ignored): a finite number (stored in `value`), missing (empty,
/// NaN, NA, N/A, null, '-', in any letter case; `value` becomes NaN), or text (anything else, including
/// infinities).
CellKind parse_cell(std::string_view cell, double& value);

/// "file 'PATH', row R, column C ('HEADER')": row and column are 1-based; 0 leaves that part out, an
/// empty header leaves the name out.
std::string where(const std::string& path, std::size_t row, std::size_t col, const std::string& header = "");

/// Writes a CSV field, quoting it when it holds a comma, a quote or a line break.
std::string quote(const std::string& field);

} // namespace unmix::csv
