#!/bin/sh
# kapprox sweep and merge: a sweep killed with SIGKILL part-way and rerun
# gives the files of an uninterrupted run; a torn last journal line is
# dropped; shards merged give the file of one run; the same command twice
# gives identical files; bad grids, shard specs and foreign journals are
# refused with a message and a non-zero exit.
# usage: sweep.sh /path/to/kapprox
. "$(dirname "$0")/cli_test.sh"
cd "$dir" || exit 1

# a tiny grid: 2 inputs x 2 schemes x 3 m x 4 seeds = 48 points (prf and
# the second registered scheme, if this build has one)
all=$("$kx" sweep --help | sed -n 's/^ *all: //p')
second=$(echo "$all" | cut -d, -f2)
schemes=prf
[ -n "$second" ] && [ "$second" != "prf" ] && [ "$second" != "$all" ] && schemes="prf,$second"
G="--schemes $schemes --m 4,8,16 --seeds 0:3 --norms 0.5,1.5 --tokens 24 --dim 6 --quiet"

# shellcheck disable=SC2086
"$kx" sweep $G --out full.csv || note "uninterrupted sweep failed"
[ -s full.csv ] && [ -s full.summary.csv ] && [ -s full.slopes.csv ] || note "sweep wrote no results/summary/slopes"
n_points=$(( $(grep -c . full.csv.journal) - 7 ))
[ "$n_points" -ge 24 ] || note "journal holds $n_points records"

# same command again (resume of a complete sweep), and a fresh run: same bytes
cp full.csv again.csv.keep
"$kx" sweep $G --out full.csv || note "rerun of a complete sweep failed"
cmp -s full.csv again.csv.keep || note "rerunning a complete sweep changed its results"
"$kx" sweep $G --out fresh.csv || note "second sweep failed"
cmp -s full.csv fresh.csv || note "same seeds twice gave different results"
cmp -s full.summary.csv fresh.summary.csv || note "same seeds twice gave different summaries"
cmp -s full.slopes.csv fresh.slopes.csv || note "same seeds twice gave different slopes"

# the number of threads does not change a number
"$kx" sweep $G --threads 1 --out one-thread.csv || note "sweep --threads 1 failed"
cmp -s full.csv one-thread.csv || note "--threads 1 and the default gave different results"

# kill -9 part-way, then rerun: equal to the uninterrupted run
"$kx" sweep $G --out killed.csv --throttle-ms 100 &
pid=$!
tries=0
while [ "$tries" -lt 200 ]; do
  # grep -c prints 0 *and* fails on an empty journal, so no `|| echo`:
  # two numbers would make the arithmetic a syntax error that ends the shell.
  got=$(( $(cat killed.csv.journal 2>/dev/null | grep -c .) - 7 ))
  [ "$got" -ge 5 ] && break
  sleep 0.05
  tries=$((tries + 1))
done
kill -9 "$pid" 2>/dev/null
wait "$pid" 2>/dev/null
[ -e killed.csv ] && note "an interrupted sweep wrote final results"
got=$(( $(grep -c . killed.csv.journal) - 7 ))
[ "$got" -ge 1 ] && [ "$got" -lt "$n_points" ] || note "kill -9 did not land part-way ($got of $n_points points)"
# a torn last line, as a power loss mid-write leaves it
printf '3,synthetic:norm=0.5,-1,-1,softmax,prf,16,3,0.5,0.5,0.12' >>killed.csv.journal
"$kx" sweep $G --out killed.csv 2>err.txt || note "resuming after kill -9 failed: $(cat err.txt)"
sort full.csv >a.sorted
sort killed.csv >b.sorted
cmp -s a.sorted b.sorted || note "resumed sweep differs from an uninterrupted one"
cmp -s full.csv killed.csv || note "resumed sweep is not sorted like an uninterrupted one"
recs=$(( $(grep -c . killed.csv.journal) - 7 ))
[ "$recs" -eq "$n_points" ] || note "journal after resume holds $recs records, want $n_points (a point lost or counted twice)"

