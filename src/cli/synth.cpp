// unmix synth: a planted low-rank nonnegative tensor Y = B x1 A, a sum of rank-one tensors (CP) or a core
// times a factor per axis (Tucker), with noise if asked, and its true factors.
#include <cstdio>

#include "common.hpp"
#include "unmix/io/hdf5.hpp"
#include "unmix/model/cp.hpp"
#include "unmix/model/planted.hpp"
#include "unmix/model/tucker.hpp"
#include "unmix/pipeline/factorize.hpp"

namespace unmix::cli {

namespace {
Shape parse_shape(const std::string& text) {
  Shape s;
  std::string t = text, tok;
  for (char& c : t)
    if (c == ',') c = 'x';
  std::size_t pos = 0;
  while (pos <= t.size()) {
    const std::size_t nxt = t.find('x', pos);
    tok = t.substr(pos, nxt == std::string::npos ? std::string::npos : nxt - pos);
    std::size_t used = 0;
    long v = -1;
    try {
      v = std::stol(tok, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != tok.size() || tok.empty() || v < 1)
      throw ConfigError("--shape '" + text + "': '" + tok + "' is not a positive whole number; write e.g. 20x30x40");
    s.push_back(static_cast<std::size_t>(v));
    if (nxt == std::string::npos) break;
    pos = nxt + 1;
  }
  if (s.size() < 2) throw ConfigError("--shape '" + text + "' needs at least 2 axes (mixtures first), e.g. 20x30x40");
  return s;
}

/// Y, A_true (factor 0), B_true (the sources: for CP the rank-one tensors of the other factors, for Tucker the
/// core times them), factor_N_true and, for Tucker, core_true.
template <class Model, class Planted>
void write_planted_modes(const Comm& world, const Shape& shape, const Model& m, const Planted& planted, double noise,
                         std::uint64_t seed, h5::AtomicOutput& out) {
  const Shape& off = planted.Y.offset();
  std::vector<Tensor<double>> local; // this process's rows of each factor
  for (std::size_t n = 0; n < shape.size(); ++n) local.push_back(factor_rows(planted.F[n], off[n], m.rows_local(n)));
  {
    h5::File f = h5::File::create(world, out.tmp_path());
    h5::write_distributed(f, "Y", shape, off, planted.Y.local(), true);
    h5::write_distributed(f, "A_true", {shape[0], m.rank(0)}, {off[0], 0}, local[0], m.owns(0));
    std::vector<std::size_t> ranks;
    for (std::size_t n = 0; n < shape.size(); ++n) ranks.push_back(m.rank(n));
    // B_true a piece at a time (it is R / I_0 of Y in doubles).
    h5::write_generated(f, "B_true", m.b_global_shape(), m.b_offset(), m.b_local_shape(), m.owns_B(),
                        [&](const Shape& at, const Shape& count) {
                          if constexpr (Model::has_core)
                            return m.sources_box(local, planted.G, at, count);
                          else
                            return m.sources_box(local, at, count);
                        });
    if constexpr (Model::has_core) {
      h5::write_distributed(f, "core_true", m.core_shape(), Shape(shape.size(), 0), planted.G, m.owns_core());
      f.attr("model", std::string("tucker"));
      f.attr("ranks", list_text(ranks));
    } else {
      f.attr("model", std::string("cp"));
    }
    for (std::size_t n = 1; n < shape.size(); ++n)
      h5::write_distributed(f, "factor_" + std::to_string(n) + "_true", {shape[n], m.rank(n)}, {off[n], 0}, local[n],
                            m.owns(n));
    f.attr("rank", static_cast<long long>(m.rank(0)));
    f.attr("noise", noise);
    f.attr("seed", static_cast<unsigned long long>(seed));
    f.attr("unmix_version", std::string(UNMIX_VERSION));
  }
  out.commit();
}

} // namespace

int cmd_synth(const std::vector<std::string>& args, const Comm& world) {
  po::options_description desc("Options");
  desc.add_options()("shape", po::value<std::string>()->required(), "tensor shape, mixtures first, e.g. 20x30x40")(
      "rank", po::value<std::string>()->required(),
      "number of planted sources R; with --model tucker one rank per axis, e.g. 3,4,2 (or R for every axis)")(
      "noise", po::value<double>()->default_value(0.0),
      "Gaussian noise, relative to the root-mean-square of Y (then clipped at 0)")(
      "seed", po::value<unsigned long long>()->default_value(1),
      "random seed")("out", po::value<std::string>()->required(), "output HDF5 file (datasets Y, A_true, B_true)")(
      "overwrite", po::bool_switch(), "replace an existing output file")(
      "model", po::value<std::string>()->default_value("tucker1"),
      "tucker1: Y = B x1 A with A and B uniform on [0, 1); cp: Y = sum of R rank-one tensors with factors uniform on "
      "[0, 1) (also written: factor_1_true ... for the other axes); tucker: Y = G x1 F1 x2 F2 ... with the core "
      "and the factors uniform on [0, 1) (also written: core_true, factor_1_true ...)")(
      "separable", po::bool_switch(),
      "make the first R mixtures and the first R columns pure (identity), so the nonnegative factorization is "
      "unique up to permutation and scaling");
  Parsed p = parse("synth", "--shape IxJxK --rank R --out FILE.h5 [--noise X --seed S]", desc, {}, args, world);
  const Shape shape = parse_shape(p.vm["shape"].as<std::string>());
  const std::string model = p.vm["model"].as<std::string>();
  if (model != "tucker1" && model != "cp" && model != "tucker")
    throw ConfigError("--model '" + model + "': use tucker1, cp or tucker");
  std::vector<std::size_t> ranks;
  {
    const std::string text = p.vm["rank"].as<std::string>();
    std::size_t pos = 0;
    while (pos <= text.size()) {
      const std::size_t c = text.find(',', pos);
      const std::string w = text.substr(pos, c == std::string::npos ? std::string::npos : c - pos);
      std::size_t used = 0;
      long v = 0;
      try {
        v = std::stol(w, &used);
      } catch (const std::exception&) {
        used = 0;
      }
      if (used == 0 || used != w.size()) throw ConfigError("--rank '" + text + "': give a whole number (or a list)");
      if (v < 1) throw ConfigError("--rank must be at least 1");
      ranks.push_back(static_cast<std::size_t>(v));
      if (c == std::string::npos) break;
      pos = c + 1;
    }
    if (ranks.size() > 1 && model != "tucker")
      throw ConfigError("--rank '" + text + "': one rank per axis is for --model tucker");
    if (model == "tucker" && ranks.size() == 1) ranks.assign(shape.size(), ranks[0]);
    if (ranks.size() > 1 && ranks.size() != shape.size())
      throw ConfigError("--rank '" + text + "': " + std::to_string(ranks.size()) + " ranks for " +
                        std::to_string(shape.size()) + " axes");
    if (model == "tucker") {
      // The same bounds as factorize --model tucker takes.
      FactorizeConfig c;
      c.ranks = ranks;
      c.rank = ranks[0];
      ranks = tucker_ranks(c, shape);
    }
  }
  const long R = static_cast<long>(ranks[0]);
  const double noise = p.vm["noise"].as<double>();
  if (!(noise >= 0)) throw ConfigError("--noise must be 0 or more");
  const auto seed = p.vm["seed"].as<unsigned long long>();
  if (model != "tucker1" && p.vm["separable"].as<bool>())
    throw ConfigError("--separable makes pure mixtures and sources of a Tucker-1 model; drop it with --model " + model);
  h5::AtomicOutput out(world, p.vm["out"].as<std::string>(), p.vm["overwrite"].as<bool>());
  if (model == "cp") {
    const auto planted = make_planted_cp<double>(world, shape, static_cast<std::size_t>(R), noise, seed);
    write_planted_modes(world, shape, CP<double>(planted.Y, static_cast<std::size_t>(R)), planted, noise, seed, out);
    if (world.rank() == 0)
      std::printf("wrote %s: Y (%s), A_true, B_true, factor_1_true ...; CP rank %ld, noise %g, seed %llu\n",
                  out.final_path().c_str(), shape_string(shape).c_str(), R, noise, seed);
    return 0;
  }
  if (model == "tucker") {
    const auto planted = make_planted_tucker<double>(world, shape, ranks, noise, seed);
    write_planted_modes(world, shape, Tucker<double>(planted.Y, ranks), planted, noise, seed, out);
    if (world.rank() == 0)
      std::printf("wrote %s: Y (%s), A_true, B_true, core_true, factor_1_true ...; Tucker ranks %s, noise %g, seed "
                  "%llu\n",
                  out.final_path().c_str(), shape_string(shape).c_str(), shape_string(ranks).c_str(), noise, seed);
    return 0;
  }
  auto planted = make_planted<double>(world, shape, static_cast<std::size_t>(R), noise, seed, std::nullopt,
                                      p.vm["separable"].as<bool>());
  {
    h5::File f = h5::File::create(world, out.tmp_path());
    h5::write_distributed(f, "Y", shape, planted.Y.offset(), planted.Y.local(), true);
    const std::size_t I = shape[0];
    Tensor<double> At({static_cast<std::size_t>(R), I}); // C order of (I, R)
    for (std::size_t i = 0; i < I; ++i)
      for (std::size_t r = 0; r < static_cast<std::size_t>(R); ++r) At(r, i) = planted.A(i, r);
    f.write_replicated("A_true", {I, static_cast<std::size_t>(R)}, At.vec());
    Shape bdims = shape;
    bdims[0] = static_cast<std::size_t>(R);
    Shape boff = planted.Y.offset();
    boff[0] = 0;
    const bool owner = planted.Y.comms().coords()[0] == 0;
    h5::write_distributed(f, "B_true", bdims, boff, planted.B_local, owner);
    f.attr("rank", static_cast<long long>(R));
    f.attr("noise", noise);
    f.attr("seed", static_cast<unsigned long long>(seed));
    f.attr("separable", static_cast<long long>(p.vm["separable"].as<bool>() ? 1 : 0));
    f.attr("unmix_version", std::string(UNMIX_VERSION));
  }
  out.commit();
  if (world.rank() == 0)
    std::printf("wrote %s: Y (%s), A_true, B_true; rank %ld, noise %g, seed %llu\n", out.final_path().c_str(),
                shape_string(shape).c_str(), R, noise, seed);
  return 0;
}

} // namespace unmix::cli
