#!/bin/sh
# Bad input on the command line ends with a message naming the problem and a
# non-zero exit, never a crash (exit codes >= 128 are signals) or output.
# usage: cli_errors.sh /path/to/kapprox
. "$(dirname "$0")/cli_test.sh"

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

# --- messages that say what is wrong
expect 2 "--ridge must be >= 0" -- kernel-error --ridge -1 --m 8 --seeds 0
expect 2 "--ridge must be >= 0" -- compare --ridge -1e-9 --m 8 --seeds 0
expect 2 "too small to represent" -- compare --norm 1e-320
expect 2 "too large in magnitude" -- compare --norm 1e999
expect 2 "is not a number" -- compare --norm abc
expect 2 "empty file name" -- compare --out "" --m 8 --seeds 0
# reproduce and attn-maps refuse an unwritable output before computing
# anything (a run of all schemes to the end would take seconds, not ms)
for args in "reproduce kernel --out $dir/no/dir/t.md" "attn-maps --out $dir/no/dir/m.h5" \
            "attn-maps --out $dir/m.h5 --text $dir/no/dir" "reproduce kernel --out $dir"; do
  # shellcheck disable=SC2086
  expect 2 "does not exist\|is a directory" -- $args
done

# --- --schemes all (listed in --help) works in every command
all=$("$kx" compare --help | sed -n 's/^ *all: //p')
n_all=$(echo "$all" | tr ',' '\n' | grep -c .)
"$kx" attn-fidelity --schemes all --m 4 --seeds 0 --tokens 16 --dim 4 --quiet --out "$dir/all.csv" ||
  { echo "FAIL: attn-fidelity --schemes all"; fail=1; }
n_got=$(cut -d, -f5 "$dir/all.csv" | sed 1d | sort -u | grep -c .)
[ "$n_got" -eq "$n_all" ] || { echo "FAIL: --schemes all ran $n_got of $n_all schemes"; fail=1; }
"$kx" sweep --schemes all --m 4 --seeds 0 --tokens 16 --dim 4 --quiet --out "$dir/sall.csv" ||
  { echo "FAIL: sweep --schemes all"; fail=1; }
"$kx" reproduce kernel --schemes all --dim 4 --tokens 16 --seeds 0:1 --quiet --out "$dir/t.md" ||
  { echo "FAIL: reproduce kernel --schemes all"; fail=1; }
"$kx" attn-maps --schemes all --m 4 --tokens 16 --dim 4 --out "$dir/maps.h5" 2>/dev/null ||
  { echo "FAIL: attn-maps --schemes all"; fail=1; }
expect 2 "listed twice" -- compare --schemes prf,prf

# --- the table shows input names in full (they were cut at 12 characters)
long="$dir/a-rather-long-input-name.h5"
cp "$dir/qk.h5" "$long"
"$kx" kernel-error --input "$long" --schemes prf --m 4 --seeds 0:1 >"$dir/table.txt" 2>/dev/null ||
  { echo "FAIL: kernel-error on $long"; fail=1; }
grep -q "^a-rather-long-input-name.h5 " "$dir/table.txt" || { echo "FAIL: input name cut in the table:"; cat "$dir/table.txt"; fail=1; }
"$kx" sweep --input "$long" --schemes prf --m 4,8 --seeds 0:2 --out "$dir/ls.csv" \
  >"$dir/table.txt" 2>/dev/null || { echo "FAIL: sweep on $long"; fail=1; }
grep -q "^$long *prf " "$dir/table.txt" || { echo "FAIL: input name cut in the slopes:"; cat "$dir/table.txt"; fail=1; }

# --- fitted weights at large norms (the Gram matrix of exp(...) features
# overflowed: "did not converge", "every weight came out zero") now fit
for args in "kernel-error --norm 20" "compare --norm 30" "attn-fidelity --norm 10 --dim 8"; do
  # shellcheck disable=SC2086
  "$kx" $args --schemes wdcf,wpff-sobol,wdcf-norm --m 16,64 --seeds 0:1 --tokens 32 --quiet \
      --out "$dir/big.csv" 2>"$dir/err" || { echo "FAIL: $args: exit $?"; cat "$dir/err"; fail=1; }
  ! grep -q ",nan," "$dir/big.csv" || { echo "FAIL: $args: NaN values"; fail=1; }
done

# --- one failed point never sinks compare/kernel-error/attn-fidelity: the
# weight fit refuses 2^24 calibration pairs x 16 features (memory) for the
# fitted scheme only; the others finish, exit status 3 says so
for cmd in compare kernel-error attn-fidelity; do
  "$kx" $cmd --schemes prf,wpff-sobol --m 16 --seeds 0:1 --tokens 16 --dim 4 --calib-pairs 16777216 \
      --out "$dir/f.csv" >"$dir/table.txt" 2>"$dir/err"
  code=$?
  [ "$code" -eq 3 ] || { echo "FAIL: $cmd with a failing point: exit $code (want 3)"; cat "$dir/err"; fail=1; }
  grep -q "wpff-sobol .* 0/2 .*failed" "$dir/table.txt" && grep -q "^synthetic .*prf .* 2 " "$dir/table.txt" &&
    grep -q "2 point(s) failed" "$dir/table.txt" ||
    { echo "FAIL: $cmd table does not show the failed points"; cat "$dir/table.txt"; fail=1; }
  grep -q ",wpff-sobol,16,1,[a-z_]*,nan,.*calibration pairs" "$dir/f.csv" ||
    { echo "FAIL: $cmd CSV lacks the failed rows"; fail=1; }
  grep -q ",prf,16,1,[a-z_]*,[0-9.e-]*,[0-9.]*,[0-9.]*,$" "$dir/f.csv" ||
    { echo "FAIL: $cmd CSV lacks the good rows"; fail=1; }
done

# --- attn-maps records a scheme whose map fails (named, with the reason),
# writes the other schemes' maps and exits 3 at the end
mkdir -p "$dir/maps"
rm -f "$dir/maps/"*
"$kx" attn-maps --schemes prf,wpff-sobol,orf --m 16 --tokens 16 --dim 4 --calib-pairs 16777216 \
    --out "$dir/fmaps.h5" --text "$dir/maps" 2>"$dir/err"
code=$?
[ "$code" -eq 3 ] || { echo "FAIL: attn-maps with a failing scheme: exit $code (want 3)"; cat "$dir/err"; fail=1; }
grep -q "scheme 'wpff-sobol' failed: .*calibration pairs" "$dir/err" ||
  { echo "FAIL: attn-maps does not name the failed scheme and reason"; cat "$dir/err"; fail=1; }
[ -s "$dir/fmaps.h5" ] && [ -s "$dir/maps/prf.txt" ] && [ -s "$dir/maps/orf.txt" ] &&
  [ -s "$dir/maps/exact.txt" ] && [ ! -e "$dir/maps/wpff-sobol.txt" ] ||
  { echo "FAIL: attn-maps did not write the other schemes' maps (only)"; ls "$dir/maps"; fail=1; }
exit $fail
