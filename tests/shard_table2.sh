#!/bin/sh
# kapprox reproduce table2 --quick sharded (--shard i/N, then the command
# without --shard writes the table): two shards one after the other, two
# started together into an empty folder (one trains the teacher, the other
# waits for it), and a shard killed with SIGKILL and run again, each ending
# with one unsharded run's table (timing columns aside) and run files
# (result.txt without its wall time, curve.txt, map.txt); the final step
# computes nothing.  Bad --shard values and a shard of another
# configuration are refused with a message and change nothing; --dry-run
# lists every run with its shard and writes nothing.
# usage: shard_table2.sh /path/to/kapprox
. "$(dirname "$0")/cli_test.sh"
cd "$dir" || exit 1

sh "$here/tiny_text.sh" 1500 17 >t.txt
# two kinds, each converted, converted + AT and from scratch, with softmax
# from scratch: 7 runs, so the shards' shares differ (4 and 3)
Q="--quick --text $dir/t.txt --kinds performer,hedgehog"

for s in 0/2 3/2 1/0 2 1/x; do
  expect 2 "shard '$s'" -- reproduce table2 $Q --quiet --shard $s --outdir bad
done
[ -e bad ] && note "a refused --shard left an output folder"

. "$here/table2_files.sh"
same_as_ref() {
  strip "$1/table2.csv" >"$1.csv"
  cmp -s ref.csv "$1.csv" || { note "$2: the table differs from the unsharded one"; diff ref.csv "$1.csv"; }
  runfiles "$1" >"$1.files"
  cmp -s ref.files "$1.files" || { note "$2: the run files differ from the unsharded run's"; diff ref.files "$1.files"; }
}
final_step() { # OUT WHAT: the command without --shard, which must find every run finished
  "$kx" reproduce table2 $Q --outdir "$1" 2>"$1.final" || { note "$2: the final step failed"; cat "$1.final"; }
  grep -q "converting\|fine-tuning step\|training step" "$1.final" && note "$2: the final step computed a run"
  [ "$(grep -c 'seed 0: finished earlier, kept' "$1.final")" -eq 7 ] || note "$2: the final step did not keep 7 runs"
}

# one unsharded run
"$kx" reproduce table2 $Q --quiet --outdir ref 2>err.txt || { note "the unsharded run failed"; cat err.txt; }
strip ref/table2.csv >ref.csv
runfiles ref >ref.files
[ "$(grep -c result.txt ref.files)" -eq 7 ] || note "the unsharded run has $(grep -c result.txt ref.files) runs, want 7"

# the dry run: every run, its shard, nothing written
"$kx" reproduce table2 $Q --outdir seq --shard 1/2 --dry-run >dry.txt 2>&1 || note "--dry-run failed: $(cat dry.txt)"
[ -e seq ] && note "--dry-run wrote into its output folder"
[ "$(grep -c '^  shard 1/2\* runs/b20/.*: to do$' dry.txt)" -eq 4 ] || note "dry run: shard 1 lacks its 4 runs"
[ "$(grep -c '^  shard 2/2  runs/b20/.*: to do$' dry.txt)" -eq 3 ] || note "dry run: shard 2 lacks its 3 runs"
grep -q "teacher --quick (seq/teacher.h5): to be pre-trained, 320 steps" dry.txt || note "dry run: teacher state"

# shards one after the other
"$kx" reproduce table2 $Q --quiet --outdir seq --shard 1/2 2>err.txt || { note "shard 1/2 failed"; cat err.txt; }
[ "$(ls seq/runs/b20/*/result.txt | wc -l)" -eq 4 ] || note "shard 1/2 did not do its 4 runs alone"
[ -e seq/table2.csv ] && note "a shard wrote the table"
"$kx" reproduce table2 $Q --quiet --outdir seq --shard 2/2 2>err.txt || { note "shard 2/2 failed"; cat err.txt; }
"$kx" reproduce table2 $Q --outdir seq --shard 2/2 --dry-run >dry2.txt 2>&1
[ "$(grep -c ': finished$' dry2.txt)" -eq 7 ] || note "dry run after the shards: not 7 finished runs"
final_step seq "sequential shards"
same_as_ref seq "sequential shards"

# shards started together into an empty folder: one trains the teacher, the other waits
"$kx" reproduce table2 $Q --outdir con --shard 1/2 2>con1.err &
p1=$!
"$kx" reproduce table2 $Q --outdir con --shard 2/2 2>con2.err &
p2=$!
wait $p1 || { note "concurrent shard 1/2 failed"; cat con1.err; }
wait $p2 || { note "concurrent shard 2/2 failed"; cat con2.err; }
trained=$(cat con1.err con2.err | grep -c "teacher --quick: pre-training *$")
[ "$trained" -eq 1 ] || note "the teacher was pre-trained $trained times by two shards started together, want 1"
final_step con "concurrent shards"
same_as_ref con "concurrent shards"

# another configuration (more seeds; another N) into that folder: refused, nothing changed
find con -type f | LC_ALL=C sort | xargs cksum >before.txt
expect 1 "holds the shards of another configuration" -- reproduce table2 $Q --quiet --seeds 2 --outdir con --shard 1/2
expect 1 "has 'shards 2' where this shard (1/3) has 'shards 3'" -- reproduce table2 $Q --quiet --outdir con --shard 1/3
find con -type f | LC_ALL=C sort | xargs cksum | cmp -s before.txt - || note "a refused shard changed the folder"

# a shard killed in its second run, then run again with the other shard and the final step
mkdir kil && cp ref/teacher.h5 kil/
killed_at "seed 0: fine-tuning step" reproduce table2 $Q --outdir kil --shard 1/2
n=$(ls kil/runs/b20/*/result.txt 2>/dev/null | wc -l)
[ "$n" -lt 4 ] || note "the shard finished before it was killed"
"$kx" reproduce table2 $Q --quiet --outdir kil --shard 2/2 2>err.txt || { note "shard 2/2 after the kill failed"; cat err.txt; }
"$kx" reproduce table2 $Q --outdir kil --shard 1/2 2>kil.err || { note "the killed shard's rerun failed"; cat kil.err; }
final_step kil "a killed shard"
same_as_ref kil "a killed shard"
exit $fail
