#include "unmix/io/hdf5.hpp"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>

#include "unmix/core/resources.hpp"

namespace unmix::h5 {
namespace {

void silence_hdf5() {
  static bool done = false;
  if (!done) {
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
    done = true;
  }
}

herr_t collect_error(unsigned n, const H5E_error2_t* err, void* data) {
  auto* msgs = static_cast<std::vector<std::string>*>(data);
  if (err && err->desc && n < 8) msgs->push_back(err->desc);
  return 0;
}

std::string error_stack() {
  std::vector<std::string> msgs;
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD, collect_error, &msgs);
  H5Eclear2(H5E_DEFAULT);
  std::string out;
  for (std::size_t i = 0; i < msgs.size() && i < 3; ++i) out += (i ? "; " : "") + msgs[i];
  return out;
}

Handle fapl_mpio(const Comm& comm) {
  Handle p(static_cast<hid_t>(check(H5Pcreate(H5P_FILE_ACCESS), "H5Pcreate", "file access list")), H5Pclose);
  check(H5Pset_fapl_mpio(p, comm.raw(), MPI_INFO_NULL), "H5Pset_fapl_mpio", "file access list");
  return p;
}

Handle dxpl_collective() {
  Handle p(static_cast<hid_t>(check(H5Pcreate(H5P_DATASET_XFER), "H5Pcreate", "transfer list")), H5Pclose);
  check(H5Pset_dxpl_mpio(p, H5FD_MPIO_COLLECTIVE), "H5Pset_dxpl_mpio", "transfer list");
  return p;
}

std::string type_name(hid_t type) {
  const H5T_class_t cls = H5Tget_class(type);
  const std::size_t size = H5Tget_size(type);
  switch (cls) {
  case H5T_FLOAT: return "float" + std::to_string(8 * size);
  case H5T_INTEGER: return std::string(H5Tget_sign(type) == H5T_SGN_NONE ? "uint" : "int") + std::to_string(8 * size);
  case H5T_STRING: return "string";
  case H5T_COMPOUND: return "compound";
  case H5T_ENUM: return "enum";
  case H5T_ARRAY: return "array";
  default: return "other";
  }
}

template <class T> hid_t native_type();
template <> hid_t native_type<double>() { return H5T_NATIVE_DOUBLE; }
template <> hid_t native_type<float>() { return H5T_NATIVE_FLOAT; }

std::vector<hsize_t> to_h(const Shape& s) { return std::vector<hsize_t>(s.begin(), s.end()); }

struct VisitData {
  std::vector<std::string> names;
};

herr_t visit_link(hid_t group, const char* name, const H5L_info_t*, void* data) {
  hid_t obj = H5Oopen(group, name, H5P_DEFAULT);
  if (obj < 0) return 0;
  if (H5Iget_type(obj) == H5I_DATASET) static_cast<VisitData*>(data)->names.push_back(std::string("/") + name);
  H5Oclose(obj);
  return 0;
}

} // namespace

void Handle::reset() {
  if (id_ >= 0 && closer_) closer_(id_);
  id_ = H5I_INVALID_HID;
}

long long check(long long rc, const char* what, const std::string& context) {
  if (rc >= 0) return rc;
  std::string stack = error_stack();
  throw IoError(context + ": " + what + " failed" + (stack.empty() ? "" : " (" + stack + ")"));
}

File File::open_read(const Comm& comm, const std::string& path) {
  silence_hdf5();
  Handle f;
  collective_try(comm, [&] {
    std::error_code ec;
    if (!std::filesystem::exists(path, ec)) throw IoError("cannot open '" + path + "': no such file; check the path");
    if (std::filesystem::is_directory(path, ec))
      throw IoError("cannot open '" + path + "': it is a directory, not an HDF5 file");
    std::ifstream probe(path, std::ios::binary);
    if (!probe) throw IoError("cannot open '" + path + "': permission denied or unreadable");
  });
  Handle fapl = fapl_mpio(comm);
  collective_try(comm, [&] {
    hid_t id = H5Fopen(path.c_str(), H5F_ACC_RDONLY, fapl);
    if (id < 0) {
      std::string stack = error_stack();
      throw IoError("cannot read '" + path + "' as HDF5: the file is not HDF5, or is truncated or corrupt" +
                    (stack.empty() ? "" : " (" + stack + ")"));
    }
    f = Handle(id, H5Fclose);
  });
  return File(comm, path, std::move(f));
}

File File::create(const Comm& comm, const std::string& path) {
  silence_hdf5();
  Handle fapl = fapl_mpio(comm);
  Handle f;
  collective_try(comm, [&] {
    hid_t id = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    if (id < 0) {
      std::string stack = error_stack();
      throw IoError("cannot create '" + path + "': check that the folder exists and is writable" +
                    (stack.empty() ? "" : " (" + stack + ")"));
    }
    f = Handle(id, H5Fclose);
  });
  return File(comm, path, std::move(f));
}

void File::close() {
  if (file_.id() >= 0) {
    const hid_t id = file_.id();
    file_ = Handle();
    (void)id;
  }
}

