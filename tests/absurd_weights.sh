#!/bin/sh
# A checkpoint whose parameters are finite but absurd (an unembedding of
# +-3e38, written with h5py as another program would): every command that
# loads it stops with a message naming the problem and the tensor, a
# non-zero exit, and no output written, instead of decoding garbage; a
# sane layer hybrid (per-layer kinds) still loads.
# usage: absurd_weights.sh /path/to/kapprox
. "$(dirname "$0")/cli_test.sh"
cd "$dir" || exit 1
py=/usr/bin/python3
if ! "$py" -c 'import h5py, numpy' 2>/dev/null; then
  echo "SKIP: /usr/bin/python3 with h5py and numpy is needed"
  exit 77
fi

sh "$here/tiny_text.sh" >t.txt
ok train --text t.txt --layers 1 --heads 2 --width 16 --ctx 16 --batch 2 --steps 2 --quiet --no-final-eval --out good.h5
# absurd FROM TO: TO is FROM with an unembedding of +-3e38
absurd() {
  cp "$1" "$2"
  "$py" - "$2" <<'PY' || note "h5py could not write the absurd checkpoint $2"
import sys, h5py, numpy as np
with h5py.File(sys.argv[1], "r+") as f:
    u = f["param/unembed"]
    u[...] = np.where(np.arange(u.size).reshape(u.shape) % 2 == 0, 3e38, -3e38).astype(np.float32)
PY
}
absurd good.h5 huge.h5
# the good checkpoint samples; the absurd one stops every command
ok sample --checkpoint good.h5 --length 5
why="its parameters are finite, but on a probe input"
expect 1 "$why" -- sample --checkpoint huge.h5 --length 20
grep -q "the largest parameter is 3e+38, in unembed" err || note "sample does not name the tensor: $(cat err)"
[ -s out ] && note "sample printed text from the absurd checkpoint: $(cat out)"
expect 1 "$why" -- dump-qk --checkpoint huge.h5 --text t.txt --out qk.h5
expect 1 "$why" -- eval --checkpoint huge.h5 --text t.txt
expect 1 "$why" -- eval --checkpoint good.h5 --teacher huge.h5 --text t.txt
expect 1 "$why" -- convert --from huge.h5 --attention performer --out student.h5
expect 1 "$why" -- finetune --from huge.h5 --text t.txt --out ft.h5 --steps 2 --quiet
expect 1 "$why" -- train --resume huge.h5 --text t.txt --out res.h5 --quiet
# a layer hybrid (a softmax layer beside a performer one) passes the probe
# and is refused the same way when absurd
ok train --text t.txt --layers 2 --heads 2 --width 16 --ctx 16 --batch 2 --steps 2 --quiet --no-final-eval --out two.h5
ok convert --from two.h5 --attention performer --softmax-layers 0 --out hy.h5 --quiet
ok sample --checkpoint hy.h5 --length 5
absurd hy.h5 hyhuge.h5
expect 1 "$why" -- sample --checkpoint hyhuge.h5 --length 5
for f in qk.h5 student.h5 ft.h5 res.h5; do
  [ ! -e "$f" ] || note "a refused command wrote $f"
  [ ! -e "$f.lock" ] || note "a refused command left $f.lock"
done
exit $fail
