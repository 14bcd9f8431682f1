#!/bin/sh
# Two kapprox reproduce table2 runs into one folder, started together and a
# few seconds apart: exactly one writes, the other is refused at once (exit
# 1 or 2) naming the first, and the folder ends as a single run leaves it
# (timing columns aside: they are measurements).  A run killed with SIGKILL
# leaves its claims (the folder's and the run's under way), and the next
# run takes them over and finishes the same table.  reproduce all shares
# the folder claim.
# usage: concurrent_table2.sh /path/to/kapprox
. "$(dirname "$0")/cli_test.sh"
cd "$dir" || exit 1

sh "$here/tiny_text.sh" 1500 17 >t.txt
Q="reproduce table2 --quick --text $dir/t.txt --quiet --no-figures --kinds hedgehog --scratch-seeds 0"

# the single run everything is compared with
"$kx" $Q --outdir ref 2>err.txt || { note "the reference run failed"; cat err.txt; exit 1; }

# same_as_single DIR: the table without its timing columns (the last four
# of the CSV), every curve and attention map, every result but its wall
# time; and no claim left behind
strip() { awk -F, -v OFS=, '{ NF -= 4; print }' "$1"; }
same_as_single() {
  strip ref/table2.csv >ref.csv
  strip "$1/table2.csv" >got.csv 2>/dev/null
  cmp -s ref.csv got.csv || { note "$1: the table differs from a single run's"; diff ref.csv got.csv; }
  (cd ref && find runs -name curve.txt -o -name map.txt | sort) >want.txt
  (cd "$1" && find runs -name curve.txt -o -name map.txt | sort) >have.txt
  cmp -s want.txt have.txt || note "$1: other curve and map files than a single run's: $(cat have.txt)"
  while read -r f; do
    cmp -s "ref/$f" "$1/$f" || note "$1: $f differs from a single run's"
  done <want.txt
  for r in ref/runs/*/*/result.txt; do
    g="$1/${r#ref/}"
    [ "$(cut -d' ' -f1-6 "$r")" = "$(cut -d' ' -f1-6 "$g" 2>/dev/null)" ] || note "$1: ${r#ref/} differs"
  done
  left=$(find "$1" -name .lock -o -name '*.lock' -o -name '*.tmp.*')
  [ -z "$left" ] || note "$1: left behind: $left"
}

# together
"$kx" $Q --outdir tog 2>ea.txt &
pa=$!
"$kx" $Q --outdir tog 2>eb.txt &
pb=$!
wait $pa; a=$?
wait $pb; b=$?
one_writer "two runs started together" $a $b ea.txt eb.txt tog
same_as_single tog

# a few seconds apart: the second starts once the first has written its
# teacher's first checkpoint, while the first is held (SIGSTOP) so that it
# surely still runs; reproduce all is refused by the same claim
"$kx" $Q --outdir apart 2>ea.txt &
pa=$!
n=0
while [ ! -e apart/teacher.h5 ] && kill -0 $pa 2>/dev/null && [ $n -lt 1200 ]; do sleep 0.1; n=$((n + 1)); done
kill -STOP $pa
sleep 2
"$kx" $Q --outdir apart 2>eb.txt
b=$?
"$kx" reproduce all --quick --quiet --outdir apart >/dev/null 2>ec.txt
c=$?
kill -CONT $pa
wait $pa; a=$?
one_writer "a run started while another runs" $a $b ea.txt eb.txt apart
[ $c -eq 1 ] && grep -q "'apart' is being written by kapprox process $pa " ec.txt ||
  note "reproduce all into a folder table2 writes: exit $c, $(cat ec.txt)"
[ ! -e apart/logs ] && [ ! -e apart/stages ] || note "a refused reproduce all wrote into the folder"
same_as_single apart

# killed with SIGKILL while a run is under way (the teacher reused), then
# run again: the stale claims are taken over
mkdir killed && cp ref/teacher.h5 killed/
"$kx" $Q --outdir killed 2>/dev/null &
pk=$!
n=0
while [ -z "$(ls killed/runs/*/*/.lock 2>/dev/null)" ] && [ $n -lt 1200 ]; do sleep 0.1; n=$((n + 1)); done
kill -9 $pk
wait $pk 2>/dev/null
grep -q "^pid $pk$" killed/.lock || note "the killed run's folder claim does not name it"
run_lock=$(ls killed/runs/*/*/.lock 2>/dev/null | head -1)
[ -n "$run_lock" ] && grep -q "^pid $pk$" "$run_lock" || note "the killed run's run claim does not name it"
"$kx" $Q --outdir killed 2>err.txt || { note "the run after a SIGKILL failed"; cat err.txt; }
same_as_single killed
exit $fail
