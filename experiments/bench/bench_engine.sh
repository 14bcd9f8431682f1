#!/bin/sh
# The evaluation engine against the numpy/scipy script a researcher would
# write (bench_engine_peer.py), the same grid on one thread, in turns; a
# benchmark, not a test.
#   experiments/bench/bench_engine.sh build/kapprox [QK.h5] [ROUNDS]
# kernel: kernel-error --schemes prf,orf,pff-sobol,pff-halton --m 16:1024
#         --seeds 0:9 --dim 64 --tokens 256, on one thread and on two;
# attn:   attn-fidelity on every head of QK.h5 (dump-qk) with the same
#         schemes, m and seeds, on one thread and on two.
# BENCH_ENGINE_ONLY=attn skips the kernel grid.
# Each figure is the best of ROUNDS [3] of CPU seconds (user + system) of
# the whole kapprox process, against the peer's CPU seconds of its
# computation alone (imports and reading excluded); wall seconds beside.
# The load average is printed before every round: on a shared machine read
# the ratios of one round, not the seconds across runs.
set -eu
kx=$1
qk=${2:-}
rounds=${3:-3}
peer="$(dirname "$0")/bench_engine_peer.py"
grid="--schemes prf,orf,pff-sobol,pff-halton --m 16:1024 --seeds 0:9"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# cpu_wall THREADS CMD...: "CPU WALL" seconds of the command
cpu_wall() {
  t=$1
  shift
  OMP_NUM_THREADS=$t OPENBLAS_NUM_THREADS=1 /usr/bin/time -f "%U %S %e" -o "$tmp/t" "$@" >"$tmp/out" 2>/dev/null
  awk '{printf "%.3f %.3f", $1 + $2, $3}' "$tmp/t"
}

# peer_cpu ARGS...: the peer's CPU seconds, one thread
peer_cpu() {
  OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 /usr/bin/python3 "$peer" "$@" | awk '{print $3}'
}

best() { sort -n | head -1; }

run() { # NAME KAPPROX-ARGS -- PEER-ARGS
  name=$1
  shift
  kargs=""
  while [ "$1" != "--" ]; do kargs="$kargs $1"; shift; done
  shift
  : >"$tmp/one"; : >"$tmp/two"; : >"$tmp/peer"
  for r in $(seq 1 "$rounds"); do
    echo "  round $r, load average $(cut -d' ' -f1-3 /proc/loadavg)"
    # shellcheck disable=SC2086
    cpu_wall 1 "$kx" $kargs --quiet >>"$tmp/one"; echo >>"$tmp/one"
    # shellcheck disable=SC2086
    cpu_wall 2 "$kx" $kargs --quiet >>"$tmp/two"; echo >>"$tmp/two"
    peer_cpu "$@" >>"$tmp/peer"
    echo "    kapprox 1 thread $(tail -1 "$tmp/one") s (CPU wall), 2 threads $(tail -1 "$tmp/two") s, numpy $(tail -1 "$tmp/peer") s CPU"
  done
  one=$(best <"$tmp/one" | cut -d' ' -f1)
  one_wall=$(sort -n -k2 "$tmp/one" | head -1 | cut -d' ' -f2)
  two_wall=$(sort -n -k2 "$tmp/two" | head -1 | cut -d' ' -f2)
  np=$(best <"$tmp/peer")
  awk -v n="$name" -v one="$one" -v ow="$one_wall" -v tw="$two_wall" -v np="$np" 'BEGIN {
    printf "%s: kapprox one thread %.3f s CPU (%.3f s wall), numpy %.3f s CPU: %.2fx; two threads %.3f s wall: %.2fx the one-thread wall\n",
      n, one, ow, np, np / one, tw, ow / tw }'
}

if [ "${BENCH_ENGINE_ONLY:-}" != attn ]; then
echo "kernel-error $grid --dim 64 --tokens 256"
run kernel kernel-error $grid --dim 64 --tokens 256 -- kernel --dim 64 --tokens 256
fi
if [ -n "$qk" ]; then
  echo "attn-fidelity --input $qk $grid"
  run attn attn-fidelity --input "$qk" $grid -- attn --input "$qk"
fi