# SIGINT: stops cleanly with exit 130, resumable
"$kx" sweep $G --out int.csv --throttle-ms 100 2>/dev/null &
pid=$!
sleep 0.3
kill -INT "$pid"
wait "$pid"
code=$?
[ "$code" -eq 130 ] || [ "$code" -eq 0 ] || note "SIGINT gave exit $code (want 130)"
"$kx" sweep $G --out int.csv || note "resume after SIGINT failed"
cmp -s full.csv int.csv || note "resumed sweep after SIGINT differs"

# --dry-run computes nothing and says what the journal holds
"$kx" sweep $G --dry-run --out full.csv >dry.txt || note "--dry-run failed"
grep -q "= $n_points points; shard 1/1 holds $n_points" dry.txt || note "--dry-run miscounts: $(cat dry.txt)"
grep -q "$n_points records, 0 damaged" dry.txt || note "--dry-run misreads the journal: $(cat dry.txt)"
"$kx" sweep $G --dry-run --shard 2/3 --out full.csv | grep -q "ANOTHER grid or shard" || note "--dry-run misses a foreign journal"
"$kx" sweep $G --dry-run --out never.csv >/dev/null && [ ! -e never.csv.journal ] || note "--dry-run created a journal"

# shards: 3 shards merged equal one run, in any argument order
for i in 1 2 3; do "$kx" sweep $G --shard "$i/3" --out "part$i.csv" || note "shard $i/3 failed"; done
"$kx" merge --quiet merged.csv part3.csv part1.csv part2.csv || note "merge failed"
cmp -s full.csv merged.csv || note "merged shards differ from one run"
cmp -s full.summary.csv merged.summary.csv || note "merged summary differs from one run"
cmp -s full.slopes.csv merged.slopes.csv || note "merged slopes differ from one run"
# the merged journal is complete: the unsharded command finds nothing to do
"$kx" sweep $G --out merged.csv || note "sweep on a merged output failed"
cmp -s full.csv merged.csv || note "sweep on a merged output changed it"

# Q/K file input: heads of a file are inputs; shards of it merge too
"$kx" synth-qk --out qk.h5 --layers 2 --heads 2 --tokens 16 --dim 4 2>/dev/null || note "synth-qk failed"
F="--input qk.h5 --layers 1 --schemes prf --m 4,8 --seeds 0:1 --quiet"
"$kx" sweep $F --out file.csv || note "sweep of a Q/K file failed"
rows=$(( $(grep -c '^qk.h5,1,[01],softmax,prf,' file.csv) ))
[ "$rows" -eq 48 ] || note "file sweep: want 2 heads x 2 m x 2 seeds x 6 metrics = 48 rows, got $rows"
for i in 1 2; do "$kx" sweep $F --shard "$i/2" --out "fpart$i.csv" || note "file shard $i/2 failed"; done
"$kx" merge --quiet fmerged.csv fpart2.csv.journal fpart1.csv || note "merge of file shards failed"
cmp -s file.csv fmerged.csv || note "merged file shards differ from one run"

expect 1 "missing shard(s) 2 of 3" -- merge m.csv part1.csv part3.csv
expect 1 "given twice" -- merge m.csv part1.csv part2.csv part2.csv part3.csv
expect 1 "No such file" -- merge m.csv part1.csv nothere.csv
"$kx" sweep $G --m 4,8 --shard 1/3 --out other1.csv || note "other grid shard failed"
expect 1 "different grids" -- merge m.csv part1.csv part2.csv other1.csv
"$kx" sweep $G --shard 1/2 --out half1.csv || note "shard 1/2 failed"
expect 1 "different number of shards" -- merge m.csv part1.csv half1.csv
"$kx" sweep $G --shard 2/3 --out unfinished.csv --throttle-ms 1000 &
pid=$!
tries=0
while [ "$tries" -lt 200 ] && [ "$(cat unfinished.csv.journal 2>/dev/null | grep -c .)" -lt 8 ]; do
  sleep 0.05; tries=$((tries + 1))
