#include "unmix/io/csv.hpp"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <limits>
#include <sstream>

#include "unmix/core/error.hpp"

namespace unmix::csv {

const std::string& Table::cell(std::size_t row, std::size_t col) const {
  static const std::string empty;
  if (row >= rows.size() || col >= rows[row].size()) return empty;
  return rows[row][col];
}

std::size_t Table::max_columns() const {
  std::size_t n = 0;
  for (const auto& r : rows) n = std::max(n, r.size());
  return n;
}

Table parse(std::string_view text, const std::string& path) {
  Table t;
  t.path = path;
  if (text.size() >= 3 && static_cast<unsigned char>(text[0]) == 0xEF && static_cast<unsigned char>(text[1]) == 0xBB &&
      static_cast<unsigned char>(text[2]) == 0xBF)
    text.remove_prefix(3);
  std::vector<std::string> row;
  std::string field;
  bool quoted = false;     // inside quotes
  bool was_quoted = false; // the current field had quotes (so "" is an empty but present field)
  bool after_quote = false;
  std::size_t line = 1, row_line = 1;
  auto end_row = [&] {
    row.push_back(field);
    field.clear();
    // A blank line (one empty unquoted field) is not a row.
    const bool blank = row.size() == 1 && row[0].find_first_not_of(" \t") == std::string::npos && !was_quoted;
    if (!blank) {
      t.rows.push_back(std::move(row));
      t.line.push_back(row_line);
    }
    row.clear();
    was_quoted = after_quote = false;
  };
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (quoted) {
      if (c == '"') {
        if (i + 1 < text.size() && text[i + 1] == '"') {
          field += '"';
          ++i;
        } else {
          quoted = false;
          after_quote = true;
        }
      } else {
        if (c == '\n') ++line;
        field += c;
      }
      continue;
    }
    if (c == ',') {
      row.push_back(field);
      field.clear();
      was_quoted = after_quote = false;
    } else if (c == '\n' || c == '\r') {
      if (c == '\r' && i + 1 < text.size() && text[i + 1] == '\n') ++i;
      end_row();
      ++line;
      row_line = line;
    } else if (c == '"' && field.find_first_not_of(" \t") == std::string::npos && !after_quote) {
      field.clear();
      quoted = was_quoted = true;
    } else if (after_quote) {
      if (c != ' ' && c != '\t')
        throw DataError("file '" + path + "', line " + std::to_string(line) +
                        ": text after the closing quote of a field; quote the whole field");
    } else {
      field += c;
    }
  }
  if (quoted)
    throw DataError("file '" + path + "', line " + std::to_string(row_line) +
                    ": a quoted field is never closed (a missing '\"')");
  if (!field.empty() || !row.empty() || was_quoted) end_row();
  return t;
}

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    const int err = errno;
    throw IoError("cannot read '" + path + "': " + (err ? std::strerror(err) : "cannot open"));
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) throw IoError("cannot read '" + path + "': read error");
  return ss.str();
}

Table read(const std::string& path) { return parse(read_text(path), path); }

CellKind parse_cell(std::string_view cell, double& value) {
  const auto b = cell.find_first_not_of(" \t");
  if (b == std::string_view::npos) {
    value = std::numeric_limits<double>::quiet_NaN();
    return CellKind::missing;
  }
  const auto e = cell.find_last_not_of(" \t");
  std::string s(cell.substr(b, e - b + 1));
  std::string lower = s;
  std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char ch) { return std::tolower(ch); });
  if (lower == "nan" || lower == "na" || lower == "n/a" || lower == "null" || lower == "-" || lower == "-nan" ||
      lower == "+nan") {
    value = std::numeric_limits<double>::quiet_NaN();
    return CellKind::missing;
  }
  char* end = nullptr;
  errno = 0;
  const double v = std::strtod(s.c_str(), &end);
  if (end == s.c_str() || *end != '\0' || !std::isfinite(v)) return CellKind::text;
  value = v;
  return CellKind::number;
}

std::string where(const std::string& path, std::size_t row, std::size_t col, const std::string& header) {
  std::string s = "file '" + path + "'";
  if (row > 0) s += ", row " + std::to_string(row);
  if (col > 0) s += ", column " + std::to_string(col);
  if (!header.empty()) s += " ('" + header + "')";
  return s;
}

std::string quote(const std::string& field) {
  if (field.find_first_of(",\"\r\n") == std::string::npos) return field;
  std::string out = "\"";
  for (char c : field) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

} // namespace unmix::csv
