#include "unmix/pipeline/checkpoint.hpp"

#include <initializer_list>
#include <map>
#include <sstream>

namespace unmix {

namespace {

std::map<std::string, std::string> split_fingerprint(const std::string& fp) {
  std::map<std::string, std::string> out;
  std::stringstream ss(fp);
  std::string item;
  while (std::getline(ss, item, ';')) {
    const auto eq = item.find('=');
    if (eq != std::string::npos) out[item.substr(0, eq)] = item.substr(eq + 1);
  }
  return out;
}

/// t itself, or zeros of `shape` (made in `spare`) for a history not formed yet; never a copy of t (a copy of B
/// per history array made a checkpoint's peak one B larger).
const Tensor<double>& or_empty(const Tensor<double>& t, const Shape& shape, Tensor<double>& spare) {
  if (!t.empty()) return t;
  spare = Tensor<double>(shape);
  return spare;
}

/// Refuses a file that is not a checkpoint (lacks one of `needed`), a checkpoint of another model, or one
/// written for another problem, naming every option that differs. Inside collective_try.
void check_fingerprint(const h5::File& in, const std::string& path, const std::string& fingerprint,
                       std::initializer_list<const char*> needed, const std::string& model) {
  const std::string written = in.attr_string("model").value_or("tucker1");
  if (in.attr_string("fingerprint") && written != model)
    throw ConfigError("--resume '" + path + "' is a checkpoint of --model " + written + "; resume it with --model " +
                      written);
  const auto fp = in.attr_string("fingerprint");
  bool complete = fp.has_value();
  for (const char* name : needed) complete = complete && in.has(name);
  if (!complete) throw DataError("'" + path + "' is not an unmix checkpoint (write one with --checkpoint)");
  if (*fp == fingerprint) return;
  const auto have = split_fingerprint(*fp), want = split_fingerprint(fingerprint);
  std::string diff;
  for (const auto& [k, v] : want) {
    auto it = have.find(k);
    const std::string old = it == have.end() ? "(none)" : it->second;
    if (old != v) diff += (diff.empty() ? "" : ", ") + k + " is " + v + " now but " + old + " in the checkpoint";
  }
  throw ConfigError("--resume '" + path + "' was written for another problem or incompatible options: " +
                    (diff.empty() ? std::string("fingerprints differ") : diff) +
                    "; resume with the same input, options and process count, or start afresh");
}

void write_stats(h5::File& fo, const std::vector<IterationStats>& stats) {
  std::vector<std::vector<double>> rows;
  for (const auto& s : stats) rows.push_back(s.row());
  fo.write_table("stats", IterationStats::columns(), rows);
}

std::vector<IterationStats> read_stats(const h5::File& in, const std::string& path) {
  std::vector<std::string> cols;
  const auto rows = in.read_table("stats", &cols);
  if (cols != IterationStats::columns()) throw DataError("'" + path + "': the stats table has unexpected columns");
  std::vector<IterationStats> out;
  for (const auto& r : rows) {
    IterationStats s;
    double* fields[] = {
        &s.iteration,        &s.objective,  &s.rel_error, &s.grad_norm, &s.stationarity, &s.obj_ratio, &s.rel_decrease,
        &s.rel_stationarity, &s.rel_change, &s.L_A,       &s.L_B,       &s.seconds,      &s.scale};
    for (std::size_t c = 0; c < r.size(); ++c) *fields[c] = r[c];
    out.push_back(s);
  }
  return out;
}

/// A scalar attribute that must be there.
double required(const h5::File& in, const std::string& path, const char* name) {
  const auto v = in.attr_double(name);
  if (!v) throw DataError("'" + path + "': attribute " + name + " is missing; the checkpoint is incomplete");
  return *v;
}

} // namespace

template <class T>
void write_checkpoint(const Comm& comm, const std::string& path, const Tucker1<T>& m, const Factors& f,
                      const SolverState& st, const std::string& fingerprint) {
  h5::AtomicOutput out(comm, path, true);
  {
    h5::File fo = h5::File::create(comm, out.tmp_path());
    const Shape adims{m.mixtures(), m.rank()}, aoff{m.row_offset(), 0}, ashape{m.rows_local(), m.rank()};
    const Shape bdims = m.b_global_shape(), boff = m.b_offset(), bshape = m.b_local_shape();
    Tensor<double> spare;
    h5::write_distributed(fo, "A", adims, aoff, f.A, m.owns_A());
    h5::write_distributed(fo, "B", bdims, boff, f.B, m.owns_B());
    h5::write_distributed(fo, "A_prev", adims, aoff, or_empty(st.A_prev, ashape, spare), m.owns_A());
    h5::write_distributed(fo, "B_prev", bdims, boff, or_empty(st.B_prev, bshape, spare), m.owns_B());
    h5::write_distributed(fo, "A_last", adims, aoff, or_empty(st.A_last, ashape, spare), m.owns_A());
    h5::write_distributed(fo, "B_last", bdims, boff, or_empty(st.B_last, bshape, spare), m.owns_B());
    fo.write_replicated("LA_last", {st.LA_last.size()}, st.LA_last);
    fo.write_replicated("LB_last", {st.LB_last.size()}, st.LB_last);
    write_stats(fo, st.stats);
    fo.attr("fingerprint", fingerprint);
    fo.attr("iteration", static_cast<long long>(st.iteration));
    fo.attr("zero_steps", static_cast<long long>(st.zero_steps));
    fo.attr("rng_state", std::to_string(st.rng_state));
    const std::pair<const char*, double> scalars[] = {
        {"LA_cur", st.LA_cur}, {"LB_cur", st.LB_cur},           {"f_prev", st.f_prev},
        {"stat0", st.stat0},   {"pending_ga2", st.pending_ga2}, {"pending_sa2", st.pending_sa2},
        {"t", st.t},           {"omega_hat", st.omega_hat},     {"seconds", st.seconds}};
    for (const auto& [k, v] : scalars) fo.attr(k, v);
    fo.attr("beta", st.beta);
    fo.attr("beta_bar", st.beta_bar);
    fo.attr("restart", static_cast<long long>(st.restart ? 1 : 0));
  }
  out.commit();
}

template <class T>
void read_checkpoint(const Comm& comm, const std::string& path, const Tucker1<T>& m, Factors& f, SolverState& st,
                     const std::string& fingerprint) {
  h5::File in = h5::File::open_read(comm, path);
  collective_try(comm, [&] { check_fingerprint(in, path, fingerprint, {"A", "B_prev", "stats"}, "tucker1"); });
  const Shape aoff{m.row_offset(), 0}, ashape{m.rows_local(), m.rank()};
  const Shape boff = m.b_offset(), bshape = m.b_local_shape();
  collective_try(comm, [&] {
    f.A = h5::read_box(in, "A", aoff, ashape);
    f.B = h5::read_box(in, "B", boff, bshape);
    st.A_prev = h5::read_box(in, "A_prev", aoff, ashape);
    st.B_prev = h5::read_box(in, "B_prev", boff, bshape);
    st.A_last = h5::read_box(in, "A_last", aoff, ashape);
    st.B_last = h5::read_box(in, "B_last", boff, bshape);
    st.LA_last = in.read_all("LA_last");
    st.LB_last = in.read_all("LB_last");
    st.stats = read_stats(in, path);
    st.iteration = static_cast<std::size_t>(*in.attr_double("iteration"));
    st.zero_steps = static_cast<std::size_t>(*in.attr_double("zero_steps"));
    st.rng_state = std::stoull(*in.attr_string("rng_state"));
    double* scalars[] = {&st.LA_cur,      &st.LB_cur, &st.f_prev,    &st.stat0,  &st.pending_ga2,
                         &st.pending_sa2, &st.t,      &st.omega_hat, &st.seconds};
    const char* names[] = {"LA_cur",      "LB_cur", "f_prev",    "stat0",  "pending_ga2",
                           "pending_sa2", "t",      "omega_hat", "seconds"};
    for (std::size_t i = 0; i < 9; ++i) *scalars[i] = required(in, path, names[i]);
    // The extrapolation state (absent in checkpoints of runs that could not use it: the defaults).
    if (const auto v = in.attr_double("beta")) st.beta = *v;
    if (const auto v = in.attr_double("beta_bar")) st.beta_bar = *v;
    if (const auto v = in.attr_double("restart")) st.restart = *v != 0;
  });
}

template <class Model> std::string model_name() { return Model::has_core ? "tucker" : "cp"; }

template <class Model>
void write_cp_checkpoint(const Comm& comm, const std::string& path, const Model& m, const CpFactors& f,
                         const CpSolverState& st, const std::string& fingerprint) {
  h5::AtomicOutput out(comm, path, true);
  {
    h5::File fo = h5::File::create(comm, out.tmp_path());
    for (std::size_t n = 0; n < m.order(); ++n) {
      const std::string k = std::to_string(n);
      const Shape dims{m.extent(n), m.rank(n)}, off{m.row_offset(n), 0};
      h5::write_distributed(fo, "F_" + k, dims, off, f.F[n], m.owns(n));
      h5::write_distributed(fo, "prev_" + k, dims, off, st.prev[n], m.owns(n));
      h5::write_distributed(fo, "last_" + k, dims, off, st.last[n], m.owns(n));
      fo.write_replicated("L_last_" + k, {st.L_last[n].size()}, st.L_last[n]);
    }
    if constexpr (Model::has_core) {
      const Shape& cs = m.core_shape();
      const Shape zero(cs.size(), 0);
      h5::write_distributed(fo, "core", cs, zero, f.G, m.owns_core());
      h5::write_distributed(fo, "core_prev", cs, zero, st.core_prev, m.owns_core());
      h5::write_distributed(fo, "core_last", cs, zero, st.core_last, m.owns_core());
      fo.write_replicated("core_L_last", {st.core_L_last.size()}, st.core_L_last);
    }
    fo.write_replicated("L_cur", {st.L_cur.size()}, st.L_cur);
    write_stats(fo, st.stats);
    fo.attr("fingerprint", fingerprint);
    fo.attr("model", model_name<Model>());
    fo.attr("iteration", static_cast<long long>(st.iteration));
    fo.attr("zero_steps", static_cast<long long>(st.zero_steps));
    const std::pair<const char*, double> scalars[] = {
        {"f_prev", st.f_prev}, {"stat0", st.stat0}, {"t", st.t}, {"omega_hat", st.omega_hat}, {"seconds", st.seconds}};
    for (const auto& [k, v] : scalars) fo.attr(k, v);
  }
  out.commit();
}

template <class Model>
void read_cp_checkpoint(const Comm& comm, const std::string& path, const Model& m, CpFactors& f, CpSolverState& st,
                        const std::string& fingerprint) {
  h5::File in = h5::File::open_read(comm, path);
  collective_try(comm, [&] {
    check_fingerprint(in, path, fingerprint, {"F_0", "prev_0", "L_cur", "stats"}, model_name<Model>());
  });
  collective_try(comm, [&] {
    const std::size_t N = m.order();
    f.F.assign(N, {});
    st.prev.assign(N, {});
    st.last.assign(N, {});
    st.L_last.assign(N, {});
    for (std::size_t n = 0; n < N; ++n) {
      const std::string k = std::to_string(n);
      const Shape off{m.row_offset(n), 0}, shape{m.rows_local(n), m.rank(n)};
      f.F[n] = h5::read_box(in, "F_" + k, off, shape);
      st.prev[n] = h5::read_box(in, "prev_" + k, off, shape);
      st.last[n] = h5::read_box(in, "last_" + k, off, shape);
      st.L_last[n] = in.read_all("L_last_" + k);
    }
    if constexpr (Model::has_core) {
      const Shape& cs = m.core_shape();
      const Shape zero(cs.size(), 0);
      f.G = h5::read_box(in, "core", zero, cs);
      st.core_prev = h5::read_box(in, "core_prev", zero, cs);
      st.core_last = h5::read_box(in, "core_last", zero, cs);
      st.core_L_last = in.read_all("core_L_last");
    }
    st.L_cur = in.read_all("L_cur");
    st.stats = read_stats(in, path);
    st.iteration = static_cast<std::size_t>(required(in, path, "iteration"));
    st.zero_steps = static_cast<std::size_t>(required(in, path, "zero_steps"));
    st.f_prev = required(in, path, "f_prev");
    st.stat0 = required(in, path, "stat0");
    st.t = required(in, path, "t");
    st.omega_hat = required(in, path, "omega_hat");
    st.seconds = required(in, path, "seconds");
  });
}

template void write_checkpoint(const Comm&, const std::string&, const Tucker1<double>&, const Factors&,
                               const SolverState&, const std::string&);
template void write_checkpoint(const Comm&, const std::string&, const Tucker1<float>&, const Factors&,
                               const SolverState&, const std::string&);
template void read_checkpoint(const Comm&, const std::string&, const Tucker1<double>&, Factors&, SolverState&,
                              const std::string&);
template void read_checkpoint(const Comm&, const std::string&, const Tucker1<float>&, Factors&, SolverState&,
                              const std::string&);

#define UNMIX_INSTANTIATE_CHECKPOINT(M)                                                                                \
  template void write_cp_checkpoint(const Comm&, const std::string&, const M&, const CpFactors&, const CpSolverState&, \
                                    const std::string&);                                                               \
  template void read_cp_checkpoint(const Comm&, const std::string&, const M&, CpFactors&, CpSolverState&,              \
                                   const std::string&);
UNMIX_INSTANTIATE_CHECKPOINT(CP<double>)
UNMIX_INSTANTIATE_CHECKPOINT(CP<float>)
UNMIX_INSTANTIATE_CHECKPOINT(Tucker<double>)
UNMIX_INSTANTIATE_CHECKPOINT(Tucker<float>)

} // namespace unmix