std::vector<DatasetInfo> File::datasets() const {
  VisitData data;
  check(H5Lvisit(file_, H5_INDEX_NAME, H5_ITER_INC, visit_link, &data), "H5Lvisit", path_);
  std::vector<DatasetInfo> out;
  for (const auto& n : data.names) out.push_back(info(n));
  return out;
}

bool File::has(const std::string& dataset) const {
  std::string p = dataset;
  if (p.empty()) return false;
  // Check each link on the way so that a missing group is not an error.
  std::size_t pos = 0;
  while ((pos = p.find('/', pos + 1)) != std::string::npos) {
    if (H5Lexists(file_, p.substr(0, pos).c_str(), H5P_DEFAULT) <= 0) return false;
  }
  if (H5Lexists(file_, p.c_str(), H5P_DEFAULT) <= 0) return false;
  hid_t obj = H5Oopen(file_, p.c_str(), H5P_DEFAULT);
  if (obj < 0) return false;
  const bool is_ds = H5Iget_type(obj) == H5I_DATASET;
  H5Oclose(obj);
  return is_ds;
}

DatasetInfo File::info(const std::string& dataset) const {
  if (!has(dataset)) {
    std::string names;
    VisitData data;
    H5Lvisit(file_, H5_INDEX_NAME, H5_ITER_INC, visit_link, &data);
    for (const auto& n : data.names) names += (names.empty() ? "" : ", ") + n;
    throw DataError("'" + path_ + "' has no dataset '" + dataset +
                    "'; it has: " + (names.empty() ? "(no datasets)" : names) + ". Choose one with --dataset");
  }
  const std::string ctx = path_ + ":" + dataset;
  Handle ds(static_cast<hid_t>(check(H5Dopen2(file_, dataset.c_str(), H5P_DEFAULT), "H5Dopen", ctx)), H5Dclose);
  Handle space(static_cast<hid_t>(check(H5Dget_space(ds), "H5Dget_space", ctx)), H5Sclose);
  Handle type(static_cast<hid_t>(check(H5Dget_type(ds), "H5Dget_type", ctx)), H5Tclose);
  const int nd = static_cast<int>(check(H5Sget_simple_extent_ndims(space), "H5Sget_simple_extent_ndims", ctx));
  std::vector<hsize_t> d(static_cast<std::size_t>(nd));
  if (nd > 0) check(H5Sget_simple_extent_dims(space, d.data(), nullptr), "H5Sget_simple_extent_dims", ctx);
  DatasetInfo out;
  out.name = dataset[0] == '/' ? dataset : "/" + dataset;
  out.dims.assign(d.begin(), d.end());
  out.type = type_name(type);
  const H5T_class_t cls = H5Tget_class(type);
  out.numeric = cls == H5T_FLOAT || cls == H5T_INTEGER;
  return out;
}

void File::read_slab(const std::string& dataset, const Shape& start, const Shape& count,
                     std::vector<double>& out) const {
  const std::string ctx = path_ + ":" + dataset;
  const DatasetInfo inf = info(dataset);
  if (!inf.numeric)
    throw DataError("dataset '" + dataset + "' in '" + path_ + "' holds " + inf.type +
                    " values; unmix needs a numeric (integer or floating-point) dataset");
  // A dataset with no elements has nothing to read (every process sees the same dims, so all skip it).
  if (!inf.dims.empty() && shape_size(inf.dims) == 0) {
    out.clear();
    return;
  }
  Handle ds(static_cast<hid_t>(check(H5Dopen2(file_, dataset.c_str(), H5P_DEFAULT), "H5Dopen", ctx)), H5Dclose);
  Handle fspace(static_cast<hid_t>(check(H5Dget_space(ds), "H5Dget_space", ctx)), H5Sclose);
  const std::size_t n = shape_size(count);
  out.assign(n, 0.0);
  Handle mspace;
  if (n == 0 || count.empty()) {
    check(H5Sselect_none(fspace), "H5Sselect_none", ctx);
    hsize_t one = 1;
    mspace = Handle(static_cast<hid_t>(check(H5Screate_simple(1, &one, nullptr), "H5Screate_simple", ctx)), H5Sclose);
    check(H5Sselect_none(mspace), "H5Sselect_none", ctx);
    if (count.empty() && inf.dims.empty()) { // a scalar dataset
      out.assign(1, 0.0);
    }
  } else {
    auto hs = to_h(start), hc = to_h(count);
    check(H5Sselect_hyperslab(fspace, H5S_SELECT_SET, hs.data(), nullptr, hc.data(), nullptr), "H5Sselect_hyperslab",
          ctx);
    mspace = Handle(static_cast<hid_t>(check(H5Screate_simple(static_cast<int>(hc.size()), hc.data(), nullptr),
                                             "H5Screate_simple", ctx)),
                    H5Sclose);
  }
  Handle dxpl = dxpl_collective();
  herr_t rc = H5Dread(ds, H5T_NATIVE_DOUBLE, mspace, fspace, dxpl, n ? out.data() : nullptr);
  if (rc < 0) {
    std::string stack = error_stack();
    throw IoError("cannot read dataset '" + dataset + "' of '" + path_ + "': the file is truncated or corrupt" +
                  (stack.empty() ? "" : " (" + stack + ")"));
  }
}

