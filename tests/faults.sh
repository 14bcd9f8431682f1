#!/bin/sh
# Faults that must not lose or damage anything on disk:
#  - an output naming a character device or a FIFO is streamed into, never
#    replaced (CSV writers and HDF5 writers); a directory is refused;
#  - a symbolic link to a regular file stays a link, its target is replaced;
#  - temporary files "<out>.tmp.<pid>" of dead processes are removed by the
#    next run writing <out>, those of live processes are left alone;
#  - kill -9 during training, then --resume: the --log CSV holds every row and
#    equals an uninterrupted run's log except the timing columns;
#  - a diverging run stops with a message and keeps its last good checkpoint.
# usage: faults.sh /path/to/kapprox   (KX_FAULT_SEED picks the kill point)
kx="$1"
dir=$(mktemp -d)
reader=""
trap '[ -n "$reader" ] && kill $reader 2>/dev/null; rm -rf "$dir"' EXIT
fail=0
say_fail() { echo "FAIL: $*"; fail=1; }
run() { # run CMD...: must succeed
  "$kx" "$@" >"$dir/out" 2>"$dir/err" || { say_fail "kapprox $* failed:"; cat "$dir/err"; }
}

"$(dirname "$0")/tiny_text.sh" >"$dir/t.txt"
tiny="--text $dir/t.txt --layers 1 --heads 2 --width 16 --ctx 16 --batch 2 --quiet --no-final-eval"
run train $tiny --steps 2 --out "$dir/tiny.h5"

# --- devices ---------------------------------------------------------------
# As root a regression would replace the real /dev/null, so root first tries
# a private copy of the device made with mknod, and only then /dev/null.
dev_targets="/dev/null"
if [ "$(id -u)" -eq 0 ] && mknod "$dir/null" c 1 3 2>/dev/null; then
  dev_targets="$dir/null /dev/null"
fi
for dev in $dev_targets; do
  run kernel-error --schemes prf --m 8 --seeds 0 --tokens 8 --dim 4 --out "$dev"
  [ -c "$dev" ] || { say_fail "kernel-error --out $dev replaced the device"; break; }
  run synth-qk --tokens 8 --dim 4 --heads 1 --out "$dev"
  [ -c "$dev" ] || { say_fail "synth-qk --out $dev replaced the device"; break; }
  run train $tiny --steps 2 --out "$dev" --log "$dev"
  [ -c "$dev" ] || { say_fail "train --out $dev --log $dev replaced the device"; break; }
  run dump-qk --checkpoint "$dir/tiny.h5" --text "$dir/t.txt" --tokens 8 --out "$dev"
  [ -c "$dev" ] || { say_fail "dump-qk --out $dev replaced the device"; break; }
  ls "$(dirname "$dev")" | grep -q "^null\.tmp\." && say_fail "a temporary file was left beside $dev"
done

# --- FIFOs: the bytes arrive, the FIFO stays -----------------------------------
mkfifo "$dir/fifo"
timeout 60 cat "$dir/fifo" >"$dir/fifo.csv" & reader=$!
run kernel-error --schemes prf --m 8 --seeds 0 --tokens 8 --dim 4 --out "$dir/fifo"
wait $reader; reader=""
run kernel-error --schemes prf --m 8 --seeds 0 --tokens 8 --dim 4 --out "$dir/plain.csv"
[ -p "$dir/fifo" ] || say_fail "kernel-error --out FIFO replaced the FIFO"
cmp -s "$dir/fifo.csv" "$dir/plain.csv" || say_fail "CSV streamed into a FIFO differs from the file"

timeout 60 cat "$dir/fifo" >"$dir/fifo.h5" & reader=$!
run synth-qk --tokens 8 --dim 4 --heads 1 --out "$dir/fifo"
wait $reader; reader=""
[ -p "$dir/fifo" ] || say_fail "synth-qk --out FIFO replaced the FIFO"
# the HDF5 file that came through the FIFO is complete: kapprox reads it
run kernel-error --input "$dir/fifo.h5" --schemes prf --m 8 --seeds 0 --out "$dir/from_fifo.csv"

# --- what cannot be an output --------------------------------------------------
mkdir "$dir/adir"
"$kx" kernel-error --schemes prf --m 8 --seeds 0 --tokens 8 --dim 4 --out "$dir/adir" 2>"$dir/err"
[ $? -eq 1 ] && grep -q "is a directory" "$dir/err" || { say_fail "--out DIRECTORY:"; cat "$dir/err"; }
[ -d "$dir/adir" ] || say_fail "--out DIRECTORY removed the directory"
ln -s "$dir/nowhere/x.csv" "$dir/dangling"
"$kx" kernel-error --schemes prf --m 8 --seeds 0 --tokens 8 --dim 4 --out "$dir/dangling" 2>"$dir/err"
[ $? -eq 1 ] && grep -q "symbolic link to a missing file" "$dir/err" || { say_fail "--out dangling link:"; cat "$dir/err"; }

