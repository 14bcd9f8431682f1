#!/usr/bin/python3
"""Byte-flipping mutator that looks for HDF5 files that kill a command.

usage: mutate.py SEED_FILE OUT_DIR TRIES RNG_SEED -- COMMAND... {}

Each try copies SEED_FILE, overwrites 1-8 random bytes (random value, bit
flip, or 0x00/0xff) outside the datasets' raw values (found with h5py: the
library's metadata is what can crash it), runs COMMAND with {} replaced by the mutant and keeps
the mutant in OUT_DIR when the process died by a signal (SIGSEGV, SIGBUS,
SIGABRT, SIGFPE, SIGILL).  Deterministic for a given RNG_SEED.  This is how
the regression inputs in tests/hostile/ were found (see docs/reliability.md,
"Files that crash libhdf5"); it is not part of the test suite.
"""
import os
import random
import subprocess
import sys

KILLERS = {-11: "SIGSEGV", -7: "SIGBUS", -6: "SIGABRT", -8: "SIGFPE", -4: "SIGILL"}


def metadata_positions(path, size):
    """Byte offsets not inside any contiguous dataset's values, and those
    inside object headers (attributes, layouts, types, links)."""
    import h5py
    raw = bytearray(size)
    headers = []
    def visit(name, obj):
        info = h5py.h5o.get_info(obj.id)
        headers.extend(range(info.addr, min(size, info.addr + info.hdr.space.total + 16)))
        if isinstance(obj, h5py.Dataset):
            off = obj.id.get_offset()
            if off is not None:
                n = obj.id.get_storage_size()
                raw[off:off + n] = b"\x01" * len(raw[off:off + n])
    with h5py.File(path, "r") as f:
        visit("/", f)
        f.visititems(visit)
    return [i for i in range(size) if not raw[i]], headers


def mutate(data, positions, rng):
    b = bytearray(data)
    anywhere, headers = positions
    for _ in range(rng.randint(1, 8)):
        i = rng.choice(headers if rng.random() < 0.7 else anywhere)
        kind = rng.randrange(4)
        if kind == 0:
            b[i] = rng.randrange(256)
        elif kind == 1:
            b[i] ^= 1 << rng.randrange(8)
        elif kind == 2:
            b[i] = 0
        else:
            b[i] = 0xFF
    return bytes(b)


def rerun(argv):
    try:
        return subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=20).returncode
    except subprocess.TimeoutExpired:
        return "timeout"


def main():
    sep = sys.argv.index("--")
    seed_file, out_dir, tries, rng_seed = sys.argv[1:sep]
    cmd = sys.argv[sep + 1:]
    data = open(seed_file, "rb").read()
    rng = random.Random(int(rng_seed))
    positions = metadata_positions(seed_file, len(data))
    os.makedirs(out_dir, exist_ok=True)
    work = os.path.join(out_dir, "current.h5")
    found = 0
    for t in range(int(tries)):
        mutant = mutate(data, positions, rng)
        with open(work, "wb") as f:
            f.write(mutant)
        argv = [work if a == "{}" else a for a in cmd]
        try:
            rc = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                timeout=20).returncode
        except subprocess.TimeoutExpired:
            rc = "timeout"
        if rc in KILLERS and rerun(argv) != rc:
            rc = "flaky"  # kept only when the death repeats
        if rc in KILLERS or rc == "timeout":
            name = os.path.join(out_dir, "%s-%s-%d.h5" % (os.path.basename(seed_file).rsplit(".", 1)[0],
                                                          KILLERS.get(rc, "timeout"), t))
            with open(name, "wb") as f:
                f.write(mutant)
            found += 1
            print(name, flush=True)
        if t % 1000 == 999:
            print("tries %d, kept %d" % (t + 1, found), flush=True)
    os.remove(work)
    print("tries %s, kept %d" % (tries, found), file=sys.stderr)


if __name__ == "__main__":
    main()