std::vector<double> File::read_all(const std::string& dataset, Shape* dims) const {
  const DatasetInfo inf = info(dataset);
  if (dims) *dims = inf.dims;
  Shape start(inf.dims.size(), 0);
  std::vector<double> out;
  read_slab(dataset, start, inf.dims, out);
  return out;
}

template <class T> void File::create_dataset(const std::string& dataset, const Shape& dims) const {
  const std::string ctx = path_ + ":" + dataset;
  auto hd = to_h(dims);
  Handle fspace(static_cast<hid_t>(
                    check(H5Screate_simple(static_cast<int>(hd.size()), hd.data(), nullptr), "H5Screate_simple", ctx)),
                H5Sclose);
  Handle ds(static_cast<hid_t>(check(
                H5Dcreate2(file_, dataset.c_str(), native_type<T>(), fspace, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT),
                "H5Dcreate", ctx)),
            H5Dclose);
}

template <class T>
void File::write_into(const std::string& dataset, const Shape& start, const Shape& count,
                      std::span<const T> data) const {
  const std::string ctx = path_ + ":" + dataset;
  Handle ds(static_cast<hid_t>(check(H5Dopen2(file_, dataset.c_str(), H5P_DEFAULT), "H5Dopen", ctx)), H5Dclose);
  Handle fspace(static_cast<hid_t>(check(H5Dget_space(ds), "H5Dget_space", ctx)), H5Sclose);
  const std::size_t n = shape_size(count);
  Handle mspace;
  if (n == 0) {
    check(H5Sselect_none(fspace), "H5Sselect_none", ctx);
    hsize_t one = 1;
    mspace = Handle(static_cast<hid_t>(check(H5Screate_simple(1, &one, nullptr), "H5Screate_simple", ctx)), H5Sclose);
    check(H5Sselect_none(mspace), "H5Sselect_none", ctx);
  } else {
    if (data.size() != n) throw Error(ctx + ": internal error, slab size mismatch");
    auto hs = to_h(start), hc = to_h(count);
    check(H5Sselect_hyperslab(fspace, H5S_SELECT_SET, hs.data(), nullptr, hc.data(), nullptr), "H5Sselect_hyperslab",
          ctx);
    mspace = Handle(static_cast<hid_t>(check(H5Screate_simple(static_cast<int>(hc.size()), hc.data(), nullptr),
                                             "H5Screate_simple", ctx)),
                    H5Sclose);
  }
  Handle dxpl = dxpl_collective();
  check(H5Dwrite(ds, native_type<T>(), mspace, fspace, dxpl, n ? data.data() : nullptr), "H5Dwrite", ctx);
}

template <class T>
void File::write_slab(const std::string& dataset, const Shape& dims, const Shape& start, const Shape& count,
                      std::span<const T> data) const {
  create_dataset<T>(dataset, dims);
  // A dataset with no elements (an empty state vector, say) has nothing to write; every process sees the
  // same dims, so all skip the collective write together.
  if (shape_size(dims) == 0) return;
  write_into<T>(dataset, start, count, data);
}

template <class T>
void File::write_replicated(const std::string& dataset, const Shape& dims, std::span<const T> data) const {
  const bool mine = comm_->rank() == 0;
  write_slab(dataset, dims, Shape(dims.size(), 0), mine ? dims : Shape(dims.size(), 0), data);
}

template void File::create_dataset<double>(const std::string&, const Shape&) const;
template void File::create_dataset<float>(const std::string&, const Shape&) const;
template void File::write_into(const std::string&, const Shape&, const Shape&, std::span<const double>) const;
template void File::write_into(const std::string&, const Shape&, const Shape&, std::span<const float>) const;
template void File::write_slab(const std::string&, const Shape&, const Shape&, const Shape&,
                               std::span<const double>) const;
template void File::write_slab(const std::string&, const Shape&, const Shape&, const Shape&,
                               std::span<const float>) const;
template void File::write_replicated(const std::string&, const Shape&, std::span<const double>) const;
template void File::write_replicated(const std::string&, const Shape&, std::span<const float>) const;

void File::attr(const std::string& name, const std::string& value) const {
  const std::string ctx = path_ + " attribute " + name;
  Handle type(static_cast<hid_t>(check(H5Tcopy(H5T_C_S1), "H5Tcopy", ctx)), H5Tclose);
  check(H5Tset_size(type, value.empty() ? 1 : value.size()), "H5Tset_size", ctx);
  check(H5Tset_strpad(type, H5T_STR_NULLPAD), "H5Tset_strpad", ctx);
  Handle space(static_cast<hid_t>(check(H5Screate(H5S_SCALAR), "H5Screate", ctx)), H5Sclose);
  Handle a(static_cast<hid_t>(
               check(H5Acreate2(file_, name.c_str(), type, space, H5P_DEFAULT, H5P_DEFAULT), "H5Acreate", ctx)),
           H5Aclose);
  std::string v = value.empty() ? std::string(1, '\0') : value;
  check(H5Awrite(a, type, v.data()), "H5Awrite", ctx);
}