done
kill -9 "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
expect 1 "unfinished" -- merge m.csv part1.csv unfinished.csv part3.csv

expect 2 "unknown scheme 'nope'" -- sweep $G --schemes prf,nope --out x.csv
expect 2 "empty list" -- sweep $G --schemes "" --out x.csv
expect 2 "empty grid" -- sweep --schemes prf --m 4 --seeds 0 --norms none --out x.csv
expect 2 "m must be in" -- sweep $G --m 0 --out x.csv
expect 2 "must be >= 1" -- sweep $G --m -4 --out x.csv
expect 2 "listed twice" -- sweep $G --m 4,4 --out x.csv
expect 2 "need 1 <= i <= N" -- sweep $G --shard 3/2 --out x.csv
expect 2 "need 1 <= i <= N" -- sweep $G --shard 0/0 --out x.csv
expect 2 "must be i/N" -- sweep $G --shard x --out x.csv
expect 2 "must be i/N" -- sweep $G --shard 1/ --out x.csv
expect 2 "only" -- sweep $G --shard 1/1000 --out x.csv
expect 2 "unknown or incomplete option" -- sweep --frobnicate
expect 2 "need OUT.csv" -- merge only.csv
# a results file of a different grid: refused, then --force starts over
expect 1 "different grid" -- sweep $G --seeds 0:2 --out full.csv
expect 1 "holds shard 1/1" -- sweep $G --shard 1/3 --out full.csv
"$kx" sweep $G --seeds 0:2 --out full.csv --force || note "--force did not start over"
echo "input,layer" >plain.csv
expect 1 "cannot be checked" -- sweep $G --out plain.csv
printf 'kapp' >torn.csv.journal   # killed while writing the header
"$kx" sweep $G --out torn.csv || note "a journal torn inside its header was not restarted"
cmp -s fresh.csv torn.csv || note "restart after a torn header differs"
echo "garbage" >foreign.csv.journal
expect 1 "not a sweep journal" -- sweep $G --out foreign.csv

expect 1 "has no layer 7" -- sweep $F --layers 7 --out x.csv
expect 1 "head 5 does not exist" -- sweep $F --heads 5 --out x.csv
expect 1 "no such file" -- sweep $F --input missing.h5 --out x.csv
# the same path with other bytes is another input: its journal is foreign
"$kx" synth-qk --out qk.h5 --layers 2 --heads 2 --tokens 16 --dim 4 --seed 9 2>/dev/null
expect 1 "first difference: files" -- sweep $F --out file.csv

# --- (full.csv now holds another grid: compare with fresh.csv, the same $G)
# the GNU parallel recipe of docs/kernel-experiments.md, exactly as written but for the grid
# (two shards of $G): shards write part1.csv, part1.summary.csv,
# part1.slopes.csv, ..., and the glob parts/part*.csv picks up all of them
mkdir -p parts results
if command -v parallel >/dev/null 2>&1; then
  # shellcheck disable=SC2086
  parallel -j 2 "$kx" sweep $G --threads 1 --quiet \
      --shard {}/2 --out parts/part{}.csv ::: $(seq 1 2) || note "GNU parallel recipe: a shard failed"
else
  # its exact shell equivalent
  for i in $(seq 1 2); do
    # shellcheck disable=SC2086
    "$kx" sweep $G --threads 1 --quiet --shard "$i/2" --out "parts/part$i.csv" &
  done
  wait
fi
[ -e parts/part1.summary.csv ] || note "the recipe's shards wrote no side files (the glob would not be tested)"
"$kx" merge results/sweep.csv parts/part*.csv 2>merge.txt || note "documented merge recipe failed: $(cat merge.txt)"
grep -q "skipping parts/part1.summary.csv" merge.txt || note "merge did not say it skipped a side file"
cmp -s fresh.csv results/sweep.csv || note "documented recipe: merged shards differ from one run"
cmp -s fresh.summary.csv results/sweep.summary.csv || note "documented recipe: merged summary differs"
cmp -s fresh.slopes.csv results/sweep.slopes.csv || note "documented recipe: merged slopes differ"

