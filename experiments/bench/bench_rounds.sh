#!/bin/bash
# Interleaved benchmark rounds for the tables of docs/performance.md: the C
# benchmarks and their PyTorch peers take turns (C, PyTorch, C, ...), so a
# drift in the load of a shared machine hits both sides alike; every output
# file starts and ends with `uptime`.  Summarise with
# experiments/bench/bench_summary.py OUTDIR.  A benchmark, not a test.
#
# usage: experiments/bench/bench_rounds.sh OUTDIR FIRST LAST THREADS [BATCH]   (THREADS 1 or 2)
#   2: kapprox on 2 threads, PyTorch torch.set_num_threads(2), its BLAS
#      unset and (decoder kernel) OPENBLAS_NUM_THREADS=1
#   1: both sides on one thread
# BATCH: vectors per feature-map call on both sides (default 4096).
set -euo pipefail
if [ $# -lt 4 ] || [ $# -gt 5 ] || { [ "$4" != 1 ] && [ "$4" != 2 ]; }; then
  echo "usage: $0 OUTDIR FIRST LAST THREADS(1|2) [BATCH]" >&2
  exit 2
fi
out=$1 first=$2 last=$3 threads=$4 batch=${5:-4096}
cd "$(dirname "$0")/../.."
K=./build/kapprox
P="/usr/bin/python3 experiments/bench/bench_peer_torch.py"
[ -x "$K" ] || { echo "$0: error: $K is missing; build it with ninja -C build" >&2; exit 2; }
mkdir -p "$out"
run() { local file=$1; shift; { uptime; "$@"; uptime; } > "$out/$file" 2>&1; }
for i in $(seq "$first" "$last"); do
  if [ "$threads" = 2 ]; then
    run "cf$i.txt" $K bench-features --threads 2 --reps 5 --batch "$batch"
    run "tf$i.txt" $P --only features --reps 5 --batch "$batch"
    run "ca$i.txt" $K bench-attention --tokens 4096 --repeat 9
    run "ta$i.txt" $P --only attention,decoder --reps 9
    run "tb$i.txt" $P --only decoder --reps 9 --blas-threads 1
  else
    run "cf1t$i.txt" env OMP_NUM_THREADS=1 $K bench-features --threads 1 --reps 5 --batch "$batch"
    run "tf1t$i.txt" $P --only features,decoder --reps 5 --threads 1 --batch "$batch" --blas-threads 1
    run "ca1t$i.txt" env OMP_NUM_THREADS=1 $K bench-attention --tokens 4096 --repeat 9
  fi
done
