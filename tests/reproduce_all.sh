#!/bin/sh
# kapprox reproduce all --quick end to end: every table and figure is
# written and well-formed (CSV rectangular, Markdown tables with rows,
# LaTeX tabulars, PNG/SVG with their magic), every link of index.md resolves,
# a finished run reruns nothing; and a run killed with SIGKILL inside a
# stage, then started again, ends with the same tables' and figures' data as
# the uninterrupted run (timing columns aside: they are measurements).
# usage: reproduce_all.sh /path/to/kapprox [--no-kill]
. "$(dirname "$0")/cli_test.sh"
cd "$dir" || exit 1

# a small text keeps Tables 1 and 2 independent of the KJV corpus
sh "$here/tiny_text.sh" 1500 17 >t.txt
Q="--quick --text $dir/t.txt --quiet"

expect 2 "unknown or incomplete option" -- reproduce all --nope
expect 2 "unexpected argument" -- reproduce all --quick extra
expect 2 "--text 'missing.txt' cannot be read" -- reproduce all --quick --text missing.txt
touch afile
expect 1 "cannot create the folder 'afile/x'" -- reproduce all $Q --outdir afile/x
"$kx" reproduce all --help | grep -q "usage: kapprox reproduce all" || note "--help lacks usage"
"$kx" reproduce all $Q --outdir dry --dry-run >dry.txt || note "--dry-run failed"
[ -e dry ] && note "--dry-run created its folder"
grep -q "kapprox reproduce table2 --quick" dry.txt || note "--dry-run does not list Table 2's command"

# ---- the uninterrupted run ----
start=$(date +%s)
"$kx" reproduce all $Q --outdir a 2>err.txt || { note "reproduce all --quick failed"; cat err.txt; }
echo "reproduce all --quick: $(($(date +%s) - start)) s"

magic() { head -c 8 "$1" | od -An -tx1 | tr -d ' \n'; }
check_file() { # well-formed by kind; $1 is relative to a/
  f_="a/$1"
  [ -s "$f_" ] || { note "$1 missing or empty"; return; }
  case "$1" in
  *.csv) awk -F, 'NR == 1 { n = NF } NF != n { bad = 1 } END { exit bad || NR < 2 }' "$f_" ||
    note "$1 is not a rectangular CSV with a header and rows" ;;
  *.md) [ "$(grep -c '^|' "$f_")" -ge 3 ] && grep -q '^|[-:|]*|$' "$f_" ||
    note "$1 has no Markdown table with rows" ;;
  *.tex) grep -q 'begin{tabular}' "$f_" && grep -q 'end{tabular}' "$f_" || note "$1 has no tabular" ;;
  *.png) [ "$(magic "$f_")" = 89504e470d0a1a0a ] || note "$1 is not a PNG" ;;
  *.svg) head -c 2000 "$f_" | grep -q '<svg' || note "$1 is not an SVG" ;;
  *.txt) [ "$(wc -l <"$f_")" -ge 2 ] || note "$1 has fewer than 2 lines" ;;
  *.h5) [ "$(magic "$f_")" = 894844460d0a1a0a ] || note "$1 is not an HDF5 file" ;;
  esac
}
expected="kernel/kernel.md kernel/kernel.tex compare/compare.csv compare/compare.txt
sweep/sweep.csv sweep/sweep.summary.csv sweep/sweep.slopes.csv sweep/slopes.txt
sweep-d4/sweep-d4.csv sweep-d4/sweep-d4.slopes.csv sweep-d4/slopes.txt
sweep-d4/figures/err-vs-m.png sweep-d4/figures/err-vs-m.svg features/features.csv features/features.txt
figures/err-vs-m-1.png figures/err-vs-m-2.png figures/err-vs-m-3.png figures/err-vs-m-4.png
figures/err-vs-m-1.svg figures/err-vs-norm.png figures/err-vs-norm.svg
attn-maps/maps.h5 figures/attn-maps.png figures/attn-maps.svg figures/points.png figures/points.svg
figure4/figure4.csv figure4/figure4.txt figure4/figure4.png figure4/figure4.svg
table2/table2.md table2/table2.csv table2/table2.tex
table2/fig2_curves.png table2/fig2_curves.svg table2/fig3_attention_maps.png table2/fig3_attention_maps.svg"
for f in $expected; do
  check_file "$f"
  grep -qF "]($f)" a/index.md || note "index.md does not link $f"
