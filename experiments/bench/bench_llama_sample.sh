#!/bin/sh
# kapprox sample on an imported llama2.c model against llama2.c's own run.c
# (docs/llama.md#speed-against-runc): the same model, greedy decoding of
# the same number of tokens from BOS, one thread, in turns; a benchmark,
# not a test.
#   experiments/bench/bench_llama_sample.sh build/kapprox RUN MODEL.bin [TOKENS] [ROUNDS]
# RUN: run.c's program, built by you from llama2.c's source (one thread:
# without OpenMP).  TOKENS [256]: positions of run.c's -n (BOS and
# TOKENS - 1 generated tokens; kapprox sample --length TOKENS - 1).
# ROUNDS [5].
# Each program's tokens/s is (TOKENS - 2) / (CPU seconds of a run with
# TOKENS positions - CPU seconds of a run with 2), each the least over
# ROUNDS of the CPU seconds (user + system, /usr/bin/time) of REPS [10]
# runs in a row divided by REPS: the loading (reading the file, kapprox's
# HDF5 reader and probe forward, run.c's mmap and buffers) cancels, and
# what is left is the decoding of TOKENS - 2 tokens, the per-token cost.
# CPU seconds rather than wall seconds: on a loaded machine they move less;
# REPS runs in a row put /usr/bin/time's 10 ms resolution at 1 % of
# 0.1 s.  The two programs run in turns; the load average is printed
# before every round.  run.c's own "achieved tok/s" (wall clock from its
# second token, one run) is printed beside.
set -eu
kx=$1
run=$2
model=$3
tokens=${4:-256}
rounds=${5:-5}
reps=${REPS:-10}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# cpu CMD...: CPU seconds (user + system) of REPS runs of the command in a
# row, divided by REPS; the last run's stderr in $tmp/err
cpu() {
  OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 /usr/bin/time -f "%U %S" -o "$tmp/t" \
    sh -c 'i=0; while [ $i -lt "$0" ]; do "$@" >/dev/null 2>"'"$tmp/err"'" || exit 1; i=$((i + 1)); done' "$reps" "$@"
  awk -v r="$reps" '{printf "%.4f", ($1 + $2) / r}' "$tmp/t"
}

"$kx" import --from "$model" --out "$tmp/m.h5" >/dev/null
# run.c needs a tokenizer of the model's vocabulary; pieces "[id]" so that
# its output is the token ids (the scores do not matter to decoding)
vocab=$(od -An -t d4 -j 20 -N 4 "$model" | tr -d ' ')
[ "$vocab" -lt 0 ] && vocab=$((-vocab))
python3 - "$tmp/ids.bin" "$vocab" <<'EOF'
import struct, sys
with open(sys.argv[1], "wb") as f:
    f.write(struct.pack("<i", 8))
    for i in range(int(sys.argv[2])):
        p = ("[%d]" % i).encode()
        f.write(struct.pack("<fi", 0.0, len(p)) + p)
EOF

# the same tokens: run.c's greedy ids against kapprox's
"$run" "$model" -z "$tmp/ids.bin" -t 0 -n "$tokens" -i "" 2>/dev/null | grep -o '\[[0-9]*\]' | tr -d '[]' >"$tmp/r.ids"
"$kx" sample --checkpoint "$tmp/m.h5" --temperature 0 --length $((tokens - 1)) | tr ' ,' '\n\n' | grep -v '^$' |
  tail -n +2 >"$tmp/k.ids"
same=$(head -n $((tokens - 1)) "$tmp/r.ids" | cmp -s - "$tmp/k.ids" && echo yes || echo no)
echo "model $model, $tokens positions, greedy from BOS; run.c and kapprox generate the same ids: $same"

min() { awk -v a="$1" -v b="$2" 'BEGIN { print (b == "" || a < b ? a : b) }'; }
rate() { awk -v a="$1" -v b="$2" -v n="$tokens" 'BEGIN { d = a - b; printf "%.0f", (d > 0 ? (n - 2) / d : 0) }'; }
r2m= rnm= k2m= knm= best_own=0
for i in $(seq "$rounds"); do
  load=$(cut -d' ' -f1 /proc/loadavg)
  r2=$(cpu "$run" "$model" -z "$tmp/ids.bin" -t 0 -n 2 -i "")
  rn=$(cpu "$run" "$model" -z "$tmp/ids.bin" -t 0 -n "$tokens" -i "")
  own=$(sed -n 's/achieved tok\/s: \([0-9.]*\).*/\1/p' "$tmp/err")
  k2=$(cpu "$kx" sample --checkpoint "$tmp/m.h5" --temperature 0 --length 1)
  kn=$(cpu "$kx" sample --checkpoint "$tmp/m.h5" --temperature 0 --length $((tokens - 1)))
  echo "round $i (load $load): run.c ${rn} s - ${r2} s CPU a run -> $(rate "$rn" "$r2") tok/s (its own: $own);" \
    "kapprox ${kn} s - ${k2} s -> $(rate "$kn" "$k2") tok/s"
  r2m=$(min "$r2" "$r2m") rnm=$(min "$rn" "$rnm") k2m=$(min "$k2" "$k2m") knm=$(min "$kn" "$knm")
  best_own=$(awk -v a="${own:-0}" -v b="$best_own" 'BEGIN { print (a > b ? a : b) }')
done
r=$(rate "$rnm" "$r2m") k=$(rate "$knm" "$k2m")
echo "least CPU of $rounds rounds: run.c $rnm - $r2m s -> $r tok/s (its own figure, best: $best_own);" \
  "kapprox sample $knm - $k2m s -> $k tok/s; kapprox/run.c $(awk -v k="$k" -v r="$r" 'BEGIN { printf "%.2f", (r > 0 ? k / r : 0) }')"
