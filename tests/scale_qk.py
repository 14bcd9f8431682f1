#!/usr/bin/python3
"""Scales the query/key/value projection of every layer of a kapprox
checkpoint in place, so that exp features without the |x|^2 term overflow:
the diverging run of tests/budget.sh and tests/factors.sh.

usage: /usr/bin/python3 tests/scale_qk.py CHECKPOINT.h5 FACTOR"""
import sys

import h5py

path, factor = sys.argv[1], float(sys.argv[2])
with h5py.File(path, "r+") as f:
    names = [n for n in f["param"] if n.startswith("layer")]
    for n in names:
        f[f"param/{n}/qkv_w"][...] = f[f"param/{n}/qkv_w"][...] * factor
