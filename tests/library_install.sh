#!/bin/sh
# The installed library as a client sees it: `meson install` into a staging
# folder, the C example of docs/library.md built with pkg-config against it
# (shared and static) and run, `nm -D` on the installed libkapprox.so
# listing exactly the names the installed headers declare public, and the
# installed Python module loading the installed library.
# usage: library_install.sh BUILD_DIR SOURCE_DIR KAPPROX [CFLAGS]
# (CFLAGS: a sanitizer build's -fsanitize=..., which its library needs in the program too)
set -eu
build=$1 src=$2 kx=$3 san=${4:-}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

DESTDIR="$work/stage" meson install -C "$build" --no-rebuild --quiet >"$work/install.log" 2>&1 ||
  { cat "$work/install.log" >&2; fail "meson install into a staging folder"; }
pc=$(find "$work/stage" -name kapprox.pc)
[ -n "$pc" ] || fail "no kapprox.pc installed"
# the staged prefix: the .pc's own prefix under the staging folder
prefix="$work/stage$(sed -n 's/^prefix=//p' "$pc")"
pkgconf() { PKG_CONFIG_PATH=$(dirname "$pc") pkg-config --define-variable=prefix="$prefix" "$@" kapprox; }
libdir=$(pkgconf --variable=libdir)
incdir=$(pkgconf --variable=includedir)
for f in "$libdir/libkapprox.so.0" "$libdir/libkapprox.a" "$incdir/kapprox/kapprox.h"; do
  [ -e "$f" ] || fail "not installed: ${f#$work/stage}"
done
# the private headers stay in the source tree
[ "$(ls "$incdir/kapprox")" = "$(printf '%s\n' attention.h fmap.h kapprox.h kernel.h metrics.h qk.h sequence.h status.h)" ] ||
  fail "installed headers: $(ls "$incdir/kapprox" | tr '\n' ' ')"

# The C example, as the page shows it (the block under its snippet marker).
awk '/<!-- snippet: c-example/ {m = 1; next} m && /^```c/ {p = 1; next} p && /^```/ {exit} p' \
  "$src/docs/library.md" >"$work/example.c"
[ -s "$work/example.c" ] || fail "docs/library.md has no c-example block"
# strict C99 with every warning an error: the public headers stand alone
cc -std=c99 -Wall -Wextra -Werror -pedantic $san "$work/example.c" $(pkgconf --cflags --libs) -lm \
  -o "$work/example" || fail "the example does not build with pkg-config --cflags --libs kapprox"
LD_LIBRARY_PATH="$libdir" "$work/example" >"$work/out.txt" 2>"$work/err.txt" ||
  { cat "$work/err.txt" >&2; fail "the example exited $?"; }
# it really ran on the staged library, not on another copy
LD_LIBRARY_PATH="$libdir" ldd "$work/example" | grep -q "$libdir/libkapprox.so.0" ||
  fail "the example did not load the staged libkapprox.so.0"
cc -std=c99 $san "$work/example.c" $(pkgconf --static --cflags --libs | sed 's/-lkapprox/-l:libkapprox.a/') -lm -o "$work/example-static" ||
  fail "the example does not build with pkg-config --static"
ldd "$work/example-static" | grep -q libkapprox && fail "the static build still needs libkapprox.so"
"$work/example-static" >"$work/out-static.txt" || fail "the statically linked example exited $?"
cmp -s "$work/out.txt" "$work/out-static.txt" || fail "static and shared examples print different things"

# What it prints: the version, the command's Sobol' points (same digits:
# both print %.17g), an estimate of exp(|x|^2), the refusal's message.
head -n 1 "$work/out.txt" | grep -qx "libkapprox $("$kx" --version | awk '{print $NF}')" ||
  fail "version line '$(head -n 1 "$work/out.txt")' is not kapprox's ($("$kx" --version))"
"$kx" points --sequence sobol --dim 2 -n 4 | tail -n +2 >"$work/points.txt"
sed -n 2,5p "$work/out.txt" | cmp -s - "$work/points.txt" ||
  fail "the example's Sobol' points differ from kapprox points: $(sed -n 2,5p "$work/out.txt" | tr '\n' ' ')"
grep -q "^phi(x0).phi(x0) = " "$work/out.txt" || fail "no feature line"
# the estimate with 8 features is a positive number, not inf/nan
awk -F'[=,]' '/^phi/ { if (!($2 > 0 && $2 < 100)) exit 1 }' "$work/out.txt" || fail "feature estimate: $(grep ^phi "$work/out.txt")"
grep -q "^refused: unknown feature-map scheme 'no-such-map'" "$work/out.txt" ||
  fail "the refusal line: $(tail -n 1 "$work/out.txt")"

# nm -D: the exported names are exactly the KX_API declarations of the installed headers
nm -D --defined-only "$libdir/libkapprox.so" | awk '{print $NF}' | sort >"$work/exported.txt"
grep -hv '^ *#' "$incdir"/kapprox/*.h | sed 's|/\*.*\*/||g' | tr '\n' ' ' | tr ';' '\n' |
  sed -n 's/.*KX_API[^(\[]*[^A-Za-z0-9_(\[]\([A-Za-z_][A-Za-z0-9_]*\) *[(\[].*/\1/p' | sort -u >"$work/declared.txt"
[ "$(wc -l <"$work/declared.txt")" -ge 40 ] || fail "only $(wc -l <"$work/declared.txt") public names parsed from the headers"
if ! cmp -s "$work/exported.txt" "$work/declared.txt"; then
  diff "$work/declared.txt" "$work/exported.txt" >&2 || true
  fail "nm -D libkapprox.so differs from the headers' public names (< declared only, > exported only)"
fi
# The Python module installed beside the library loads that library (relative to itself, so a
# staged install too), not the build's, and computes with it
init=$(find "$work/stage" -path '*/kapprox/__init__.py')
if [ -z "$init" ]; then
  echo "no Python module installed (no /usr/bin/python3 at configuration)"
elif /usr/bin/python3 -c 'import numpy' 2>/dev/null; then
  env -u LD_LIBRARY_PATH PYTHONPATH="$(dirname "$(dirname "$init")")" /usr/bin/python3 -c '
import os, kapprox
print(os.path.realpath(kapprox._lib._name))
print(os.path.dirname(os.path.realpath(kapprox.__file__)))
print(kapprox.version())' >"$work/py.txt" || fail "import kapprox from the staged install"
  [ "$(sed -n 1p "$work/py.txt")" = "$(realpath "$libdir/libkapprox.so.0")" ] ||
    fail "the installed module loaded $(sed -n 1p "$work/py.txt"), not $libdir/libkapprox.so.0"
  [ "$(sed -n 2p "$work/py.txt")" = "$(realpath "$(dirname "$init")")" ] || fail "imported another kapprox module"
  [ "$(sed -n 3p "$work/py.txt")" = "$(head -n 1 "$work/out.txt" | cut -d' ' -f2)" ] || fail "module version"
  echo "installed Python module: $(sed -n 2p "$work/py.txt" | sed "s|$work/stage||")"
else
  echo "skipped the installed Python module: no numpy for /usr/bin/python3"
fi
echo "library_install: $(wc -l <"$work/exported.txt") public names exported, example built shared and static"
