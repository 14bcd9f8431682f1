#!/usr/bin/python3
"""Independent float64 PyTorch reference for the C decoder.

usage: /usr/bin/python3 tests/torch_reference.py /path/to/kapprox [ATTENTION]

ATTENTION is the attention kind to train and check (default softmax); every
kind the reference knows is a function in the ATTENTION table below.

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
one block, times the depth (2 blocks, forward and backward): K = 4 (4C + 3T
+ V), about 1000 at T = 16, so sqrt(K) u ~ 2e-6.  We accept
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


def rope_fn(c, T):
    """GPT-NeoX rotate_half rotary on the first rotary_dims dims of (B,H,T,d)."""
    r = int(c["rotary_dims"])
    inv_freq = float(c["rope_base"]) ** (-torch.arange(0, r, 2, dtype=torch.float64) / r)
    ang = torch.arange(T, dtype=torch.float64)[:, None] * inv_freq[None, :]
    cos, sin = torch.cat([ang.cos(), ang.cos()], -1), torch.cat([ang.sin(), ang.sin()], -1)

    def rope(x):
        xr, xp = x[..., :r], x[..., r:]
        x1, x2 = xr[..., : r // 2], xr[..., r // 2:]
        return torch.cat([xr * cos + torch.cat([-x2, x1], -1) * sin, xp], -1)

    return rope


def heads(c, p, h, rope):
    """q, k, v (B,H,T,d) from the teacher's qkv layout, rotary on q and k."""
    H, C = int(c["heads"]), int(c["width"])
    B, T, _ = h.shape
    q, k, v = (h @ p("qkv_w").T + p("qkv_b")).split(C, -1)
    q, k, v = (t.reshape(B, T, H, C // H).transpose(1, 2) for t in (q, k, v))
    return rope(q), rope(k), v


def merge(o):
    """(B,H,T,d) -> (B,T,C)."""
    B, H, T, d = o.shape
    return o.transpose(1, 2).reshape(B, T, H * d)


def attn_softmax(c, p, h, rope):
    q, k, v = heads(c, p, h, rope)
    T, d = q.shape[-2], q.shape[-1]
    mask = torch.ones(T, T, dtype=torch.bool).tril()
    s = (q @ k.transpose(-1, -2)) / math.sqrt(d)
    a = torch.softmax(s.masked_fill(~mask, float("-inf")), -1) @ v
    return merge(a) @ p("proj_w").T + p("proj_b")


# Attention kinds: name -> function (config, tensor getter of the layer,
# LN1 output (B,T,C), rotary) returning the attention branch output (B,T,C).
ATTENTION = {"softmax": attn_softmax}


# --- Gated, decayed linear attention (README "Attention kinds"): written in
# the quadratic (masked T x T) form, so agreement with the C program's
# chunked form also checks that the causal form equals the quadratic one.

def decay_mask(g, T):
    """(H,T,T): g_h^(i-j) for j <= i, 0 above the diagonal."""
    i = torch.arange(T, dtype=torch.float64)
    e = (i[:, None] - i[None, :]).clamp(min=0)
    m = torch.ones(T, T, dtype=torch.bool).tril()
    return torch.stack([torch.where(m, gh ** e, torch.zeros(())) for gh in g])


def decay_retnet(H):
    return [1.0 - 2.0 ** (-5 - h) for h in range(H)]


def decay_dijiang(H):
    a, b = math.log(1 / 32), math.log(1 / 512)
    return [1.0 - math.exp(a + (b - a) * h / (H - 1) if H > 1 else a) for h in range(H)]


def gate_out(c, p, h, o):
    """proj( SiLU(h Wg^T) * GroupNorm_H(o) ), GroupNorm per token and head, no affine."""
    eps = float(c["ln_eps"])
    mu = o.mean(-1, keepdim=True)
    var = ((o - mu) ** 2).mean(-1, keepdim=True)
    n = merge((o - mu) / torch.sqrt(var + eps))
    return (F.silu(h @ p("gate_w").T) * n) @ p("proj_w").T + p("proj_b")


def attn_retnet(c, p, h, rope):
    q, k, v = heads(c, p, h, rope)
    H, T, d = q.shape[1], q.shape[2], q.shape[3]
    s = (q @ k.transpose(-1, -2)) / math.sqrt(d) * decay_mask(decay_retnet(H), T)
    return gate_out(c, p, h, s @ v)


def attn_dijiang_code(c, p, h, rope):
    q, k, v = heads(c, p, h, rope)
    H, T = q.shape[1], q.shape[2]
    W = p("feat_w")
    fq, fk = torch.softmax(q @ W.T, -1), torch.softmax(k @ W.T, -1)
    s = (fq @ fk.transpose(-1, -2)) * decay_mask(decay_dijiang(H), T)
    return gate_out(c, p, h, s @ v)


def dct2_matrix(d):
    """Orthonormal DCT-II: C_ij = s_i cos(pi (2j+1) i / 2d)."""
    i = torch.arange(d, dtype=torch.float64)[:, None]
    j = torch.arange(d, dtype=torch.float64)[None, :]
    s = torch.full((d, 1), math.sqrt(2 / d), dtype=torch.float64)
    s[0] = math.sqrt(1 / d)
    return s * torch.cos(math.pi * (2 * j + 1) * i / (2 * d))


def attn_dijiang(c, p, h, rope):
    q, k, v = heads(c, p, h, rope)
    H, T, d = q.shape[1], q.shape[2], q.shape[3]
    Cm, t, D = dct2_matrix(d), p("feat_t"), p("feat_d")
    sc = d ** -0.25

    def phi(x, query):
        l = t * ((x * sc) @ Cm.T) - (x * sc).pow(2).sum(-1, keepdim=True) / 2
        if query:  # per-query stabiliser: cancels in the ratio, no gradient
            l = l - l.max(-1, keepdim=True).values.detach()
        return D[None, :, None, :] * torch.exp(l) / math.sqrt(d)

    s = (phi(q, True) @ phi(k, False).transpose(-1, -2)) * decay_mask(decay_dijiang(H), T)
    o = (s @ v) / (s.sum(-1, keepdim=True) + 1e-6)
    return gate_out(c, p, h, o)


def attn_linformer(c, p, h, rope):
    q, k, v = heads(c, p, h, rope)
    T, d = q.shape[2], q.shape[3]
    E, Fp = p("lin_e")[:, :T], p("lin_f")[:, :T]
    mask = torch.ones(T, T, dtype=torch.float64).tril()
    pos = torch.arange(1, T + 1, dtype=torch.float64)[:, None]
    kbar_scores = ((q @ k.transpose(-1, -2)) / math.sqrt(d) * mask) @ E.T / pos
    a = torch.softmax(kbar_scores, -1)
    o = ((a @ Fp) * mask) @ v / pos
    return merge(o) @ p("proj_w").T + p("proj_b")


ATTENTION.update({"retnet": attn_retnet, "dijiang": attn_dijiang, "dijiang-code": attn_dijiang_code,
                  "linformer": attn_linformer})


def forward(c, P, tokens, targets):
    L, C = int(c["layers"]), int(c["width"])
    eps = float(c["ln_eps"])
    B, T = tokens.shape
    assert int(c["parallel_residual"]) == 1 and int(c["tied_embeddings"]) == 0
    attention = ATTENTION[c["attention"]]
    rope = rope_fn(c, T)
    x = P["embed"][tokens]
    for l in range(L):
        p = lambda n: P[f"layer{l}/{n}"]  # noqa: E731
        h = F.layer_norm(x, (C,), p("ln1_w"), p("ln1_b"), eps)
        a = attention(c, p, h, rope)
        h2 = F.layer_norm(x, (C,), p("ln2_w"), p("ln2_b"), eps)
        m = F.gelu(h2 @ p("fc_w").T + p("fc_b")) @ p("fcproj_w").T + p("fcproj_b")
        x = x + a + m
    x = F.layer_norm(x, (C,), P["lnf_w"], P["lnf_b"], eps)
    logits = x @ P["unembed"].T
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))


