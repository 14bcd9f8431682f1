#!/bin/sh
# Data-parallel training throughput (a benchmark, not a test): kapprox
# train at the default model size (4 layers, width 256, context 128, batch
# 16) for STEPS steps on 1 and on 2 processes of one OpenMP thread each,
# printing each run's training tokens/s, the time its ranks spent combining
# gradients, and the speed-up of 2 processes over 1.
# usage: experiments/bench/bench_mpi.sh [build/kapprox] [STEPS (40)]
kx=${1:-build/kapprox}
steps=${2:-40}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for n in 1 2; do
  mpirun --oversubscribe --bind-to none -np $n "$kx" train --steps "$steps" --eval-every 1000 --no-final-eval \
    --quiet --out "$tmp/b$n.h5" >"$tmp/out$n.txt" 2>&1 || { cat "$tmp/out$n.txt"; exit 1; }
  line=$(grep '^data parallel:' "$tmp/out$n.txt")
  echo "$n: $line"
  tok=$(echo "$line" | sed -n 's/.*, \([0-9]*\) training tokens\/s.*/\1/p')
  eval "tok$n=$tok"
done
awk -v a="$tok1" -v b="$tok2" 'BEGIN { printf "speed-up of 2 processes over 1: %.2fx\n", b / a }'
