#!/bin/sh
# Quick start, step 2: the whole test suite, in a normal build and in a
# build with AddressSanitizer + UndefinedBehaviorSanitizer.
#   ./test.sh           everything, both builds (what .ci/run runs)
#   ./test.sh --quick   the fast tier for the edit-build-test loop: the unit,
#                       command-line and fuzz-replay suites in the normal
#                       build (no valgrind, no Table 1/2 or reproduce-all runs)
set -eu
cd "$(dirname "$0")"
quick=0
case "${1:-}" in
  --quick) quick=1 ;;
  "") ;;
  *) echo "usage: ./test.sh [--quick]" >&2; exit 2 ;;
esac
./setup.sh --deps
[ -d build ] || meson setup build
ninja -C build
if [ "$quick" = 1 ]; then
  exec meson test -C build --print-errorlogs --num-processes 2 --suite unit --suite cli --suite fuzz \
    --no-suite slow
fi
[ -d build-san ] || meson setup build-san -Db_sanitize=address,undefined -Dbuildtype=debugoptimized
ninja -C build-san
meson test -C build --print-errorlogs --num-processes 2
UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
  meson test -C build-san --print-errorlogs --num-processes 2
