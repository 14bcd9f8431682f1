#!/bin/sh
# Fuzzes one loader for N minutes with libFuzzer (docs/fuzzing.md).
#   tests/fuzz/run.sh [--report-hdf5] LOADER MINUTES [libFuzzer options...]
#   LOADER: qk | ckpt | journal | merge | lock | llama2c | tokens | tokenizer
# Builds build-fuzz (clang-14, ASan + UBSan, -Dfuzz=true) when missing,
# fuzzes in fork mode so that a crash does not stop the campaign, then
# replays every crash input found and sorts it by where it crashed: in the
# project's code (to be fixed, and to be saved under
# tests/fuzz/crashes/LOADER/) or inside libhdf5 (the program must still end
# it with a message: save under tests/fuzz/crashes/LOADER/libhdf5/).
# New corpus inputs and crash inputs stay in build-fuzz/fuzz-LOADER/.
set -eu
usage="usage: tests/fuzz/run.sh [--report-hdf5] qk|ckpt|journal|merge|lock|llama2c|tokens|tokenizer MINUTES [libFuzzer options...]"
# memory errors libhdf5 makes inside memcpy/strdup are suppressed unless
# --report-hdf5 (tests/fuzz/asan.supp says why)
suppress=1
[ "${1:-}" = --report-hdf5 ] && { suppress=0; shift; }
[ $# -ge 2 ] || { echo "$usage" >&2; exit 2; }
loader=$1
minutes=$2
shift 2
case $loader in qk | ckpt | journal | merge | lock | llama2c | tokens | tokenizer) ;; *) echo "$usage" >&2; exit 2 ;; esac
case $minutes in '' | *[!0-9]*) echo "MINUTES must be a whole number; $usage" >&2; exit 2 ;; esac
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
cc=${CC:-clang-14}
if ! command -v "$cc" >/dev/null; then
  echo "run.sh: $cc not found; install clang-14 and libclang-rt-14-dev (or set CC to a clang with libFuzzer)" >&2
  exit 1
fi
if [ ! -d build-fuzz ]; then
  CC=$cc meson setup build-fuzz -Dfuzz=true -Db_sanitize=address,undefined -Dbuildtype=debugoptimized >/dev/null
fi
nice -n 15 ninja -C build-fuzz "tests/fuzz/fuzz_$loader" >/dev/null
fuzzer=$root/build-fuzz/tests/fuzz/fuzz_$loader
work=$root/build-fuzz/fuzz-$loader
mkdir -p "$work/corpus" "$work/artifacts"
export OMP_NUM_THREADS=1
export LSAN_OPTIONS=suppressions=$root/tests/fuzz/lsan.supp
# a request beyond the address space fails in the real program (malloc
# returns NULL, which libhdf5 reports as an error); ASan would abort instead
export ASAN_OPTIONS=allocator_may_return_null=1
[ $suppress -eq 1 ] && ASAN_OPTIONS=$ASAN_OPTIONS:suppressions=$root/tests/fuzz/asan.supp
log=$work/fuzz.log
echo "fuzzing $loader for $minutes min; log $log"
# -malloc_limit_mb: a loader that believes a size the file declares and
# allocates gigabytes is a bug in the loader (an "oom" crash input)
nice -n 15 "$fuzzer" -fork=1 -ignore_crashes=1 -ignore_ooms=1 -ignore_timeouts=1 \
  -max_total_time=$((minutes * 60)) -timeout=20 -rss_limit_mb=2048 -malloc_limit_mb=1024 \
  -close_fd_mask=3 -artifact_prefix="$work/artifacts/" "$@" \
  "$work/corpus" "$root/tests/fuzz/corpus/$loader" >"$log" 2>&1 || true
last=$(grep -E '^#[0-9]+:' "$log" | tail -1)
execs=$(echo "$last" | sed -E 's/^#([0-9]+):.*/\1/')
echo "executions: ${execs:-0}   last status: $last"
"$root/tests/fuzz/classify.sh" "$fuzzer" "$work/artifacts"
