#!/bin/sh
# kapprox sweep and merge: a sweep killed with SIGKILL part-way and rerun
# gives the files of an uninterrupted run; a torn last journal line is
# dropped; shards merged give the file of one run; the same command twice
# gives identical files; bad grids, shard specs and foreign journals are
# refused with a message and a non-zero exit.
# usage: sweep.sh /path/to/kapprox
kx="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"  # absolute: the test runs in a temporary directory
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cd "$dir" || exit 1
fail=0
note() { echo "FAIL: $*"; fail=1; }

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
  got=$(( $(grep -c . killed.csv.journal 2>/dev/null || echo 7) - 7 ))
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

# expect CODE NEEDLE -- ARGS...: exit code and a message naming the problem
expect() {
  code="$1"; needle="$2"; shift 3
  "$kx" "$@" >out.txt 2>err.txt
  got=$?
  if [ "$got" -ne "$code" ] || ! grep -q -- "$needle" err.txt; then
    echo "FAIL: kapprox $*: exit $got (want $code), stderr:"; cat err.txt
    echo "      (wanted a message containing '$needle')"
    fail=1
  fi
}
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
while [ "$tries" -lt 200 ] && [ "$(grep -c . unfinished.csv.journal 2>/dev/null || echo 0)" -lt 8 ]; do
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

for c in sweep merge; do
  "$kx" $c --help >help.txt 2>&1 || note "$c --help exits non-zero"
  grep -q "usage: kapprox $c" help.txt || note "$c --help lacks usage"
done
exit $fail