namespace {
// A scalar numeric attribute of the file's root group, of HDF5 memory type `type`.
void write_scalar_attr(hid_t file, const std::string& ctx, const std::string& name, hid_t type, const void* value) {
  Handle space(static_cast<hid_t>(check(H5Screate(H5S_SCALAR), "H5Screate", ctx)), H5Sclose);
  Handle a(static_cast<hid_t>(
               check(H5Acreate2(file, name.c_str(), type, space, H5P_DEFAULT, H5P_DEFAULT), "H5Acreate", ctx)),
           H5Aclose);
  check(H5Awrite(a, type, value), "H5Awrite", ctx);
}
} // namespace

void File::attr(const std::string& name, double value) const {
  write_scalar_attr(file_, path_ + " attribute " + name, name, H5T_NATIVE_DOUBLE, &value);
}

void File::attr(const std::string& name, long long value) const {
  write_scalar_attr(file_, path_ + " attribute " + name, name, H5T_NATIVE_LLONG, &value);
}

void File::attr(const std::string& name, unsigned long long value) const {
  write_scalar_attr(file_, path_ + " attribute " + name, name, H5T_NATIVE_ULLONG, &value);
}

std::optional<std::string> File::attr_string(const std::string& name) const {
  if (H5Aexists(file_, name.c_str()) <= 0) return std::nullopt;
  const std::string ctx = path_ + " attribute " + name;
  Handle a(static_cast<hid_t>(check(H5Aopen(file_, name.c_str(), H5P_DEFAULT), "H5Aopen", ctx)), H5Aclose);
  Handle type(static_cast<hid_t>(check(H5Aget_type(a), "H5Aget_type", ctx)), H5Tclose);
  if (H5Tget_class(type) != H5T_STRING || H5Tis_variable_str(type) > 0) return std::nullopt;
  std::string s(H5Tget_size(type), '\0');
  check(H5Aread(a, type, s.data()), "H5Aread", ctx);
  while (!s.empty() && s.back() == '\0') s.pop_back();
  return s;
}

std::optional<double> File::attr_double(const std::string& name) const {
  if (H5Aexists(file_, name.c_str()) <= 0) return std::nullopt;
  const std::string ctx = path_ + " attribute " + name;
  Handle a(static_cast<hid_t>(check(H5Aopen(file_, name.c_str(), H5P_DEFAULT), "H5Aopen", ctx)), H5Aclose);
  double v = 0;
  check(H5Aread(a, H5T_NATIVE_DOUBLE, &v), "H5Aread", ctx);
  return v;
}

void File::write_table(const std::string& dataset, const std::vector<std::string>& columns,
                       const std::vector<std::vector<double>>& rows) const {
  const std::string ctx = path_ + ":" + dataset;
  const std::size_t nc = columns.size();
  Handle type(static_cast<hid_t>(check(H5Tcreate(H5T_COMPOUND, nc * sizeof(double)), "H5Tcreate", ctx)), H5Tclose);
  for (std::size_t c = 0; c < nc; ++c)
    check(H5Tinsert(type, columns[c].c_str(), c * sizeof(double), H5T_NATIVE_DOUBLE), "H5Tinsert", ctx);
  hsize_t n = rows.size();
  Handle fspace(static_cast<hid_t>(check(H5Screate_simple(1, &n, nullptr), "H5Screate_simple", ctx)), H5Sclose);
  Handle ds(
      static_cast<hid_t>(check(H5Dcreate2(file_, dataset.c_str(), type, fspace, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT),
                               "H5Dcreate", ctx)),
      H5Dclose);
  std::vector<double> flat;
  flat.reserve(rows.size() * nc);
  for (const auto& r : rows) {
    if (r.size() != nc) throw Error(ctx + ": internal error, table row of the wrong width");
    flat.insert(flat.end(), r.begin(), r.end());
  }
  Handle mspace(static_cast<hid_t>(check(H5Screate_simple(1, &n, nullptr), "H5Screate_simple", ctx)), H5Sclose);
  if (comm_->rank() != 0 || n == 0) {
    check(H5Sselect_none(fspace), "H5Sselect_none", ctx);
    check(H5Sselect_none(mspace), "H5Sselect_none", ctx);
  }
  Handle dxpl = dxpl_collective();
  check(H5Dwrite(ds, type, mspace, fspace, dxpl, flat.empty() ? nullptr : flat.data()), "H5Dwrite", ctx);
}

