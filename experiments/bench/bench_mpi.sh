#!/bin/sh
# Data-parallel training throughput (a benchmark, not a test): kapprox
# train at the default model size (4 layers, width 256, context 128, batch
# 16) for STEPS steps, one OpenMP thread per process:
#   1 process     mpirun -np 1
#   2 processes   mpirun -np 2 (each half of every batch, gradients combined)
#   the limit     two independent 1-process runs at once: what two
#                 single-thread jobs get out of this machine, whose cores
#                 share memory bandwidth and caches (and, on a virtual
#                 machine, a host); 2 processes cannot beat it
# and prints each run's training tokens/s and the time its ranks spent
# combining gradients, the speed-up of 2 processes over 1, the limit (the
# pair's summed tokens/s over 1 process's) and the speed-up as a fraction
# of the limit.  ROUNDS rounds interleave the three (so a load that comes
# and goes hits all alike); each figure is the best of the rounds.
# A rank waiting in a collective yields its core rather than polling
# (OMPI_MCA_mpi_yield_when_idle=1; set it to 0 to compare), and the ranks
# are not pinned (--bind-to none), as the independent runs are not.
# usage: experiments/bench/bench_mpi.sh [build/kapprox] [STEPS (40)] [ROUNDS (1)]
kx=${1:-build/kapprox}
steps=${2:-40}
rounds=${3:-1}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
export OMPI_MCA_mpi_yield_when_idle="${OMPI_MCA_mpi_yield_when_idle:-1}"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# run N TAG: mpirun -np N, its summary line in $tmp/TAG.txt
run() {
  mpirun --oversubscribe --bind-to none -np "$1" "$kx" train --steps "$steps" --eval-every 1000 --no-final-eval \
    --quiet --out "$tmp/$2.h5" >"$tmp/$2.out" 2>&1 || { echo "mpirun -np $1 failed:"; cat "$tmp/$2.out"; return 1; }
  grep '^data parallel:' "$tmp/$2.out" >"$tmp/$2.txt"
}
tokens() { sed -n 's/.*, \([0-9]*\) training tokens\/s.*/\1/p' "$tmp/$1.txt"; }
best() { awk -v a="$1" -v b="$2" 'BEGIN { print (a > b ? a : b) }'; }
tok1=0 tok2=0 pair=0
round=1
while [ "$round" -le "$rounds" ]; do
  run 1 one || exit 1
  run 2 two || exit 1
  run 1 pa & pid=$!
  run 1 pb || exit 1
  wait "$pid" || exit 1
  echo "round $round:"
  echo "  1 process:   $(cat "$tmp/one.txt")"
  echo "  2 processes: $(cat "$tmp/two.txt")"
  echo "  two independent 1-process runs at once: $(tokens pa) + $(tokens pb) training tokens/s"
  tok1=$(best "$tok1" "$(tokens one)")
  tok2=$(best "$tok2" "$(tokens two)")
  pair=$(best "$pair" "$(($(tokens pa) + $(tokens pb)))")
  round=$((round + 1))
done
awk -v a="$tok1" -v b="$tok2" -v p="$pair" -v r="$rounds" 'BEGIN {
  printf "best of %d round%s: 1 process %d, 2 processes %d, two independent runs %d training tokens/s\n", r, r == 1 ? "" : "s", a, b, p
  printf "speed-up of 2 processes over 1: %.2fx\n", b / a
  printf "the machine'"'"'s limit (two independent runs over one): %.2fx\n", p / a
  printf "2 processes reach %.0f %% of the limit\n", 100 * (b / a) / (p / a)
}'