# --- symbolic link to a regular file ---------------------------------------------
echo old >"$dir/target.csv"
ln -s target.csv "$dir/link.csv"
run kernel-error --schemes prf --m 8 --seeds 0 --tokens 8 --dim 4 --out "$dir/link.csv"
[ -L "$dir/link.csv" ] || say_fail "--out LINK replaced the symbolic link"
cmp -s "$dir/target.csv" "$dir/plain.csv" || say_fail "--out LINK did not write the link's target"

# --- stale temporaries -------------------------------------------------------------
sh -c 'echo $$' >"$dir/deadpid"          # a process that has ended
dead=$(cat "$dir/deadpid")
kill -0 "$dead" 2>/dev/null && dead=""   # (reused already: skip that part)
for out in res.csv ck.h5 log.csv; do
  [ -n "$dead" ] && echo stale >"$dir/$out.tmp.$dead"
  echo live >"$dir/$out.tmp.$$"
done
run kernel-error --schemes prf --m 8 --seeds 0 --tokens 8 --dim 4 --out "$dir/res.csv"
run train $tiny --steps 2 --out "$dir/ck.h5" --log "$dir/log.csv"
for out in res.csv ck.h5 log.csv; do
  [ -n "$dead" ] && [ -e "$dir/$out.tmp.$dead" ] && say_fail "stale $out.tmp.$dead (dead process) was not removed"
  [ -e "$dir/$out.tmp.$$" ] || say_fail "$out.tmp.$$ of a live process was removed"
  rm -f "$dir/$out.tmp.$$"
done

# --- kill -9 during training, then --resume ---------------------------------------
# The kill lands after a seeded number of log rows, between checkpoints
# (every 37 steps), so the resumed run must drop the rows after the
# checkpoint and compute them again.
seed=${KX_FAULT_SEED:-1}
kill_rows=$((40 + (seed * 2654435761) % 360))
train="train $tiny --steps 1500"
run $train --out "$dir/full.h5" --log "$dir/full.csv"
"$kx" $train --save-every 37 --out "$dir/k.h5" --log "$dir/k.csv" >/dev/null 2>&1 &
pid=$!
lines() { if [ -e "$1" ]; then wc -l <"$1"; else echo 0; fi; }
while kill -0 $pid 2>/dev/null && [ "$(lines "$dir/k.csv")" -le "$kill_rows" ]; do
  sleep 0.01
done
kill -9 $pid 2>/dev/null && killed=1 || killed=0
wait $pid 2>/dev/null
rows=$(($(lines "$dir/k.csv") - 1))
echo "seed $seed: killed=$killed after $rows log rows (wanted > $kill_rows)"
[ $killed -eq 1 ] || say_fail "training ended before the kill (make the run longer)"
[ -e "$dir/k.h5" ] || say_fail "no checkpoint after $rows steps with --save-every 37"
run train --text "$dir/t.txt" --resume "$dir/k.h5" --out "$dir/k.h5" --log "$dir/k.csv" --quiet --no-final-eval
grep -q "^resuming at step" "$dir/out" || say_fail "the resumed run did not say where it resumed"
# timing columns (tokens_per_s, elapsed_s) differ; everything else must not
cut -d, -f1-5 "$dir/full.csv" >"$dir/full.cut"
cut -d, -f1-5 "$dir/k.csv" >"$dir/k.cut"
cmp -s "$dir/full.cut" "$dir/k.cut" || { say_fail "resumed log differs from the uninterrupted one:";
  diff "$dir/full.cut" "$dir/k.cut" | head -5; }
ls "$dir" | grep -q '\.tmp\.' && { say_fail "temporary files left after the resumed run:"; ls "$dir" | grep '\.tmp\.'; }

# --- a diverging run keeps its last good checkpoint ------------------------------
# Decoupled weight decay with lr * decay = 1000 multiplies every decayed
# weight by -999 per step: float32 overflows within ~13 steps.
"$kx" train $tiny --steps 50 --lr 10 --weight-decay 100 --save-every 2 --out "$dir/div.h5" --log "$dir/div.csv" \
  >"$dir/out" 2>"$dir/err"
code=$?
if [ $code -ne 1 ] || ! grep -q "training diverged at step [0-9]*: the .* is .*; checkpoint '.*div.h5' (step [0-9]*) is kept" "$dir/err"; then
  say_fail "diverging run: exit $code, stderr:"; cat "$dir/err"
else
  kept=$(sed -n "s/.*(step \([0-9]*\)) is kept.*/\1/p" "$dir/err")
  run sample --checkpoint "$dir/div.h5" --prompt "and" --length 5 --seed 0
  # the checkpoint holds finite parameters: resuming it reaches the same failure
  "$kx" train --text "$dir/t.txt" --resume "$dir/div.h5" --out "$dir/div2.h5" --quiet --no-final-eval \
    >/dev/null 2>"$dir/err2"
  grep -q "training diverged" "$dir/err2" || { say_fail "resuming the kept checkpoint:"; cat "$dir/err2"; }
  last=$(tail -n 1 "$dir/div.csv" | cut -d, -f1)
  [ "$last" -ge "$kept" ] || say_fail "log stops at step $last, before the kept checkpoint's $kept"
fi
exit $fail
