#include "unmix/io/gnuplot.hpp"

#include <sys/wait.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>

namespace unmix::gnuplot {

std::string quote(const std::string& s) {
  std::string o = "'";
  for (char c : s) o += c == '\'' ? std::string("''") : std::string(1, c);
  return o + "'";
}

std::string terminal(const std::string& format, int width, int height) {
  const std::string size = " size " + std::to_string(width) + "," + std::to_string(height);
  return format == "svg" ? "set terminal svg noenhanced" + size + " background '#ffffff'\n"
                         : "set terminal pngcairo noenhanced" + size + "\n";
}

namespace {
// A path as a word for /bin/sh (single quotes; a quote inside as '\'').
std::string shell_word(const std::string& s) {
  std::string o = "'";
  for (char c : s) o += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return o + "'";
}
} // namespace

std::string run(const std::filesystem::path& script, const std::filesystem::path& workdir) {
  std::error_code ec;
  const std::filesystem::path path = std::filesystem::absolute(script, ec), log = path.string() + ".log";
  std::string cmd = workdir.empty() ? std::string() : "cd " + shell_word(workdir.string()) + " && ";
  cmd += "gnuplot " + shell_word(path.string()) + " > " + shell_word(log.string()) + " 2>&1";
  const int rc = std::system(cmd.c_str());
  const int code = rc != -1 && WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
  std::string last;
  {
    std::ifstream in(log);
    for (std::string line; std::getline(in, line);)
      if (line.find_first_not_of(" \t^") != std::string::npos) last = line;
  }
  std::filesystem::remove(log, ec);
  if (code == 0) return "";
  if (code == 127) return "gnuplot not found";
  return "gnuplot: " + (last.empty() ? "exit status " + std::to_string(code) : last);
}

std::string make_image(const std::filesystem::path& image, int width, int height, const std::string& commands,
                       bool replace) {
  namespace fs = std::filesystem;
  if (!replace && fs::exists(image)) return "a file of that name exists; --overwrite replaces it";
  const std::string format = image.extension() == ".png" ? "png" : "svg";
  const fs::path part = image.string() + ".part", script = image.string() + ".gp";
  auto write_script = [&](const fs::path& output) {
    std::ofstream os(script);
    os << terminal(format, width, height) << "set output " << quote(output.string()) << "\n" << commands;
    os.close();
    return static_cast<bool>(os);
  };
  std::error_code ec;
  if (!write_script(part)) return "cannot write the script '" + script.string() + "'";
  std::string why = run(script);
  if (why.empty() && !fs::exists(part)) why = "gnuplot wrote no image";
  if (why.empty()) {
    fs::rename(part, image, ec);
    if (!ec) {
      fs::remove(script, ec);
      return "";
    }
    why = "cannot rename '" + part.string() + "' to '" + image.string() + "': " + ec.message();
  }
  fs::remove(part, ec);
  write_script(image); // for a later run by hand
  return why + "; its script is '" + script.string() + "'";
}

std::filesystem::path image_beside(const std::filesystem::path& output) {
  std::filesystem::path svg = output;
  svg.replace_extension(".svg");
  return svg == output ? std::filesystem::path(output.string() + ".svg") : svg;
}

std::string datablock(const std::string& name, const std::vector<std::vector<double>>& rows) {
  std::string s = "$" + name + " << EOD\n";
  char b[32];
  for (const auto& row : rows) {
    for (std::size_t k = 0; k < row.size(); ++k) {
      if (std::isfinite(row[k]))
        std::snprintf(b, sizeof b, "%.10g", row[k]);
      else
        std::snprintf(b, sizeof b, "NaN");
      if (k) s += ' ';
      s += b;
    }
    s += "\n";
  }
  return s + "EOD\n";
}

} // namespace unmix::gnuplot