def main():
    if len(sys.argv) not in (2, 3) or (len(sys.argv) == 3 and sys.argv[2] not in ATTENTION):
        print(__doc__)
        print("known attention kinds:", ", ".join(ATTENTION))
        return 2
    kapprox = sys.argv[1]
    kind = sys.argv[2] if len(sys.argv) == 3 else "softmax"
    with tempfile.TemporaryDirectory() as tmp:
        text, ck, gr = (os.path.join(tmp, n) for n in ("t.txt", "ck.h5", "g.h5"))
        make_text(text)
        # The linear kinds run a chunked causal form (64-row chunks): a
        # context of 80 makes the running state cross a chunk boundary, so
        # the comparison with the quadratic forms here covers both paths.
        ctx = "16" if kind == "softmax" else "80"
        cmd = [kapprox, "train", "--text", text, "--layers", "2", "--heads", "2", "--width", "32",
               "--ctx", ctx, "--batch", "4", "--steps", "3", "--warmup", "1", "--lr", "1e-2",
               "--seed", "1", "--out", ck, "--dump-grads", gr, "--quiet", "--no-final-eval",
               "--attention", kind]
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
        V = P["unembed"].shape[0]
        K = 4 * (4 * int(c["width"]) + 3 * tokens.shape[1] + V)
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
