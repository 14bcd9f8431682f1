#!/usr/bin/python3
"""Independent float64 PyTorch reference for kapprox's llama architecture.

usage: /usr/bin/python3 tests/torch_llama.py /path/to/kapprox [grads] [stories MODEL.bin]

grads: tiny llama decoders (grouped-query attention with a classifier of
their own, a classifier tied to the embedding, plain multi-head attention)
are trained for 3 steps with `kapprox train --arch llama`, which writes the
checkpoint and (hidden option --dump-grads) the next batch with the C loss
and gradients; the model is rebuilt here from the formulas of
docs/llama.md (the Llama block as llama2.c documents it), not from the C
code, and the loss and every gradient are compared.

stories MODEL.bin: a llama2.c checkpoint (the project's data/llama2c/
stories260K.bin) is read here directly from llama2.c's documented legacy
format (seven int32, then the float32 tensors), and `kapprox import` of the
same file must agree with this forward: the logits at every position of
a fixed sequence of 64 token ids (`kapprox sample --logits`), the greedy
continuation of BOS (token 1) for 256 tokens, id for id, and every
layer's q, k (after rotary) and v that `kapprox dump-qk` writes for 64
tokens of a token file (k and v of a key/value head once per query head
that reads it).

Tolerance, as in tests/torch_reference.py: the reference is float64, so
the differences are the C code's float32 round-off.  One float32 operation
has relative error u = 2^-24 and a value at the end of K dependent sums
carries about sqrt(K) u (uncorrelated round-off); over one block the
longest sums are F (SwiGLU width) + C + T + V, forward and backward, times
the depth: K = 2 L (F + 2C + 3T + V), a few hundred here.  Accepted:
  loss:      |loss_C - loss_ref| <= 10 sqrt(K) u |loss_ref|
  gradient:  ||g_C - g_ref|| <= 10 sqrt(K) u ||g_ref|| + 1e-9 per tensor.
A wrong sign, index or missing term gives relative errors of 1e-2 or more.
The logits of the imported model: one logit is the end of L blocks of sums
of C, F and T terms and the classifier's C, in float32 against float64:
|logit_C - logit_ref| <= 10 sqrt(K) u (1 + max |logit|), K = L (F + 2C +
T) + C, the same random-walk rule for an absolute error at the scale of
the logits.  Greedy decoding is compared exactly: a flip needs two logits
within that error of each other, which the run reports if it happens.

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
    print(f"SKIP: torch/h5py not importable with {sys.executable} ({e})")
    sys.exit(77)

U = 2.0 ** -24


def rmsnorm(x, w, eps):
    return w * (x / torch.sqrt((x * x).mean(-1, keepdim=True) + eps))


def rotary(x, base, r):
    """x (B,H,T,d): rotate pair i = (x[2i], x[2i+1]) of the first r dims of
    every head by t * base^(-2i/r) at position t."""
    T = x.shape[2]
    inv = base ** (-torch.arange(0, r, 2, dtype=torch.float64) / r)
    ang = torch.arange(T, dtype=torch.float64)[:, None] * inv[None, :]
    c, s = ang.cos(), ang.sin()
    a, b = x[..., 0:r:2], x[..., 1:r:2]
    out = x.clone()
    out[..., 0:r:2] = a * c - b * s
    out[..., 1:r:2] = a * s + b * c
    return out


def llama_logits(w, tokens, qkv=None):
    """The Llama decoder (llama2.c's architecture) on tokens (B,T); w: dims
    (dim, heads, kv_heads, layers, rotary, base, eps) and tensors named as
    llama2.c's checkpoint fields: tok (V,C), per layer att_norm, wq, wk, wv,
    wo, ffn_norm, w1, w2, w3, then norm, cls (V,C)."""
    C, H, Hkv = w["dim"], w["heads"], w["kv_heads"]
    d, eps = C // H, w["eps"]
    B, T = tokens.shape
    x = w["tok"][tokens]
    mask = torch.ones(T, T, dtype=torch.bool).tril()
    for lw in w["layers"]:
        h = rmsnorm(x, lw["att_norm"], eps)
        q = (h @ lw["wq"].T).view(B, T, H, d).transpose(1, 2)
        k = (h @ lw["wk"].T).view(B, T, Hkv, d).transpose(1, 2)
        v = (h @ lw["wv"].T).view(B, T, Hkv, d).transpose(1, 2)
        q, k = rotary(q, w["base"], w["rotary"]), rotary(k, w["base"], w["rotary"])
        # query head h reads key/value head h // (H / Hkv)
        k, v = k.repeat_interleave(H // Hkv, dim=1), v.repeat_interleave(H // Hkv, dim=1)
        if qkv is not None:
            qkv.append((q[0], k[0], v[0]))
        s = (q @ k.transpose(-1, -2)) / math.sqrt(d)
        a = torch.softmax(s.masked_fill(~mask, float("-inf")), -1) @ v
        x = x + a.transpose(1, 2).reshape(B, T, C) @ lw["wo"].T
        h = rmsnorm(x, lw["ffn_norm"], eps)
        x = x + (F.silu(h @ lw["w1"].T) * (h @ lw["w3"].T)) @ lw["w2"].T
    return rmsnorm(x, w["norm"], eps) @ w["cls"].T


def from_checkpoint(path):
    """A kapprox llama checkpoint as llama_logits' weights (leaf tensors with
    gradients, keyed by their kapprox names in `params`)."""
    f = h5py.File(path, "r")
    c = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in f["config"].attrs.items()}
    assert c["architecture"] == "llama" and int(c["parallel_residual"]) == 0
    params = {}
    f["param"].visititems(lambda n, o: params.__setitem__(n, torch.tensor(o[()], dtype=torch.float64,
                                                                          requires_grad=True))
                          if isinstance(o, h5py.Dataset) else None)
    C, H, Hkv = int(c["width"]), int(c["heads"]), int(c["kv_heads"])
    KV = Hkv * (C // H)
    w = {"dim": C, "heads": H, "kv_heads": Hkv, "rotary": int(c["rotary_dims"]), "base": float(c["rope_base"]),
         "eps": float(c["ln_eps"]), "tok": params["embed"], "norm": params["lnf_w"],
         "cls": params["embed"] if int(c["tied_embeddings"]) else params["unembed"], "layers": []}
    for l in range(int(c["layers"])):
        p = lambda n: params[f"layer{l}/{n}"]  # noqa: E731
        qkv = p("qkv_w")
        w["layers"].append({"att_norm": p("ln1_w"), "wq": qkv[:C], "wk": qkv[C:C + KV], "wv": qkv[C + KV:],
                            "wo": p("proj_w"), "ffn_norm": p("ln2_w"), "w1": p("fc_w"), "w2": p("fcproj_w"),
                            "w3": p("fc3_w")})
    return c, w, params


def read_llama2c(path):
    """llama2.c's legacy export: seven little-endian int32 (dim, hidden_dim,
    n_layers, n_heads, n_kv_heads, vocab_size, seq_len; vocab_size < 0: a
    classifier of its own at the end), then float32: token embedding
    (V,C); rms_att (L,C); wq (L,C,C); wk, wv (L,KV,C); wo (L,C,C); rms_ffn
    (L,C); w1 (L,F,C); w2 (L,C,F); w3 (L,F,C); rms_final (C); two rotary
    tables (seq_len, head/2) each; [classifier (V,C)]."""
    raw = open(path, "rb").read()
    C, Fh, L, H, Hkv, V, S = np.frombuffer(raw[:28], dtype="<i4").tolist()
    shared = V > 0
    V = abs(V)
    data = np.frombuffer(raw[28:], dtype="<f4")
    d, pos = C // H, 0
    KV = Hkv * d

    def take(*shape):
        nonlocal pos
        n = int(np.prod(shape))
        t = torch.tensor(data[pos:pos + n].reshape(shape), dtype=torch.float64)
        pos += n
        return t

    tok = take(V, C)
    att_norm, wq, wk, wv, wo = take(L, C), take(L, C, C), take(L, KV, C), take(L, KV, C), take(L, C, C)
    ffn_norm, w1, w2, w3 = take(L, C), take(L, Fh, C), take(L, C, Fh), take(L, Fh, C)
    norm = take(C)
    take(S, d // 2), take(S, d // 2)
    cls = tok if shared else take(V, C)
    assert pos == data.size, f"{path}: {data.size - pos} floats left over"
    layers = [{"att_norm": att_norm[l], "wq": wq[l], "wk": wk[l], "wv": wv[l], "wo": wo[l], "ffn_norm": ffn_norm[l],
               "w1": w1[l], "w2": w2[l], "w3": w3[l]} for l in range(L)]
    return {"dim": C, "heads": H, "kv_heads": Hkv, "rotary": d, "base": 10000.0, "eps": 1e-5, "tok": tok,
            "norm": norm, "cls": cls, "layers": layers, "hidden": Fh, "vocab": V}


def check_stories(kapprox, tmp, model):
    w = read_llama2c(model)
    ck, lg = os.path.join(tmp, "imported.h5"), os.path.join(tmp, "logits.h5")
    if not run([kapprox, "import", "--from", model, "--out", ck]):
        return False
    # a fixed sequence: BOS, then ids from a seeded generator
    ids = [1] + np.random.default_rng(3).integers(0, w["vocab"], 63).tolist()
    res = subprocess.run([kapprox, "sample", "--checkpoint", ck, "--prompt", ",".join(map(str, ids)), "--length", "0",
                          "--logits", lg], capture_output=True, text=True)
    if res.returncode != 0:
        print("FAIL: kapprox sample --logits:", res.stderr)
        return False
    got = torch.tensor(h5py.File(lg, "r")["logits"][()], dtype=torch.float64)
    with torch.no_grad():
        ref = llama_logits(w, torch.tensor([ids]))[0]
    L, C, T = len(w["layers"]), w["dim"], len(ids)
    K = L * (w["hidden"] + 2 * C + T) + C
    tol = 10 * math.sqrt(K) * U * (1 + ref.abs().max().item())
    err = (got - ref).abs().max().item()
    ok = err <= tol
    print(f"[stories] logits of {T} tokens: max |C - torch| {err:.2e} (tol {tol:.1e}, K {K}, max |logit| "
          f"{ref.abs().max().item():.2f}): {'PASS' if ok else 'FAIL'}")
    n = 256
    res = subprocess.run([kapprox, "sample", "--checkpoint", ck, "--temperature", "0", "--length", str(n)],
                         capture_output=True, text=True)
    if res.returncode != 0:
        print("FAIL: kapprox sample:", res.stderr)
        return False
    c_ids = [int(t) for t in res.stdout.split()]
    seq = [1]
    with torch.no_grad():
        for _ in range(n):
            seq.append(int(llama_logits(w, torch.tensor([seq]))[0, -1].argmax()))
    same = next((i for i in range(n + 1) if i >= len(c_ids) or c_ids[i] != seq[i]), n + 1) - 1
    good = same >= n and len(c_ids) == n + 1
    print(f"[stories] greedy from BOS: {same} of {n} generated ids identical: {'PASS' if good else 'FAIL'}")
    if not good:
        print("  C:    ", c_ids[:same + 3], "\n  torch:", seq[:same + 3])
    # dump-qk: a token file without BOS has one piece, so its last 1/20 is the
    # validation text, whose first 64 tokens dump-qk reads
    toks = np.random.default_rng(4).integers(2, w["vocab"], 1280).astype("<u2")
    tf, qk = os.path.join(tmp, "toks.bin"), os.path.join(tmp, "qk.h5")
    toks.tofile(tf)
    if not run([kapprox, "dump-qk", "--checkpoint", ck, "--text", tf, "--tokens", "64", "--out", qk]):
        return False
    acts = []
    with torch.no_grad():
        llama_logits(w, torch.tensor([toks[-64:].astype(np.int64).tolist()]), acts)
    f = h5py.File(qk, "r")
    worst, qk_ok = 0.0, int(f.attrs["scaled"]) == 0 and int(f.attrs["causal"]) == 1
    for l, (q, k, v) in enumerate(acts):
        for name, ref in (("q", q), ("k", k), ("v", v)):
            got = torch.tensor(f[f"layer{l}/{name}"][()], dtype=torch.float64)
            if got.shape != ref.shape:
                print(f"  FAIL layer{l}/{name} shape {tuple(got.shape)}, want {tuple(ref.shape)}")
                qk_ok = False
                continue
            # relative to the tensor's scale, as the gradients above
            worst = max(worst, ((got - ref).norm() / ref.norm()).item())
    K = L * (w["hidden"] + 2 * C + 64)
    qk_tol = 10 * math.sqrt(K) * U
    qk_ok &= worst <= qk_tol
    print(f"[stories] dump-qk: {len(acts)} layers of q, k, v, worst relative error {worst:.2e} (tol {qk_tol:.1e}): "
          f"{'PASS' if qk_ok else 'FAIL'}")
    return ok and good and qk_ok


def make_text(path):
    words = ["and", "the", "lord", "said", "unto", "moses", "behold", "earth", "light", "day", "night"]
    rng = np.random.default_rng(5)
    with open(path, "w", encoding="utf-8") as f:
        for _ in range(400):
            f.write(" ".join(words[i] for i in rng.integers(0, len(words), rng.integers(4, 10))) + ".\n")


def run(cmd):
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        print(f"FAIL: {' '.join(cmd[1:3])} exited {res.returncode}: {res.stderr}")
    return res.returncode == 0


# (label, kapprox train options): GQA with its own classifier, a tied
# classifier, plain multi-head attention with a partial rotary.
GRAD_MODELS = [
    ("gqa", ["--heads", "4", "--kv-heads", "2", "--width", "32", "--ffn-hidden", "40"]),
    ("tied", ["--heads", "2", "--width", "32", "--tied"]),
    ("mha", ["--heads", "2", "--width", "32", "--rotary", "8", "--ffn-hidden", "24"]),
]


def check_grads(kapprox, tmp):
    text = os.path.join(tmp, "t.txt")
    make_text(text)
    ok = True
    for label, opts in GRAD_MODELS:
        ck, gr = os.path.join(tmp, label + ".h5"), os.path.join(tmp, label + ".g.h5")
        if not run([kapprox, "train", "--text", text, "--arch", "llama", "--layers", "2", "--ctx", "16", *opts,
                    "--steps", "3", "--batch", "4", "--warmup", "1", "--lr", "1e-2", "--seed", "1", "--quiet",
                    "--no-final-eval", "--out", ck, "--dump-grads", gr]):
            ok = False
            continue
        c, w, params = from_checkpoint(ck)
        g = h5py.File(gr, "r")
        tokens = torch.tensor(g["tokens"][()], dtype=torch.long)
        targets = torch.tensor(g["targets"][()], dtype=torch.long)
        logits = llama_logits(w, tokens)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))
        loss.backward()
        L, C, V, T = int(c["layers"]), int(c["width"]), int(c["vocab"]), tokens.shape[1]
        K = 2 * L * (int(c["ffn_hidden"]) + 2 * C + 3 * T + V)
        tol = 10 * math.sqrt(K) * U
        loss_c = float(g.attrs["loss"])
        rel = abs(loss_c - loss.item()) / abs(loss.item())
        good = rel <= tol
        print(f"[{label}] loss: C {loss_c:.9f}  torch float64 {loss.item():.9f}  relative error {rel:.2e} "
              f"(tol {tol:.1e}, K {K})")
        worst = 0.0
        for name, p in sorted(params.items()):
            gc = torch.tensor(g["grad"][name][()], dtype=torch.float64)
            err, scale = (gc - p.grad).norm().item(), p.grad.norm().item()
            worst = max(worst, err / (scale + 1e-300))
            if err > tol * scale + 1e-9 or scale == 0:
                print(f"  FAIL {name:16s} |g| {scale:.3e} relative error {err / (scale + 1e-300):.2e}")
                good = False
        print(f"[{label}] gradients: {len(params)} tensors, worst relative error {worst:.2e} (tol {tol:.1e}): "
              f"{'PASS' if good else 'FAIL'}")
        ok &= good
    return ok


def main():
    if len(sys.argv) < 2:
        print(__doc__)
        return 2
    kapprox, what = sys.argv[1], sys.argv[2:] or ["grads"]
    torch.set_default_dtype(torch.float64)
    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        if "grads" in what:
            ok &= check_grads(kapprox, tmp)
        if "stories" in what:
            ok &= check_stories(kapprox, tmp, what[what.index("stories") + 1])
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
