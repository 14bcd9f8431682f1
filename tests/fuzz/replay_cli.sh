#!/bin/sh
# Replays the crash inputs that kill libhdf5 itself (found by fuzzing,
# kept in tests/fuzz/crashes/<loader>/libhdf5/) through the program, as a
# user would meet them: the program must end with exit status 1 and its
# message as the last line on stderr, or, where libhdf5 happens to survive
# the file in this build (its overruns do not always fault without ASan),
# with success; never with a signal.  (In a sanitizer build the report of
# the child process that read the file may come first: the child dies, the
# program reports it.)
# usage: replay_cli.sh KAPPROX CRASHES-DIR
set -u
kapprox=$1
crashes=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
n=0
fail=0
for f in "$crashes"/qk/libhdf5/* "$crashes"/ckpt/libhdf5/*; do
  [ -f "$f" ] || continue
  n=$((n + 1))
  case $f in
  */qk/*) set -- kernel-error --input "$f" --schemes prf --m 8 --seeds 0 --max-tokens 8 --quiet ;;
  */ckpt/*) set -- sample --checkpoint "$f" --length 4 ;;
  esac
  "$kapprox" "$@" >"$work/out" 2>"$work/err"
  rc=$?
  if [ "$rc" -eq 0 ]; then
    echo "ok: $f: read without a crash in this build"
  elif [ "$rc" -ne 1 ] || ! tail -1 "$work/err" | grep -q "^kapprox [a-z-]*: error: "; then
    echo "FAIL: kapprox $* exited $rc (want 1 with a message, or 0); stderr:"
    head -20 "$work/err"
    fail=1
  else
    echo "ok: $f: $(tail -1 "$work/err")"
  fi
done
if [ "$n" -eq 0 ]; then
  echo "no libhdf5 crash inputs to replay"
  exit 77
fi
echo "$n libhdf5 crash inputs replayed through the program"
exit $fail
