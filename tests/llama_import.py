#!/usr/bin/python3
"""kapprox import on llama2.c checkpoints (docs/llama.md#importing-a-llama2c-checkpoint).

usage: llama_import.py /path/to/kapprox /path/to/stories260K.bin

- The legacy export (the project's stories260K.bin), the same model
  rewritten as a version-1 float32 export, and a legacy export with a
  classifier of its own import to checkpoints with the file's tensors, bit
  for bit, and the recorded architecture; --ctx sets the context.
- Bad files are refused with a message naming the problem, exit status 1
  and no output: an empty file, one shorter than its header, a truncated
  one, one longer than its tensors, zero and negative sizes, heads that do
  not divide the width, key/value heads that do not divide the heads, a
  non-finite weight, the int8 export (version 2, the message names the
  export to use) and an unknown version.
Exit 77 when numpy or h5py is missing."""
import os
import struct
import subprocess
import sys
import tempfile

try:
    import h5py
    import numpy as np
except ImportError as e:
    print(f"skipped: {e}")
    sys.exit(77)

KX, MODEL = sys.argv[1], sys.argv[2]
failures = []


def fail(msg):
    print("FAIL:", msg)
    failures.append(msg)


def split_legacy(raw):
    """The legacy file's sizes and tensors in file order (numpy, float32)."""
    C, Fh, L, H, Hkv, V, S = struct.unpack("<7i", raw[:28])
    shared, V = V > 0, abs(V)
    d = C // H
    KV = Hkv * d
    shapes = [("tok", (V, C)), ("att", (L, C)), ("wq", (L, C, C)), ("wk", (L, KV, C)), ("wv", (L, KV, C)),
              ("wo", (L, C, C)), ("ffn", (L, C)), ("w1", (L, Fh, C)), ("w2", (L, C, Fh)), ("w3", (L, Fh, C)),
              ("norm", (C,)), ("fcr", (S, d // 2)), ("fci", (S, d // 2))] + ([] if shared else [("cls", (V, C))])
    data, pos, t = np.frombuffer(raw[28:], dtype="<f4"), 0, {}
    for name, shape in shapes:
        n = int(np.prod(shape))
        t[name] = data[pos:pos + n].reshape(shape)
        pos += n
    assert pos == data.size
    return (C, Fh, L, H, Hkv, V, S), shared, t


def v1_bytes(sizes, shared, t):
    """llama2.c's version-1 export of the same tensors: magic, version, the
    sizes, the shared flag, padding to 256 bytes, then norms, embedding,
    the attention and feed-forward weights of all layers in turn."""
    hdr = struct.pack("<Ii7iB", 0x616B3432, 1, *sizes, int(shared))
    order = ["att", "ffn", "norm", "tok", "wq", "wk", "wv", "wo", "w1", "w2", "w3"] + ([] if shared else ["cls"])
    return hdr + b"\0" * (256 - len(hdr)) + b"".join(t[n].astype("<f4").tobytes() for n in order)


def run_import(src, out, *extra):
    return subprocess.run([KX, "import", "--from", src, "--out", out, *extra], capture_output=True, text=True)


def check_imported(label, out, sizes, shared, t, ctx=None):
    C, Fh, L, H, Hkv, V, S = sizes
    f = h5py.File(out, "r")
    c = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in f["config"].attrs.items()}
    want = {"architecture": "llama", "tokens": "ids", "width": C, "ffn_hidden": Fh, "layers": L, "heads": H,
            "kv_heads": Hkv, "vocab": V, "ctx": ctx or S, "tied_embeddings": int(shared), "rotary_dims": C // H}
    for k, v in want.items():
        if c.get(k) != v:
            fail(f"{label}: /config/{k} = {c.get(k)!r}, expected {v!r}")
    KV = Hkv * (C // H)
    p = f["param"]
    pairs = [("embed", t["tok"]), ("lnf_w", t["norm"])] + ([] if shared else [("unembed", t["cls"])])
    for l in range(L):
        pairs += [(f"layer{l}/ln1_w", t["att"][l]), (f"layer{l}/ln2_w", t["ffn"][l]),
                  (f"layer{l}/qkv_w", np.concatenate([t["wq"][l], t["wk"][l], t["wv"][l]])),
                  (f"layer{l}/proj_w", t["wo"][l]), (f"layer{l}/fc_w", t["w1"][l]),
                  (f"layer{l}/fcproj_w", t["w2"][l]), (f"layer{l}/fc3_w", t["w3"][l])]
    for name, ref in pairs:
        got = p[name][()]
        if got.shape != ref.shape or not np.array_equal(got.view(np.uint32), ref.astype("<f4").view(np.uint32)):
            fail(f"{label}: /param/{name} is not the file's tensor bit for bit")
    extra = set()
    p.visititems(lambda n, o: extra.add(n) if isinstance(o, h5py.Dataset) else None)
    extra -= {n for n, _ in pairs}
    if extra:
        fail(f"{label}: tensors that llama2.c's model does not have: {sorted(extra)}")
    print(f"[{label}] imported: {len(pairs)} tensors bit for bit, config as the header says")


def refuse(label, tmp, data, phrase):
    src, out = os.path.join(tmp, "bad.bin"), os.path.join(tmp, "bad.h5")
    with open(src, "wb") as f:
        f.write(data)
    r = run_import(src, out)
    msg = r.stderr.strip()
    if r.returncode != 1 or phrase not in msg or os.path.exists(out):
        fail(f"{label}: exit {r.returncode}, output {'written' if os.path.exists(out) else 'absent'}, "
             f"message {msg!r} (expected exit 1, no output, and {phrase!r})")
    else:
        print(f"[{label}] refused: {msg}")


def main():
    raw = open(MODEL, "rb").read()
    sizes, shared, t = split_legacy(raw)
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "legacy.h5")
        r = run_import(MODEL, out)
        if r.returncode:
            fail(f"legacy import: {r.stderr}")
        else:
            check_imported("legacy", out, sizes, shared, t)
        v1 = os.path.join(tmp, "v1.bin")
        open(v1, "wb").write(v1_bytes(sizes, shared, t))
        r = run_import(v1, os.path.join(tmp, "v1.h5"), "--ctx", "128")
        if r.returncode:
            fail(f"version-1 import: {r.stderr}")
        else:
            check_imported("version 1, --ctx 128", os.path.join(tmp, "v1.h5"), sizes, shared, t, ctx=128)
        # a classifier of its own: negative vocabulary size, the classifier after the rotary tables
        sep = dict(t, cls=(t["tok"] * 0.5).astype("<f4"))
        C, Fh, L, H, Hkv, V, S = sizes
        sep_raw = struct.pack("<7i", C, Fh, L, H, Hkv, -V, S) + raw[28:] + sep["cls"].tobytes()
        open(os.path.join(tmp, "sep.bin"), "wb").write(sep_raw)
        r = run_import(os.path.join(tmp, "sep.bin"), os.path.join(tmp, "sep.h5"))
        if r.returncode:
            fail(f"separate classifier: {r.stderr}")
        else:
            check_imported("legacy, separate classifier", os.path.join(tmp, "sep.h5"), sizes, False, sep)

        def header(**kw):
            v = dict(zip(["dim", "hidden", "layers", "heads", "kv", "vocab", "seq"], sizes), **kw)
            return struct.pack("<7i", *v.values()) + raw[28:]

        refuse("empty file", tmp, b"", "shorter than the header")
        refuse("short file", tmp, raw[:20], "shorter than the header")
        refuse("truncated", tmp, raw[:-100], "truncated")
        refuse("longer than its tensors", tmp, raw + b"\0" * 8, "longer than its tensors")
        refuse("zero width", tmp, header(dim=0), "dim is 0")
        refuse("negative layers", tmp, header(layers=-1), "n_layers is -1")
        refuse("heads not dividing the width", tmp, header(heads=7), "n_heads (7) does not divide dim (64)")
        refuse("kv heads not dividing the heads", tmp, header(kv=3), "n_kv_heads (3) does not divide n_heads (8)")
        nan = bytearray(raw)
        nan[28 + 4 * 100:28 + 4 * 101] = struct.pack("<f", float("nan"))
        refuse("NaN weight", tmp, bytes(nan), "holds nan")
        q8 = struct.pack("<Ii7iB", 0x616B3432, 2, *sizes, 1)
        refuse("int8 export", tmp, q8 + b"\0" * (256 - len(q8)) + b"\0" * 4096, "export.py --version 1")
        v3 = struct.pack("<Ii7iB", 0x616B3432, 3, *sizes, 1)
        refuse("unknown version", tmp, v3 + b"\0" * 300, "version 3")
    print("PASS" if not failures else f"FAIL ({len(failures)})")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
