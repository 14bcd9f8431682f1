#!/bin/sh
# Writes the King James Bible as training text for `kapprox train`:
#   data/make_corpus.sh [OUT]        (default OUT: kjv.txt)
# One verse per line, the reference ("Ge1:1 ") removed, from Debian's
# bible-kjv package (apt-get install bible-kjv).  Deterministic: the same
# package version gives the same bytes (31102 lines, about 4.3 MB).
# `kapprox train` without --text produces the same file itself (in
# ~/.cache/kapprox/kjv.txt) by the same command, so this script is only for
# looking at the text or using it elsewhere.  The train/validation split is
# made by `kapprox train`: every 20th line (lines 20, 40, ...) is validation.
set -eu
out=${1:-kjv.txt}
if ! command -v bible >/dev/null 2>&1; then
  echo "make_corpus.sh: error: the 'bible' program is missing; install it with: apt-get install bible-kjv" >&2
  exit 1
fi
tmp="$out.tmp.$$"
trap 'rm -f "$tmp"' EXIT
bible -f "Gen1:1-Rev22:21" | sed 's/^[^ ]* //' > "$tmp"
lines=$(wc -l < "$tmp")
if [ "$lines" -ne 31102 ]; then
  echo "make_corpus.sh: error: expected 31102 verses, got $lines (is bible-kjv complete?)" >&2
  exit 1
fi
mv "$tmp" "$out"
trap - EXIT
