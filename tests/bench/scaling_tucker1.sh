#!/bin/bash
# Strong scaling of the Tucker-1 iteration (the size: I = 2000, M = 320000 as 2000 x 400 x 800,
# R = 10, float64), one line per process count from bench_tucker1, ranks bound to cores.
#   tests/bench/scaling_tucker1.sh BENCH_BINARY [PROCESS COUNTS...]     (default 1 2 4 8 16)
# Extra bench options through BENCH_ARGS, e.g. BENCH_ARGS="--precision float"; SHAPE and ITERS override
# the size (2000x400x800) and the iteration count (5). On the 16-core host without MPI
# (../shared/device/README.md): source .devbundle/env.sh && export -f mpirun && export _p, then run this
# script with .devbundle/bench_tucker1; set OPENBLAS_CORETYPE if the bench reports blas_core=Prescott.
# VARIANTS=1 adds, at the first and the last process count, runs with the tile products' other settings
# (no read-ahead during the first product, blocks of R up to 12, AVX2), labelled by a "variant:" line,
# so one session on the host can tell which setting suits it.
set -euo pipefail
bench=${1:?usage: scaling_tucker1.sh BENCH_BINARY [PROCESS COUNTS...]}
shift
counts=${*:-1 2 4 8 16}
echo "host: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')"
for p in $counts; do
  mpirun -np "$p" --bind-to core "$bench" --shape "${SHAPE:-2000x400x800}" --rank 10 --iters "${ITERS:-5}" ${BENCH_ARGS:-}
done
if [ "${VARIANTS:-0}" = 1 ]; then
  first=${counts%% *}
  last=${counts##* }
  for p in $first $last; do
    for v in "UNMIX_TILE_PREFETCH=2" "UNMIX_TILE_PREFETCH=0" "UNMIX_TILE_RB=12" "UNMIX_TILE_ISA=avx2"; do
      echo "variant: $v, $p processes"
      (export "${v?}"; mpirun -np "$p" --bind-to core "$bench" --shape "${SHAPE:-2000x400x800}" --rank 10 \
        --iters "${ITERS:-5}" ${BENCH_ARGS:-})
    done
  done
fi
