#!/bin/sh
# kapprox reproduce table2 --quick end to end on a small text: a
# well-formed table (Markdown, CSV, LaTeX) with the teacher, every variant
# and the scratch rows, and both figures; bad options refused; and a run
# killed with SIGKILL and started again redoes no finished run and ends
# with the uninterrupted table (timing columns aside: wall time and
# tokens/s are measurements, not results).
# usage: table2.sh /path/to/kapprox
. "$(dirname "$0")/cli_test.sh"
cd "$dir" || exit 1

sh "$here/tiny_text.sh" 1500 17 >t.txt
Q="--quick --text $dir/t.txt --quiet"

expect 2 "--budget must be > 0" -- reproduce table2 $Q --budget 0 --outdir bad
expect 2 "--budget must be > 0" -- reproduce table2 $Q --budget -1 --outdir bad
expect 2 "--seeds must be in" -- reproduce table2 $Q --seeds 0 --outdir bad
expect 2 "--kinds: 'nope'" -- reproduce table2 $Q --kinds nope --outdir bad
[ -e bad ] && note "a refused --kinds left an output folder"
"$kx" reproduce table2 --help | grep -q "usage: kapprox reproduce table2" || note "--help lacks usage"

# the uninterrupted run
"$kx" reproduce table2 $Q --outdir a 2>err.txt || { note "reproduce table2 --quick failed"; cat err.txt; }
kinds=$("$kx" train --help | sed -n 's/.*--attention KIND *attention kind (\(.*\); default softmax)/\1/p' | tr -d ' ' | tr ',' ' ')
[ -n "$kinds" ] || note "cannot read the attention kinds from train --help"
nconv=0; nscratch=0
for k in $kinds; do
  nscratch=$((nscratch + 1))
  [ "$k" = softmax ] && continue
  nconv=$((nconv + 1))
  grep -q "^| $k | converted |" a/table2.md || note "no converted row for $k"
  grep -q "^| $k | scratch |" a/table2.md || note "no scratch row for $k"
done
grep -q '^| teacher (softmax) | pre-trained | [0-9.]* | [0-9.]* | [0-9.]* | 0.0000 |' a/table2.md || note "teacher row: $(grep teacher a/table2.md)"
rows=$(grep -c '^| ' a/table2.md)
at=$(grep -c '| converted + AT |' a/table2.md)
[ "$rows" -eq $((2 + nconv + at + nscratch)) ] || note "Markdown has $rows rows, want header + teacher + $nconv + $at + $nscratch"
# every row has the 12 cells of the header
awk -F'|' '/^\| / && NF != 14 { bad = 1 } END { exit bad }' a/table2.md || note "a Markdown row has the wrong number of cells"
awk -F, 'NR == 1 { n = NF } NF != n { bad = 1 } END { exit bad || NR < 3 }' a/table2.csv || note "ragged CSV"
head -1 a/table2.csv | grep -q '^model,init,seeds,val_loss,val_loss_se,' || note "CSV header: $(head -1 a/table2.csv)"
grep -q 'end{tabular}' a/table2.tex && grep -q 'begin{tabular}{llrrrrrrrrrr}' a/table2.tex || note "LaTeX table malformed"
for f in fig2_curves.png fig2_curves.svg fig3_attention_maps.png fig3_attention_maps.svg; do
  [ -s "a/$f" ] || note "figure $f missing"
done
# the converted rows' validation loss is finite and below the scratch rows' (conversion helps)
awk -F'|' '/\| converted \|/ { if ($4 + 0 <= 0) bad = 1 } END { exit bad }' a/table2.md || note "a converted loss is not positive"

# an output directory holds one teacher: a full run refuses the --quick one
expect 1 "is not the default teacher" -- reproduce table2 --text "$dir/t.txt" --quiet --outdir a

# killed after a finished run (the second one under way), then resumed, against an uninterrupted
# run of the same variants (one kind, to keep the test short); both reuse
# the teacher of the first run
mkdir b c && cp a/teacher.h5 b/ && cp a/teacher.h5 c/
K="--kinds hedgehog --scratch-seeds 0"
"$kx" reproduce table2 $Q $K --outdir c 2>err.txt || { note "reproduce table2 $K failed"; cat err.txt; }
"$kx" reproduce table2 $Q $K --outdir b 2>/dev/null &
pid=$!
n=0
while [ "$(ls b/runs/*/*/result.txt 2>/dev/null | wc -l)" -lt 1 ] && [ $n -lt 1200 ]; do sleep 0.1; n=$((n + 1)); done
kill -9 $pid 2>/dev/null
wait $pid 2>/dev/null
done_before=$(ls b/runs/*/*/result.txt 2>/dev/null | wc -l)
[ "$done_before" -ge 1 ] || note "the run to kill did not finish a run in 120 s"
ls -l --time-style=+%s.%N b/runs/*/*/result.txt >before.txt
"$kx" reproduce table2 --quick --text "$dir/t.txt" $K --outdir b 2>resume.txt || { note "resumed run failed"; cat resume.txt; }
kept=$(grep -c "finished earlier, kept" resume.txt)
[ "$kept" -ge "$done_before" ] || note "the resumed run kept $kept finished runs, want $done_before"
ls -l --time-style=+%s.%N $(awk '{print $NF}' before.txt) | cmp -s - before.txt || note "a finished run was redone"
# equal tables apart from the timing columns (the last four of the CSV)
strip() { awk -F, -v OFS=, '{ NF -= 4; print }' "$1"; }
strip c/table2.csv >c.csv
strip b/table2.csv >b.csv
cmp -s c.csv b.csv || { note "the resumed table differs from the uninterrupted one"; diff c.csv b.csv; }

# a run that diverged (as the budget study records one: NaN results and diverged.txt) is a
# result: left out of its row's mean, named in the footnote, and the table is still written
run=$(ls -d c/runs/*/hedgehog-s0)
label=$(basename "$run")
loss=$(awk -F, -v k="${label%-s0}" 'NR > 1 && $1 == k && $2 == "converted" { print $4 }' c/table2.csv)
mkdir -p "${run%-s0}-s1"
echo "result nan nan nan nan nan 0.1 nan nan nan nan nan nan" >"${run%-s0}-s1/result.txt"
echo "diverged in fine-tuning: a test's stand-in" >"${run%-s0}-s1/diverged.txt"
"$kx" reproduce table2 $Q $K --seeds 2 --outdir c 2>err.txt || { note "Table 2 over a diverged run failed"; cat err.txt; }
grep -q "Diverged runs (results, left out of the means.*${label%-s0} (converted): 1 of 2 seeds" c/table2.md ||
  note "the footnote does not name the diverged run: $(tail -2 c/table2.md)"
loss2=$(awk -F, -v k="${label%-s0}" 'NR > 1 && $1 == k && $2 == "converted" { print $4 }' c/table2.csv)
[ -n "$loss" ] && [ "$loss" = "$loss2" ] || note "the diverged seed changed the mean: $loss, then $loss2"
exit $fail