std::vector<std::vector<double>> File::read_table(const std::string& dataset, std::vector<std::string>* columns) const {
  const std::string ctx = path_ + ":" + dataset;
  Handle ds(static_cast<hid_t>(check(H5Dopen2(file_, dataset.c_str(), H5P_DEFAULT), "H5Dopen", ctx)), H5Dclose);
  Handle ftype(static_cast<hid_t>(check(H5Dget_type(ds), "H5Dget_type", ctx)), H5Tclose);
  const int nc = static_cast<int>(check(H5Tget_nmembers(ftype), "H5Tget_nmembers", ctx));
  std::vector<std::string> names;
  Handle mtype(static_cast<hid_t>(
                   check(H5Tcreate(H5T_COMPOUND, static_cast<std::size_t>(nc) * sizeof(double)), "H5Tcreate", ctx)),
               H5Tclose);
  for (int c = 0; c < nc; ++c) {
    char* nm = H5Tget_member_name(ftype, static_cast<unsigned>(c));
    names.emplace_back(nm);
    H5free_memory(nm);
    check(H5Tinsert(mtype, names.back().c_str(), static_cast<std::size_t>(c) * sizeof(double), H5T_NATIVE_DOUBLE),
          "H5Tinsert", ctx);
  }
  Handle space(static_cast<hid_t>(check(H5Dget_space(ds), "H5Dget_space", ctx)), H5Sclose);
  hsize_t n = 0;
  check(H5Sget_simple_extent_dims(space, &n, nullptr), "H5Sget_simple_extent_dims", ctx);
  std::vector<double> flat(n * static_cast<std::size_t>(nc));
  if (n) check(H5Dread(ds, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, flat.data()), "H5Dread", ctx);
  if (columns) *columns = names;
  std::vector<std::vector<double>> rows(n);
  for (hsize_t r = 0; r < n; ++r)
    rows[r].assign(flat.begin() + static_cast<long>(r * nc), flat.begin() + static_cast<long>((r + 1) * nc));
  return rows;
}

namespace {
std::size_t piece_bytes = std::size_t{64} << 20;
}

std::size_t io_piece_bytes() { return piece_bytes; }

std::size_t set_io_piece_bytes(std::size_t bytes) {
  return std::exchange(piece_bytes, std::max<std::size_t>(bytes, 1));
}

double read_footprint_bytes(double block_values, std::size_t value_bytes, double working) {
  const double piece = std::min(block_values, static_cast<double>(io_piece_bytes() / sizeof(double)));
  return block_values * static_cast<double>(value_bytes) + std::max(piece * sizeof(double), working);
}

void require_memory(const Comm& comm, double bytes_here, double limit, const std::string& what,
                    const std::string& advice, const std::string& holds) {
  const Comm node = comm.split_node();
  const double need = node.allreduce(bytes_here), largest = node.allreduce(bytes_here, Op::max);
  std::string source = "--memory-limit";
  if (limit <= 0) {
    const NodeMemory m = node_memory();
    limit = m.ceiling();
    source = m.job_limit > 0 && m.job_limit <= m.total ? "the job's memory limit (cgroup)" : "the node's memory";
  }
  collective_try(comm, [&] {
    if (limit > 0 && need > limit)
      throw DataError(what + " does not fit in memory: the " + std::to_string(node.size()) +
                      " process(es) on this node need at least " + format_bytes(need) + " together (up to " +
                      format_bytes(largest) + " each for " + holds + ") and " + source + " is " + format_bytes(limit) +
                      ". Spread the processes over more nodes, " + advice +
                      "use --precision float (half the bytes), or set --memory-limit if the limit seen here is wrong");
  });
}

