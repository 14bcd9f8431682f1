#!/bin/sh
# kapprox sample through recurrent decoding, and kapprox bench-inference:
# bad input (characters outside the vocabulary, lengths beyond what the kind
# defines or beyond memory) ends with a message naming the problem and a
# non-zero exit; a softmax and a cosformer checkpoint sample reproducibly.
# usage: infer_cli.sh /path/to/kapprox
. "$(dirname "$0")/cli_test.sh"

"$here/tiny_text.sh" >"$dir/t.txt"
tiny="--text $dir/t.txt --layers 1 --heads 2 --width 16 --ctx 16 --batch 2 --quiet --no-final-eval --steps 2"
ok train $tiny --out "$dir/soft.h5"
ok train $tiny --attention cosformer --out "$dir/cos.h5"
ok train $tiny --attention performer --out "$dir/perf.h5"

expect 2 "not in the model's vocabulary" -- sample --checkpoint "$dir/soft.h5" --prompt "XYZ"
# cosformer's features depend on the position through ctx: at most 16 tokens.
expect 2 "defines only 16 positions" -- sample --checkpoint "$dir/cos.h5" --prompt "and" --length 14
ok sample --checkpoint "$dir/cos.h5" --prompt "and" --length 13
# softmax decodes past the training context (rotary angles exist for any position) ...
ok sample --checkpoint "$dir/soft.h5" --prompt "and the" --length 100 --seed 3
cp "$dir/out" "$dir/s1"
ok sample --checkpoint "$dir/soft.h5" --prompt "and the" --length 100 --seed 3
cmp -s "$dir/out" "$dir/s1" || { echo "FAIL: sample is not reproducible with a fixed seed"; fail=1; }
# ... but not past memory: refused before anything is allocated, also when
# the state is of fixed size and only the generated ids would not fit.
expect 2 "MiB of memory is available" -- sample --checkpoint "$dir/soft.h5" --length 1000000000000
expect 2 "MiB of token ids) but only" -- sample --checkpoint "$dir/perf.h5" --length 1000000000000

if "$kx" bench-inference --help >/dev/null 2>&1; then
  expect 2 "defines only 16 positions" -- bench-inference --checkpoint "$dir/cos.h5" --lengths 16,32 --out "$dir/b.csv"
  expect 2 "MiB of memory is available" -- bench-inference --checkpoint "$dir/soft.h5" --lengths 1000000000000 --softmax-max 1000000000000 --out "$dir/b.csv"
  [ ! -e "$dir/b.csv" ] || { echo "FAIL: a refused benchmark wrote its CSV"; fail=1; }
  expect 2 "MiB of token ids) but only" -- bench-inference --checkpoint "$dir/perf.h5" --lengths 1000000000000 --out "$dir/b.csv"
  expect 2 "--attention '' names no attention kind" -- bench-inference --attention "" --out "$dir/b.csv"
  grep -q "softmax-max" "$dir/err" && { echo "FAIL: an empty --attention blames --softmax-max"; fail=1; }
  expect 2 "nothing to measure" -- bench-inference --checkpoint "$dir/soft.h5" --lengths 64 --softmax-max 32 --out "$dir/b.csv"
  ok bench-inference --checkpoint "$dir/soft.h5" --lengths 16,64 --seconds 0.05 --out "$dir/b.csv" --no-figure
  [ "$(wc -l <"$dir/b.csv")" -eq 3 ] || { echo "FAIL: CSV has $(wc -l <"$dir/b.csv") lines, want 3"; cat "$dir/b.csv"; fail=1; }
  # a sliding-window hybrid is one more entry of the list (KIND+wN)
  expect 2 "a window of 0 is the kind alone" -- bench-inference --attention dijiang+w0 --out "$dir/c.csv"
  expect 2 "no normaliser" -- bench-inference --attention retnet+w4 --out "$dir/c.csv"
  expect 2 "unknown attention kind 'nope'" -- bench-inference --attention nope+w4 --out "$dir/c.csv"
  ok bench-inference --attention softmax,dijiang+w4 --layers 1 --heads 2 --width 64 --lengths 16,64 --seconds 0.05 \
    --out "$dir/c.csv" --no-figure
  grep -q "^dijiang+w4,64," "$dir/c.csv" || { echo "FAIL: no dijiang+w4 row"; cat "$dir/c.csv"; fail=1; }
  # --generate: Table 1's generation speed, a row per kind, softmax's speed-up exactly 1
  ok bench-inference --generate 64 --attention softmax,dijiang,cosformer --layers 1 --heads 2 --width 32 --out "$dir/g.csv"
  awk -F, 'NR == 1 { ok = $0 == "kind,generate,tokens_per_s,speedup" } NR > 1 && !($2 == 64 && $3 > 0 && $4 > 0) { ok = 0 }
    $1 == "softmax" && $4 != 1 { ok = 0 } END { exit !(ok && NR == 4) }' "$dir/g.csv" ||
    { echo "FAIL: bench-inference --generate CSV"; cat "$dir/g.csv"; fail=1; }
  expect 2 "defines at most 8192 positions" -- bench-inference --generate 9000 --attention cosformer --out "$dir/g2.csv"
  expect 2 "--generate must be" -- bench-inference --generate 0 --out "$dir/g2.csv"
  [ -e "$dir/g2.csv" ] && { echo "FAIL: a refused --generate wrote its CSV"; fail=1; }
fi
exit $fail
