#!/bin/sh
# Bad input on the command line ends with a message naming the problem and a
# non-zero exit, never a crash (exit codes >= 128 are signals) or output.
# usage: cli_errors.sh /path/to/kapprox
kx="$1"
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
fail=0

# expect CODE NEEDLE -- ARGS...: run, check exit code and that stderr names the problem
expect() {
  code="$1"; needle="$2"; shift 3
  "$kx" "$@" >"$dir/out" 2>"$dir/err"
  got=$?
  if [ "$got" -ne "$code" ] || ! grep -q -- "$needle" "$dir/err"; then
    echo "FAIL: kapprox $*: exit $got (want $code), stderr:"; cat "$dir/err"
    echo "      (wanted a message containing '$needle')"
    fail=1
  fi
}

expect 2 "unknown command" -- no-such-command
expect 2 "m must be in" -- kernel-error --m 0 --quiet
expect 2 "unknown scheme 'nope'" -- kernel-error --schemes prf,nope
expect 2 "empty item" -- kernel-error --schemes prf,,orf
expect 2 "not a whole number" -- attn-fidelity --m 12x
expect 2 "ends before it starts" -- compare --seeds 5:2
expect 2 "--dim must be in" -- compare --dim 0
expect 2 "--kernel must be softmax or gauss" -- compare --kernel cosine
expect 2 "--norm" -- compare --norm -1
expect 2 "unknown or incomplete option" -- compare --frobnicate
expect 1 "no such file" -- kernel-error --input "$dir/missing.h5" --m 8 --seeds 0
printf 'not hdf5\n' >"$dir/text.h5"
expect 1 "not an HDF5 file" -- attn-fidelity --input "$dir/text.h5" --m 8 --seeds 0
"$kx" synth-qk --out "$dir/qk.h5" --layers 1 --heads 2 --tokens 16 --dim 8 2>/dev/null
expect 1 "has no layer 7" -- kernel-error --input "$dir/qk.h5" --layers 7 --m 8 --seeds 0
expect 1 "head 5 does not exist" -- kernel-error --input "$dir/qk.h5" --heads 5 --m 8 --seeds 0
expect 2 "--out FILE.h5 is required" -- synth-qk
expect 1 "cannot write" -- synth-qk --out "$dir/no/such/dir/x.h5"
expect 1 "supports dimensions 1..1229, got 1301" -- kernel-error --schemes pff-halton --dim 1300 --tokens 8 --m 4 --seeds 0
expect 2 "supports dimensions 1..40, got 41" -- points --sequence gsl-sobol --dim 41
expect 2 "supports dimensions 1..21201, got 21202" -- points --sequence sobol --dim 21202
expect 2 "unknown" -- points --sequence sobel
# the published first Sobol' points, through the command line
"$kx" points --sequence sobol --dim 2 -n 4 >"$dir/pts.csv" || fail=1
printf 'x1,x2\n0,0\n0.5,0.5\n0.75,0.25\n0.25,0.75\n' | cmp -s - "$dir/pts.csv" || { echo "FAIL: points output"; cat "$dir/pts.csv"; fail=1; }

for cmd in compare kernel-error attn-fidelity synth-qk points bench-attention; do
  "$kx" $cmd --help >"$dir/help" 2>&1 || { echo "FAIL: $cmd --help exits non-zero"; fail=1; }
  grep -q "usage: kapprox $cmd" "$dir/help" || { echo "FAIL: $cmd --help lacks usage"; fail=1; }
done

# a good run writes a CSV with a header and one row per point and metric
"$kx" kernel-error --schemes prf --m 8,16 --seeds 0:2 --tokens 32 --dim 8 --quiet --out "$dir/r.csv" || fail=1
rows=$(($(wc -l <"$dir/r.csv") - 1))
[ "$rows" -eq 12 ] || { echo "FAIL: expected 2 m x 3 seeds x 2 metrics = 12 rows, got $rows"; fail=1; }
# same command, same numbers
"$kx" kernel-error --schemes prf --m 8,16 --seeds 0:2 --tokens 32 --dim 8 --quiet --out "$dir/r2.csv" || fail=1
cmp -s "$dir/r.csv" "$dir/r2.csv" || { echo "FAIL: two identical runs differ"; fail=1; }
exit $fail