# --- merge OUT that is one of its shards: refused, the shard untouched
cp parts/part1.csv.journal keep.journal
expect 1 "also the shard" -- merge parts/part1.csv parts/part1.csv parts/part2.csv
cmp -s keep.journal parts/part1.csv.journal || note "merge onto a shard changed that shard's journal"

# --- damaged shard headers: refused with a message, quickly, never a signal
# (shard 0/0 was a division by zero, 1/0 an endless loop); a field edited
# without its checksum, and one edited with a matching checksum
damage() { # FILE SED-EXPRESSION
  sed "$2" "$1" >damaged.journal
}
for spec in 's#^shard 1/2$#shard 0/0#' 's#^shard 1/2$#shard 1/0#' 's#^shard 1/2$#shard 3/2#' \
            's#^points .*#points 0#' 's#^grid .*#grid 0123456789abcdef#' 's#^check .*#check zz#' \
            '/^spec /d'; do
  damage parts/part1.csv.journal "$spec"
  timeout 20 "$kx" merge m.csv damaged.journal parts/part2.csv >out.txt 2>err.txt
  code=$?
  [ "$code" -eq 1 ] && grep -q "damaged sweep journal header\|not a kapprox sweep journal" err.txt ||
    note "header damaged by '$spec': exit $code, $(cat err.txt)"
done
# impossible shard fields under a valid checksum: range checks, not only the CRC
body=$(sed -n '1,5p' parts/part1.csv.journal | sed 's#^shard 1/2$#shard 1/0#')
crc=$(printf '%s\n' "$body" | python3 -c 'import sys,zlib; print("%08x" % zlib.crc32(sys.stdin.buffer.read()))' 2>/dev/null)
if [ -n "$crc" ]; then
  { printf '%s\n' "$body"; echo "check $crc"; sed -n '/^records:$/,$p' parts/part1.csv.journal; } >crafted.journal
  timeout 20 "$kx" merge m.csv crafted.journal parts/part2.csv >out.txt 2>err.txt
  code=$?
  [ "$code" -eq 1 ] && grep -q "is impossible" err.txt || note "shard 1/0 with a valid checksum: exit $code, $(cat err.txt)"
fi

# --- a kill while merge replaces its outputs: simulated at the worst moment,
# after the commit marker and one rename; the next run rolls forward
"$kx" merge --quiet mix.csv parts/part1.csv parts/part2.csv || note "merge for the kill test failed"
for f in mix.csv mix.summary.csv mix.slopes.csv mix.csv.journal; do cp "$f" "$f.new"; done
printf 'mix.csv\nmix.summary.csv\nmix.slopes.csv\nmix.csv.journal\n' >mix.csv.commit
mv mix.csv.new mix.csv                     # renamed before the kill
echo stale >mix.summary.csv                # the others still old
echo stale >mix.slopes.csv
"$kx" sweep $G --out mix.csv || note "sweep after an interrupted merge failed"
[ ! -e mix.csv.commit ] && [ ! -e mix.summary.csv.new ] || note "interrupted merge: marker or new files left"
cmp -s fresh.summary.csv mix.summary.csv && cmp -s fresh.slopes.csv mix.slopes.csv ||
  note "interrupted merge: summary/slopes not rolled forward"
# killed before the marker: old files stay, the stale new ones go
echo partial >mix.summary.csv.new
"$kx" merge --quiet mix.csv parts/part1.csv parts/part2.csv || note "merge after a torn commit failed"
[ ! -e mix.summary.csv.new ] || note "a torn commit's new file was left behind"
cmp -s fresh.summary.csv mix.summary.csv || note "merge after a torn commit wrote another summary"

