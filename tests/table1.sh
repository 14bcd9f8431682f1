#!/bin/sh
# kapprox reproduce table1 --quick end to end on a small text: a
# well-formed table (Markdown, CSV, LaTeX: a teacher row and one row per
# kind for each of the three sizes, finite numbers, standard-error columns)
# and the figures' data; bad options refused before anything is trained;
# a second run reuses every teacher, run and timing and writes the same
# files.
# usage: table1.sh /path/to/kapprox
. "$(dirname "$0")/cli_test.sh"
cd "$dir" || exit 1

sh "$here/tiny_text.sh" 1500 17 >t.txt
Q="--quick --text $dir/t.txt"

expect 2 "--budget must be > 0" -- reproduce table1 $Q --budget 0 --outdir bad
expect 2 "--seeds must be in" -- reproduce table1 $Q --seeds 0 --outdir bad
expect 2 "--kinds: 'nope'" -- reproduce table1 $Q --kinds nope --outdir bad
expect 2 "softmax is the teacher" -- reproduce table1 $Q --kinds softmax --outdir bad
expect 2 "--sizes: no --quick size has width 8" -- reproduce table1 $Q --sizes 8 --outdir bad
expect 2 "--length must be in" -- reproduce table1 $Q --length 1 --outdir bad
expect 2 "unknown option '--nope'" -- reproduce table1 $Q --nope
expect 2 "unexpected argument 'extra'" -- reproduce table1 $Q extra
expect 2 "--teacher: " -- reproduce table1 $Q --teacher "$dir/missing.h5" --outdir bad
[ -e bad ] && note "a refused command created its --outdir"
"$kx" reproduce table1 --help | grep -q "usage: kapprox reproduce table1" || note "--help lacks usage"

"$kx" reproduce table1 $Q --outdir a 2>first.txt || { note "reproduce table1 --quick failed"; cat first.txt; }
grep -q "teacher l2w64h4: pre-training" first.txt || note "no progress line for the third teacher"
grep -q '\[[0-9]*/9' first.txt || note "progress lacks done/total: $(tail -1 first.txt)"
# 3 sizes x (teacher + dijiang + dijiang-code) rows, 12 cells each
rows=$(grep -c '^| [0-9.]*k | ' a/table1.md)
[ "$rows" -eq 9 ] || note "Markdown has $rows data rows, want 9"
awk -F'|' '/^\| / && NF != 14 { bad = 1 } END { exit bad }' a/table1.md || note "a Markdown row has the wrong number of cells"
[ "$(grep -c '| teacher (softmax) |' a/table1.md)" -eq 3 ] || note "not one teacher row per size"
for k in dijiang dijiang-code; do
  [ "$(grep -c "| $k |" a/table1.md)" -eq 3 ] || note "not one $k row per size"
done
# CSV: rectangular, the header's columns, finite loss/gap/throughput in every row
awk -F, 'NR == 1 { n = NF } NF != n { bad = 1 } END { exit bad || NR != 10 }' a/table1.csv || note "ragged CSV or not 9 rows"
head -1 a/table1.csv | grep -q '^size,shape,model,seeds,params,pretrain_s,pretrain_s_se,finetune_s,finetune_s_se,val_loss,val_loss_se,' ||
  note "CSV header: $(head -1 a/table1.csv)"
awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) c[$i] = i; next }
  { for (k in want) { v = $c[want[k]]; if (v !~ /^-?[0-9.]+(e[-+]?[0-9]+)?$/) bad = 1 } }
  BEGIN { want[1] = "val_loss"; want[2] = "gap"; want[3] = "gen_tok_s"; want[4] = "speedup"; want[5] = "accuracy"; want[6] = "params" }
  END { exit bad }' a/table1.csv || note "a non-finite loss, gap, accuracy or throughput in the CSV"
grep -q 'begin{tabular}{lllrrrrrrrrr}' a/table1.tex && grep -q 'end{tabular}' a/table1.tex || note "LaTeX table malformed"
[ "$(grep -c midrule a/table1.tex)" -eq 3 ] || note "LaTeX: want a rule after the header and between sizes"
# figure data: a line per size, params then (gap, se, speed-up) per kind, all finite
awk 'NF != 7 { bad = 1 } { for (i = 1; i <= NF; i++) if ($i !~ /^-?[0-9.]+(e[-+]?[0-9]+)?$/) bad = 1 }
  END { exit bad || NR != 3 }' a/figdata/table1.txt || note "figure data malformed: $(cat a/figdata/table1.txt)"
for f in table1_gap.png table1_gap.svg table1_speedup.png table1_speedup.svg; do
  [ -s "a/$f" ] || note "figure $f missing"
done

# the rerun keeps every teacher, run and timing, and writes the same table
ls -l --time-style=+%s.%N a/*/teacher.h5 a/*/runs/*/*/result.txt a/*/inference/*/*.txt >before.txt
cp a/table1.csv first.csv
"$kx" reproduce table1 $Q --outdir a 2>second.txt || { note "rerun failed"; cat second.txt; }
[ "$(grep -c 'teacher .*: finished earlier, kept' second.txt)" -eq 3 ] || note "the rerun did not keep the 3 teachers"
[ "$(grep -c 'seed 0: finished earlier, kept' second.txt)" -eq 6 ] || note "the rerun did not keep the 6 runs"
grep -q 'pre-training step\|fine-tuning step\|generating' second.txt && note "the rerun trained or timed again"
ls -l --time-style=+%s.%N $(awk '{print $NF}' before.txt) | cmp -s - before.txt || note "a finished file was rewritten"
cmp -s first.csv a/table1.csv || { note "the rerun's table differs"; diff first.csv a/table1.csv; }

# a run that diverged (NaN results and diverged.txt, as keep_diverged records one) is a result:
# left out of its row's mean, named in the footnote, and the table is still written
run=$(ls -d a/l2w16h1/runs/*/dijiang-s0)
col() { awk -F, -v k="$2" -v c="$3" 'NR == 1 { for (i = 1; i <= NF; i++) h[$i] = i; next }
  $1 == k && $3 == "dijiang" { print $h[c]; exit }' "$1"; }
size=$(awk -F, 'NR == 2 { print $1 }' a/table1.csv)
loss=$(col a/table1.csv "$size" val_loss)
mkdir -p "${run%-s0}-s1"
echo "result nan nan nan nan nan 0.1 nan nan nan nan nan nan" >"${run%-s0}-s1/result.txt"
echo "diverged in fine-tuning: a test's stand-in" >"${run%-s0}-s1/diverged.txt"
"$kx" reproduce table1 $Q --seeds 2 --outdir a 2>div.txt || { note "Table 1 over a diverged run failed"; cat div.txt; }
grep -q "Diverged runs (results, left out of the means.*$size dijiang: 1 of 2 seeds" a/table1.md ||
  note "the footnote does not name the diverged run: $(tail -2 a/table1.md)"
[ -n "$loss" ] && [ "$loss" = "$(col a/table1.csv "$size" val_loss)" ] ||
  note "the diverged seed changed the mean: $loss, then $(col a/table1.csv "$size" val_loss)"
[ "$(col a/table1.csv "$size" seeds)" = 1 ] || note "the diverged seed counted in 'seeds': $(col a/table1.csv "$size" seeds)"

# --teacher of another shape than the sizes' is refused, nothing trained
expect 2 "not the shape of one of the sizes" -- reproduce table1 --text "$dir/t.txt" --teacher a/l2w16h1/teacher.h5 --outdir bad2
[ -e bad2 ] && note "a refused --teacher created its --outdir"
exit $fail
