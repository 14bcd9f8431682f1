#!/usr/bin/python3
"""Sizes a file declares are not trusted.

usage: h5_declared_sizes.py /path/to/kapprox

1. A few-KB Q/K file declaring a 1 x 65536 x 16384 chunked dataset with only
   its first chunk written (uncompressed): refused before anything is
   allocated ("stores only").
2. The same shape gzip-compressed (legitimate: the storage says nothing):
   `kernel-error --max-tokens 8` reads only 8 tokens; the peak memory of the
   command and its reader stays far below the 4.3 GB the declared q and k
   would take as float64 (bound: 1 GB, while the 8 tokens read take 1 MB
   and the program's own buffers, sanitizer shadow included, some 100 MB).
3. A compressed layer declaring 2^44 values, read whole: refused as more
   than the machine's memory.
4. A checkpoint whose /config declares a far larger model than the file
   holds: refused before the model is allocated.
Exits 77 (skipped) without h5py.
"""
import os
import resource
import tempfile

from h5_test_common import finish, run, tiny_checkpoint

import h5py
import numpy as np

failures = []
COMMON = ["--m", "8", "--seeds", "0", "--schemes", "prf", "--quiet"]



def expect_refused(label, args, needle):
    rc, err = run(args)
    if rc != 1 or needle not in err:
        failures.append("%s: exit %d, want 1 with '%s': %s" % (label, rc, needle, err.strip()))


def qk_file(path, shape, chunks, compression):
    with h5py.File(path, "w") as f:
        f.attrs.create("format", np.bytes_("kapprox-qk"), dtype="S11")
        f.attrs["scaled"], f.attrs["causal"] = 1, 0
        g = f.create_group("layer0")
        for name, value in (("q", 0.01), ("k", 0.02)):
            ds = g.create_dataset(name, shape=shape, dtype="f4", chunks=chunks, compression=compression)
            ds[0, :chunks[1], :chunks[2]] = value


with tempfile.TemporaryDirectory() as d:
    sparse = os.path.join(d, "sparse.h5")
    qk_file(sparse, (1, 65536, 16384), (1, 8, 64), None)
    size = os.path.getsize(sparse)
    if size > 64 << 10:
        failures.append("setup: sparse file is %d bytes" % size)
    expect_refused("uncompressed, unwritten chunks", ["kernel-error", "--input", sparse, "--max-tokens", "8"] + COMMON,
                   "stores only")

    packed = os.path.join(d, "packed.h5")
    qk_file(packed, (1, 65536, 16384), (1, 8, 16384), "gzip")
    rc, err = run(["kernel-error", "--input", packed, "--max-tokens", "8"] + COMMON)
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    if rc != 0:
        failures.append("compressed, --max-tokens 8: exit %d: %s" % (rc, err.strip()))
    if peak_kb > 1 << 20:
        failures.append("compressed, --max-tokens 8: peak memory %d MB" % (peak_kb >> 10))

    huge = os.path.join(d, "huge.h5")
    qk_file(huge, (4096, 1 << 20, 4096), (1, 8, 4096), "gzip")
    expect_refused("compressed 2^44 values read whole", ["kernel-error", "--input", huge] + COMMON,
                   "more than this machine's")

    ck = tiny_checkpoint(d)
    with h5py.File(ck, "r+") as f:
        f["config"].attrs.modify("width", np.uint64(16384))
        f["config"].attrs.modify("vocab", np.uint64(1 << 20))
    expect_refused("checkpoint declaring a 34-billion-parameter model", ["sample", "--checkpoint", ck],
                   "declares a model of at least")

finish(failures)
