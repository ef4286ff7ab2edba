// `unmix spatial` on planted data (spots mixing three known expression profiles, counts written as a
// MatrixMarket file: the proportions come back) and on the mouse olfactory bulb section (../shared/data/
// transcriptomics): the dominant cell type of each spot agrees with the annotated layers, at every process
// count, as on one process.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <memory>
#include <numeric>

#include "../support/factor_check.hpp"
#include "../support/test_support.hpp"
#include "unmix/apps/spatial_pipeline.hpp"
#include "unmix/core/rng.hpp"

using namespace unmix;

TEST_CASE("spatial: planted proportions recovered from counts", "[spatial]") {
  const Comm& comm = test::comm();
  const std::string dir = test::scratch_dir();
  const std::size_t R = 3, NX = 15, NY = 10, S = NX * NY, G = 240;
  // Proportions: three smooth fields over the section, on the simplex, with pure spots in three corners.
  std::vector<double> A(S * R), P(R * G);
  for (std::size_t ix = 0; ix < NX; ++ix)
    for (std::size_t iy = 0; iy < NY; ++iy) {
      const std::size_t s = ix + NX * iy;
      const double u = static_cast<double>(ix) / (NX - 1), v = static_cast<double>(iy) / (NY - 1);
      double w[3] = {std::pow(std::max(0.0, 1 - u - 0.3 * v), 3), std::pow(u * (1 - v), 3), std::pow(v, 3)};
      const double t = w[0] + w[1] + w[2];
      for (std::size_t r = 0; r < R; ++r) A[s + S * r] = w[r] / t;
    }
  // Profiles: each gene a marker of one type (strong there, weak elsewhere), every profile summing to the same.
  const CounterRng rng(11, 0);
  for (std::size_t g = 0; g < G; ++g)
    for (std::size_t r = 0; r < R; ++r) P[r + R * g] = (g % R == r ? 30.0 : 1.0) * (0.5 + rng.uniform(g * R + r));
  for (std::size_t r = 0; r < R; ++r) {
    double t = 0;
    for (std::size_t g = 0; g < G; ++g) t += P[r + R * g];
    for (std::size_t g = 0; g < G; ++g) P[r + R * g] *= 20000.0 / t;
  }
  if (comm.rank() == 0) {
    std::ofstream mtx(dir + "/planted.mtx");
    std::vector<std::string> lines;
    for (std::size_t s = 0; s < S; ++s) {
      const double lib = 0.6 + 0.8 * rng.uniform(1000 + s); // spots of different depth
      for (std::size_t g = 0; g < G; ++g) {
        double lambda = 0;
        for (std::size_t r = 0; r < R; ++r) lambda += A[s + S * r] * P[r + R * g];
        const long c = std::lround(lib * lambda);
        if (c > 0) lines.push_back(std::to_string(g + 1) + " " + std::to_string(s + 1) + " " + std::to_string(c));
      }
    }
    mtx << "%%MatrixMarket matrix coordinate integer general\n" << G << " " << S << " " << lines.size() << "\n";
    for (const auto& l : lines) mtx << l << "\n";
    std::ofstream spots(dir + "/spots.csv");
    spots << "id,x,y,type\n";
    for (std::size_t s = 0; s < S; ++s) {
      std::size_t best = 0;
      for (std::size_t r = 1; r < R; ++r)
        if (A[s + S * r] > A[s + S * best]) best = r;
      spots << "s" << s << "," << s % NX << "," << s / NX << ",T" << best << "\n";
    }
  }
  comm.barrier();
  spatial::RunConfig cfg = spatial::default_config();
  cfg.counts = dir + "/planted.mtx";
  cfg.spots = dir + "/spots.csv";
  cfg.label_column = "type";
  cfg.rank = R;
  cfg.prepare.top_genes = G;
  cfg.factor.solver.tol = {{Stat::rel_change, 1e-8}};
  cfg.factor.solver.maxiter = 20000;
  cfg.out_dir = dir + "/out";
  cfg.plot_format = "none";
  const spatial::RunSummary s = spatial::run(cfg, comm);
  std::vector<std::size_t> perm;
  const double err = test::matched_column_error(s.fit.A, A, S, R, &perm);
  // Measured: 0.024 (unit-norm columns) and 0.025 (largest proportion error); what is left comes from the
  // rounding of the counts to integers.
  CHECK(err < 0.05);
  double worst = 0;
  for (std::size_t r = 0; r < R; ++r)
    for (std::size_t i = 0; i < S; ++i) worst = std::max(worst, std::abs(s.fit.A[i + S * perm[r]] - A[i + S * r]));
  CHECK(worst < 0.05);
  if (comm.rank() == 0) {
    REQUIRE(s.ari);
    CHECK(*s.ari > 0.9);
  }
}

