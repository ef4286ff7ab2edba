// unmix spatial: cell types of a spatial transcriptomics section, as the sources its spots mix.
#include <cstdio>
#include <cstdlib>

#include "common.hpp"
#include "unmix/apps/spatial_pipeline.hpp"

namespace unmix::cli {

int cmd_spatial(const std::vector<std::string>& args, const Comm& world) {
  const spatial::RunConfig d = spatial::default_config();
  po::options_description in("Input");
  in.add_options()("spots", po::value<std::string>(),
                   "CSV with a header and one row per spot, in the order of the counts' columns: coordinates and "
                   "optionally an annotation")("x-column", po::value<std::string>()->default_value(d.x_column),
                                               "the spots' x coordinate column")(
      "y-column", po::value<std::string>()->default_value(d.y_column), "the spots' y coordinate column")(
      "label-column", po::value<std::string>(),
      "an annotation column (e.g. the histological layer): the dominant cell type of each spot is compared with "
      "it (adjusted Rand index, agreement.csv)")("id-column", po::value<std::string>(),
                                                 "the spot name column (default: the first other column)")(
      "index-column", po::value<std::string>(),
      "a column giving each row's 1-based column of the counts (default: rows in the counts' column order)")(
      "barcodes", po::value<std::string>(),
      "the counts' column names, one per line (plain or .gz, e.g. 10x barcodes.tsv.gz): the spots' rows are "
      "matched to the columns by their names (--id-column), in any order, rows of other spots left out (a 10x "
      "tissue_positions.csv: --id-column barcode --x-column pxl_col_in_fullres --y-column pxl_row_in_fullres)")(
      "genes", po::value<std::string>(),
      "gene names, one per line, in the order of the counts' rows (plain or .gz; a 10x "
      "features.tsv(.gz): the name column)");
  po::options_description pre("Preparation");
  pre.add_options()("top-genes", po::value<long>()->default_value(static_cast<long>(d.prepare.top_genes)),
                    "keep this many genes, those of largest variance of log1p(expression) after scaling every spot "
                    "to the median library size")(
      "min-spots", po::value<long>()->default_value(static_cast<long>(d.prepare.min_spots)),
      "consider only genes detected in at least this many spots")(
      "gene-scale", po::value<std::string>()->default_value(d.prepare.scale),
      "divide each kept gene by its largest value (max), its standard deviation (std) or nothing (none), so that "
      "highly expressed genes do not decide the fit alone");
  po::options_description model("Model");
  model.add_options()("rank,r", po::value<std::string>(),
                      "number of cell types, or auto: factorize at ranks 1..--max-rank and pick the maximum "
                      "curvature of the relative error (count data often show no clear bend: look at rank_sweep.csv)")(
      "max-rank", po::value<long>()->default_value(static_cast<long>(d.max_rank)),
      "largest rank tried by the estimate")(
      "sweep-maxiter", po::value<long>()->default_value(static_cast<long>(d.sweep_maxiter)),
      "iteration limit of each fit of the rank estimate (the chosen rank is refitted with --maxiter)")(
      "constraint,c", po::value<std::vector<std::string>>()->composing(),
      "constraints as A=SPEC (proportions, spots x types) or B=SPEC (profiles, types x genes); default "
      "A=simplex_rows, B=nonnegative (see unmix factorize --help)")(
      "seed", po::value<unsigned long long>()->default_value(1),
      "random seed")("starts", po::value<long>()->default_value(1), "random starts; the best fit is kept")(
      "maxiter", po::value<long>()->default_value(static_cast<long>(d.factor.solver.maxiter)),
      "iteration limit")("tol", po::value<std::vector<std::string>>()->composing(),
                         "stopping rule NAME=VALUE (repeatable; see unmix factorize --help). Default: rel_change=1e-6")(
      "grid", po::value<std::string>(), "process grid over spots x genes, e.g. 1x2");
  po::options_description out("Output");
  out.add_options()("out,o", po::value<std::string>(),
                    "output folder: proportions.csv, profiles.csv, results.h5, rank_sweep.csv (estimated rank), "
                    "agreement.csv (with --label-column), maps")("overwrite", po::bool_switch(),
                                                                 "replace an existing output folder")(
      "plots", po::value<std::string>()->default_value("png"), "plot format: png, svg or none");
  po::options_description desc;
  desc.add(in).add(pre).add(model).add(out);
  Parsed p = parse("spatial", "COUNTS.mtx[.gz] --spots SPOTS.csv --out DIR [options]   (COUNTS: genes x spots)", desc,
                   {"counts"}, args, world);
  const auto& vm = p.vm;
  spatial::RunConfig cfg = d;
  if (!vm.count("counts")) throw ConfigError("no counts given: unmix spatial COUNTS.mtx --spots SPOTS.csv --out DIR");
  if (!vm.count("spots")) throw ConfigError("no spots table given: use --spots SPOTS.csv");
  if (!vm.count("out")) throw ConfigError("no output folder given: use --out DIR");
  cfg.counts = vm["counts"].as<std::string>();
  cfg.spots = vm["spots"].as<std::string>();
  cfg.x_column = vm["x-column"].as<std::string>();
  cfg.y_column = vm["y-column"].as<std::string>();
  if (vm.count("label-column")) cfg.label_column = vm["label-column"].as<std::string>();
  if (vm.count("id-column")) cfg.id_column = vm["id-column"].as<std::string>();
  if (vm.count("index-column")) cfg.index_column = vm["index-column"].as<std::string>();
  if (vm.count("barcodes")) cfg.barcodes = vm["barcodes"].as<std::string>();
  if (vm.count("genes")) cfg.genes = vm["genes"].as<std::string>();

  cfg.prepare.top_genes = read_count(vm, "top-genes", 1);
  cfg.prepare.min_spots = read_count(vm, "min-spots", 1);
  cfg.prepare.scale = vm["gene-scale"].as<std::string>();
  if (!vm.count("rank")) throw ConfigError("give the number of cell types: --rank R (or --rank auto to estimate it)");
  const std::string rank = vm["rank"].as<std::string>();
  if (rank != "auto") {
    char* end = nullptr;
    const long r = std::strtol(rank.c_str(), &end, 10);
    if (rank.empty() || *end != '\0' || r < 1)
      throw ConfigError("--rank '" + rank + "': give a positive number or auto");
    cfg.rank = static_cast<std::size_t>(r);
  }
  cfg.max_rank = read_count(vm, "max-rank", 2);
  cfg.sweep_maxiter = read_count(vm, "sweep-maxiter", 1);
  read_fit_options(vm, cfg.factor);
  cfg.out_dir = vm["out"].as<std::string>();
  cfg.overwrite = vm["overwrite"].as<bool>();
  cfg.plot_format = vm["plots"].as<std::string>();
  cfg.options_text = options_text(vm);

  spatial::RunSummary s = spatial::run(cfg, world, [&](const std::string& line) { note(world, p.quiet, line); });
  for (const auto& w : s.warnings) warn(world, w);
  if (world.rank() == 0) {
    std::printf("%zu cell types%s from %zu spots x %zu genes; relative error %.5f; %.3f s on %d process%s\n",
                s.fit.rank, s.sweep ? " (estimated)" : "", s.spots, s.genes_used, s.fit.result.stats.back().rel_error,
                s.seconds_total, world.size(), world.size() > 1 ? "es" : "");
    if (s.ari)
      std::printf("dominant cell type vs '%s': adjusted Rand index %.3f (%zu annotations)\n", cfg.label_column.c_str(),
                  *s.ari, s.label_names.size());
    std::printf("wrote %s\n", cfg.out_dir.c_str());
    std::fflush(stdout);
  }
  return 0;
}

} // namespace unmix::cli
