#!/usr/bin/python3
"""Checkpoints of dijiang and dijiang-code written before the DiJiang form
switches still load and train as then.

usage: /usr/bin/python3 tests/dijiang_compat.py /path/to/kapprox tests/data/dijiang-compat

The data folder holds, per kind, K.h5 (1 layer, width 8, trained 3 of 4
steps on text.txt, with its optimizer state; no /config/dijiang_form) and
K.next.h5, the gradient dump (loss, batch, every gradient) of resuming it
for the 4th step, both written by the program before the switches
(commit 591727c).  This script resumes K.h5 with the program under test and
checks two things:

- on this machine, bit for bit: resuming K.h5 (no dijiang_form) and a copy
  of it that states the preset's dijiang_form explicitly give the same loss
  and gradients, so an old file is read exactly as the preset;
- against the recorded dump, within round-off: another CPU or libm sums the
  same float32 terms in another order (OpenBLAS picks its kernels by CPU), so
  the last bits of the machine that wrote the dump are not a contract.  The
  longest reduction of one step sums the batch's n = B*T = 32 token
  contributions; reordering a float32 sum of n terms changes it by at most
  about 2n*eps times the terms' magnitude (eps = 2^-23), so each loss and
  gradient tensor may differ by 2n*eps = 7.6e-6 relative to its largest
  element.  A misread form changes them at O(1).

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


EPS32 = 2.0 ** -23


def resume(kapprox, data, tmp, kind, tag, form=None):
    """Resumes a copy of KIND.h5 for its 4th step (with FORM written into
    /config/dijiang_form when given); returns the path of the gradient dump."""
    ck, dump = os.path.join(tmp, f"{kind}-{tag}.h5"), os.path.join(tmp, f"{kind}-{tag}.next.h5")
    shutil.copy(os.path.join(data, kind + ".h5"), ck)
    if form is not None:
        with h5py.File(ck, "r+") as f:
            f["config"].attrs["dijiang_form"] = np.bytes_(form)
    res = subprocess.run([kapprox, "train", "--resume", ck, "--text", os.path.join(data, "text.txt"),
                          "--quiet", "--no-final-eval", "--out", ck, "--dump-grads", dump],
                         capture_output=True, text=True)
    if res.returncode != 0:
        raise RuntimeError(f"resuming {kind} ({tag}) failed: {res.stderr}")
    with h5py.File(ck, "r") as f:
        recorded = f["config"].attrs.get("dijiang_form")
    return dump, recorded


def grad_names(f):
    names = []
    f["grad"].visit(lambda n: names.append(n) if isinstance(f["grad"][n], h5py.Dataset) else None)
    return names


def main():
    if len(sys.argv) != 3:
        print(__doc__)
        return 2
    kapprox, data = sys.argv[1], sys.argv[2]
    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        for kind in ("dijiang", "dijiang-code"):
            try:
                implicit, form = resume(kapprox, data, tmp, kind, "old")
                if form is None:
                    raise RuntimeError("the resumed checkpoint records no dijiang_form")
                form = form.decode() if isinstance(form, bytes) else str(form)
                explicit, _ = resume(kapprox, data, tmp, kind, "explicit", form)
            except RuntimeError as e:
                print(f"FAIL {kind}: {e}")
                ok = False
                continue
            rec = h5py.File(os.path.join(data, kind + ".next.h5"), "r")
            a, b = h5py.File(implicit, "r"), h5py.File(explicit, "r")
            names = grad_names(rec)
            n_terms = rec["tokens"].size
            tol = 2 * n_terms * EPS32
            # 1. this machine: the old file and the explicit preset, bit for bit
            bitwise = a.attrs["loss"] == b.attrs["loss"] and all(
                np.array_equal(a["grad"][n][()], b["grad"][n][()]) for n in names)
            # 2. the writer's machine: within round-off
            same_batch = all(np.array_equal(rec[k][()], a[k][()]) for k in ("tokens", "targets"))
            loss_rel = abs(rec.attrs["loss"] - a.attrs["loss"]) / abs(rec.attrs["loss"])
            worst, worst_name = 0.0, ""
            for n in names:
                if n not in a["grad"]:
                    worst, worst_name = np.inf, n + " (missing)"
                    break
                r, g = rec["grad"][n][()].astype(np.float64), a["grad"][n][()].astype(np.float64)
                scale = np.abs(r).max()
                d = np.abs(r - g).max() / scale if scale > 0 else np.abs(g).max()
                if d > worst:
                    worst, worst_name = d, n
            print(f"[{kind}] dijiang_form {form!r}; old file vs explicit form on this machine: "
                  f"{'bit for bit' if bitwise else 'DIFFERENT'}; vs the recorded dump: loss "
                  f"{rec.attrs['loss']!r} then, {a.attrs['loss']!r} now (rel. {loss_rel:.2e}), "
                  f"{len(names)} gradients, worst rel. difference {worst:.2e} ({worst_name}); tolerance "
                  f"2*{n_terms}*eps = {tol:.2e}; same batch: {same_batch}")
            ok &= bitwise and same_batch and len(names) > 0 and loss_rel <= tol and worst <= tol
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