TEST_CASE("spatial: the olfactory bulb's layers from its spots, the same at every process count", "[spatial]") {
  const Comm& comm = test::comm();
  const std::string dir = test::scratch_dir();
  spatial::RunConfig cfg = spatial::default_config();
  cfg.counts = test::shared_data("transcriptomics/mOB_counts_genes15928_x_spots262.mtx.gz");
  cfg.spots = test::shared_data("transcriptomics/spots_pos_layer.csv");
  cfg.genes = test::shared_data("transcriptomics/genes.txt");
  cfg.label_column = "layer";
  cfg.rank = 5; // the five annotated layers
  cfg.out_dir = dir + "/mob";
  cfg.plot_format = "none";
  const spatial::RunSummary par = spatial::run(cfg, comm);
  CHECK(par.spots == 262);
  CHECK(par.genes_total == 15928);
  CHECK(par.genes_used == 1000);
  for (std::size_t s = 0; s < par.spots; ++s) {
    double t = 0;
    for (std::size_t r = 0; r < 5; ++r) t += par.fit.A[s + par.spots * r];
    CHECK(t == Approx(1.0).epsilon(1e-10));
  }
  if (comm.rank() == 0) {
    REQUIRE(par.ari);
    CHECK(par.label_names.size() == 5); // the two NA spots are unannotated
    // Measured 0.623 (seeds 1-6, 1 process; 300 genes 0.46-0.56, 3000 genes 0.54-0.57); independent labels give
    // about 0.
    CHECK(*par.ari > 0.55);
  }
  const Comm self = Comm::self();
  cfg.out_dir = dir + "/mob_ser" + std::to_string(comm.rank());
  const spatial::RunSummary ser = spatial::run(cfg, self);
  CHECK(par.fit.result.iterations == ser.fit.result.iterations);
  double d = 0;
  for (std::size_t i = 0; i < par.fit.A.size(); ++i) d = std::max(d, std::abs(par.fit.A[i] - ser.fit.A[i]));
  CHECK(d < 1e-8);
  CHECK(par.dominant == ser.dominant);
}

namespace {

/// This process's box of the serial preparation's matrix (spots x kept genes, column-major).
std::vector<double> box_of(const spatial::Prepared& whole, const DistTensor<double>& Y) {
  const std::size_t rows = Y.local().extent(0), cols = Y.local().extent(1);
  std::vector<double> box(rows * cols);
  for (std::size_t k = 0; k < cols; ++k)
    for (std::size_t s = 0; s < rows; ++s)
      box[s + rows * k] = whole.Y[Y.offset()[0] + s + whole.spots * (Y.offset()[1] + k)];
  return box;
}

spatial::SpreadCounts spread_file(const std::string& path, const spatial::PrepareOptions& opt,
                                  const apps::FitSettings& fit, std::size_t piece,
                                  std::vector<std::size_t>* progress = nullptr) {
  const Comm& comm = test::comm();
  std::unique_ptr<spatial::MatrixMarketReader> reader;
  if (comm.rank() == 0) reader = std::make_unique<spatial::MatrixMarketReader>(path);
  return spatial::read_spread(reader.get(), opt, fit, comm, piece, [&](std::size_t done, std::size_t all) {
    if (progress) progress->insert(progress->end(), {done, all});
  });
}

} // namespace

