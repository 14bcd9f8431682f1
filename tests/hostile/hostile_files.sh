#!/bin/sh
# Files that crash libhdf5 1.10.8 itself (made by make_crash_inputs.py in
# this directory, see there why they crash): every command that reads such a
# file ends with exit 1 and "malformed HDF5 file '<path>': the HDF5 library
# crashed reading it", never a signal, and writes no output.
# usage: hostile_files.sh /path/to/kapprox /path/to/tests/hostile
kx="$1"
hostile="$2"
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
fail=0
i=0
while [ $i -lt 100 ]; do echo "and the lord said unto moses $i." >>"$dir/t.txt"; i=$((i + 1)); done

expect_malformed() {
  file="$1"; shift
  "$kx" "$@" >"$dir/out" 2>"$dir/err"
  got=$?
  if [ "$got" -ne 1 ] || ! grep -q "malformed HDF5 file '$file': the HDF5 library crashed reading it" "$dir/err"; then
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
[ "$n" -ge 3 ] || { echo "FAIL: only $n hostile files in $hostile"; fail=1; }
exit $fail
