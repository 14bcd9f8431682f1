#!/bin/sh
# Quick start, step 2: the whole test suite, in a normal build and in a
# build with AddressSanitizer + UndefinedBehaviorSanitizer.
set -eu
cd "$(dirname "$0")"
./setup.sh --deps
[ -d build ] || meson setup build
[ -d build-san ] || meson setup build-san -Db_sanitize=address,undefined -Dbuildtype=debugoptimized
ninja -C build
ninja -C build-san
meson test -C build --print-errorlogs --num-processes 2
UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
  meson test -C build-san --print-errorlogs --num-processes 2
