#!/usr/bin/python3
"""String attributes as real HDF5 clients write them are accepted.

usage: h5_client_strings.py /path/to/kapprox

Writes Q/K files whose root attribute `format` is stored in every way h5py
and numpy store a string (variable-length UTF-8 or ASCII, fixed-length
null-terminated, null-padded with and without room for a NUL, space-padded,
a one-element array), with `scaled`/`causal` as numpy integers and Python
booleans; `kernel-error` must read each.  A wrong or truncated value must
be refused with exit 1 and a message.  Then a checkpoint written by
`kapprox train` gets its string attributes (format, /config/attention)
rewritten by h5py in those forms and `sample` must still load it.
Exits 77 (skipped) without h5py.
"""
import os
import tempfile

from h5_test_common import finish, run, tiny_checkpoint

import h5py
import numpy as np

failures = []


def fixed(value, size, pad):
    """A fixed-length string type of `size` bytes with padding `pad`."""
    t = h5py.h5t.C_S1.copy()
    t.set_size(size)
    t.set_strpad(pad)
    return t, value.encode().ljust(size, b" " if pad == h5py.h5t.STR_SPACEPAD else b"\0")[:size]


def set_string(obj, name, form, value):
    if name in obj.attrs:
        del obj.attrs[name]
    if form == "vlen-utf8":
        obj.attrs[name] = value  # what `f.attrs["format"] = "kapprox-qk"` does
    elif form == "vlen-ascii":
        obj.attrs.create(name, value, dtype=h5py.string_dtype("ascii"))
    elif form == "numpy-S-exact":  # numpy 'S10' for a 10-char value: no NUL
        obj.attrs[name] = np.bytes_(value)
    elif form == "numpy-S-longer":
        obj.attrs.create(name, np.bytes_(value), dtype="S%d" % (len(value) + 6))
    elif form == "fixed-utf8":
        obj.attrs.create(name, value.encode(), dtype=h5py.string_dtype("utf-8", len(value)))
    elif form in ("nullterm", "spacepad"):
        pad = h5py.h5t.STR_NULLTERM if form == "nullterm" else h5py.h5t.STR_SPACEPAD
        t, raw = fixed(value, len(value) + (1 if form == "nullterm" else 5), pad)
        space = h5py.h5s.create(h5py.h5s.SCALAR)
        a = h5py.h5a.create(obj.id, name.encode(), t, space)
        a.write(np.array(raw, dtype="S%d" % len(raw)), mtype=t)
    elif form == "array-of-one":
        obj.attrs[name] = [value]
    else:
        raise ValueError(form)


FORMS = ["vlen-utf8", "vlen-ascii", "numpy-S-exact", "numpy-S-longer", "fixed-utf8", "nullterm", "spacepad",
         "array-of-one"]



def write_qk(path, form, value="kapprox-qk", flags="int"):
    rng = np.random.default_rng(0)
    with h5py.File(path, "w") as f:
        set_string(f, "format", form, value)
        if flags == "bool":
            f.attrs["scaled"], f.attrs["causal"] = False, True  # h5py: an enum
        else:
            f.attrs["scaled"], f.attrs["causal"] = np.int64(0), np.uint8(1)
        g = f.create_group("layer0")
        g["q"] = rng.standard_normal((2, 16, 8)).astype(np.float32)
        g["k"] = rng.standard_normal((2, 16, 8)).astype(np.float32)


def expect(ok, label, rc, err, needle=None):
    if ok and rc != 0:
        failures.append("%s: exit %d, want 0: %s" % (label, rc, err.strip()))
    if not ok and (rc != 1 or needle not in err):
        failures.append("%s: exit %d, want 1 with '%s': %s" % (label, rc, needle, err.strip()))


with tempfile.TemporaryDirectory() as d:
    common = ["--m", "8", "--seeds", "0", "--schemes", "prf", "--quiet"]
    for form in FORMS:
        for flags in ("int", "bool"):
            p = os.path.join(d, "qk-%s-%s.h5" % (form, flags))
            write_qk(p, form, flags=flags)
            rc, err = run(["kernel-error", "--input", p] + common)
            expect(True, "Q/K file, format as %s, flags as %s" % (form, flags), rc, err)
    # the value itself still has to be right: one character more or less
    for form in ("vlen-utf8", "numpy-S-exact", "nullterm", "spacepad"):
        for value in ("kapprox-q", "kapprox-qkx"):
            p = os.path.join(d, "wrong-%s.h5" % form)
            write_qk(p, form, value=value)
            rc, err = run(["kernel-error", "--input", p] + common)
            expect(False, "format %r as %s" % (value, form), rc, err, "expected \"kapprox-qk\"")

    ck = tiny_checkpoint(d)
    for form in FORMS:
        with h5py.File(ck, "r+") as f:
            set_string(f, "format", form, "kapprox-decoder")
            set_string(f["config"], "attention", form, "softmax")
        rc, err = run(["sample", "--checkpoint", ck, "--length", "5", "--seed", "1"])
        expect(True, "checkpoint, strings as %s" % form, rc, err)

finish(failures)
