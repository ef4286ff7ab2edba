#include "unmix/apps/spatial_pipeline.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <memory>
#include <numeric>
#include <sstream>

#include "unmix/core/error.hpp"
#include "unmix/io/csv.hpp"
#include "unmix/io/gnuplot.hpp"
#include "unmix/io/hdf5.hpp"

namespace unmix::spatial {

namespace {

using Clock = std::chrono::steady_clock;
constexpr auto& since = apps::seconds_since;
constexpr auto& fmt = apps::format_number;

std::string make_maps(const std::string& dir, const std::string& format, const Spots& sp, const std::vector<double>& A,
                      std::size_t R, const std::vector<int>& dominant, const std::vector<int>& labels,
                      const std::vector<std::string>& label_names) {
  const std::size_t S = sp.x.size(), L = label_names.size();
  // Colours: each annotation takes the colour of the cell type it overlaps most (greedily, one annotation per
  // type), so that matching regions look alike in the two panels; the others get colours after the types'.
  std::vector<int> colour(L, 0);
  if (!labels.empty()) {
    std::vector<std::vector<std::size_t>> n(L, std::vector<std::size_t>(R, 0));
    for (std::size_t s = 0; s < S; ++s)
      if (labels[s] >= 0) ++n[static_cast<std::size_t>(labels[s])][static_cast<std::size_t>(dominant[s])];
    std::vector<bool> type_used(R, false);
    for (std::size_t step = 0; step < std::min(L, R); ++step) {
      std::size_t bl = L, br = R, best = 0;
      for (std::size_t l = 0; l < L; ++l)
        for (std::size_t r = 0; r < R; ++r)
          if (colour[l] == 0 && !type_used[r] && (bl == L || n[l][r] > best)) {
            best = n[l][r];
            bl = l;
            br = r;
          }
      colour[bl] = static_cast<int>(br + 1);
      type_used[br] = true;
    }
    int next = static_cast<int>(R) + 1;
    for (int& c : colour)
      if (c == 0) c = next++;
  }
  std::vector<std::vector<double>> rows;
  for (std::size_t s = 0; s < S; ++s) {
    std::vector<double> row{
        sp.x[s], sp.y[s], static_cast<double>(dominant[s] + 1),
        labels.empty() || labels[s] < 0 ? NAN : static_cast<double>(colour[static_cast<std::size_t>(labels[s])])};
    for (std::size_t r = 0; r < R; ++r) row.push_back(A[s + S * r]);
    rows.push_back(row);
  }
  const bool annotated = !labels.empty();
  const std::size_t panels = R + 1 + (annotated ? 1 : 0);
  const std::size_t cols = std::min<std::size_t>(panels, 3), lines = (panels + cols - 1) / cols;
  const std::size_t colours = std::max<std::size_t>(R, R + (L > R ? L - R : 0));
  std::ostringstream p;
  p << gnuplot::datablock("spots", rows);
  p << "set multiplot layout " << lines << "," << cols << "\n"
    << "set size ratio -1\nunset key\nset xlabel 'x'\nset ylabel 'y'\nset yrange [*:*] reverse\n";
  p << "set palette rgbformulae 21,22,23\nset cbrange [0:1]\n";
  for (std::size_t r = 0; r < R; ++r)
    p << "set title " << gnuplot::quote("cell type " + std::to_string(r + 1) + ": proportion")
      << "\nplot $spots using 1:2:" << 5 + r << " with points pt 7 ps 1.5 lc palette\n";
  p << "set palette maxcolors " << colours
    << "\nset palette defined (0 'blue', 1 'cyan', 2 'green', 3 'orange', 4 'red', 5 'purple')\n"
    << "set cbrange [0.5:" << static_cast<double>(colours) + 0.5 << "]\nset cbtics 1\n"
    << "set title 'dominant cell type'\nplot $spots using 1:2:3 with points pt 7 ps 1.5 lc palette\n";
  if (annotated) {
    std::ostringstream legend;
    for (std::size_t l = 0; l < L; ++l) legend << (l ? ", " : "") << colour[l] << ": " << label_names[l];
    p << "set title " << gnuplot::quote("annotation (colour: best-matching type)") << "\n"
      << "set label 1 " << gnuplot::quote(legend.str()) << " at graph -0.1, graph -0.45 font ',8'\n"
      << "plot $spots using 1:2:4 with points pt 7 ps 1.5 lc palette\nunset label 1\n";
  }
  p << "unset multiplot\n";
  const std::string why = gnuplot::make_image(dir + "/maps." + format, static_cast<int>(380 * cols),
                                              static_cast<int>(340 * lines), p.str(), true);
  return why.empty() ? "" : "maps not drawn: " + why;
}

} // namespace

RunConfig default_config() {
  RunConfig c;
  c.factor.constraint_A = "simplex_rows";
  c.factor.constraint_B = "nonnegative";
  c.factor.solver.maxiter = 3000;
  c.factor.solver.tol = {{Stat::rel_change, 1e-6}};
  return c;
}

RunSummary run(const RunConfig& cfg, const Comm& comm, const std::function<void(const std::string&)>& note) {
  RunSummary sum;
  const auto t0 = Clock::now();
  auto say = [&](const std::string& s) {
    if (note) note(s);
  };
  if (cfg.counts.empty()) throw ConfigError("no counts given: unmix spatial COUNTS.mtx --spots SPOTS.csv --out DIR");
  if (cfg.spots.empty()) throw ConfigError("no spots table given: use --spots SPOTS.csv (coordinates of each column)");
  if (cfg.out_dir.empty()) throw ConfigError("no output folder given: use --out DIR");
  if (cfg.plot_format != "png" && cfg.plot_format != "svg" && cfg.plot_format != "none")
    throw ConfigError("--plots '" + cfg.plot_format + "': use png, svg or none");
  if (cfg.rank == 0 && cfg.max_rank < 2) throw ConfigError("--max-rank must be at least 2 to estimate the rank");
  apps::parse_factor_spec(cfg.factor.constraint_A, "A");
  apps::parse_factor_spec(cfg.factor.constraint_B, "B");
  apps::AtomicDir out(comm, cfg.out_dir, cfg.overwrite);

  check_prepare_options(cfg.prepare);
  Spots sp;
  std::vector<std::string> gene_names;
  std::unique_ptr<MatrixMarketReader> reader;
  collective_try(comm, [&] {
    if (comm.rank() != 0) return;
    reader = std::make_unique<MatrixMarketReader>(cfg.counts);
    const std::vector<std::string> barcodes =
        cfg.barcodes.empty() ? std::vector<std::string>{} : read_barcodes(cfg.barcodes);
    if (!barcodes.empty() && barcodes.size() != reader->cols())
      throw DataError("'" + cfg.barcodes + "' names " + std::to_string(barcodes.size()) +
                      " barcodes; the counts have " + std::to_string(reader->cols()) + " columns");
    sp = read_spots(cfg.spots, cfg.x_column, cfg.y_column, cfg.label_column, cfg.id_column, cfg.index_column, barcodes);
    if (sp.x.size() != reader->cols())
      throw DataError("'" + cfg.spots + "' describes " + std::to_string(sp.x.size()) + " spots; the counts have " +
                      std::to_string(reader->cols()) + " columns");
    gene_names = cfg.genes.empty() ? std::vector<std::string>{} : read_gene_names(cfg.genes, reader->rows());
    if (gene_names.empty())
      for (std::size_t g = 0; g < reader->rows(); ++g) gene_names.push_back("gene_" + std::to_string(g + 1));
  });
  // Process 0 reads the counts a piece at a time; no process holds the whole matrix.
  auto last = Clock::now();
  const SpreadCounts prep = read_spread(
      reader.get(), cfg.prepare, cfg.factor, comm, std::size_t{1} << 20, [&](std::size_t done, std::size_t all) {
        if (done == all || since(last) < 10) return;
        last = Clock::now();
        say("reading the counts: " + std::to_string(done) + " of " + std::to_string(all) + " lines (" +
            fmt("%.0f", 100.0 * static_cast<double>(done) / static_cast<double>(all)) + " %)");
      });
  reader.reset();
  const DistTensor<double>& Yd = prep.Y;
  sum.spots = Yd.global_shape()[0];
  sum.genes_used = Yd.global_shape()[1];
  sum.genes_total = prep.genes_total;
  say("read " + std::to_string(sum.genes_total) + " genes x " + std::to_string(sum.spots) + " spots; factorizing " +
      std::to_string(sum.spots) + " spots x " + std::to_string(sum.genes_used) + " genes (the most variable)");

  if (cfg.rank > 0) {
    sum.fit = apps::factorize_distributed(Yd, cfg.rank, cfg.factor, "spots");
  } else {
    apps::FitSettings quick = cfg.factor;
    quick.solver.maxiter = std::min(quick.solver.maxiter, cfg.sweep_maxiter);
    const std::size_t rmax = std::min(cfg.max_rank, std::min(sum.spots, sum.genes_used));
    sum.sweep = apps::sweep_ranks(Yd, rmax, quick, "spots", [&](std::size_t r, double e) {
      say("rank " + std::to_string(r) + ": relative error " + fmt("%.5f", e));
    });
    say("chose rank " + std::to_string(sum.sweep->chosen) + " (maximum curvature of the relative error)");
    if (sum.sweep->chosen == 1)
      sum.warnings.push_back("the error curve bends most at rank 1, i.e. it has no clear bend: one cell type explains "
                             "the sections as well as several do; give --rank R (rank_sweep.csv has the curve)");
    sum.fit = apps::factorize_distributed(Yd, sum.sweep->chosen, cfg.factor, "spots");
  }
  const std::size_t R = sum.fit.rank, S = sum.spots, G = sum.genes_used;
  say("rank " + std::to_string(R) + ": relative error " + fmt("%.5f", sum.fit.result.stats.back().rel_error) +
      " after " + std::to_string(sum.fit.result.iterations) + " iterations (" + sum.fit.result.stop_reason + ")");
  sum.dominant = row_argmax(sum.fit.A, S, R);

  std::string plot_warning;
  collective_try(comm, [&] {
    if (comm.rank() != 0) return;
    if (!sp.label.empty()) {
      sum.labels = encode_labels(sp.label, &sum.label_names);
      const auto annotated = std::count_if(sum.labels.begin(), sum.labels.end(), [](int l) { return l >= 0; });
      if (annotated < 2) {
        sum.warnings.push_back("column '" + cfg.label_column + "' annotates " + std::to_string(annotated) +
                               " spot(s) (the others are empty or NA): no agreement computed");
        sum.labels.clear();
        sum.label_names.clear();
      } else {
        sum.ari = adjusted_rand_index(sum.dominant, sum.labels);
      }
    }
    std::ostringstream pr;
    pr << "spot,x,y," << (sp.label.empty() ? "" : "label,") << "dominant";
    for (std::size_t r = 0; r < R; ++r) pr << ",type_" << r + 1;
    pr << "\n";
    for (std::size_t s = 0; s < S; ++s) {
      pr << csv::quote(sp.id[s]) << "," << fmt("%.10g", sp.x[s]) << "," << fmt("%.10g", sp.y[s]) << ","
         << (sp.label.empty() ? "" : csv::quote(sp.label[s]) + ",") << sum.dominant[s] + 1;
      for (std::size_t r = 0; r < R; ++r) pr << "," << fmt("%.6f", sum.fit.A[s + S * r]);
      pr << "\n";
    }
    apps::write_text(out.file("proportions.csv"), pr.str());
    // Profiles: per type the genes most specific to it, by B[r,g] times its share of the gene's total.
    std::ostringstream pf;
    pf << "type,rank_in_type,gene,weight,share\n";
    std::vector<double> share(R * G, 0.0); // each type's share of each gene's total weight
    for (std::size_t k = 0; k < G; ++k) {
      double total = 0;
      for (std::size_t q = 0; q < R; ++q) total += sum.fit.B[q + R * k];
      for (std::size_t q = 0; q < R; ++q) share[q + R * k] = total > 0 ? sum.fit.B[q + R * k] / total : 0;
    }
    for (std::size_t r = 0; r < R; ++r) {
      std::vector<std::pair<double, std::size_t>> score;
      for (std::size_t k = 0; k < G; ++k) score.emplace_back(sum.fit.B[r + R * k] * share[r + R * k], k);
      std::stable_sort(score.begin(), score.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
      for (std::size_t i = 0; i < std::min<std::size_t>(20, G); ++i) {
        const std::size_t k = score[i].second;
        pf << r + 1 << "," << i + 1 << "," << csv::quote(gene_names[prep.gene_index[k]]) << ","
           << fmt("%.6g", sum.fit.B[r + R * k]) << "," << fmt("%.4f", share[r + R * k]) << "\n";
      }
    }
    apps::write_text(out.file("profiles.csv"), pf.str());
    if (sum.sweep) {
      std::ostringstream rs;
      rs << "rank,rel_error\n";
      for (std::size_t r = 0; r < sum.sweep->errors.size(); ++r)
        rs << r + 1 << "," << fmt("%.8f", sum.sweep->errors[r]) << "\n";
      apps::write_text(out.file("rank_sweep.csv"), rs.str());
    }
    if (sum.ari) {
      std::ostringstream ag;
      ag << "label";
      for (std::size_t r = 0; r < R; ++r) ag << ",type_" << r + 1;
      ag << "\n";
      for (std::size_t l = 0; l < sum.label_names.size(); ++l) {
        ag << csv::quote(sum.label_names[l]);
        for (std::size_t r = 0; r < R; ++r) {
          std::size_t n = 0;
          for (std::size_t s = 0; s < S; ++s)
            n += sum.labels[s] == static_cast<int>(l) && sum.dominant[s] == static_cast<int>(r);
          ag << "," << n;
        }
        ag << "\n";
      }
      apps::write_text(out.file("agreement.csv"), ag.str());
    }
  });
  {
    h5::File f = h5::File::create(comm, out.file("results.h5"));
    std::vector<double> A(S * R), B(R * G);
    for (std::size_t s = 0; s < S; ++s)
      for (std::size_t r = 0; r < R; ++r) A[s * R + r] = sum.fit.A[s + S * r];
    for (std::size_t r = 0; r < R; ++r)
      for (std::size_t k = 0; k < G; ++k) B[r * G + k] = sum.fit.B[r + R * k];
    f.write_replicated<double>("A", {S, R}, A);
    f.write_replicated<double>("B", {R, G}, B);
    std::vector<double> gene_rows(G);
    for (std::size_t k = 0; k < G; ++k) gene_rows[k] = static_cast<double>(prep.gene_index[k] + 1);
    f.write_replicated<double>("gene_row", {G}, gene_rows);
    std::vector<std::string> names(G);
    if (comm.rank() == 0)
      for (std::size_t k = 0; k < G; ++k) names[k] = gene_names[prep.gene_index[k]];
    apps::write_strings(f, "genes", names);
    if (sum.sweep) f.write_replicated<double>("rank_errors", {sum.sweep->errors.size()}, sum.sweep->errors);
    apps::write_fit_record(f, sum.fit, cfg.factor, comm, cfg.options_text);
    f.attr("counts", cfg.counts);
    double ari = comm.rank() == 0 && sum.ari ? *sum.ari : NAN;
    comm.bcast(std::span<double>(&ari, 1), 0);
    if (!std::isnan(ari)) f.attr("adjusted_rand_index", ari);
  }
  collective_try(comm, [&] {
    if (comm.rank() != 0 || cfg.plot_format == "none") return;
    plot_warning = make_maps(out.tmp(), cfg.plot_format, sp, sum.fit.A, R, sum.dominant, sum.labels, sum.label_names);
  });
  if (!plot_warning.empty()) sum.warnings.push_back(out.as_final(plot_warning));
  out.commit();
  sum.seconds_total = comm.allreduce(since(t0), Op::max);
  return sum;
}

} // namespace unmix::spatial
