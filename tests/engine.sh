#!/bin/sh
# The evaluation engine's shortcuts change no number: each worker reuses its
# buffers from point to point, and kernel-error / attn-fidelity compute only
# their own metrics, so their rows must be byte for byte the corresponding
# rows of compare (which computes every metric), on one thread and on two;
# --profile only adds its report on stderr.  Maps without fitted weights
# are built for the first head of a grid and shared by the others: a file's
# heads run together must give the rows of each head run alone.
. "$(dirname "$0")/cli_test.sh"
cd "$dir" || exit 1
G="--schemes prf,pff-halton,wpff-sobol,wdcf,uniform --m 8,32,16 --seeds 0:2 --tokens 70 --dim 8 --quiet"
for causal in --no-causal --causal; do
  OMP_NUM_THREADS=1 "$kx" compare $G $causal --out one.csv || note "compare $causal failed"
  OMP_NUM_THREADS=2 "$kx" compare $G $causal --out two.csv || note "compare $causal (2 threads) failed"
  cmp -s one.csv two.csv || note "compare $causal: one and two threads wrote different bytes"
  OMP_NUM_THREADS=2 "$kx" kernel-error $G $causal --out kernel.csv || note "kernel-error $causal failed"
  OMP_NUM_THREADS=2 "$kx" attn-fidelity $G $causal --profile --out attn.csv 2>profile.txt ||
    note "attn-fidelity $causal --profile failed"
  grep -E ',kernel_rel_(fro|mse),' one.csv >want-kernel
  grep -vE ',kernel_rel_(fro|mse),|^input,' one.csv >want-attn
  [ -s want-kernel ] && [ -s want-attn ] || note "compare $causal wrote no kernel or no attention rows"
  tail -n +2 kernel.csv | cmp -s - want-kernel || note "kernel-error $causal: rows differ from compare's"
  tail -n +2 attn.csv | cmp -s - want-attn || note "attn-fidelity $causal: rows differ from compare's"
  grep -q '^  metrics  *[0-9.]* s$' profile.txt && grep -q '% of one thread.s DGEMM' profile.txt ||
    note "attn-fidelity --profile: no profile on stderr: $(cat profile.txt)"
done
"$kx" synth-qk --out qk.h5 --layers 2 --heads 2 --tokens 40 --dim 8 --causal --seed 3 || note "synth-qk failed"
H="--input qk.h5 --schemes prf,orf,wpff-sobol,wdcf --m 8,16 --seeds 0:1 --quiet"
OMP_NUM_THREADS=2 "$kx" compare $H --out all.csv || note "compare on every head failed"
: >alone.csv
for l in 0 1; do
  for h in 0 1; do
    OMP_NUM_THREADS=2 "$kx" compare $H --layers $l --heads $h --out one-head.csv || note "compare on head $l/$h failed"
    tail -n +2 one-head.csv >>alone.csv
  done
done
tail -n +2 all.csv | cmp -s - alone.csv || note "compare: the heads run together differ from each head run alone"
# 4 heads x 4 schemes x 2 m x 2 seeds x 6 metrics
[ "$(wc -l <alone.csv)" -eq 384 ] || note "compare on the Q/K file wrote $(wc -l <alone.csv) rows"
exit $fail