done
# Table 1 once the build has it: at least one table and one figure
if "$kx" reproduce table1 --help >/dev/null 2>&1; then
  ls a/table1/*.csv >/dev/null 2>&1 || note "no Table 1 CSV"
  ls a/table1/*.png >/dev/null 2>&1 || note "no Table 1 figure"
  for f in a/table1/*.md a/table1/*.csv a/table1/*.tex a/table1/*.png a/table1/*.svg; do
    [ -e "$f" ] && check_file "${f#a/}"
  done
fi
# every link of the index resolves to a file (relative to the index)
grep -o '](\([^)]*\))' a/index.md | sed 's/^](\(.*\))$/\1/' | sort -u >links.txt
[ "$(wc -l <links.txt)" -ge 30 ] || note "index.md has only $(wc -l <links.txt) links"
while read -r l; do [ -f "a/$l" ] || note "index.md links $l, which does not exist"; done <links.txt
grep -q '^- machine: [0-9]* cores online, ' a/index.md || note "index.md does not name the machine"
grep -q '^- toolkit: kapprox ' a/index.md || note "index.md does not give the version"
grep -q '^- made by: `kapprox reproduce all --quick' a/index.md || note "index.md does not give the command"
grep -q '| \*\*failed\*\* |' a/index.md && note "a stage failed: $(grep -A2 'failed' a/index.md)"

# a finished run reruns nothing
ls -l --time-style=+%s.%N a/stages >marks.txt
"$kx" reproduce all $Q --outdir a 2>err.txt || { note "the rerun of a finished run failed"; cat err.txt; }
ls -l --time-style=+%s.%N a/stages | cmp -s - marks.txt || note "the rerun of a finished run touched its markers"
[ "$(grep -c '^== ' a/logs/kernel.log)" -eq 2 ] || note "the rerun ran the kernel stage again"

# ---- killed inside a stage, then resumed ----
# The kill needs a second full run; under ASan+UBSan that doubles a long
# test for no new code path of the sanitised program (the parent only forks
# and waits), so the sanitised build passes --no-kill.
[ "${2:-}" = "--no-kill" ] && exit $fail
"$kx" reproduce all $Q --outdir b 2>/dev/null &
pid=$!
# the point: Table 2 has finished its first fine-tuning run (the stage is half-way)
n=0
while [ "$(ls b/table2/runs/*/*/result.txt 2>/dev/null | wc -l)" -lt 1 ] && [ $n -lt 3000 ]; do
  sleep 0.1
  n=$((n + 1))
done
kill -9 $pid 2>/dev/null
wait $pid 2>/dev/null
sleep 1 # the stage's command dies with its parent (PR_SET_PDEATHSIG)
[ -e b/stages/table2.done ] && note "the kill came after Table 2 had finished: not inside the stage"
[ -e b/stages/kernel.done ] || note "the kill came before the first stages had finished"
ls -l --time-style=+%s.%N b/table2/runs/*/*/result.txt >before.txt 2>/dev/null
"$kx" reproduce all $Q --outdir b 2>resume.txt || { note "the resumed run failed"; cat resume.txt; }
# nothing that had finished was redone: every marker and finished run of Table 2 untouched
ls -l --time-style=+%s.%N $(awk '{ print $NF }' before.txt) | cmp -s - before.txt ||
  note "a finished Table 2 run was redone"
for s in kernel compare sweep sweep-d4 features attn-maps points figure4; do
  [ "$(grep -c '^== ' b/logs/$s.log)" -eq "$(grep -c '^== ' a/logs/$s.log)" ] ||
    note "stage $s was run again after the kill"
done

# The same data: every CSV without its timing columns (names naming a time,
# a rate, a step count of a timed loop or a resident-set size), and every
# figure's data file and deterministic table.
strip_timing() {
  awk -F, -v OFS=, 'NR == 1 { for (i = 1; i <= NF; i++) drop[i] = $i ~ /(^|_)(s|ms|wall|time|seconds?|elapsed|tok|tokens|throughput|rss|steps|speedup|ratio|gflops)(_|$)/ }
    { out = ""; for (i = 1; i <= NF; i++) if (!drop[i]) out = out (out == "" ? "" : ",") $i; print out }' "$1"
}
compared=0
for f in $(cd a && find . -name '*.csv' ! -path './*/runs/*' | sort); do
  strip_timing "a/$f" >x.csv
  strip_timing "b/$f" >y.csv 2>/dev/null
  cmp -s x.csv y.csv || { note "$f differs after kill and resume"; diff x.csv y.csv | head -5; }
  compared=$((compared + 1))
done
for f in $(cd a && find . \( -path '*/data/*' -o -path '*/figdata/*' -o -path './attn-maps/text/*' \
    -o -name 'kernel.md' -o -name 'kernel.tex' -o -name 'compare.txt' -o -name 'slopes.txt' \) -type f | sort); do
  # gnuplot variable files name their data files by path: a/... against b/...
  sed 's#"[ab]/#"#g' "a/$f" >x.txt
  sed 's#"[ab]/#"#g' "b/$f" >y.txt 2>/dev/null
  if [ "$f" = ./table1/figdata/table1.txt ]; then
    # parameters, then per kind: gap, its standard error, speed-up (a timing)
    for g in x y; do
      awk '{ o = $1; for (i = 2; i <= NF; i++) if ((i - 1) % 3) o = o " " $i; print o }' $g.txt >$g.gap
      mv $g.gap $g.txt
    done
  fi
  cmp -s x.txt y.txt || note "$f differs after kill and resume"
  compared=$((compared + 1))
done
[ "$compared" -ge 40 ] || note "only $compared files compared"
exit $fail
