#!/bin/sh
# A full disk while an HDF5 file is written: a clear message, exit 1, no
# crash at exit (libhdf5 1.10 dies in H5F__close_cb when a close failed),
# the previous file intact and no temporary left behind.  The full disk is a
# file size limit (ulimit -f): kapprox ignores SIGXFSZ itself, so its writes
# fail with EFBIG as they would with ENOSPC.  It starts with the signal at
# its default action (env --default-signal: a parent, Python for one, may
# have left it ignored, and this shell could not undo that).
# usage: h5_disk_full.sh /path/to/kapprox
kx="$1"
dflt=
env --default-signal=XFSZ true 2>/dev/null && dflt="env --default-signal=XFSZ"
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
fail=0
sh "$(dirname "$0")/tiny_text.sh" >"$dir/t.txt"
tiny="--text $dir/t.txt --layers 1 --heads 2 --width 16 --ctx 16 --batch 2 --quiet --no-final-eval"

# limited: runs "$@" with files limited to $1 blocks (512 or 1024 bytes by
# shell; every limit below is far under the sizes written) and checks it ends
# with exit 1 and "File too large", leaving $out as it was
limited() {
  blocks="$1"; out="$2"; shift 2
  before=$(cksum "$out" 2>/dev/null)
  (ulimit -f "$blocks"; exec $dflt "$kx" "$@") >"$dir/stdout" 2>"$dir/err"
  got=$?
  if [ "$got" -ne 1 ] || ! grep -q "File too large" "$dir/err"; then
    echo "FAIL: kapprox $* under ulimit -f $blocks: exit $got (want 1 and 'File too large'):"; cat "$dir/err"; fail=1
  fi
  if [ "$(cksum "$out" 2>/dev/null)" != "$before" ]; then echo "FAIL: kapprox $*: $out changed"; fail=1; fi
  if ls "$out".tmp.* >/dev/null 2>&1; then echo "FAIL: kapprox $*: temporary files left: $(ls "$out".tmp.*)"; fail=1; fi
}

"$kx" train $tiny --steps 2 --out "$dir/ck.h5" >/dev/null 2>&1 || { echo "FAIL: setup train"; exit 1; }
# the checkpoint is 80 KB: a 20-40 KB limit stops its write
cp "$dir/ck.h5" "$dir/old.h5"
limited 40 "$dir/old.h5" train $tiny --steps 2 --out "$dir/old.h5"
limited 40 "$dir/new.h5" train $tiny --steps 2 --out "$dir/new.h5"
limited 40 "$dir/res.h5" train --text "$dir/t.txt" --resume "$dir/ck.h5" --quiet --no-final-eval --out "$dir/res.h5"
# Q/K writers: synth-qk (100 KB) and dump-qk (about 6 KB; limit 2-4 KB)
"$kx" synth-qk --out "$dir/qk.h5" --layers 1 --heads 1 --tokens 4 --dim 2 >/dev/null 2>&1
limited 40 "$dir/qk.h5" synth-qk --out "$dir/qk.h5" --layers 2 --heads 4 --tokens 256 --dim 16
limited 4 "$dir/dump.h5" dump-qk --checkpoint "$dir/ck.h5" --text "$dir/t.txt" --out "$dir/dump.h5"
# the other HDF5 writers: points (256 KB) and attention maps (400 KB)
limited 40 "$dir/pts.h5" points --out "$dir/pts.h5" --count 4096 --dim 8
limited 40 "$dir/maps.h5" attn-maps --out "$dir/maps.h5" --tokens 128 --m 8 --schemes prf
exit $fail
