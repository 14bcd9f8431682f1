"""Shared by the h5py-driven tests: running kapprox, a training text and a
tiny checkpoint.  Importing it exits 77 (skipped) when h5py is missing."""
import os
import subprocess
import sys

try:
    import h5py  # noqa: F401
    import numpy  # noqa: F401
except ImportError:
    print("h5py/numpy missing: skipped")
    sys.exit(77)

KX = sys.argv[1]


def run(args):
    """Exit status and stderr of `kapprox ARGS`."""
    p = subprocess.run([KX] + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return p.returncode, p.stderr


def tiny_checkpoint(d):
    """Trains a 1-layer, width-16 decoder for 2 steps in directory d; its path."""
    text = os.path.join(d, "t.txt")
    with open(text, "w") as f:
        for i in range(300):
            f.write("and the lord said unto moses, behold the light of day %d.\n" % i)
    ck = os.path.join(d, "ck.h5")
    rc, err = run(["train", "--text", text, "--layers", "1", "--heads", "2", "--width", "16", "--ctx", "16",
                   "--batch", "2", "--steps", "2", "--quiet", "--no-final-eval", "--out", ck])
    if rc:
        raise SystemExit("train failed: " + err)
    return ck


def finish(failures):
    for f in failures:
        print("FAIL:", f)
    print("%d failures" % len(failures))
    sys.exit(1 if failures else 0)
