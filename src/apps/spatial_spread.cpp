// The counts of `unmix spatial`, read on process 0 a piece at a time and prepared distributed (read_spread).
#include <cstdlib>
#include <cstring>

#include <algorithm>
#include <new>
#include <numeric>
#include <type_traits>

#include "unmix/apps/spatial_pipeline.hpp"
#include "unmix/core/error.hpp"

namespace unmix::spatial {

namespace {

static_assert(std::is_trivially_copyable_v<CountEntry> && sizeof(CountEntry) == 16);

/// Count entries in one block from malloc: grown by realloc, which moves a large block by remapping its pages
/// (glibc: mremap) instead of copying it, so that growing never holds the old and the new array at once (a
/// vector's growth holds both while it copies).
class EntryArray {
public:
  EntryArray() = default;
  EntryArray(const EntryArray&) = delete;
  EntryArray& operator=(const EntryArray&) = delete;
  ~EntryArray() { std::free(p_); }

  std::size_t size() const { return n_; }
  std::span<CountEntry> span() { return {p_, n_}; }
  std::span<const CountEntry> span() const { return {p_, n_}; }
  /// Room for `n` entries more; returns where they go (their count is added).
  CountEntry* extend(std::size_t n) {
    if (n_ + n > cap_) {
      const std::size_t cap = std::max(n_ + n, cap_ + cap_ / 2);
      void* q = std::realloc(p_, cap * sizeof(CountEntry));
      if (!q) throw std::bad_alloc();
      p_ = static_cast<CountEntry*>(q);
      cap_ = cap;
    }
    n_ += n;
    return p_ + n_ - n;
  }
  void shrink(std::size_t n) { n_ = std::min(n, n_); }
  void clear() {
    std::free(p_);
    p_ = nullptr;
    n_ = cap_ = 0;
  }

private:
  CountEntry* p_ = nullptr;
  std::size_t n_ = 0, cap_ = 0;
};

std::span<const char> bytes(std::span<const CountEntry> e) {
  return {reinterpret_cast<const char*>(e.data()), e.size_bytes()};
}

std::vector<std::size_t> offsets_of(const std::vector<std::size_t>& count) {
  std::vector<std::size_t> at(count.size(), 0);
  std::partial_sum(count.begin(), count.end() - 1, at.begin() + 1);
  return at;
}

/// Reorders `e` in place so that the entries of group 0 come first, then those of group 1, ... (`group(entry)` in
/// 0 .. groups - 1; the order within a group is not kept); returns the size of each group.
template <class Group> std::vector<std::size_t> group_by(std::span<CountEntry> e, std::size_t groups, Group&& group) {
  std::vector<std::size_t> count(groups, 0);
  for (const CountEntry& x : e) ++count[static_cast<std::size_t>(group(x))];
  std::vector<std::size_t> next = offsets_of(count), end(groups);
  for (std::size_t b = 0; b < groups; ++b) end[b] = next[b] + count[b];
  for (std::size_t b = 0; b < groups; ++b)
    while (next[b] < end[b]) { // swap each entry into its group's next free place until this one's is full
      const auto d = static_cast<std::size_t>(group(e[next[b]]));
      if (d == b)
        ++next[b];
      else
        std::swap(e[next[b]], e[next[d]++]);
    }
  return count;
}

} // namespace

SpreadCounts read_spread(MatrixMarketReader* reader, const PrepareOptions& opt, const apps::FitSettings& factor,
                         const Comm& comm, std::size_t piece_lines,
                         const std::function<void(std::size_t, std::size_t)>& progress) {
  check_prepare_options(opt);
  const int P = comm.size(), me = comm.rank();
  const auto nP = static_cast<std::size_t>(P);
  std::size_t head[3] = {0, 0, 0};
  collective_try(comm, [&] {
    if (me != 0) return;
    if (!reader) throw Error("read_spread: process 0 has no counts to read");
    head[0] = reader->rows();
    head[1] = reader->cols();
    head[2] = reader->lines();
  });
  comm.bcast(std::span<std::size_t>(head, 3), 0);
  const std::size_t G = head[0], S = head[1], lines = head[2];
  constexpr std::size_t E = sizeof(CountEntry);
  const std::vector<std::size_t> none(nP, 0);

  // 1. Process 0 reads; each entry goes to the process of its gene's block, where its statistics are then whole.
  const BlockPartition by_gene{G, P};
  EntryArray mine;
  const std::size_t piece = std::max<std::size_t>(piece_lines, 1);
  for (std::size_t round = 0; round * piece < lines; ++round) {
    std::vector<CountEntry> send;
    std::vector<std::size_t> count(nP, 0);
    collective_try(comm, [&] {
      if (me != 0) return;
      Coo chunk;
      reader->read(chunk, piece);
      std::vector<int> to(chunk.value.size());
      for (std::size_t e = 0; e < to.size(); ++e)
        ++count[static_cast<std::size_t>(to[e] = by_gene.owner(chunk.row[e]))];
      std::vector<std::size_t> at = offsets_of(count);
      send.resize(to.size());
      for (std::size_t e = 0; e < to.size(); ++e)
        send[at[static_cast<std::size_t>(to[e])]++] = {chunk.col[e] * G + chunk.row[e], chunk.value[e]};
    });
    comm.bcast(std::span<std::size_t>(count), 0);
    std::vector<std::size_t> scount(nP, 0), rcount(nP, 0);
    if (me == 0)
      for (std::size_t q = 0; q < nP; ++q) scount[q] = count[q] * E;
    rcount[0] = count[static_cast<std::size_t>(me)] * E;
    CountEntry* into = mine.extend(count[static_cast<std::size_t>(me)]);
    comm.alltoallv(bytes(send), scount, offsets_of(scount), std::span<char>(reinterpret_cast<char*>(into), rcount[0]),
                   rcount, none);
    if (progress) progress(std::min((round + 1) * piece, lines), lines);
  }

  // 2. Library sizes (partial sums over each process's genes: exact for integer counts), their median, and the
  // kept genes: each gene's totals are whole on one process, so every process picks the same genes.
  std::vector<double> library_size(S, 0.0);
  double median = 0;
  std::vector<std::size_t> kept;
  collective_try(comm, [&] {
    mine.shrink(merge_counts(mine.span()));
    for (const CountEntry& e : mine.span()) library_size[e.key / G] += e.value;
  });
  comm.allreduce(std::span<double>(library_size), Op::sum);
  collective_try(comm, [&] { median = median_library_size(library_size); });
  const GeneTotals part = gene_totals(mine.span(), G, by_gene.offset(me), by_gene.size(me), library_size, median);
  const GeneTotals all{comm.allgatherv<double>(part.detected), comm.allgatherv<double>(part.sum),
                       comm.allgatherv<double>(part.sum2)};
  collective_try(comm, [&] { kept = most_variable_genes(all, S, opt); });
  const std::size_t K = kept.size();

  // 3. The kept genes' scaled values, keyed by spot and kept gene (s * K + k), sorted in place by the process
  // whose box in the fit's layout holds them, and sent there.
  std::vector<std::ptrdiff_t> slot(G, -1);
  for (std::size_t k = 0; k < K; ++k) slot[kept[k]] = static_cast<std::ptrdiff_t>(k);
  const BlockLayout layout = apps::fit_layout({S, K}, factor, comm);
  std::size_t n = 0;
  for (CountEntry e : mine.span()) {
    const std::ptrdiff_t k = slot[e.key % G];
    if (k < 0) continue;
    const std::size_t s = e.key / G;
    mine.span()[n++] = {s * K + static_cast<std::size_t>(k), e.value * median / library_size[s]};
  }
  mine.shrink(n);
  const BlockPartition &by_spot = layout.partition(0), &by_kept = layout.partition(1);
  const int spot_blocks = layout.grid().dim(0); // rank = spot block + spot blocks x gene block (ProcessGrid)
  std::vector<std::size_t> scount = group_by(mine.span(), nP, [&](const CountEntry& e) {
    return by_spot.owner(e.key / K) + spot_blocks * by_kept.owner(e.key % K);
  });
  for (std::size_t& c : scount) c *= E;
  std::vector<std::size_t> rcount(nP, 0);
  const std::vector<std::size_t> ones(nP, 1), step = offsets_of(ones);
  comm.alltoallv(std::span<const std::size_t>(scount), ones, step, std::span<std::size_t>(rcount), ones, step);
  EntryArray got;
  got.extend(std::accumulate(rcount.begin(), rcount.end(), std::size_t{0}) / E);
  comm.alltoallv(bytes(mine.span()), scount, offsets_of(scount),
                 std::span<char>(reinterpret_cast<char*>(got.span().data()), got.size() * E), rcount,
                 offsets_of(rcount));
  mine.clear();
  DistTensor<double> Y(comm, layout); // made only now: the entries above and the box are not held at once
  Tensor<double>& box = Y.local();
  const std::size_t rows = box.extent(0), cols = box.extent(1), s0 = Y.offset()[0], k0 = Y.offset()[1];
  for (const CountEntry& e : got.span()) box[e.key / K - s0 + rows * (e.key % K - k0)] = e.value;
  got.clear();

  // 4. Each kept gene's scale, over the processes holding its spots (one process on the default grid).
  const Comm& same_genes = Y.comms().sub(1u);
  const std::vector<double> scales =
      scale_genes(box.data(), rows, cols, S, opt.scale, [&](std::vector<double>& v, bool largest) {
        same_genes.allreduce(std::span<double>(v), largest ? Op::max : Op::sum);
      });
  const bool first_row = Y.comms().coords()[0] == 0; // one process per block of genes, in block order
  SpreadCounts out{std::move(Y), G, std::move(kept), {}};
  out.gene_scale = comm.allgatherv<double>(first_row ? std::span<const double>(scales) : std::span<const double>());
  return out;
}

} // namespace unmix::spatial
