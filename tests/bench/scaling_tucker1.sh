#!/bin/bash
# Strong scaling of the Tucker-1 iteration (the size: I = 2000, M = 320000 as 2000 x 400 x 800,
# R = 10, float64), one line per process count from bench_tucker1, ranks bound to cores, then a table.
#   tests/bench/scaling_tucker1.sh BENCH_BINARY [PROCESS COUNTS...]     (default 1 2 4 8 16)
# Extra bench options through BENCH_ARGS, e.g. BENCH_ARGS="--precision float"; SHAPE and ITERS override
# the size (2000x400x800) and the iteration count (5). On the 16-core host without MPI
# (../shared/device/README.md): source .devbundle/env.sh && export -f mpirun && export _p, then run this
# script with .devbundle/bench_tucker1 (the bundle's run.sh does). On a processor with AVX-512 an unset
# OPENBLAS_CORETYPE becomes SkylakeX: OpenBLAS 0.3.21 took the 16-core host's processor for a Prescott (a slow
# generic kernel), and the compute floor needs a real one (the bench warns and prints blas_narrower=1 when
# OpenBLAS runs narrower kernels than the processor has).
# COMPARE_AT="1 16" adds, at those counts, the bench's in-process comparison of the pass's settings
# (--compare, COMPARE_ROUNDS rounds, default 3): on a host whose speed drifts between runs it ranks
# them where separate runs cannot (about 80 s more at 1 process on the 16-core host, 10 s at 16);
# COMPARE_LIST names the settings (the bench's --compare-list, no spaces).
# KERNELS_AT="1 16" first runs, at those counts, a small problem (2000 x 400 x 50) for the cached-tile
# rate of each tile product per block of R beside the GEMM rate (--kernels; seconds each).
# SWEEPS=K repeats the sweep over the counts K times and adds a table of the medians (see below).
# MEMORY_BENCH=PATH (bench_memory's binary) first runs, at each count, how fast each core reads memory by
# access pattern (about 10 s a count).
# VARIANTS=1 adds, at the last and then the first process count (VARIANT_COUNTS overrides), runs with
# the tile products' other settings (read-ahead modes, tile sizes) and the default again, without the
# two-GEMM baseline and the floors (compare iter_ms with the default's), each labelled by a "variant:"
# line, so one session on the host can tell which setting suits it. VARIANT_LIST overrides the list
# (space-separated; a "+" joins several variables into one variant; "default" is the shipped setting).
set -euo pipefail
case "$(grep -m1 flags /proc/cpuinfo 2>/dev/null)" in *avx512f*) export OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-SkylakeX} ;; esac
bench=${1:?usage: scaling_tucker1.sh BENCH_BINARY [PROCESS COUNTS...]}
shift
counts=${*:-1 2 4 8 16}
echo "host: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')," \
  "L2 $(getconf LEVEL2_CACHE_SIZE 2>/dev/null || echo '?') bytes"
run() {
  local p=$1
  shift
  mpirun -np "$p" --bind-to core "$bench" --shape "${SHAPE:-2000x400x800}" --rank 10 --iters "${ITERS:-5}" \
    ${BENCH_ARGS:-} "$@"
}
if [ -n "${MEMORY_BENCH:-}" ]; then
  for p in $counts; do mpirun -np "$p" --bind-to core "$MEMORY_BENCH" --mb 1024; done
fi
for p in ${KERNELS_AT:-}; do
  mpirun -np "$p" --bind-to core "$bench" --shape 2000x400x50 --rank 10 --iters 3 --two-gemm 0 --kernels 1 \
    ${BENCH_ARGS:-} | grep kernels
done
lines=$(mktemp)
trap 'rm -f "$lines"' EXIT
for ((round = 1; round <= ${SWEEPS:-1}; ++round)); do
  for p in $counts; do
    extra=""
    for c in ${COMPARE_AT:-}; do
      [ "$round" = 1 ] && [ "$c" = "$p" ] &&
        extra="--compare ${COMPARE_ROUNDS:-3}${COMPARE_LIST:+ --compare-list $COMPARE_LIST}"
    done
    run "$p" $extra | tee -a "$lines"
  done
done
# The table the issue asks for, from the lines above.
# With --repeat N (BENCH_ARGS; the device bundle's default 3) the ratio is the median of N ratios, each
# of a solve and the floors measured right after it; the unpaired one divides the medians.
awk 'BEGIN { print "| procs | iter ms | memory floor ms | compute floor ms | ratio to floor | ratio unpaired | speed-up over two-GEMM |" }
  /^bench=tucker1 / {
    for (i = 1; i <= NF; ++i) { split($i, kv, "="); v[kv[1]] = kv[2] }
    printf "| %s | %s | %s | %s | %s (%s) | %s | %s |\n", v["procs"], v["iter_ms"], v["mem_floor_ms"],
      v["compute_floor_ms"], v["ratio_to_floor"], v["ratio_rounds"], v["ratio_unpaired"], v["speedup"]
  }' "$lines"
# SWEEPS=K runs the whole sweep over the counts K times, one after the other (the host's speed drifts over
# minutes, so that every count meets each state of the host), and then prints, per count, the medians
# over the K sweeps and every sweep's ratio.
if [ "${SWEEPS:-1}" -gt 1 ]; then
  awk 'function med(list,   n, a, i, j, t) {
      n = split(list, a, " ")
      for (i = 2; i <= n; ++i) for (j = i; j > 1 && a[j - 1] + 0 > a[j] + 0; --j) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
      return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
    }
    BEGIN { print "| procs | sweeps | median iter ms | median memory floor ms | median compute floor ms | median ratio | ratios |" }
    /^bench=tucker1 / {
      for (i = 1; i <= NF; ++i) { split($i, kv, "="); v[kv[1]] = kv[2] }
      p = v["procs"]
      if (!(p in n)) order[++count] = p
      n[p]++; it[p] = it[p] " " v["iter_ms"]; mf[p] = mf[p] " " v["mem_floor_ms"]
      cf[p] = cf[p] " " v["compute_floor_ms"]; ra[p] = ra[p] " " v["ratio_to_floor"]
    }
    END {
      for (k = 1; k <= count; ++k) {
        p = order[k]; r = ra[p]; sub(/^ /, "", r); gsub(/ /, ",", r)
        printf "| %s | %d | %.2f | %.2f | %.2f | %.2f | %s |\n", p, n[p], med(it[p]), med(mf[p]), med(cf[p]), med(ra[p]), r
      }
    }' "$lines"
fi
if [ "${VARIANTS:-0}" = 1 ]; then
  first=${counts%% *}
  last=${counts##* }
  list=${VARIANT_LIST:-"default UNMIX_TILE_PREFETCH=4 UNMIX_TILE_PREFETCH=2 UNMIX_TILE_PREFETCH=0 UNMIX_TILE_KIB=768
    UNMIX_TILE_PREFETCH=4+UNMIX_TILE_KIB=768 UNMIX_TILE_KIB=192 default"}
  for p in ${VARIANT_COUNTS:-$last $first}; do
    for v in $list; do
      echo "variant: $v, $p processes"
      (if [ "$v" != default ]; then for kv in ${v//+/ }; do export "${kv?}"; done; fi
        run "$p" --two-gemm 0 --floors 0)
    done
  done
fi
