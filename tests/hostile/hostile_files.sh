#!/bin/sh
# Files that crash libhdf5 1.10.8 itself (made by make_crash_inputs.py in
# this directory, see there why they crash; *-mutant-* found by mutate.py):
# every command that reads such a file ends with exit 1 and "malformed HDF5
# file '<path>': the HDF5 library crashed reading it" (*-loop.h5: "did not
# finish reading it", libhdf5 loops forever on them), never a signal or a
# hang, and writes no output.
# usage: hostile_files.sh /path/to/kapprox /path/to/tests/hostile
kx="$1"
hostile="$2"
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
fail=0
# the endless loops end after 1 s of CPU instead of 30
KX_SANDBOX_CPU_SECONDS=1
export KX_SANDBOX_CPU_SECONDS
sh "$(dirname "$0")/../tiny_text.sh" >"$dir/t.txt"

expect_malformed() {
  file="$1"; shift
  "$kx" "$@" >"$dir/out" 2>"$dir/err"
  got=$?
  case "$file" in
    *-loop.h5) why="did not finish reading it" ;;
    *) why="crashed reading it" ;;
  esac
  if [ "$got" -ne 1 ] || ! grep -q "malformed HDF5 file '$file': the HDF5 library $why" "$dir/err"; then
    echo "FAIL: kapprox $*: exit $got (want 1 and \"malformed HDF5 file '$file': ...\"), stderr:"
    cat "$dir/err"; fail=1
  fi
  if ls "$dir"/x.* >/dev/null 2>&1; then echo "FAIL: kapprox $*: wrote $(ls "$dir"/x.*)"; fail=1; rm -f "$dir"/x.*; fi
}

n=0
for f in "$hostile"/qk-*.h5; do
  n=$((n + 1))
  expect_malformed "$f" kernel-error --input "$f" --m 4 --seeds 0 --schemes prf --quiet --out "$dir/x.csv"
  expect_malformed "$f" attn-fidelity --input "$f" --m 4 --seeds 0 --schemes prf --quiet --out "$dir/x.csv"
  expect_malformed "$f" attn-maps --input "$f" --m 4 --schemes prf --out "$dir/x.h5"
done
for f in "$hostile"/ckpt-*.h5; do
  n=$((n + 1))
  expect_malformed "$f" sample --checkpoint "$f" --length 4
  expect_malformed "$f" dump-qk --checkpoint "$f" --text "$dir/t.txt" --out "$dir/x.h5"
  expect_malformed "$f" train --text "$dir/t.txt" --resume "$f" --quiet --out "$dir/x.h5"
done
[ "$n" -ge 5 ] || { echo "FAIL: only $n hostile files in $hostile"; fail=1; }
exit $fail