namespace {
// Calls f(mine, at, piece) for each piece of a box of `count` (C-order file axes): a run of C-order rows,
// one index on each axis before `split`, a range on `split`, everything after it, at most
// io_piece_bytes() of doubles; `at` is its position in the box. Every process makes as many calls as the
// process with the most pieces (then with mine false and empty counts), so that each call can make one
// collective read or write.
template <class F>
void for_each_piece(const Comm& comm, const Shape& count, F&& f, std::size_t bytes_per_piece = io_piece_bytes()) {
  const std::size_t N = count.size();
  if (N == 0) throw Error("internal error: a scalar has no box to read or write in pieces");
  const std::size_t per_piece = std::max<std::size_t>(1, bytes_per_piece / sizeof(double));
  auto elements_after = [&](std::size_t axis) {
    std::size_t n = 1;
    for (std::size_t a = axis + 1; a < N; ++a) n *= count[a];
    return n;
  };
  std::size_t split = 0; // the first axis after which the rest fits in a piece
  while (elements_after(split) > per_piece) ++split;
  const std::size_t run = std::clamp<std::size_t>(per_piece / std::max<std::size_t>(elements_after(split), 1), 1,
                                                  std::max<std::size_t>(count[split], 1));
  std::size_t outer = 1; // index tuples on the axes before `split`
  for (std::size_t a = 0; a < split; ++a) outer *= count[a];
  const std::size_t runs = count[split] ? (count[split] + run - 1) / run : 0;
  const std::size_t pieces = shape_size(count) ? outer * runs : 0;
  const std::size_t all_pieces = comm.allreduce(pieces, Op::max);
  for (std::size_t p = 0; p < all_pieces; ++p) {
    Shape at(N, 0), pc(N, 0);
    if (p < pieces) {
      std::size_t o = p / runs;
      for (std::size_t a = split; a-- > 0;) {
        at[a] = o % count[a];
        o /= count[a];
        pc[a] = 1;
      }
      at[split] = (p % runs) * run;
      pc[split] = std::min(run, count[split] - at[split]);
      for (std::size_t a = split + 1; a < N; ++a) pc[a] = count[a];
    }
    f(p < pieces, at, pc);
  }
}

// Copies one piece (C order over its counts pc, at position `at` of the box) into a column-major tensor
// (ToTensor) or out of it. stride[a]: the tensor's step along file axis a; c: the file axis that is the
// tensor's mode 0 (contiguous there), while the file's last axis l is contiguous in the piece. Unless they
// are the same axis, each plane of the two is copied in tiles (the tensor's rows whole, the piece's a tile
// at a time), not value by value one tensor column apart. Values are converted by static_cast.
template <bool ToTensor, class TP, class TT>
void transfer_piece(TP* piece, TT* tensor, const std::vector<std::size_t>& stride, std::size_t c, const Shape& at,
                    const Shape& pc) {
  const std::size_t N = pc.size(), l = N - 1;
  constexpr std::size_t kTileC = 16, kTileL = 64;
  std::size_t base = 0;
  for (std::size_t a = 0; a < N; ++a) base += at[a] * stride[a];
  std::vector<std::size_t> src_stride(N, 1); // C order over the piece
  for (std::size_t a = N - 1; a-- > 0;) src_stride[a] = src_stride[a + 1] * pc[a + 1];
  const bool tiles = c != l && pc[c] > 1;
  auto move = [](TP& p, TT& t) {
    if constexpr (ToTensor)
      t = static_cast<TT>(p);
    else
      p = static_cast<TP>(t);
  };
  // An odometer over the axes that are walked one index at a time: all but l, and but c when tiling.
  Shape idx(N, 0);
  while (true) {
    std::size_t s0 = 0, d0 = base;
    for (std::size_t a = 0; a < N; ++a) {
      s0 += idx[a] * src_stride[a];
      d0 += idx[a] * stride[a];
    }
    TP* src = piece + s0;
    const std::size_t nl = pc[l], dl = stride[l];
    if (!tiles) {
      for (std::size_t i = 0; i < nl; ++i) move(src[i], tensor[d0 + i * dl]);
    } else {
      const std::size_t nc = pc[c], sc = src_stride[c];
      for (std::size_t l0 = 0; l0 < nl; l0 += kTileL)
        for (std::size_t c0 = 0; c0 < nc; c0 += kTileC) {
          const std::size_t l1 = std::min(nl, l0 + kTileL), cn = std::min(nc - c0, kTileC);
          for (std::size_t i = l0; i < l1; ++i) {
            TT* row = tensor + d0 + i * dl + c0;
            TP* col = src + i + c0 * sc;
            for (std::size_t j = 0; j < cn; ++j) move(col[j * sc], row[j]);
          }
        }
    }
    std::size_t a = l;
    while (a-- > 0) {
      if (tiles && a == c) continue;
      if (++idx[a] < pc[a]) break;
      idx[a] = 0;
    }
    if (a == static_cast<std::size_t>(-1)) break;
  }
}
} // namespace

void read_in_pieces(const File& f, const std::string& dataset, const Shape& start, const Shape& count,
                    const PieceFn& take) {
  std::vector<double> buf;
  for_each_piece(f.comm(), count, [&](bool mine, const Shape& at, const Shape& pc) {
    Shape ps(count.size(), 0); // the piece's start in the file
    if (mine)
      for (std::size_t a = 0; a < count.size(); ++a) ps[a] = start[a] + at[a];
    collective_try(f.comm(), [&] { f.read_slab(dataset, ps, pc, buf); });
    if (mine) take(at, pc, buf);
  });
}

namespace {
// Reads the box [start, start + count) of a dataset (file axes, C order) into `dest`, whose mode m is file
// axis file_axis_of_mode[m] (column-major), in pieces (read_in_pieces), converting each value to T.
template <class T>
void read_box_into(const File& f, const std::string& dataset, const Shape& start, const Shape& count,
                   const std::vector<std::size_t>& file_axis_of_mode, Tensor<T>& dest) {
  const std::size_t N = count.size();
  std::vector<std::size_t> dest_stride(N); // where a step along each file axis lands in `dest`
  for (std::size_t m = 0, st = 1; m < N; st *= count[file_axis_of_mode[m]], ++m) dest_stride[file_axis_of_mode[m]] = st;
  read_in_pieces(f, dataset, start, count, [&](const Shape& at, const Shape& pc, const std::vector<double>& buf) {
    transfer_piece<true>(buf.data(), dest.data(), dest_stride, file_axis_of_mode[0], at, pc);
  });
}
} // namespace

