// unmix info FILE.h5: datasets with shape, type and statistics, computed in parallel (each process
// reads a slab of the slowest axis).
#include <cmath>
#include <cstdio>
#include <iostream>
#include <limits>

#include "common.hpp"
#include "unmix/dist/layout.hpp"
#include "unmix/io/hdf5.hpp"

namespace unmix::cli {

int cmd_info(const std::vector<std::string>& args, const Comm& world) {
  po::options_description desc("Options");
  desc.add_options()("dataset", po::value<std::string>(), "only this dataset");
  Parsed p = parse("info", "FILE.h5 [--dataset NAME]", desc, {"file"}, args, world);
  const std::string path = p.vm["file"].as<std::string>();
  h5::File f = h5::File::open_read(world, path);
  std::vector<h5::DatasetInfo> list;
  collective_try(world, [&] {
    if (p.vm.count("dataset"))
      list = {f.info(p.vm["dataset"].as<std::string>())};
    else
      list = f.datasets();
  });
  if (world.rank() == 0) {
    std::printf("%s\n", path.c_str());
    std::printf("%-28s %-18s %-8s %14s %14s %16s %8s\n", "dataset", "shape", "type", "min", "max", "sum", "NaN");
  }
  for (const auto& d : list) {
    std::string shape = d.dims.empty() ? "scalar" : "";
    for (std::size_t i = 0; i < d.dims.size(); ++i) shape += (i ? " x " : "") + std::to_string(d.dims[i]);
    if (!d.numeric) {
      if (world.rank() == 0)
        std::printf("%-28s %-18s %-8s %14s %14s %16s %8s\n", d.name.c_str(), shape.c_str(), d.type.c_str(), "-", "-",
                    "-", "-");
      continue;
    }
    Shape start(d.dims.size(), 0), count = d.dims;
    if (!d.dims.empty()) {
      const BlockPartition part{d.dims[0], world.size()};
      start[0] = part.offset(world.rank());
      count[0] = part.size(world.rank());
    } else if (world.rank() != 0) {
      count = Shape{};
    }
    double mn = std::numeric_limits<double>::infinity(), mx = -mn, sum = 0, nan = 0;
    auto take = [&](const std::vector<double>& values) {
      for (double v : values) {
        if (std::isnan(v)) {
          nan += 1;
          continue;
        }
        mn = std::min(mn, v);
        mx = std::max(mx, v);
        sum += v;
      }
    };
    if (d.dims.empty()) {
      // Scalars: rank 0 reads it (collectively, others select nothing).
      std::vector<double> buf;
      collective_try(world, [&] { buf = f.read_all(d.name); });
      if (world.rank() == 0) take(buf);
    } else {
      // Each process its share of axis 0, in pieces: any size of dataset fits in memory.
      h5::read_in_pieces(f, d.name, start, count,
                         [&](const Shape&, const Shape&, const std::vector<double>& v) { take(v); });
    }
    mn = world.allreduce(mn, Op::min);
    mx = world.allreduce(mx, Op::max);
    sum = world.allreduce(sum);
    nan = world.allreduce(nan);
    if (world.rank() == 0) {
      if (mn > mx)
        std::printf("%-28s %-18s %-8s %14s %14s %16.8g %8.0f\n", d.name.c_str(), shape.c_str(), d.type.c_str(), "-",
                    "-", sum, nan);
      else
        std::printf("%-28s %-18s %-8s %14.6g %14.6g %16.8g %8.0f\n", d.name.c_str(), shape.c_str(), d.type.c_str(), mn,
                    mx, sum, nan);
    }
  }
  if (world.rank() == 0) std::fflush(stdout);
  return 0;
}

} // namespace unmix::cli
