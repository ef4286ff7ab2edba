#pragma once
// Plots through gnuplot (Debian's gnuplot-nox, which run/setup installs): callers write a script, with
// its data inline or in files beside it, and run it here. A missing or failing gnuplot is reported to the
// caller, never fatal: the numbers are in the output files anyway, and the script stays for a later run.
#include <filesystem>
#include <string>
#include <vector>

namespace unmix::gnuplot {

/// `s` as a gnuplot string literal (single quotes, a quote inside doubled).
std::string quote(const std::string& s);

/// The "set terminal" line for `format` "png" (cairo) or "svg", `width` x `height` pixels, text shown as
/// given (noenhanced: underscores in file names stay underscores).
std::string terminal(const std::string& format, int width, int height);

/// Runs gnuplot on `script`, from the folder `workdir` when one is given (for scripts that name their data
/// files relative to it). Returns "" when gnuplot ran and succeeded, else why not: "gnuplot not found" or
/// gnuplot's last message.
std::string run(const std::filesystem::path& script, const std::filesystem::path& workdir = {});

/// Makes `image` (PNG for a .png name, else SVG; `width` x `height` pixels) from the gnuplot commands
/// `commands` (everything after the terminal and output lines), atomically: the image appears complete or
/// not at all. A file already at `image` is kept unless `replace` (callers pass their --overwrite). Returns
/// "" when made; else why not, and when gnuplot failed the script stays beside it as IMAGE.gp (its data
/// inline, writing `image` when run) for a later `gnuplot IMAGE.gp`; nothing else is touched.
std::string make_image(const std::filesystem::path& image, int width, int height, const std::string& commands,
                       bool replace = false);

/// The name of the plot beside an output file: the output's name with .svg instead of its extension
/// (result.h5 -> result.svg), or with .svg added where that would be the output itself (result.svg ->
/// result.svg.svg).
std::filesystem::path image_beside(const std::filesystem::path& output);

/// A datablock named `name` ("$name << EOD" ... "EOD") of rows of numbers, %.10g each; non-finite values
/// are written as NaN (gnuplot leaves those points out).
std::string datablock(const std::string& name, const std::vector<std::vector<double>>& rows);

} // namespace unmix::gnuplot
