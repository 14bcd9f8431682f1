#!/bin/sh
# The evaluation engine's shortcuts change no number: each worker reuses its
# buffers from point to point, and kernel-error / attn-fidelity compute only
# their own metrics, so their rows must be byte for byte the corresponding
# rows of compare (which computes every metric), on one thread and on two;
# --profile only adds its report on stderr.
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
exit $fail
