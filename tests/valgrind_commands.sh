#!/bin/sh
# valgrind (memcheck) finds nothing in the commands that read and write
# files: compare, sweep, merge, train (fresh and resumed), sample, dump-qk,
# each at a tiny size (a few seconds under valgrind).
# usage: valgrind_commands.sh /path/to/valgrind /path/to/kapprox
vg="$1"
here="$(cd "$(dirname "$0")" && pwd)"
kx="$(cd "$(dirname "$2")" && pwd)/$(basename "$2")"
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cd "$dir" || exit 1
fail=0
# one thread each: memcheck serialises threads anyway, and OpenMP/OpenBLAS
# pools only add run time
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
check() { # check NAME ARGS...: kapprox ARGS under memcheck, exit 0, no error
  name="$1"; shift
  "$vg" -q --error-exitcode=3 --leak-check=full --errors-for-leak-kinds=definite,indirect \
    "$kx" "$@" >"$name.out" 2>"$name.err"
  code=$?
  if [ $code -ne 0 ]; then
    echo "FAIL: valgrind kapprox $* exited $code:"; cat "$name.err"; fail=1
  fi
}

"$here/tiny_text.sh" >t.txt
tiny="--text t.txt --layers 1 --heads 2 --width 16 --ctx 16 --batch 2 --quiet --no-final-eval --eval-every 2 --eval-batches 1"
G="--schemes prf,orf --m 4,8 --seeds 0:1 --norms 1 --tokens 16 --dim 4 --quiet"

check compare compare --schemes prf,pff-sobol,wdcf --m 8 --seeds 0 --tokens 16 --dim 4 --out compare.csv
check sweep sweep $G --out sweep.csv
check shard1 sweep $G --shard 1/2 --out part1.csv
check shard2 sweep $G --shard 2/2 --out part2.csv
check merge merge --quiet merged.csv part1.csv part2.csv
check train train $tiny --steps 4 --stop-after 2 --out ck.h5 --log log.csv
check resume train --text t.txt --resume ck.h5 --out ck.h5 --log log.csv --quiet --no-final-eval
check sample sample --checkpoint ck.h5 --prompt "and the" --length 8 --seed 1
check dump-qk dump-qk --checkpoint ck.h5 --text t.txt --tokens 8 --out qk.h5
check qk-input kernel-error --input qk.h5 --schemes prf --m 8 --seeds 0 --out ke.csv
exit $fail
