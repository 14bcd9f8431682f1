#!/usr/bin/python3
"""Writes the HDF5 files in this directory that crash libhdf5 1.10.8 itself.

usage: make_crash_inputs.py OUT_DIR

Each is a small file as h5py writes it, with one variable-length string
attribute whose global-heap reference (collection address, object index)
has its index replaced by a huge one.  H5Aread of that attribute makes
H5HG_read index past the heap's object table: SIGSEGV inside libhdf5
(H5HG_read <- H5T__conv_vlen <- H5Aread), before any check of ours can run.
The reader in a child process (core/kx_sandbox.h) turns this into
"malformed HDF5 file '...': the HDF5 library crashed reading it".

  qk-format-heap-index.h5          Q/K file, root attribute `format`
  ckpt-format-heap-index.h5        checkpoint, root attribute `format`
  ckpt-attention-heap-index.h5     checkpoint whose format and version are
                                   right; /config attribute `attention`

The two other files here were found by mutate.py (random bytes of the
metadata) from h5py-written files with variable-length string attributes:
  ckpt-mutant-heap-copy.h5   SIGSEGV in memcpy under H5HG_read (H5Aread of
                             `format`); seed: a 2-step checkpoint whose
                             `format` and `attention` h5py rewrote, mutate.py
                             RNG seed 8, try 1110, command `sample`
  qk-mutant-heap-loop.h5     endless loop in H5HG__protect/H5F_sizeof_size
                             under H5Aread of `format`; seed: a Q/K file as
                             the qk-write snippet of docs/file-formats.md
                             writes it, RNG seed 7, try 422, command
                             `kernel-error --max-tokens 8`
"""
import os
import struct
import sys

import h5py
import numpy as np


def break_heap_index(path, value):
    """Replaces the object index of the vlen reference to `value`."""
    data = bytearray(open(path, "rb").read())
    hits = []
    at = data.find(b"GCOL")
    while at >= 0:
        ref = struct.pack("<IQ", len(value.encode()), at)
        i = data.find(ref)
        while i >= 0:
            hits.append(i)
            i = data.find(ref, i + 1)
        at = data.find(b"GCOL", at + 1)
    if len(hits) != 1:
        raise SystemExit("%s: found %d references to %r" % (path, len(hits), value))
    data[hits[0] + 12:hits[0] + 16] = struct.pack("<I", 0x7FFFFFFF)
    open(path, "wb").write(bytes(data))


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)

    p = os.path.join(out, "qk-format-heap-index.h5")
    with h5py.File(p, "w") as f:
        f.attrs["format"] = "kapprox-qk"  # h5py: variable-length UTF-8
        f.attrs["scaled"], f.attrs["causal"] = 1, 1
        g = f.create_group("layer0")
        g["q"] = np.full((1, 4, 2), 0.25, dtype="f4")
        g["k"] = np.full((1, 4, 2), 0.5, dtype="f4")
    break_heap_index(p, "kapprox-qk")

    p = os.path.join(out, "ckpt-format-heap-index.h5")
    with h5py.File(p, "w") as f:
        f.attrs["format"] = "kapprox-decoder"
        f.attrs["format_version"] = np.uint64(1)
    break_heap_index(p, "kapprox-decoder")

    p = os.path.join(out, "ckpt-attention-heap-index.h5")
    with h5py.File(p, "w") as f:
        f.attrs.create("format", np.bytes_("kapprox-decoder"))
        f.attrs["format_version"] = np.uint64(1)
        c = f.create_group("config")
        for name, v in (("vocab", 4), ("ctx", 4), ("layers", 1), ("heads", 1), ("width", 4), ("rotary_dims", 0)):
            c.attrs[name] = np.uint64(v)
        c.attrs["rope_base"], c.attrs["ln_eps"] = 10000.0, 1e-5
        c.attrs["attention"] = "softmax"
    break_heap_index(p, "softmax")


if __name__ == "__main__":
    main()
