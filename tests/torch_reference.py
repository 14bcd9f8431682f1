#!/usr/bin/python3
"""Independent float64 PyTorch reference for the C decoder.

usage: /usr/bin/python3 tests/torch_reference.py /path/to/kapprox

Trains a tiny decoder for 3 steps with `kapprox train`, which writes the
checkpoint and (hidden option --dump-grads) the next batch with the C loss
and gradients.  This script loads the checkpoint with h5py, rebuilds the
model from scratch in PyTorch in float64 (the architecture as documented in
experiments/decoder/dec_config.h and the README layout), recomputes loss and
gradients on the same batch with autograd and compares.

Tolerances.  The reference is float64, so the differences are the C code's
float32 round-off.  One float32 operation has relative error u = 2^-24; a
value at the end of a chain of K dependent sums carries about sqrt(K) u
(random-walk accumulation, errors uncorrelated).  Here K ~ 4C + 3T + V over
one block, times the depth (2 blocks, forward and backward): about 1000, so
sqrt(K) u ~ 2e-6.  We accept
  loss:      |loss_C - loss_ref| <= 10 sqrt(K) u |loss_ref|
  gradient:  ||g_C - g_ref|| <= 10 sqrt(K) u ||g_ref|| + 1e-9 per tensor
             (relative to the tensor's norm: tiny entries have no relative
             meaning in float32 after cancellation),
the factor 10 covering the spread of the random walk.  A real bug (a sign,
a missing term, a wrong index) gives relative errors of 1e-2 or more.

Exits 77 (meson: skipped) when torch or h5py cannot be imported.
"""
import math
import os
import subprocess
import sys
import tempfile

try:
    import h5py
    import numpy as np
    import torch
    import torch.nn.functional as F
except Exception as e:  # noqa: BLE001 - any import failure means "skip"
    print(f"SKIP: torch/h5py not importable with {sys.executable} ({e}); "
          "install python3-torch and python3-h5py or run with /usr/bin/python3")
    sys.exit(77)


def make_text(path):
    words = ["and", "the", "lord", "said", "unto", "moses", "behold", "earth", "light", "day", "night"]
    rng = np.random.default_rng(5)
    with open(path, "w", encoding="utf-8") as f:
        for _ in range(400):
            n = rng.integers(4, 10)
            f.write(" ".join(words[i] for i in rng.integers(0, len(words), n)) + ".\n")


def load(ck):
    f = h5py.File(ck, "r")
    assert f.attrs["format"] == b"kapprox-decoder" or f.attrs["format"] == "kapprox-decoder"
    c = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in f["config"].attrs.items()}
    params = {}

    def visit(name, obj):
        if isinstance(obj, h5py.Dataset):
            params[name] = torch.tensor(obj[()], dtype=torch.float64, requires_grad=True)

    f["param"].visititems(visit)
    return c, params


def forward(c, P, tokens, targets):
    L, H, C = int(c["layers"]), int(c["heads"]), int(c["width"])
    d, r, eps = C // H, int(c["rotary_dims"]), float(c["ln_eps"])
    B, T = tokens.shape
    assert c["attention"] == "softmax" and int(c["parallel_residual"]) == 1 and int(c["tied_embeddings"]) == 0
    inv_freq = float(c["rope_base"]) ** (-torch.arange(0, r, 2, dtype=torch.float64) / r)
    ang = torch.arange(T, dtype=torch.float64)[:, None] * inv_freq[None, :]
    cos, sin = torch.cat([ang.cos(), ang.cos()], -1), torch.cat([ang.sin(), ang.sin()], -1)

    def rope(x):  # (B,H,T,d): GPT-NeoX rotate_half on the first r dims
        xr, xp = x[..., :r], x[..., r:]
        x1, x2 = xr[..., : r // 2], xr[..., r // 2:]
        return torch.cat([xr * cos + torch.cat([-x2, x1], -1) * sin, xp], -1)

    x = P["embed"][tokens]
    mask = torch.ones(T, T, dtype=torch.bool).tril()
    for l in range(L):
        p = lambda n: P[f"layer{l}/{n}"]  # noqa: E731
        h = F.layer_norm(x, (C,), p("ln1_w"), p("ln1_b"), eps)
        q, k, v = (h @ p("qkv_w").T + p("qkv_b")).split(C, -1)
        q, k, v = (t.reshape(B, T, H, d).transpose(1, 2) for t in (q, k, v))
        q, k = rope(q), rope(k)
        s = (q @ k.transpose(-1, -2)) / math.sqrt(d)
        a = torch.softmax(s.masked_fill(~mask, float("-inf")), -1) @ v
        a = a.transpose(1, 2).reshape(B, T, C) @ p("proj_w").T + p("proj_b")
        h2 = F.layer_norm(x, (C,), p("ln2_w"), p("ln2_b"), eps)
        m = F.gelu(h2 @ p("fc_w").T + p("fc_b")) @ p("fcproj_w").T + p("fcproj_b")
        x = x + a + m
    x = F.layer_norm(x, (C,), P["lnf_w"], P["lnf_b"], eps)
    logits = x @ P["unembed"].T
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))


def main():
    if len(sys.argv) != 2:
        print(__doc__)
        return 2
    kapprox = sys.argv[1]
    with tempfile.TemporaryDirectory() as tmp:
        text, ck, gr = (os.path.join(tmp, n) for n in ("t.txt", "ck.h5", "g.h5"))
        make_text(text)
        cmd = [kapprox, "train", "--text", text, "--layers", "2", "--heads", "2", "--width", "32",
               "--ctx", "16", "--batch", "4", "--steps", "3", "--warmup", "1", "--lr", "1e-2",
               "--seed", "1", "--out", ck, "--dump-grads", gr, "--quiet", "--no-final-eval"]
        res = subprocess.run(cmd, capture_output=True, text=True)
        if res.returncode != 0:
            print("FAIL: kapprox train failed:", res.stderr)
            return 1
        c, P = load(ck)
        g = h5py.File(gr, "r")
        tokens = torch.tensor(g["tokens"][()], dtype=torch.long)
        targets = torch.tensor(g["targets"][()], dtype=torch.long)
        loss = forward(c, P, tokens, targets)
        loss.backward()
        u = 2.0 ** -24
        K = 1000
        tol = 10 * math.sqrt(K) * u
        ok = True
        loss_c = float(g.attrs["loss"])
        rel = abs(loss_c - loss.item()) / abs(loss.item())
        print(f"loss: C {loss_c:.9f}  torch float64 {loss.item():.9f}  relative error {rel:.2e} (tol {tol:.1e})")
        ok &= rel <= tol
        worst = 0.0
        for name, p in sorted(P.items()):
            gc = torch.tensor(g["grad"][name][()], dtype=torch.float64)
            gref = p.grad
            err = (gc - gref).norm().item()
            scale = gref.norm().item()
            r = err / (scale + 1e-300)
            worst = max(worst, r)
            bad = err > tol * scale + 1e-9
            if bad or os.environ.get("VERBOSE"):
                print(f"  {'FAIL' if bad else 'ok  '} {name:20s} |g| {scale:.3e}  relative error {r:.2e}")
            ok &= not bad
        print(f"gradients: {len(P)} tensors, worst relative error {worst:.2e} (tol {tol:.1e})")
        print("PASS" if ok else "FAIL")
        return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
