#include "unmix/multiscale/multiscale.hpp"

#include <algorithm>
#include <chrono>
#include <optional>
#include <type_traits>

#include "unmix/core/resources.hpp"
#include "unmix/model/tucker1.hpp"

namespace unmix {

std::vector<ResampleTap> resample_taps(std::size_t n_src, std::size_t n_dst) {
  std::vector<ResampleTap> taps(n_dst);
  if (n_dst <= 1 || n_src <= 1) return taps; // everything maps to the first point
  for (std::size_t t = 0; t < n_dst; ++t) {
    const std::size_t num = t * (n_src - 1), den = n_dst - 1;
    taps[t].i0 = num / den;
    taps[t].w = static_cast<double>(num % den) / static_cast<double>(den);
    if (taps[t].i0 >= n_src - 1) {
      taps[t].i0 = n_src - 1;
      taps[t].w = 0;
    }
  }
  return taps;
}

std::size_t coarse_size(std::size_t n, int level) {
  if (n <= 1) return n;
  const std::size_t step = std::size_t{1} << level;
  return (n - 1 + step - 1) / step + 1;
}

namespace {

using Clock = std::chrono::steady_clock;

/// Resamples mode m of x (whose index 0 along m is global source index src_lo) onto the targets `taps`, in
/// double whatever x holds.
template <class S>
Tensor<double> resample_mode(const Tensor<S>& x, std::size_t m, std::size_t src_lo, std::span<const ResampleTap> taps) {
  const Shape& s = x.shape();
  std::size_t left = 1, right = 1;
  for (std::size_t k = 0; k < m; ++k) left *= s[k];
  for (std::size_t k = m + 1; k < s.size(); ++k) right *= s[k];
  const std::size_t n = s[m], nt = taps.size();
  Shape os = s;
  os[m] = nt;
  Tensor<double> out(os);
  for (std::size_t r = 0; r < right; ++r)
    for (std::size_t t = 0; t < nt; ++t) {
      const std::size_t i0 = taps[t].i0 - src_lo;
      const double w = taps[t].w;
      const S* a = x.data() + left * (i0 + n * r);
      double* o = out.data() + left * (t + nt * r);
      if (w == 0) {
        std::copy(a, a + left, o);
      } else {
        const S* b = a + left;
        for (std::size_t l = 0; l < left; ++l) o[l] = (1 - w) * a[l] + w * b[l];
      }
    }
  return out;
}

/// The source index range [lo, hi) that the targets [t0, t0 + nt) read.
std::pair<std::size_t, std::size_t> source_range(const std::vector<ResampleTap>& taps, std::size_t t0, std::size_t nt) {
  if (nt == 0) return {0, 0};
  const auto& last = taps[t0 + nt - 1];
  return {taps[t0].i0, last.i0 + (last.w > 0 ? 2 : 1)};
}

/// Resample the local box [off, off + shape) of a target array from a source array distributed as
/// (held_off, held, provider), along `modes` (n_src -> n_dst per mode). Collective.
template <class T>
Tensor<double> resample_box(const Comm& comm, const Shape& held_off, const Tensor<T>& held, bool provider,
                            const Shape& src_global, const Shape& dst_global, const std::vector<std::size_t>& modes,
                            const Shape& off, const Shape& shape) {
  const std::size_t N = shape.size();
  Shape want_off = off, want_shape = shape;
  std::vector<std::vector<ResampleTap>> taps(N);
  const bool empty = shape_size(shape) == 0;
  for (std::size_t m : modes) {
    taps[m] = resample_taps(src_global[m], dst_global[m]);
    const auto [lo, hi] = source_range(taps[m], off[m], shape[m]);
    want_off[m] = empty ? 0 : lo;
    want_shape[m] = empty ? 0 : hi - lo;
  }
  if (empty) std::fill(want_shape.begin(), want_shape.end(), 0);
  // A process whose own block holds all it reads (on the resampled modes; exactly its box on the others)
  // resamples the block in place; the others gather what they read (their block and the neighbours' halos).
  // Either way the values are read as stored: no copy of the block in doubles (that and the gathered copy of
  // the block held three blocks at once).
  bool inside = !empty && provider && held.shape().size() == N;
  for (std::size_t d = 0; d < N && inside; ++d) {
    const bool resampled = std::find(modes.begin(), modes.end(), d) != modes.end();
    const std::size_t ho = held_off[d], he = held.shape()[d];
    inside = resampled ? ho <= want_off[d] && want_off[d] + want_shape[d] <= ho + he
                       : ho == want_off[d] && he == want_shape[d];
  }
  Tensor<T> buf = gather_box<T>(comm, held_off, held, provider, want_off, inside ? Shape(N, 0) : want_shape);
  if (empty) return Tensor<double>(shape);
  const Tensor<T>& src = inside ? held : buf;
  const Shape& src_off = inside ? held_off : want_off;
  if (modes.empty()) {
    Tensor<double> x(src.shape());
    std::copy(src.data(), src.data() + src.size(), x.data());
    return x;
  }
  auto along = [&](std::size_t m) { return std::span<const ResampleTap>(taps[m]).subspan(off[m], shape[m]); };
  Tensor<double> x = resample_mode(src, modes[0], src_off[modes[0]], along(modes[0]));
  buf = Tensor<T>(); // the gathered block, freed before the other modes are resampled
  for (std::size_t k = 1; k < modes.size(); ++k) x = resample_mode(x, modes[k], src_off[modes[k]], along(modes[k]));
  return x;
}

} // namespace

Tensor<double> resample(const Tensor<double>& x, const std::vector<std::size_t>& modes, const Shape& new_shape) {
  Tensor<double> y = x;
  for (std::size_t m : modes) {
    const auto taps = resample_taps(x.shape()[m], new_shape[m]);
    y = resample_mode(y, m, 0, taps);
  }
  return y;
}

template <class T>
Tensor<T> gather_box(const Comm& comm, const Shape& held_offset, const Tensor<T>& held, bool provider,
                     const Shape& want_offset, const Shape& want_shape) {
  const std::size_t N = want_shape.size();
  const int P = comm.size();
  // What every process holds and wants: [held_off, held_shape, provider, want_off, want_shape].
  const std::size_t W = 4 * N + 1;
  std::vector<unsigned long long> mine(W, 0);
  const bool prov = provider && held.size() > 0 && held.shape().size() == N;
  for (std::size_t d = 0; d < N; ++d) {
    mine[d] = prov ? held_offset[d] : 0;
    mine[N + d] = prov ? held.shape()[d] : 0;
    mine[2 * N + 1 + d] = want_offset[d];
    mine[3 * N + 1 + d] = want_shape[d];
  }
  mine[2 * N] = prov ? 1 : 0;
  const auto all = comm.allgatherv<unsigned long long>(mine);
  auto info = [&](int p, std::size_t k) { return static_cast<std::size_t>(all[static_cast<std::size_t>(p) * W + k]); };
  // The intersection of p's held box and q's wanted box; false when empty.
  auto meet = [&](int p, int q, Shape& lo, Shape& ext) {
    if (info(p, 2 * N) == 0) return false;
    lo.assign(N, 0);
    ext.assign(N, 0);
    for (std::size_t d = 0; d < N; ++d) {
      const std::size_t a = std::max(info(p, d), info(q, 2 * N + 1 + d));
      const std::size_t b = std::min(info(p, d) + info(p, N + d), info(q, 2 * N + 1 + d) + info(q, 3 * N + 1 + d));
      if (b <= a) return false;
      lo[d] = a;
      ext[d] = b - a;
    }
    return true;
  };
  // Visits a box in column-major order, calling f(linear index in the first container box, linear index in
  // the second) for each entry; visit: one container.
  auto visit2 = [&](const Shape& lo, const Shape& ext, const Shape& off1, const Shape& shape1, const Shape& off2,
                    const Shape& shape2, auto&& f) {
    const std::size_t n = shape_size(ext);
    Shape idx(N, 0);
    for (std::size_t c = 0; c < n; ++c) {
      std::size_t l1 = 0, l2 = 0, s1 = 1, s2 = 1;
      for (std::size_t d = 0; d < N; ++d) {
        l1 += (lo[d] + idx[d] - off1[d]) * s1;
        l2 += (lo[d] + idx[d] - off2[d]) * s2;
        s1 *= shape1[d];
        s2 *= shape2[d];
      }
      f(l1, l2);
      for (std::size_t d = 0; d < N; ++d) {
        if (++idx[d] < ext[d]) break;
        idx[d] = 0;
      }
    }
  };
  auto visit = [&](const Shape& lo, const Shape& ext, const Shape& off, const Shape& shape, auto&& f) {
    visit2(lo, ext, off, shape, off, shape, [&](std::size_t lin, std::size_t) { f(lin); });
  };
  const int me = comm.rank();
  const auto nP = static_cast<std::size_t>(P);
  std::vector<std::size_t> scount(nP, 0), sdisp(nP, 0), rcount(nP, 0), rdisp(nP, 0);
  std::vector<T> sbuf;
  Shape lo, ext;
  // Sized first: grown by push_back, the send buffer of a whole block held up to three blocks at once.
  // What a process holds of its own box is copied straight from `held` to `out` after the exchange, not
  // through the send and receive buffers (coarsening a block of Y held it three times over).
  std::size_t sending = 0;
  for (int q = 0; q < P; ++q)
    if (q != me && meet(me, q, lo, ext)) sending += shape_size(ext);
  sbuf.reserve(sending);
  for (int q = 0; q < P; ++q) {
    const auto k = static_cast<std::size_t>(q);
    sdisp[k] = sbuf.size();
    if (q != me && meet(me, q, lo, ext))
      visit(lo, ext, held_offset, held.shape(), [&](std::size_t lin) { sbuf.push_back(held[lin]); });
    scount[k] = sbuf.size() - sdisp[k];
  }
  std::size_t total = 0;
  for (int p = 0; p < P; ++p) {
    const auto k = static_cast<std::size_t>(p);
    rdisp[k] = total;
    if (p != me && meet(p, me, lo, ext)) total += shape_size(ext);
    rcount[k] = total - rdisp[k];
  }
  std::vector<T> rbuf(total);
  comm.alltoallv(std::span<const T>(sbuf), scount, sdisp, std::span<T>(rbuf), rcount, rdisp);
  sbuf = std::vector<T>();
  Tensor<T> out(want_shape);
  std::size_t pos = 0;
  for (int p = 0; p < P; ++p) {
    if (!meet(p, me, lo, ext)) continue;
    if (p == me)
      visit2(lo, ext, held_offset, held.shape(), want_offset, want_shape,
             [&](std::size_t from, std::size_t to) { out[to] = held[from]; });
    else
      visit(lo, ext, want_offset, want_shape, [&](std::size_t lin) { out[lin] = rbuf[pos++]; });
  }
  return out;
}

template <class T>
DistTensor<T> coarsen(const DistTensor<T>& Y, const std::vector<std::size_t>& modes, const Shape& shape) {
  BlockLayout layout(shape, Y.grid());
  const int me = Y.comm().rank();
  Tensor<double> x = resample_box<T>(Y.comm(), Y.offset(), Y.local(), true, Y.global_shape(), shape, modes,
                                     layout.box_offset(me), layout.box_shape(me));
  if constexpr (std::is_same_v<T, double>) {
    return DistTensor<T>(Y.comm(), std::move(layout), std::move(x)); // the resampled box itself, not a copy
  } else {
    Tensor<T> box(x.shape());
    for (std::size_t i = 0; i < x.size(); ++i) box[i] = static_cast<T>(x[i]);
    x = Tensor<double>();
    return DistTensor<T>(Y.comm(), std::move(layout), std::move(box));
  }
}

int multiscale_levels(const Shape& shape, const MultiscaleOptions& opts) {
  if (opts.modes.empty()) throw ConfigError("multiscale needs at least one continuous axis");
  for (std::size_t m : opts.modes) {
    if (m == 0)
      throw ConfigError("the mixture axis cannot be a continuous (coarsened) axis: A would change with the grid");
    if (m >= shape.size()) throw ConfigError("continuous axis out of range for a tensor of " + shape_string(shape));
  }
  const std::size_t min_size = std::max<std::size_t>(opts.min_size, 2);
  int levels = 0;
  while (true) {
    bool ok = true;
    for (std::size_t m : opts.modes) ok = ok && coarse_size(shape[m], levels + 1) >= min_size && shape[m] > min_size;
    if (!ok) break;
    ++levels;
    if (opts.levels > 0 && levels == opts.levels) break;
  }
  if (levels == 0) {
    std::string sizes;
    for (std::size_t m : opts.modes) sizes += (sizes.empty() ? "" : ", ") + std::to_string(shape[m]);
    throw ConfigError("the continuous axes (sizes " + sizes + ") are too small to coarsen: each needs more than " +
                      std::to_string(min_size) + " points");
  }
  return levels;
}

template <class T>
MultiscaleResult solve_multiscale(const DistTensor<T>& Y, std::size_t rank, Factors& f, const ConstraintList& consA,
                                  const ConstraintList& consB, const SolverOptions& opts, bool y_nonneg,
                                  const MultiscaleOptions& ms, const IterationCallback& callback) {
  std::vector<std::size_t> modes = ms.modes;
  std::sort(modes.begin(), modes.end());
  modes.erase(std::unique(modes.begin(), modes.end()), modes.end());
  MultiscaleOptions o = ms;
  o.modes = modes;
  const int L = multiscale_levels(Y.global_shape(), o);
  MultiscaleResult res;
  const Comm& comm = Y.comm();
  Factors cur;
  Shape prev_off, prev_global;
  bool prev_owns = false;
  double elapsed = 0;
  Shape data_b = Y.global_shape(); // B's global shape on the data's grid: R x J1 x ...
  data_b[0] = rank;
  for (int level = L; level >= 0; --level) {
    // The last level's arrays are freed; those glibc took from its heap stay resident until handed back.
    if (level < L) release_free_heap();
    const auto t0 = Clock::now();
    Shape shape = Y.global_shape();
    for (std::size_t m : modes) shape[m] = coarse_size(shape[m], level);
    std::optional<DistTensor<T>> Yc;
    if (level > 0) Yc.emplace(coarsen(Y, modes, shape));
    const DistTensor<T>& Yl = level > 0 ? *Yc : Y;
    Tucker1<T> model(Yl, rank);
    // B's projected normalizations aim at this grid's targets (constraints.hpp, "per-grid targets"); on
    // the data's own grid (level 0) the user's list itself, so the answer meets it exactly.
    const ConstraintList consBl = level > 0 ? constraints_for_grid(consB, data_b, model.b_global_shape()) : consB;
    Factors fl;
    if (level == L) {
      init_random(model, fl, opts.seed, y_nonneg, consA, consBl);
    } else {
      fl.A = cur.A;
      Shape bglob = model.b_global_shape();
      fl.B = resample_box<double>(comm, prev_off, cur.B, prev_owns, prev_global, bglob, modes, model.b_offset(),
                                  model.b_local_shape());
      apply_constraints_once(model, fl, consA, consBl);
    }
    IterationCallback cb;
    if (callback)
      cb = [&](const IterationStats& s) {
        IterationStats c = s;
        c.scale = level;
        c.seconds += elapsed;
        return callback(c);
      };
    SolveResult r = solve(model, fl, consA, consBl, opts, cb);
    const double secs = comm.allreduce(std::chrono::duration<double>(Clock::now() - t0).count(), Op::max);
    for (auto& s : r.stats) {
      s.scale = level;
      s.seconds += elapsed;
    }
    elapsed += secs;
    res.shapes.push_back(shape);
    res.seconds.push_back(secs);
    res.iterations.push_back(r.iterations);
    res.rel_errors.push_back(r.stats.empty() ? 0.0 : r.stats.back().rel_error);
    res.result.stats.insert(res.result.stats.end(), r.stats.begin(), r.stats.end());
    res.result.iterations += r.iterations;
    res.result.zero_step_warnings += r.zero_step_warnings;
    res.result.stop_reason = r.stop_reason;
    res.result.converged = r.converged;
    prev_off = model.b_offset();
    prev_global = model.b_global_shape();
    prev_owns = model.owns_B();
    cur = std::move(fl);
  }
  f = std::move(cur);
  return res;
}

template Tensor<float> gather_box(const Comm&, const Shape&, const Tensor<float>&, bool, const Shape&, const Shape&);
template Tensor<double> gather_box(const Comm&, const Shape&, const Tensor<double>&, bool, const Shape&, const Shape&);
template DistTensor<float> coarsen(const DistTensor<float>&, const std::vector<std::size_t>&, const Shape&);
template DistTensor<double> coarsen(const DistTensor<double>&, const std::vector<std::size_t>&, const Shape&);
template MultiscaleResult solve_multiscale(const DistTensor<float>&, std::size_t, Factors&, const ConstraintList&,
                                           const ConstraintList&, const SolverOptions&, bool, const MultiscaleOptions&,
                                           const IterationCallback&);
template MultiscaleResult solve_multiscale(const DistTensor<double>&, std::size_t, Factors&, const ConstraintList&,
                                           const ConstraintList&, const SolverOptions&, bool, const MultiscaleOptions&,
                                           const IterationCallback&);

} // namespace unmix