# --- one failed point never sinks a sweep: the weight fit refuses
# 2^24 calibration pairs x 16 features (too much memory) for that point only
P="--schemes prf,wpff-sobol --m 16,32 --seeds 0:1 --norms 1 --tokens 24 --dim 6 --quiet --calib-pairs 16777216"
# shellcheck disable=SC2086
"$kx" sweep $P --out failed.csv 2>err.txt
code=$?
[ "$code" -eq 3 ] || note "sweep with failing points: exit $code (want 3): $(cat err.txt)"
grep -q "4 point(s) failed" err.txt || note "sweep did not count its failed points: $(cat err.txt)"
[ "$(grep -c '^synthetic:norm=1,-1,-1,softmax,prf,.*[0-9],$' failed.csv)" -eq 24 ] ||
  note "the prf points of a sweep with failures are not all there"
[ "$(grep -c ',wpff-sobol,.*,nan,.*calibration pairs' failed.csv)" -eq 24 ] ||
  note "failed points are not NaN rows with their reason"
grep -q '^synthetic:norm=1,softmax,wpff-sobol,kernel_rel_fro,16,0,nan,.*,2$' failed.summary.csv ||
  note "summary does not say that 2 seeds failed"
grep -q '^synthetic:norm=1,softmax,prf,kernel_rel_fro,16,2,.*,0$' failed.summary.csv ||
  note "summary does not say the prf mean is over 2 seeds"
# shards with failed points merge, and the merge says so
for i in 1 2; do "$kx" sweep $P --shard "$i/2" --out "fail$i.csv" 2>/dev/null; done
"$kx" merge --quiet fmerge.csv fail1.csv fail2.csv 2>err.txt
code=$?
[ "$code" -eq 3 ] && cmp -s failed.csv fmerge.csv || note "merge of shards with failed points: exit $code"

# --- a journal of the previous format (version 1: no check line) resumes
# and is upgraded
sed -e '1s/ 2$/ 1/' -e '/^check /d' fresh.csv.journal >v1.csv.journal
"$kx" sweep $G --out v1.csv 2>err.txt || note "a version-1 journal did not resume: $(cat err.txt)"
cmp -s fresh.csv v1.csv || note "a version-1 journal gave other results"
head -1 v1.csv.journal | grep -q "journal 2$" && grep -q "^check " v1.csv.journal || note "version-1 header not upgraded"

# --- outputs that are not regular files are refused, never replaced
mkfifo fifo.csv
expect 1 "not a regular file" -- sweep $G --out fifo.csv
expect 1 "not a regular file" -- merge fifo.csv parts/part1.csv parts/part2.csv
[ -p fifo.csv ] && [ ! -e fifo.csv.journal ] || note "a FIFO given as --out was replaced or journalled"

# --- messages
expect 2 "empty file name" -- sweep $G --out ""
[ ! -e .journal ] || note "--out '' left a stray .journal"
expect 2 "does not exist" -- sweep $G --out no/such/dir/x.csv
expect 2 "must be >= 0" -- sweep $G --ridge -1 --out x.csv
# a full disk (here: a file size limit) on the final files names the reason
# (the journal is complete beforehand, so only the final files are written)
"$kx" sweep $G --out small.csv && rm small.csv small.summary.csv small.slopes.csv
dflt= # SIGXFSZ at its default action, as in h5_disk_full.sh
env --default-signal=XFSZ true 2>/dev/null && dflt="env --default-signal=XFSZ"
( ulimit -f 1; $dflt "$kx" sweep $G --out small.csv ) >/dev/null 2>err.txt
code=$?
[ "$code" -eq 1 ] && grep -q "writing '.*' failed: File too large" err.txt ||
  note "a write failure on the final files: exit $code, $(cat err.txt)"
[ ! -e small.summary.csv ] || note "a failed final write left a partial summary"

for c in sweep merge; do
  "$kx" $c --help >help.txt 2>&1 || note "$c --help exits non-zero"
  grep -q "usage: kapprox $c" help.txt || note "$c --help lacks usage"
done
exit $fail
