#!/usr/bin/python3
"""Checkpoints of dijiang and dijiang-code written before the DiJiang form
switches still load and train bit for bit as then.

usage: /usr/bin/python3 tests/dijiang_compat.py /path/to/kapprox tests/data/dijiang-compat

The data folder holds, per kind, K.h5 (1 layer, width 8, trained 3 of 4
steps on text.txt, with its optimizer state; no /config/dijiang_form) and
K.next.h5, the gradient dump (loss, batch, every gradient) of resuming it
for the 4th step, both written by the program before the switches
(commit 591727c).  This script resumes K.h5 with the program under test and
requires the same loss and gradients, bit for bit.  The bits are those of
the build that wrote them, the default release build (meson's buildtype
release, no sanitizer): another optimisation level vectorises the decoder's
float reductions in another order, so tests/meson.build runs this check
only in that configuration.

Exits 77 (meson: skipped) when h5py or numpy cannot be imported."""
import os
import shutil
import subprocess
import sys
import tempfile

try:
    import h5py
    import numpy as np
except Exception as e:  # noqa: BLE001 - any import failure means "skip"
    print(f"SKIP: h5py/numpy not importable with {sys.executable} ({e})")
    sys.exit(77)


def main():
    if len(sys.argv) != 3:
        print(__doc__)
        return 2
    kapprox, data = sys.argv[1], sys.argv[2]
    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        for kind in ("dijiang", "dijiang-code"):
            ck, dump = os.path.join(tmp, kind + ".h5"), os.path.join(tmp, kind + ".next.h5")
            shutil.copy(os.path.join(data, kind + ".h5"), ck)
            res = subprocess.run([kapprox, "train", "--resume", ck, "--text", os.path.join(data, "text.txt"),
                                  "--quiet", "--no-final-eval", "--out", ck, "--dump-grads", dump],
                                 capture_output=True, text=True)
            if res.returncode != 0:
                print(f"FAIL {kind}: resuming the old checkpoint failed: {res.stderr}")
                ok = False
                continue
            old, new = h5py.File(os.path.join(data, kind + ".next.h5"), "r"), h5py.File(dump, "r")
            same = old.attrs["loss"] == new.attrs["loss"]
            names = []
            old["grad"].visit(lambda n: names.append(n) if isinstance(old["grad"][n], h5py.Dataset) else None)
            differ = [n for n in names if n not in new["grad"] or not np.array_equal(old["grad"][n][()],
                                                                                     new["grad"][n][()])]
            for key in ("tokens", "targets"):
                same &= np.array_equal(old[key][()], new[key][()])
            print(f"[{kind}] loss {old.attrs['loss']!r} then, {new.attrs['loss']!r} now; {len(names)} gradients, "
                  f"{len(differ)} differ{': ' + ', '.join(differ[:5]) if differ else ''}")
            ok &= same and not differ and len(names) > 0
            with h5py.File(ck, "r") as f:
                form = f["config"].attrs.get("dijiang_form")
                print(f"[{kind}] the resumed checkpoint records dijiang_form = {form!r}")
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
