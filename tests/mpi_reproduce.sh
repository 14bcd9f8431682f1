#!/bin/sh
# kapprox reproduce table2 --quick under mpirun: every training run inside
# (the teacher's pre-training, each fine-tuning) is split over the
# processes, and a run on 2 processes (mpirun --oversubscribe, one thread
# each), killed during the teacher's pre-training and resumed by the same
# command, writes the 1-process run's teacher (tests/ckpt_same.c: bit for
# bit), run files (result.txt without its wall time, curve.txt, map.txt)
# and table (timing columns aside).  A shard's dry run prints its plan
# once; reproduce all, a world size that does not divide the batch and
# ranks started with different options stop every rank with one message
# and a non-zero exit, never a hang, and write nothing.  (4 processes: in
# tests/mpi_train.sh; here they would double the test's time on 2 cores.)
# usage: mpi_reproduce.sh /path/to/kapprox /path/to/ckpt_same yes|no (built with MPI)
. "$(dirname "$0")/cli_test.sh"
. "$here/mpi_test.sh"
. "$here/table2_files.sh"

sh "$here/tiny_text.sh" 1500 17 >t.txt
# one kind, converted and converted + AT (attention transfer, split over the
# ranks as fine-tuning is),
# no rows from scratch: 2 runs of 20 steps after a teacher of 320
Q="--quick --text $dir/t.txt --kinds performer --scratch-seeds 0 --no-figures"
# tokens/s is measured once per folder, by rank 0 alone, and is a timing
# column left out of the comparison: given here, it costs no time
seed_throughput() { mkdir -p "$1/throughput" && for k in softmax performer; do echo "1 1" >"$1/throughput/$k.txt"; done; }

# mpi_killed_at NEEDLE N ARGS...: mpirun -np N kapprox ARGS with its
# progress through a FIFO, stopped at the first line containing NEEDLE by
# SIGKILL to the ranks (children of mpirun, the child of timeout) and to
# mpirun: a SIGTERM forwarded by mpirun can arrive after a fast machine has
# finished the run, leaving nothing to resume
mpi_killed_at() {
  needle="$1" n="$2"; shift 2
  rm -f progress && mkfifo progress
  timeout 300 "$mpirun" --oversubscribe -np "$n" "$kx" "$@" 2>progress &
  pid=$!
  killed=0
  while IFS= read -r line; do
    case "$line" in *"$needle"*)
      m=$(pgrep -P $pid)
      [ -n "$m" ] && kill -KILL $(pgrep -P "$m") "$m" 2>/dev/null
      killed=1
      break ;;
    esac
  done <progress
  wait $pid 2>/dev/null
  [ $killed -eq 1 ] || note "the run to kill never printed '$needle'"
}

# claims_gone DIR: waits (at most 30 s) until no process holding a claim
# under DIR runs: mpirun can return before its killed ranks are gone (seen
# in the sanitizer build), and a claim of a live rank refuses the rerun
claims_gone() {
  for f in $(find "$1" -name '*.lock'); do
    p=$(sed -n 's/^pid //p' "$f")
    i=0
    while [ -n "$p" ] && [ $i -lt 300 ] && kill -0 "$p" 2>/dev/null &&
      [ "$(sed 's/.*) //' "/proc/$p/stat" 2>/dev/null | cut -c1)" != Z ]; do
      sleep 0.1
      i=$((i + 1))
    done
  done
}

# 1 process: the reference
seed_throughput one
mpi 1 "$kx" reproduce table2 $Q --outdir one >out1.txt 2>err1.txt || { note "-np 1 failed"; cat err1.txt; }
runfiles one >one.files
[ "$(grep -c result.txt one.files)" -eq 2 ] || note "-np 1 has $(grep -c result.txt one.files) runs, want 2"
grep -q "performer+AT seed 0: attention transfer step 5/5" err1.txt || note "-np 1: no attention transfer"

# 2 processes, killed in the teacher's pre-training (a checkpoint every 80
# steps) and resumed by the same command
seed_throughput two
mpi_killed_at "pre-training step 100/320" 2 reproduce table2 $Q --outdir two
claims_gone two
[ -e two/teacher.h5 ] || note "no teacher checkpoint before the kill in its pre-training"
mpi 2 "$kx" reproduce table2 $Q --outdir two >out2.txt 2>err2.txt || { note "-np 2 failed"; cat err2.txt; }
grep -q "teacher --quick: pre-training (resumed)" err2.txt || note "-np 2 did not resume the teacher"

"$same" one/teacher.h5 two/teacher.h5 || note "2 processes' teacher (killed, resumed) differs from 1 process's"
runfiles two >two.files
cmp -s one.files two.files || { note "2 processes' run files differ from 1 process's"; diff one.files two.files; }
strip one/table2.csv >one.csv
strip two/table2.csv >two.csv
cmp -s one.csv two.csv || { note "2 processes' table differs from 1 process's"; diff one.csv two.csv; }
[ "$(grep -c 'table2 .*done' err2.txt)" -eq 1 ] || note "-np 2: want rank 0's progress alone: $(cat err2.txt)"

# the comparison can fail: the two runs' results (converted, + AT) differ
[ "$(grep result.txt one.files | cut -d' ' -f2- | sort -u | wc -l)" -eq 2 ] ||
  note "the two runs have one result: the comparison would not see a wrong one"

# a shard under mpirun: rank 0's plan, printed once
mpi 2 "$kx" reproduce table2 $Q --outdir sh --shard 1/2 --dry-run >out.txt 2>err.txt || { note "a shard's dry run failed"; cat err.txt; }
[ "$(grep -c '^  shard 1/2\* runs/b20/performer-s0: to do$' out.txt)" -eq 1 ] || note "the shard's plan: $(cat out.txt)"
[ -e sh ] && note "a dry run wrote its folder"

# refusals: one message, a non-zero exit within the timeout, nothing written
refused() { # WHAT NEEDLE RC: the last mpi command's exit RC and err.txt
  [ "$3" -ne 0 ] && [ "$3" -ne 124 ] || note "$1: exit $3 (want a failure, not 0 or a timeout)"
  [ "$(grep -c "$2" err.txt)" -eq 1 ] || note "$1: want the message once: $(cat err.txt)"
}
mpi 3 "$kx" reproduce table2 $Q --outdir bad3 >out.txt 2>err.txt
refused "-np 3 with batch 8" "3 processes cannot share the batch of 8 sequences" $?
[ -e bad3 ] && note "-np 3 left an output folder"
timeout 300 "$mpirun" --oversubscribe -np 1 "$kx" reproduce table2 $Q --outdir bad : \
  -np 1 "$kx" reproduce table2 $Q --outdir bad --seeds 2 >out.txt 2>err.txt
refused "ranks with different options" "started with different options or working folder" $?
[ -e bad ] && note "ranks with different options left an output folder"
mpi 2 "$kx" reproduce all --quick --outdir all >out.txt 2>err.txt
refused "reproduce all on 2 processes" "reproduce all: error: does not run on several processes" $?
[ -e all ] && note "reproduce all on 2 processes left an output folder"
exit $fail
