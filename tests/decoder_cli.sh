#!/bin/sh
# The decoder commands end bad input with "kapprox CMD: error: ..." naming the
# problem and a non-zero exit (never a crash), and a tiny train -> resume ->
# sample -> dump-qk round trip works from the command line.
# usage: decoder_cli.sh /path/to/kapprox
. "$(dirname "$0")/cli_test.sh"

"$here/tiny_text.sh" >"$dir/t.txt"
tiny="--text $dir/t.txt --layers 1 --heads 2 --width 16 --ctx 16 --batch 2 --quiet --no-final-eval"

expect 1 "--width (30) must be a multiple of --heads (4)" -- train $tiny --heads 4 --width 30 --steps 1 --out "$dir/x.h5"
expect 2 "--layers must be in" -- train --layers 0
expect 2 "--lr must be in (0, 10], got -1" -- train --lr -1
expect 2 "unknown option '--frobnicate'" -- train --frobnicate
expect 2 "needs a value" -- train --steps
expect 2 "unknown --attention 'linear'" -- train --attention linear
expect 1 "cannot open text file" -- train --text "$dir/missing.txt" --out "$dir/x.h5"
: >"$dir/empty.txt"
expect 1 "the text file '$dir/empty.txt' is empty" -- train --text "$dir/empty.txt" --out "$dir/x.h5"
printf 'aaaaaaaa' >"$dir/one.txt"
expect 1 "has a single distinct character" -- train --text "$dir/one.txt" --out "$dir/x.h5"
printf '\377\376 not utf8\n' >"$dir/bad.txt"
expect 1 "not valid UTF-8" -- train --text "$dir/bad.txt" --out "$dir/x.h5"
i=0
while [ $i -lt 25 ]; do echo "a short line" >>"$dir/short.txt"; i=$((i + 1)); done
expect 1 "validation text" -- train --text "$dir/short.txt" --ctx 16 --out "$dir/x.h5"
expect 1 "cannot create" -- train $tiny --steps 1 --out "$dir/no/such/dir/x.h5"

ok train $tiny --steps 6 --stop-after 3 --out "$dir/ck.h5" --log "$dir/log.csv"
[ "$(wc -l <"$dir/log.csv")" -eq 4 ] || { echo "FAIL: log has $(wc -l <"$dir/log.csv") lines, want 4"; fail=1; }
expect 1 "--layers 2 differs from the checkpoint's 1" -- train --text "$dir/t.txt" --resume "$dir/ck.h5" --layers 2 --out "$dir/ck2.h5"
ok train --text "$dir/t.txt" --resume "$dir/ck.h5" --out "$dir/ck2.h5" --quiet --no-final-eval
printf 'garbage' >"$dir/foreign.h5"
expect 1 "not an HDF5 file" -- train --text "$dir/t.txt" --resume "$dir/foreign.h5"
head -c 3000 "$dir/ck2.h5" >"$dir/trunc.h5"
expect 1 "trunc.h5" -- sample --checkpoint "$dir/trunc.h5"
expect 1 "cannot read checkpoint" -- sample --checkpoint "$dir/missing.h5"
expect 2 "not in the model's vocabulary" -- sample --checkpoint "$dir/ck2.h5" --prompt "XYZ"
expect 2 "--temperature must be >= 0" -- sample --checkpoint "$dir/ck2.h5" --temperature -1
ok sample --checkpoint "$dir/ck2.h5" --prompt "and the" --length 20 --seed 3
cp "$dir/out" "$dir/s1"
ok sample --checkpoint "$dir/ck2.h5" --prompt "and the" --length 20 --seed 3
cmp -s "$dir/out" "$dir/s1" || { echo "FAIL: sample is not reproducible with a fixed seed"; fail=1; }
expect 2 "--out FILE.h5 is required" -- dump-qk --checkpoint "$dir/ck2.h5"
expect 2 "exceeds the model's context" -- dump-qk --checkpoint "$dir/ck2.h5" --text "$dir/t.txt" --out "$dir/qk.h5" --tokens 99
ok dump-qk --checkpoint "$dir/ck2.h5" --text "$dir/t.txt" --out "$dir/qk.h5" --tokens 12
for c in train sample dump-qk; do
  "$kx" $c --help >"$dir/out" 2>&1 && grep -q "usage: kapprox $c" "$dir/out" || { echo "FAIL: $c --help"; fail=1; }
done
exit $fail