template <class T>
DistTensor<T> read_distributed(const Comm& comm, const std::string& path, const std::string& dataset, int mixture_axis,
                               const std::optional<std::string>& grid, double memory_limit, const WorkingBytes& working,
                               const std::string& working_what) {
  File f = File::open_read(comm, path);
  DatasetInfo inf;
  collective_try(comm, [&] {
    inf = f.info(dataset);
    if (!inf.numeric)
      throw DataError("dataset '" + dataset + "' in '" + path + "' holds " + inf.type +
                      " values; unmix needs a numeric dataset");
    const int nd = static_cast<int>(inf.dims.size());
    if (nd == 0) throw DataError("dataset '" + dataset + "' in '" + path + "' is a scalar; unmix needs an array");
    if (mixture_axis < 0 || mixture_axis >= nd)
      throw ConfigError("--mixture-axis " + std::to_string(mixture_axis) + " is out of range: dataset '" + dataset +
                        "' has " + std::to_string(nd) + " axes (" + shape_string(inf.dims) + "), so use 0.." +
                        std::to_string(nd - 1));
  });
  const std::size_t N = inf.dims.size(), k = static_cast<std::size_t>(mixture_axis);
  std::vector<std::size_t> file_axis_of_mode; // our mode m <- file axis
  file_axis_of_mode.push_back(k);
  for (std::size_t a = 0; a < N; ++a)
    if (a != k) file_axis_of_mode.push_back(a);
  Shape shape(N);
  for (std::size_t m = 0; m < N; ++m) shape[m] = inf.dims[file_axis_of_mode[m]];
  ProcessGrid g = grid ? ProcessGrid::parse(*grid, N, comm.size()) : ProcessGrid::default_for(shape, comm.size());
  BlockLayout layout(shape, g);
  {
    const Shape box = layout.box_shape(comm.rank());
    const double block = static_cast<double>(shape_size(box));
    const double extra = working ? working(shape, box, g.dims()[0] > 1) : 0.0;
    require_memory(
        comm, read_footprint_bytes(block, sizeof(T), extra), memory_limit,
        "dataset '" + dataset + "' of '" + path + "' (" + shape_string(inf.dims) + ", as " +
            (sizeof(T) == 4 ? "float32" : "float64") + ")" + (working ? " with " + working_what : std::string()),
        "",
        working ? "their block and the larger of the read buffer and " + working_what : "their block and read buffer");
  }
  DistTensor<T> out(comm, std::move(layout));
  const Shape& off = out.offset();
  const Shape& box = out.local().shape();
  Shape start(N), count(N);
  for (std::size_t m = 0; m < N; ++m) {
    start[file_axis_of_mode[m]] = off[m];
    count[file_axis_of_mode[m]] = box[m];
  }
  // Each piece goes into the local block at once, so reading needs the block plus one piece (reading it
  // whole and reordering it took three times the block).
  read_box_into(f, dataset, start, count, file_axis_of_mode, out.local());
  return out;
}

template DistTensor<double> read_distributed(const Comm&, const std::string&, const std::string&, int,
                                             const std::optional<std::string>&, double, const WorkingBytes&,
                                             const std::string&);
template DistTensor<float> read_distributed(const Comm&, const std::string&, const std::string&, int,
                                            const std::optional<std::string>&, double, const WorkingBytes&,
                                            const std::string&);

template <class T>
void write_distributed(const File& file, const std::string& dataset, const Shape& dims, const Shape& offset,
                       const Tensor<T>& local, bool owner) {
  const std::size_t N = dims.size();
  file.create_dataset<T>(dataset, dims);
  if (shape_size(dims) == 0) return; // nothing to write, on every process alike
  const bool mine = owner && !local.empty();
  const Shape count = mine ? local.shape() : Shape(N, 0);
  // File axis a is the tensor's mode a: column-major strides, mode 0 contiguous.
  std::vector<std::size_t> stride(N);
  for (std::size_t a = 0, st = 1; a < N; st *= count[a], ++a) stride[a] = st;
  // In pieces, each gathered into a C-order buffer and written at once: writing needs one piece beside the
  // block (a reordered copy of the whole block doubled the memory at the end of a run).
  std::vector<T> buf;
  for_each_piece(file.comm(), count, [&](bool has, const Shape& at, const Shape& pc) {
    Shape ps(N, 0);
    if (has) {
      for (std::size_t a = 0; a < N; ++a) ps[a] = offset[a] + at[a];
      buf.resize(shape_size(pc));
      transfer_piece<false>(buf.data(), local.data(), stride, 0, at, pc);
    }
    collective_try(file.comm(),
                   [&] { file.write_into<T>(dataset, ps, pc, std::span<const T>(buf.data(), has ? buf.size() : 0)); });
  });
}