TEST_CASE("spatial: counts read in pieces and prepared distributed equal the serial preparation", "[spatial]") {
  const Comm& comm = test::comm();
  const std::string path = test::shared_data("transcriptomics/mOB_counts_genes15928_x_spots262.mtx.gz");
  spatial::PrepareOptions opt; // 1000 genes, scaled by their largest value
  const spatial::Prepared whole = spatial::prepare(spatial::read_matrix_market(path), opt);
  // 1,424,275 entry lines in pieces of 200,000: eight rounds, the last one short.
  apps::FitSettings fit;
  std::vector<std::size_t> progress;
  const spatial::SpreadCounts d = spread_file(path, opt, fit, 200000, &progress);
  CHECK(progress == std::vector<std::size_t>{200000, 1424275, 400000, 1424275, 600000, 1424275, 800000, 1424275,
                                             1000000, 1424275, 1200000, 1424275, 1400000, 1424275, 1424275, 1424275});
  CHECK(d.genes_total == 15928);
  CHECK(d.Y.global_shape() == Shape{262, 1000});
  CHECK(d.Y.grid().dim(0) == 1); // the default grid leaves the spots whole
  CHECK(d.gene_index == whole.gene_index);
  CHECK(d.gene_scale == whole.gene_scale);
  const std::vector<double> want = box_of(whole, d.Y);
  REQUIRE(want.size() == d.Y.local().size());
  std::size_t differ = 0;
  for (std::size_t i = 0; i < want.size(); ++i) differ += d.Y.local()[i] != want[i];
  CHECK(differ == 0); // integer counts, spots whole: bit for bit
  CHECK(comm.allreduce(d.Y.local().size()) == 262 * 1000);

  // Spots split too (a grid of the processes over the spots), scaled by the standard deviation: to rounding.
  opt.scale = "std";
  opt.top_genes = 300;
  const spatial::Prepared whole_std = spatial::prepare(spatial::read_matrix_market(path), opt);
  fit.grid = std::to_string(comm.size()) + "x1";
  if (comm.size() == 4) fit.grid = "2x2";
  const spatial::SpreadCounts e = spread_file(path, opt, fit, 1000000);
  CHECK(e.Y.grid().to_string() == *fit.grid);
  CHECK(e.gene_index == whole_std.gene_index);
  REQUIRE(e.gene_scale.size() == 300);
  for (std::size_t k = 0; k < 300; ++k) CHECK(e.gene_scale[k] == Approx(whole_std.gene_scale[k]).epsilon(1e-13));
  const std::vector<double> want_std = box_of(whole_std, e.Y);
  double worst = 0;
  for (std::size_t i = 0; i < want_std.size(); ++i) worst = std::max(worst, std::abs(e.Y.local()[i] - want_std[i]));
  CHECK(worst < 1e-12);
}

TEST_CASE("spatial: a bad line or a negative count anywhere in the counts stops every process", "[spatial]") {
  const Comm& comm = test::comm();
  const std::string dir = test::scratch_dir();
  // 6 genes x 4 spots, one entry per line; in pieces of 3 lines the bad line comes in the third piece.
  auto write = [&](const std::string& name, const std::string& bad) {
    if (comm.rank() == 0) {
      std::ofstream f(dir + "/" + name);
      f << "%%MatrixMarket matrix coordinate real general\n6 4 9\n";
      const char* lines[] = {"1 1 2", "2 1 1", "3 2 4", "4 2 1", "5 3 2", "6 3 1", "1 4 3", "6 4 2"};
      for (int l = 0; l < 7; ++l) f << lines[l] << "\n";
      if (!bad.empty()) f << bad << "\n"; // none: the file ends an entry short
      f << lines[7] << "\n";
    }
    comm.barrier();
    return dir + "/" + name;
  };
  spatial::PrepareOptions opt;
  opt.min_spots = 1;
  const apps::FitSettings fit;
  CHECK_THROWS_WITH(spread_file(write("bad.mtx", "2 x 1"), opt, fit, 3),
                    Catch::Contains("line 10: expected 'row column value', got '2 x 1'"));
  // The negative value goes to the process that holds gene 6's block (the last one), not to process 0.
  CHECK_THROWS_WITH(spread_file(write("neg.mtx", "6 2 -1"), opt, fit, 3), Catch::Contains("negative value (-1"));
  CHECK_THROWS_WITH(spread_file(write("short.mtx", ""), opt, fit, 4), Catch::Contains("ends after 8 of its 9 entries"));
  // The same file without fault, as the serial preparation gives it.
  const std::string good = write("good.mtx", "2 3 1");
  const spatial::Prepared whole = spatial::prepare(spatial::read_matrix_market(good), opt);
  const spatial::SpreadCounts d = spread_file(good, opt, fit, 3);
  CHECK(d.gene_index == whole.gene_index);
  const std::vector<double> want = box_of(whole, d.Y);
  for (std::size_t i = 0; i < want.size(); ++i) CHECK(d.Y.local()[i] == want[i]);
}
