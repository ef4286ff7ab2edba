#include "unmix/dist/svd.hpp"

#include <algorithm>
#include <cmath>

#include "unmix/kernels/blas.hpp"

extern "C" {
int Csys2blacs_handle(MPI_Comm comm);
void Cfree_blacs_system_handle(int handle);
void Cblacs_gridinit(int* ctxt, const char* order, int nprow, int npcol);
void Cblacs_gridinfo(int ctxt, int* nprow, int* npcol, int* myrow, int* mycol);
void Cblacs_gridexit(int ctxt);
int numroc_(const int* n, const int* nb, const int* iproc, const int* isrcproc, const int* nprocs);
void descinit_(int* desc, const int* m, const int* n, const int* mb, const int* nb, const int* irsrc, const int* icsrc,
               const int* ictxt, const int* lld, int* info);
void pdsyev_(const char* jobz, const char* uplo, const int* n, double* a, const int* ia, const int* ja,
             const int* desca, double* w, double* z, const int* iz, const int* jz, const int* descz, double* work,
             const int* lwork, int* info);
}

namespace unmix {

namespace {

/// Global index of local index l in a block-cyclic distribution (source process 0).
int global_index(int l, int nb, int p, int nprocs) { return (l / nb) * nb * nprocs + p * nb + l % nb; }

} // namespace

std::vector<double> parallel_sym_eig(const Comm& comm, const std::vector<double>& S, std::size_t n,
                                     std::vector<double>* vectors, std::size_t block) {
  const int P = comm.size();
  int pr = static_cast<int>(std::sqrt(static_cast<double>(P)));
  while (P % pr != 0) --pr;
  const int pc = P / pr;
  const int N = static_cast<int>(n);
  const int nb =
      block > 0 ? static_cast<int>(block) : std::max(1, std::min(64, (N + std::max(pr, pc) - 1) / std::max(pr, pc)));
  const int handle = Csys2blacs_handle(comm.raw());
  int ctxt = handle;
  Cblacs_gridinit(&ctxt, "Row", pr, pc);
  int nprow = 0, npcol = 0, myrow = -1, mycol = -1;
  Cblacs_gridinfo(ctxt, &nprow, &npcol, &myrow, &mycol);
  const int zero = 0, one = 1;
  const int mloc = numroc_(&N, &nb, &myrow, &zero, &nprow), nloc = numroc_(&N, &nb, &mycol, &zero, &npcol);
  const int lld = std::max(1, mloc);
  int desc[9], info = 0;
  descinit_(desc, &N, &N, &nb, &nb, &zero, &zero, &ctxt, &lld, &info);
  // The replicated matrix is already everywhere: each process copies its block-cyclic pieces.
  std::vector<double> a(static_cast<std::size_t>(lld) * static_cast<std::size_t>(std::max(1, nloc)), 0.0),
      z(a.size(), 0.0), w(n, 0.0);
  for (int j = 0; j < nloc; ++j)
    for (int i = 0; i < mloc; ++i) {
      const int gi = global_index(i, nb, myrow, nprow), gj = global_index(j, nb, mycol, npcol);
      a[static_cast<std::size_t>(i + j * lld)] = S[static_cast<std::size_t>(gi) + static_cast<std::size_t>(gj) * n];
    }
  const char jobz = vectors ? 'V' : 'N', uplo = 'U';
  double wq = 0;
  int lwork = -1;
  pdsyev_(&jobz, &uplo, &N, a.data(), &one, &one, desc, w.data(), z.data(), &one, &one, desc, &wq, &lwork, &info);
  lwork = static_cast<int>(wq) + 1;
  std::vector<double> work(static_cast<std::size_t>(lwork));
  if (info == 0)
    pdsyev_(&jobz, &uplo, &N, a.data(), &one, &one, desc, w.data(), z.data(), &one, &one, desc, work.data(), &lwork,
            &info);
  Cblacs_gridexit(ctxt);
  Cfree_blacs_system_handle(handle);
  if (comm.allreduce(info != 0 ? 1 : 0, Op::max) != 0)
    throw Error("ScaLAPACK pdsyev failed (info " + std::to_string(info) + ") on a " + std::to_string(n) + " x " +
                std::to_string(n) + " matrix");
  // Every process has all eigenvalues (ascending); assemble the vectors by a sum of the local pieces.
  std::vector<double> vals(w.rbegin(), w.rend());
  if (vectors) {
    std::vector<double> Z(n * n, 0.0);
    for (int j = 0; j < nloc; ++j)
      for (int i = 0; i < mloc; ++i) {
        const int gi = global_index(i, nb, myrow, nprow), gj = global_index(j, nb, mycol, npcol);
        Z[static_cast<std::size_t>(gi) + static_cast<std::size_t>(N - 1 - gj) * n] =
            z[static_cast<std::size_t>(i + j * lld)];
      }
    comm.allreduce(std::span<double>(Z));
    *vectors = std::move(Z);
  }
  return vals;
}

template <class T> Spectrum unfolding_spectrum(const DistTensor<T>& Y) {
  const std::size_t I = Y.global_shape()[0];
  const Tensor<T>& loc = Y.local();
  const std::size_t Ip = loc.shape().empty() ? 0 : loc.shape()[0], i0 = Y.offset()[0];
  std::size_t Mp = 1;
  for (std::size_t m = 1; m < loc.order(); ++m) Mp *= loc.extent(m);
  // The full I x M_p slab of this process's column box: its rows, summed with those of the processes
  // that split the mixture mode (same column box).
  std::vector<double> slab(I * Mp, 0.0);
  for (std::size_t j = 0; j < Mp; ++j)
    for (std::size_t i = 0; i < Ip; ++i) slab[i0 + i + j * I] = static_cast<double>(loc[i + j * Ip]);
  const Comm& split_rows = Y.comms().sub(1u);
  split_rows.allreduce(std::span<double>(slab));
  // G = sum over column boxes of slab slab^T, each box counted once (by its first mixture block).
  std::vector<double> G(I * I, 0.0);
  if (split_rows.rank() == 0 && Mp > 0)
    blas::gemm<double>(blas::Trans::N, blas::Trans::T, I, I, Mp, 1.0, slab.data(), I, slab.data(), I, 0.0, G.data(), I);
  Y.comm().allreduce(std::span<double>(G));
  // Exact symmetry, so every process hands ScaLAPACK the same matrix.
  for (std::size_t j = 0; j < I; ++j)
    for (std::size_t i = j + 1; i < I; ++i) G[i + j * I] = G[j + i * I] = 0.5 * (G[i + j * I] + G[j + i * I]);
  Spectrum s;
  const auto ev = parallel_sym_eig(Y.comm(), G, I, &s.U);
  for (double e : ev) s.sigma.push_back(std::sqrt(std::max(e, 0.0)));
  return s;
}

template Spectrum unfolding_spectrum(const DistTensor<float>&);
template Spectrum unfolding_spectrum(const DistTensor<double>&);

} // namespace unmix