void write_generated(const File& file, const std::string& dataset, const Shape& dims, const Shape& offset,
                     const Shape& box, bool owner, const BoxFn& make) {
  const std::size_t N = dims.size();
  file.create_dataset<double>(dataset, dims);
  if (shape_size(dims) == 0) return;
  const Shape count = owner && shape_size(box) > 0 ? box : Shape(N, 0);
  std::vector<double> buf;
  // A quarter of the usual piece: a piece is held three times at once (the factors' product, the piece
  // column-major, its C-order copy), and together they stay below one read piece.
  const std::size_t piece_bytes = std::max<std::size_t>(io_piece_bytes() / 4, sizeof(double));
  for_each_piece(
      file.comm(), count,
      [&](bool has, const Shape& at, const Shape& pc) {
        Shape ps(N, 0);
        // The piece made column-major, then copied into C order (the piece is its own whole box there).
        collective_try(file.comm(), [&] {
          if (!has) return;
          const Tensor<double> piece = make(at, pc);
          if (piece.shape() != pc) throw Error("internal error: a generated piece has the wrong shape");
          std::vector<std::size_t> stride(N);
          for (std::size_t a = 0, st = 1; a < N; st *= pc[a], ++a) stride[a] = st;
          buf.resize(shape_size(pc));
          transfer_piece<false>(buf.data(), piece.data(), stride, 0, Shape(N, 0), pc);
          for (std::size_t a = 0; a < N; ++a) ps[a] = offset[a] + at[a];
        });
        collective_try(file.comm(), [&] {
          file.write_into<double>(dataset, ps, pc, std::span<const double>(buf.data(), has ? buf.size() : 0));
        });
      },
      piece_bytes);
}

template void write_distributed(const File&, const std::string&, const Shape&, const Shape&, const Tensor<double>&,
                                bool);
template void write_distributed(const File&, const std::string&, const Shape&, const Shape&, const Tensor<float>&,
                                bool);

Tensor<double> read_box(const File& file, const std::string& dataset, const Shape& offset, const Shape& shape) {
  Tensor<double> out(shape);
  std::vector<std::size_t> same(shape.size());
  for (std::size_t m = 0; m < same.size(); ++m) same[m] = m;
  read_box_into(file, dataset, offset, shape, same, out);
  return out;
}

void check_output_path(const std::string& final_path, bool overwrite, const std::string& kind,
                       const std::string& usage) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const std::string& f = final_path;
  if (f.empty()) throw ConfigError("no output " + kind + " given; use " + usage);
  if (fs::exists(f, ec) && !overwrite)
    throw ConfigError("output '" + f + "' exists; pass --overwrite to replace it, or choose another --out");
  fs::path parent = fs::path(f).parent_path();
  if (parent.empty()) parent = ".";
  if (!fs::is_directory(parent, ec))
    throw IoError("cannot write '" + f + "': folder '" + parent.string() + "' does not exist");
  if (access(parent.c_str(), W_OK) != 0)
    throw IoError("cannot write '" + f + "': folder '" + parent.string() + "' is not writable");
}

namespace {
// Temporaries of earlier writes of `final_path` (FINAL.tmp.PID) that are still there: left by runs killed
// before they could remove them (SIGKILL, a job's time limit), or being written by a run still going.
// Named on standard error, never removed (a run on another node may own one). Looked for once per path in
// a process: a checkpoint rewrites its file every --checkpoint-every, and each write would repeat the warning.
void warn_leftover_temporaries(const std::string& final_path) {
  static std::set<std::string> looked;
  if (!looked.insert(final_path).second) return;
  namespace fs = std::filesystem;
  const fs::path target(final_path);
  const fs::path parent = target.parent_path().empty() ? fs::path(".") : target.parent_path();
  const std::string prefix = target.filename().string() + ".tmp.";
  std::error_code ec;
  std::vector<std::string> found;
  for (fs::directory_iterator it(parent, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.size() > prefix.size() && name.compare(0, prefix.size(), prefix) == 0 &&
        name.find_first_not_of("0123456789", prefix.size()) == std::string::npos)
      found.push_back(it->path().string());
  }
  std::sort(found.begin(), found.end());
  for (const std::string& f : found)
    std::fprintf(stderr,
                 "warning: '%s' is the temporary file of an earlier write of '%s' that did not finish (a run "
                 "killed before it could remove it, or one still writing); remove it if no run is writing there\n",
                 f.c_str(), final_path.c_str());
}
} // namespace

AtomicOutput::AtomicOutput(const Comm& comm, std::string final_path, bool overwrite)
    : comm_(&comm), final_(std::move(final_path)) {
  collective_try(comm, [&] {
    if (comm.rank() == 0) check_output_path(final_, overwrite, "file", "--out FILE.h5");
  });
  if (comm.rank() == 0) warn_leftover_temporaries(final_);
  tmp_ = comm.bcast(final_ + ".tmp." + std::to_string(getpid()), 0);
}

AtomicOutput::~AtomicOutput() {
  if (!done_ && comm_->rank() == 0) {
    std::error_code ec;
    std::filesystem::remove(tmp_, ec);
  }
}

void AtomicOutput::commit() {
  comm_->barrier();
  collective_try(*comm_, [&] {
    if (comm_->rank() != 0) return;
    std::error_code ec;
    // Make the data durable before the rename makes it visible.
    if (FILE* fp = std::fopen(tmp_.c_str(), "rb")) {
      fsync(fileno(fp));
      std::fclose(fp);
    }
    std::filesystem::rename(tmp_, final_, ec);
    if (ec) throw IoError("cannot rename '" + tmp_ + "' to '" + final_ + "': " + ec.message());
  });
  done_ = true;
}

} // namespace unmix::h5
