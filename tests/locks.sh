#!/bin/sh
# Two writers of one checkpoint: two kapprox finetune runs with the same
# --out, started together and a few seconds apart.  Exactly one writes, the
# other is refused at once (exit 1 or 2) with a message naming the first,
# and the checkpoint left is the one a single run writes.  A writer killed
# with SIGKILL leaves its claim behind; the next run takes it over.
# usage: locks.sh /path/to/kapprox
. "$(dirname "$0")/cli_test.sh"
cd "$dir" || exit 1
py=/usr/bin/python3

sh "$here/tiny_text.sh" >t.txt
tiny="--text t.txt --layers 1 --heads 2 --width 16 --ctx 16 --batch 2 --quiet --no-final-eval"
ok train $tiny --steps 2 --out student.h5
FT="finetune --from student.h5 --text t.txt --batch 2 --quiet --no-final-eval --steps 3000 --seed 5"
ok $FT --out ref.h5

# same_checkpoint A B: every dataset and attribute equal, but the training
# time (a measurement)
same_checkpoint() {
  if ! "$py" -c 'import h5py, numpy' 2>/dev/null; then
    echo "note: no h5py; comparing the validation loss only"
    a=$("$kx" eval --checkpoint "$1" --text t.txt 2>&1) && b=$("$kx" eval --checkpoint "$2" --text t.txt 2>&1) &&
      [ "$a" = "$b" ]
    return
  fi
  "$py" - "$1" "$2" <<'PY'
import sys, h5py, numpy as np
def items(path):
    out = {}
    with h5py.File(path, "r") as f:
        def visit(name, obj):
            for k, v in obj.attrs.items():
                if k != "elapsed":
                    out[name + "@" + k] = np.asarray(v).tobytes()
            if isinstance(obj, h5py.Dataset):
                out[name] = obj[()].tobytes()
        visit("/", f)
        f.visititems(visit)
    return out
a, b = items(sys.argv[1]), items(sys.argv[2])
diff = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
if diff:
    print("differ in", ", ".join(diff[:5]))
    sys.exit(1)
PY
}

# after: checks the pair's exit codes and the checkpoint
after() {
  what=$1
  one_writer "$what" "$2" "$3" ea.txt eb.txt ft.h5
  same_checkpoint ref.h5 ft.h5 || note "$what: the checkpoint differs from a single run's"
  [ ! -e ft.h5.lock ] || note "$what: the claim ft.h5.lock was left behind"
  ls ft.h5.tmp.* >/dev/null 2>&1 && note "$what: temporary files left: $(ls ft.h5.tmp.*)"
}

# together
"$kx" $FT --out ft.h5 2>ea.txt &
pa=$!
"$kx" $FT --out ft.h5 2>eb.txt &
pb=$!
wait $pa; a=$?
wait $pb; b=$?
after "two finetune runs started together" $a $b

# a few seconds apart: the first is stopped (SIGSTOP, no CPU) while the
# second starts, then let go
rm -f ft.h5
"$kx" $FT --out ft.h5 2>ea.txt &
pa=$!
n=0
while [ ! -s ft.h5.lock ] && [ $n -lt 300 ]; do sleep 0.1; n=$((n + 1)); done
kill -STOP $pa
sleep 2
"$kx" $FT --out ft.h5 2>eb.txt
b=$?
kill -CONT $pa
wait $pa; a=$?
after "a finetune started 2 s after another" $a $b

# a writer killed with SIGKILL: its claim stays, naming it; the next run
# takes it over
"$kx" train $tiny --steps 100000000 --out killed.h5 >/dev/null 2>&1 &
pk=$!
n=0
while [ ! -s killed.h5.lock ] && [ $n -lt 300 ]; do sleep 0.1; n=$((n + 1)); done
kill -9 $pk
wait $pk 2>/dev/null
grep -q "^pid $pk$" killed.h5.lock || note "the killed writer's claim does not name it: $(cat killed.h5.lock 2>&1)"
ok train $tiny --steps 2 --out killed.h5
[ -e killed.h5 ] && [ ! -e killed.h5.lock ] || note "the run after a killed writer did not take over its claim"
exit $fail
