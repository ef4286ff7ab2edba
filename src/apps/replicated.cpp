#include "unmix/apps/replicated.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>

#include "unmix/apps/sediment.hpp"
#include "unmix/dist/dist_tensor.hpp"
#include "unmix/model/tucker1.hpp"
#include "unmix/pipeline/factorize.hpp"

namespace unmix::apps {

namespace fs = std::filesystem;

namespace {

/// The whole of a distributed array, column-major, on every process: each owner sends its box.
std::vector<double> gather_box(const Comm& comm, const Shape& global, const Shape& offset, const Tensor<double>& local,
                               bool owner) {
  const std::size_t N = global.size();
  std::vector<double> pack;
  if (owner) {
    for (std::size_t n = 0; n < N; ++n) pack.push_back(static_cast<double>(offset[n]));
    for (std::size_t n = 0; n < N; ++n) pack.push_back(static_cast<double>(local.extent(n)));
    pack.insert(pack.end(), local.span().begin(), local.span().end());
  }
  const auto all = comm.allgatherv<double>(pack);
  std::vector<double> out(shape_size(global), 0.0);
  std::size_t pos = 0;
  Shape off(N), ext(N);
  std::vector<std::size_t> idx(N);
  while (pos < all.size()) {
    for (std::size_t n = 0; n < N; ++n) off[n] = static_cast<std::size_t>(all[pos + n]);
    for (std::size_t n = 0; n < N; ++n) ext[n] = static_cast<std::size_t>(all[pos + N + n]);
    pos += 2 * N;
    const std::size_t cnt = shape_size(ext);
    std::fill(idx.begin(), idx.end(), std::size_t{0});
    for (std::size_t l = 0; l < cnt; ++l) {
      std::size_t g = 0, stride = 1;
      for (std::size_t n = 0; n < N; ++n) {
        g += (off[n] + idx[n]) * stride;
        stride *= global[n];
      }
      out[g] = all[pos + l];
      for (std::size_t n = 0; n < N; ++n) {
        if (++idx[n] < ext[n]) break;
        idx[n] = 0;
      }
    }
    pos += cnt;
  }
  return out;
}

} // namespace

ConstraintList parse_factor_spec(const std::string& spec, const char* factor) {
  try {
    ConstraintList list = parse_constraints(spec);
    list.spec = spec;
    for (const auto& c : list.items)
      if (c.kind == ConstraintKind::linear)
        throw ConfigError("linear constraints need matrices; use unmix factorize for them");
    return list;
  } catch (const ConfigError& e) {
    throw ConfigError(std::string("--constraint ") + factor + "=" + spec + ": " + e.what());
  }
}

BlockLayout fit_layout(const Shape& shape, const FitSettings& s, const Comm& comm) {
  return BlockLayout(shape, s.grid ? ProcessGrid::parse(*s.grid, shape.size(), comm.size())
                                   : ProcessGrid::default_for(shape, comm.size(), 0));
}

namespace {

/// Each process's block of a tensor that every process holds whole (`caller` names it in the error).
DistTensor<double> own_blocks(const Shape& shape, const std::vector<double>& Y, const FitSettings& s, const Comm& comm,
                              const char* caller) {
  if (Y.size() != shape_size(shape)) throw Error(std::string(caller) + ": the data does not have the shape given");
  DistTensor<double> Yd(comm, fit_layout(shape, s, comm));
  copy_box<double>(Y, shape, Yd.offset(), Yd.local().shape(), 0, Yd.local().span());
  return Yd;
}

} // namespace

DistTensor<double> spread_from_root(const Shape& shape, std::span<const double> whole, const FitSettings& s,
                                    const Comm& comm) {
  return scatter_whole<double>(comm, fit_layout(shape, s, comm), whole, 0);
}

Fit factorize_replicated(const Shape& shape, const std::vector<double>& Y, std::size_t R, const FitSettings& s,
                         const Comm& comm, const std::string& mixtures) {
  return factorize_distributed(own_blocks(shape, Y, s, comm, "factorize_replicated"), R, s, mixtures);
}

Fit factorize_distributed(const DistTensor<double>& Yd, std::size_t R, const FitSettings& s,
                          const std::string& mixtures) {
  const Comm& comm = Yd.comm();
  const Shape& shape = Yd.global_shape();
  const std::size_t I = shape.at(0), M = shape_size(shape) / std::max<std::size_t>(I, 1);
  if (R < 1 || R > std::min(I, M))
    throw ConfigError("--rank " + std::to_string(R) + ": with " + std::to_string(I) + " " + mixtures + " and " +
                      std::to_string(M) + " values each the rank must be between 1 and " +
                      std::to_string(std::min(I, M)));
  const ConstraintList consA = parse_factor_spec(s.constraint_A, "A"), consB = parse_factor_spec(s.constraint_B, "B");
  if (!scale_compensable(consB, shape.size(), 0))
    throw ConfigError("--constraint B=" + s.constraint_B +
                      ": a scaled normalization of B must act on whole 1-slices so that A can absorb the scale");
  if (!scale_compensable(consA, 2, 1))
    throw ConfigError("--constraint A=" + s.constraint_A +
                      ": a scaled normalization of A must act on its columns so that B can absorb the scale");
  check_tucker1_scaling(consA, consB); // B absorbs A's scale: only where that keeps B's constraints
  Tucker1<double> model(Yd, R);
  Fit best;
  double best_obj = std::numeric_limits<double>::infinity();
  for (std::size_t start = 0; start < std::max<std::size_t>(s.starts, 1); ++start) {
    SolverOptions opts = s.solver;
    opts.seed = s.solver.seed + start;
    Factors f;
    init_random(model, f, opts.seed, true, consA, consB);
    SolveResult res = solve(model, f, consA, consB, opts);
    const double obj = res.stats.back().objective;
    if (start == 0 || obj < best_obj) { // the first start is kept even when its objective is not finite
      best_obj = obj;
      best.rank = R;
      best.seed = opts.seed;
      best.result = std::move(res);
      best.A = gather_box(comm, {I, R}, {model.row_offset(), 0}, f.A, model.owns_A());
      best.B = gather_box(comm, model.b_global_shape(), model.b_offset(), f.B, model.owns_B());
    }
  }
  return best;
}

/// A fixed-length string dataset (C strings, null padded) of the names, written by rank 0. Collective.
void write_strings(const h5::File& f, const std::string& name, const std::vector<std::string>& v) {
  const std::string ctx = f.path() + ":" + name;
  std::size_t len = 1;
  for (const auto& s : v) len = std::max(len, s.size());
  len = f.comm().allreduce(len, Op::max); // the type must agree on every process (only rank 0's names are written)
  h5::Handle type(static_cast<hid_t>(h5::check(H5Tcopy(H5T_C_S1), "H5Tcopy", ctx)), H5Tclose);
  h5::check(H5Tset_size(type, len), "H5Tset_size", ctx);
  h5::check(H5Tset_strpad(type, H5T_STR_NULLPAD), "H5Tset_strpad", ctx);
  const hsize_t n = v.size();
  h5::Handle space(static_cast<hid_t>(h5::check(H5Screate_simple(1, &n, nullptr), "H5Screate_simple", ctx)), H5Sclose);
  h5::Handle ds(
      static_cast<hid_t>(h5::check(H5Dcreate2(f.id(), name.c_str(), type, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT),
                                   "H5Dcreate", ctx)),
      H5Dclose);
  std::vector<char> buf(std::max<std::size_t>(n, 1) * len, '\0');
  for (std::size_t i = 0; i < v.size(); ++i) std::copy(v[i].begin(), v[i].end(), buf.begin() + long(i * len));
  h5::Handle mspace(static_cast<hid_t>(h5::check(H5Screate_simple(1, &n, nullptr), "H5Screate_simple", ctx)), H5Sclose);
  if (f.comm().rank() != 0) {
    h5::check(H5Sselect_none(space), "H5Sselect_none", ctx);
    h5::check(H5Sselect_none(mspace), "H5Sselect_none", ctx);
  }
  h5::check(H5Dwrite(ds, type, mspace, space, H5P_DEFAULT, buf.data()), "H5Dwrite", ctx);
}

RankSweep sweep_ranks(const Shape& shape, const std::vector<double>& Y, std::size_t max_rank, const FitSettings& s,
                      const Comm& comm, const std::string& mixtures,
                      const std::function<void(std::size_t, double)>& progress) {
  return sweep_ranks(own_blocks(shape, Y, s, comm, "sweep_ranks"), max_rank, s, mixtures, progress);
}

RankSweep sweep_ranks(const DistTensor<double>& Yd, std::size_t max_rank, const FitSettings& s,
                      const std::string& mixtures, const std::function<void(std::size_t, double)>& progress) {
  RankSweep sw;
  for (std::size_t r = 1; r <= max_rank; ++r) {
    sw.fits.push_back(factorize_distributed(Yd, r, s, mixtures));
    sw.errors.push_back(sw.fits.back().result.stats.back().rel_error);
    if (progress) progress(r, sw.errors.back());
  }
  std::vector<double> curve = sw.errors;
  for (std::size_t r = 1; r < curve.size(); ++r) curve[r] = std::min(curve[r], curve[r - 1]);
  sw.chosen = sediment::pick_rank(curve);
  return sw;
}

void write_fit_record(const h5::File& f, const Fit& fit, const FitSettings& s, const Comm& comm,
                      const std::map<std::string, std::string>& options) {
  std::vector<std::vector<double>> st;
  for (const auto& row : fit.result.stats) st.push_back(row.row());
  f.write_table("stats", IterationStats::columns(), st);
  f.attr("unmix_version", std::string(UNMIX_VERSION));
  f.attr("rank", static_cast<long long>(fit.rank));
  f.attr("seed", static_cast<unsigned long long>(fit.seed));
  f.attr("processes", static_cast<long long>(comm.size()));
  f.attr("constraint_A", s.constraint_A);
  f.attr("constraint_B", s.constraint_B);
  f.attr("stop_reason", fit.result.stop_reason);
  f.attr("iterations", static_cast<long long>(fit.result.iterations));
  f.attr("rel_error", fit.result.stats.back().rel_error);
  for (const auto& [k, v] : options) f.attr("option." + k, v);
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

std::string format_number(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

void write_text(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
  out.close();
  if (!out) throw IoError("cannot write '" + path + "'");
}

AtomicDir::AtomicDir(const Comm& comm, std::string final_path, bool overwrite)
    : comm_(&comm), final_(std::move(final_path)), overwrite_(overwrite) {
  while (final_.size() > 1 && final_.back() == '/') final_.pop_back();
  std::string tmp;
  collective_try(comm, [&] {
    if (comm.rank() != 0) return;
    h5::check_output_path(final_, overwrite, "folder", "--out DIR");
    std::error_code ec;
    tmp = final_ + ".tmp." + std::to_string(getpid());
    fs::remove_all(tmp, ec);
    if (!fs::create_directory(tmp, ec) || ec)
      throw IoError("cannot create folder '" + tmp + "': " + (ec ? ec.message() : std::string("unknown error")));
  });
  tmp_ = comm.bcast(tmp, 0);
}

AtomicDir::~AtomicDir() {
  if (!done_ && comm_->rank() == 0 && !tmp_.empty()) {
    std::error_code ec;
    fs::remove_all(tmp_, ec);
  }
}

std::string AtomicDir::as_final(std::string text) const {
  if (tmp_.empty()) return text;
  for (std::size_t at = text.find(tmp_); at != std::string::npos; at = text.find(tmp_, at + final_.size()))
    text.replace(at, tmp_.size(), final_);
  return text;
}

void AtomicDir::commit() {
  comm_->barrier();
  collective_try(*comm_, [&] {
    if (comm_->rank() != 0) return;
    std::error_code ec;
    std::string old;
    if (!overwrite_) {
      // Checked at the start; something may have appeared there since. Never replace it (not even an empty
      // folder, which a plain rename would).
      if (::renameat2(AT_FDCWD, tmp_.c_str(), AT_FDCWD, final_.c_str(), RENAME_NOREPLACE) != 0) {
        const int err = errno;
        throw IoError("cannot rename '" + tmp_ + "' to '" + final_ + "': " +
                      (err == EEXIST ? std::string("'") + final_ +
                                           "' appeared while this run was going; it is kept "
                                           "(use --overwrite to replace it)"
                                     : std::string(std::strerror(err))));
      }
      return;
    }
    if (fs::exists(final_, ec)) {
      old = final_ + ".old." + std::to_string(getpid());
      fs::rename(final_, old, ec);
      if (ec) throw IoError("cannot move the old '" + final_ + "' aside: " + ec.message());
    }
    fs::rename(tmp_, final_, ec);
    if (ec) {
      std::error_code ec2;
      if (!old.empty()) fs::rename(old, final_, ec2);
      throw IoError("cannot rename '" + tmp_ + "' to '" + final_ + "': " + ec.message());
    }
    if (!old.empty()) fs::remove_all(old, ec);
  });
  done_ = true;
}

} // namespace unmix::apps
