#!/bin/sh
# kapprox plot: after a tiny sweep with two norms, every figure exists in
# PNG and SVG (when gnuplot is installed), the data files are written
# either way, and bad options are refused with a message.
# usage: plot.sh /path/to/kapprox
. "$(dirname "$0")/cli_test.sh"
cd "$dir" || exit 1

"$kx" sweep --schemes prf --m 4,8,16 --seeds 0:2 --norms 0.5,1 --tokens 16 --dim 4 --quiet --out s.csv ||
  note "sweep failed"
"$kx" plot --results s.csv --outdir figs --no-render --map-schemes prf --map-tokens 8 --map-dim 4 \
  --points-n 16 --points-dim 2 2>err.txt || note "plot --no-render failed: $(cat err.txt)"
for f in err-vs-m.vars err-vs-m-1.dat err-vs-norm.vars err-vs-norm-1.dat attn-maps.vars map-exact.txt \
         map-1.txt mapdiff-1.txt points.vars points-1.dat; do
  [ -s "figs/data/$f" ] || note "plot --no-render did not write data/$f"
done
if command -v gnuplot >/dev/null 2>&1; then
  "$kx" plot --results s.csv --outdir figs --map-schemes prf --map-tokens 8 --map-dim 4 \
    --points-n 16 --points-dim 2 2>err.txt || note "plot failed: $(cat err.txt)"
  for fig in err-vs-m err-vs-norm attn-maps points; do
    for ext in png svg; do
      [ -s "figs/$fig.$ext" ] || note "figs/$fig.$ext was not drawn"
    done
  done
  "$kx" plot --results s.csv --outdir all --input all --figures err-vs-m 2>err.txt || note "plot --input all failed"
  for k in 1 2; do [ -s "all/err-vs-m-$k.png" ] || note "--input all did not draw err-vs-m-$k.png"; done
  grep -q "err-vs-m-2: synthetic:norm=1" err.txt || note "--input all does not say which figure is which input"
  head -c 8 figs/err-vs-m.png | grep -q PNG || note "err-vs-m.png is not a PNG"
  grep -q "<svg" figs/err-vs-m.svg || note "err-vs-m.svg is not an SVG"
  grep -qi "warning\|error" err.txt && note "gnuplot complained: $(cat err.txt)"
  # a figure is published atomically: a failing script leaves the old
  # figure whole and no temporary file
  mkdir -p broken && cp "$here/../plots/"*.gp broken/
  # the output is opened (common.gp), then the script fails before drawing
  printf 'w = 100; h = 100\nload scriptdir."/common.gp"\nthis is not gnuplot\n' >broken/err_vs_m.gp
  cp figs/err-vs-m.png old.png
  "$kx" plot --results s.csv --outdir figs --figures err-vs-m --scripts broken 2>err.txt &&
    note "plot with a broken script succeeded"
  grep -q "gnuplot failed" err.txt || note "no message for the broken script: $(cat err.txt)"
  cmp -s figs/err-vs-m.png old.png || note "a failed gnuplot changed the old figure"
  ls figs | grep -q '\.tmp\.' && note "a failed gnuplot left a temporary file: $(ls figs)"
else
  echo "gnuplot not installed: figures not checked"
fi

expect 2 "need --results" -- plot --figures err-vs-m --no-render
expect 2 "unknown figure" -- plot --figures nope --no-render
expect 2 "unknown --metric" -- plot --results s.csv --metric nope --no-render
expect 2 "neither png nor svg" -- plot --formats gif --no-render
expect 2 "unknown scheme" -- plot --figures attn-maps --map-schemes nope --no-render
expect 1 "No such file" -- plot --results missing.csv --no-render --figures err-vs-m
echo "a,b" >bad.csv
expect 1 "not a kapprox results CSV" -- plot --results bad.csv --no-render --figures err-vs-m
expect 1 "at least two synthetic norms" -- plot --results s.csv --no-render --figures err-vs-norm --at-m 5
expect 2 "unknown or incomplete option" -- plot --frobnicate
"$kx" plot --help | grep -q "usage: kapprox plot" || note "plot --help lacks usage"
"$kx" attn-maps --help | grep -q "usage: kapprox attn-maps" || note "attn-maps --help lacks usage"
"$kx" attn-maps --out maps.h5 --schemes prf --tokens 8 --dim 4 --text . || note "attn-maps failed"
[ -s maps.h5 ] && [ -s exact.txt ] && [ -s prf.txt ] && [ -s diff-prf.txt ] || note "attn-maps wrote no maps"
expect 2 "--out FILE.h5 is required" -- attn-maps
exit $fail
