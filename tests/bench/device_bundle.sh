#!/bin/bash
# Prepares issue 4's strong-scaling run on the 16-core host (../shared/device/README.md) so that one device
# call does it: builds the benchmarks in Release (build-dev/), packs them with the Debian runtime they need
# (.devbundle/, about 30 MB, kept out of git), and writes .devbundle/run.sh. Then, in a single call with
# carry [".devbundle"]:
#   bash .devbundle/run.sh | tee $OUT/scaling.txt
# run.sh prints the host, the table at 1 2 4 8 16 processes (tests/bench/scaling_tucker1.sh: bench_memory's
# read rates per count, then the solve timed three times per count, each time followed by the floors;
# about 3 minutes in all; MEMORY_BENCH= in the call's environment leaves the read rates out) and passes on
# SCALING_ENV (e.g. SCALING_ENV="VARIANTS=1") to the scaling script. The scaling script's own variables set
# in the call's environment reach it as well, values with spaces included, e.g.
#   COMPARE_AT="1 2 4 8 16" COMPARE_ROUNDS=2 COMPARE_LIST="default;pf=4;pf=11" bash .devbundle/run.sh
#   MEMORY_BENCH= SWEEPS=3 BENCH_ARGS="--repeat 1" bash .devbundle/run.sh   (three sweeps and their medians,
#   about 6.5 minutes)
#   tests/bench/device_bundle.sh            (from the project root)
set -euo pipefail
root=$(git rev-parse --show-toplevel)
cd "$root"
cmake -S . -B build-dev -DCMAKE_BUILD_TYPE=Release -DUNMIX_BUILD_TESTS=ON -DUNMIX_BUILD_BENCH=ON >/dev/null
cmake --build build-dev -j"$(nproc)" --target bench_tucker1 bench_memory >/dev/null
# The runtime of every shared library the two binaries need beyond the shared list (liblapacke, libtmglib).
../shared/device/prepare.sh build-dev/tests/bench_tucker1 build-dev/tests/bench_memory
(cd .devbundle/debs && apt-get download liblapacke libtmglib3 >/dev/null)
mkdir -p .devbundle/bench
cp tests/bench/scaling_tucker1.sh .devbundle/bench/
cat > .devbundle/run.sh <<'RUN'
#!/bin/bash
# Written by tests/bench/device_bundle.sh: issue 4's strong-scaling table on this host.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source .devbundle/env.sh
export -f mpirun
export _p OPENBLAS_NUM_THREADS=1
nproc; lscpu | grep -E 'Model name|Thread|Core|Socket|L2|L3' || true
env UNMIX_TILE_TUNE_LOG=1 BENCH_ARGS="${BENCH_ARGS:---repeat 3}" MEMORY_BENCH="${MEMORY_BENCH-.devbundle/bench_memory}" \
  ${SCALING_ENV:-} bash .devbundle/bench/scaling_tucker1.sh .devbundle/bench_tucker1 ${COUNTS:-1 2 4 8 16}
RUN
chmod +x .devbundle/run.sh
# Every library the binaries need must be in the bundle or the host's base system (libc, libm, libstdc++).
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for f in .devbundle/debs/*.deb; do dpkg -x "$f" "$tmp"; done
for b in bench_tucker1 bench_memory; do
  for lib in $(readelf -d "build-dev/tests/$b" | sed -n 's/.*Shared library: \[\(.*\)\]/\1/p'); do
    case "$lib" in libc.so.* | libm.so.* | libgcc_s.so.* | libstdc++.so.*) continue ;; esac
    find "$tmp" -name "$lib*" | grep -q . || { echo "missing from the bundle: $lib (needed by $b)" >&2; exit 1; }
  done
done
echo "ready: one device call with carry [\".devbundle\"]: bash .devbundle/run.sh | tee \$OUT/scaling.txt"
