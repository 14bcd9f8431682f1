#!/bin/sh
# Replays each crash input of a fuzz campaign in the harness and says where
# it crashed: "project" when the first frame outside the sanitizer runtime
# and libc is the project's code (a bug to fix), "libhdf5" when it is in
# libhdf5 (the program must turn it into a message).
#   tests/fuzz/classify.sh FUZZER ARTIFACT-DIR
set -u
fuzzer=$1
dir=$2
n_project=0
n_hdf5=0
n_rss=0
for f in "$dir"/crash-* "$dir"/oom-* "$dir"/timeout-* "$dir"/leak-*; do
  [ -f "$f" ] || continue
  report=$(LSAN_OPTIONS=suppressions=$(dirname "$0")/lsan.supp UBSAN_OPTIONS=print_stacktrace=1 \
    ASAN_OPTIONS=allocator_may_return_null=1 timeout 60 "$fuzzer" -rss_limit_mb=2048 \
    -malloc_limit_mb=1024 -timeout=20 "$f" 2>&1)
  rc=$?
  # stack frames "#k 0x... in function file:line" or "(library+offset)".
  # The sanitizers' interceptors and libFuzzer are linked into the harness
  # without debug lines, so their frames read "(HARNESS+0x...)"; libc's
  # abort path is dropped too: what is left starts at the culprit.
  frame=$(echo "$report" | grep -E '^ *#[0-9]+ 0x' | grep -vF "($fuzzer+" |
    grep -vE '[(]/lib/x86_64-linux-gnu/lib(c|stdc[+][+])\.so|sysdeps/|nptl/|stdlib/abort|signal/' |
    head -1)
  live=$(echo "$report" | sed -n 's/^Live Heap Allocations: \([0-9]*\) bytes.*/\1/p' | head -1)
  if [ "$rc" -eq 0 ]; then
    where="no crash on replay"
  elif echo "$report" | grep -q "out-of-memory (used:" && [ "${live:-0}" -lt 268435456 ]; then
    # the resident size passed the limit but the live heap is small: the
    # memory is not held by malloc'ed objects of the project (seen: inside
    # libhdf5 under ASan only; check with build/tests/fuzz/fuzz_replay_*)
    where="rss outside the heap"
    n_rss=$((n_rss + 1))
  elif echo "$frame" | grep -q 'libhdf5'; then
    where=libhdf5
    n_hdf5=$((n_hdf5 + 1))
  else
    where=project
    n_project=$((n_project + 1))
  fi
  kind=$(echo "$report" | grep -m1 -oE 'ERROR: (AddressSanitizer|libFuzzer|LeakSanitizer|UndefinedBehaviorSanitizer): [a-zA-Z-]+|runtime error: [^/]*|broken_promise|fuzz_[a-z]+: [a-z][^\n]*' | head -1)
  echo "$where: $(basename "$f"): ${kind:-?} at ${frame:-?}" | sed -E 's/ +/ /g; s/ [(]BuildId: [0-9a-f]+[)]//'
done
echo "crash inputs: project $n_project, libhdf5 $n_hdf5, resident memory outside the live heap $n_rss"
