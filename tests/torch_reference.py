#!/usr/bin/python3
"""Independent float64 PyTorch reference for the C decoder.

usage: /usr/bin/python3 tests/torch_reference.py /path/to/kapprox [KIND,...|dijiang-forms]

For each attention kind (default: every variant registered below, then the
layer hybrids in HYBRIDS), trains a tiny decoder for 3 steps with `kapprox
train --attention KIND`, which writes the checkpoint and (hidden option
--dump-grads) the next batch with the C loss and gradients.  A layer hybrid
"KIND+smLIST" (kapprox's label: dijiang+sm0.1 keeps softmax in layers 0
and 1) is a 3-layer softmax model trained for 3 steps, converted with
`kapprox convert --softmax-layers LIST` and fine-tuned for 3 steps with the
gradient dump; the reference reads the per-layer kinds from the
checkpoint's /config/softmax_layers mask (bit l = layer l is softmax).
A DiJiang kind with form switches, "dijiang+softmax" (kapprox's label), is
trained with `--dijiang-form softmax`; `dijiang-forms` checks every single
factor flipped from the paper form (dijiang) and from the released form
(dijiang-released), and the attention transfer of a few switched forms;
the reference reads the form from the checkpoint's /config/dijiang_form.
This script loads the checkpoint with h5py, rebuilds the model from
scratch in PyTorch in float64 (the architecture as documented in
experiments/model/dec_config.h and docs/file-formats.md), recomputes loss and
gradients on the same batch with autograd and compares.

Tolerances.  The reference is float64, so the differences are the C code's
float32 round-off.  One float32 operation has relative error u = 2^-24; a
value at the end of a chain of K dependent sums carries about sqrt(K) u
(random-walk accumulation, errors uncorrelated).  Here K ~ 4C + 3T + V over
one block, times the depth (2 blocks, forward and backward): about 1000, so
sqrt(K) u ~ 2e-6.  The linear variants add the feature dot products (m per
head) to each attention sum, so K = 2 L (4C + 3T + V + 2m) with m = d for
softmax: about 1000 for every kind here.  We accept
  loss:      |loss_C - loss_ref| <= 10 sqrt(K) u |loss_ref|
  gradient:  ||g_C - g_ref|| <= 10 sqrt(K) u ||g_ref|| + 1e-9 per tensor
             (relative to the tensor's norm: tiny entries have no relative
             meaning in float32 after cancellation),
the factor 10 covering the spread of the random walk.  A real bug (a sign,
a missing term, a wrong index) gives relative errors of 1e-2 or more.
Frozen tensors (fixed random projections) get no gradient in C: the check
is that the C gradient is exactly zero; the reference treats them as
constants.

Attention variants.  Each kind is one function registered in VARIANTS with
@variant(name, features=..., frozen=...): it maps the block's LN1 output
h (B,T,C) to the attention branch output (B,T,C), written from the formulas of
docs/methods.md and docs/attention-kinds.md (not from the C code).  Helpers: heads_qkv (the teacher's qkv
projection, head split and rotary), merge_proj (heads back to (B,T,C) and
the output projection), causal_linear (the quadratic masked form of the
causal linear attention).

Attention transfer.  Each kind with attention transfer on the teacher's
rows also registers its rows in TRANSFER (@transfer(name, tensors)): a tiny
softmax teacher is trained, `kapprox convert --transfer-steps 3
--dump-transfer` converts it, runs 3 transfer steps and writes the loss and
gradient of the next batch; check_transfer recomputes the row KL (the
teacher's softmax rows against the kind's rows on the teacher's LN1 output)
and its gradient with respect to the transferred tensors, from the
formulas of docs/conversion.md#attention-transfer, and compares.  The
layer hybrids in TRANSFER_HYBRIDS are converted with --softmax-layers: the
loss is the mean over the converted layers, and the kept layers' tensors
must have exactly zero gradient.

Sliding-window hybrid (docs/conversion.md): the variants named KIND+wN run
`kapprox train --attention KIND --window N`; the kind's function is the same,
its causal_linear call becomes `attend`, which for a windowed model computes
the hybrid from its formula (hybrid below: exact exp(q.k/sqrt d) over the
window, the kind's features times exp(win_beta + lam) before it, one
denominator), quadratic and unshifted in float64, against the C code's
chunked, banded, shifted float32 form.  The window's extra sums (at most w
exponentials per row) stay inside the tolerance's K.

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


VARIANTS = {}


def variant(name, features=lambda d: d, frozen=(), ctx=16, steps=3, heads=2, width=32):
    """Registers fn(c, p, h, rope) -> (B,T,C) as attention kind `name`;
    features(d): features per head (the m of the tolerance); frozen: tensor
    names (without "layer<l>/") that must have a zero C gradient; ctx,
    heads, width: the shape of the test model; steps: training steps before
    the compared batch."""
    def reg(fn):
        VARIANTS[name] = {"fn": fn, "features": features, "frozen": set(frozen), "ctx": ctx, "steps": steps,
                          "kind": name, "window": 0, "heads": heads, "width": width}
        return fn
    return reg


def windowed(kind, window, ctx=None):
    """Registers KIND+wN: kind's function on a model with a sliding window."""
    spec = dict(VARIANTS[kind])
    spec.update(window=window, ctx=ctx or spec["ctx"])
    VARIANTS[f"{kind}+w{window}"] = spec


def dims(c):
    C, H = int(c["width"]), int(c["heads"])
    return C, H, C // H


def heads_qkv(c, p, h, rope):
    """q, k (after rotary), v: (B,H,T,d) from h (B,T,C), the teacher's layout."""
    C, H, d = dims(c)
    B, T, _ = h.shape
    q, k, v = (h @ p("qkv_w").T + p("qkv_b")).split(C, -1)
    q, k, v = (t.reshape(B, T, H, d).transpose(1, 2) for t in (q, k, v))
    return rope(q), rope(k), v


def merge_proj(c, p, o):
    B, H, T, d = o.shape
    return o.transpose(1, 2).reshape(B, T, H * d) @ p("proj_w").T + p("proj_b")


def causal_scores(fq, fk, decay=1.0):
    """s_ij = g^(i-j) fq_i.fk_j for j <= i, 0 above the diagonal."""
    T = fq.shape[-2]
    i = torch.arange(T, dtype=torch.float64)
    lag = i[:, None] - i[None, :]
    w = torch.where(lag >= 0, torch.as_tensor(decay, dtype=torch.float64) ** lag.clamp(min=0), torch.zeros(()))
    return (fq @ fk.transpose(-1, -2)) * w


def causal_linear(fq, fk, v, decay=1.0, normalise=True, eps=1e-6):
    """o_i = sum_{j<=i} g^(i-j) (fq_i.fk_j) v_j / (sum_{j<=i} g^(i-j) fq_i.fk_j + eps)."""
    s = causal_scores(fq, fk, decay)
    num = s @ v
    return num / (s.sum(-1, keepdim=True) + eps) if normalise else num


def hybrid_rows(q, k, fq, fk, lam, beta, w, decay=1.0, eps=1e-6):
    """docs/conversion.md "Sliding-window hybrid", per (sequence, head), with
    W_i = {i-w < j <= i}, L_i = {j <= i-w}:
      e_ij = exp(q_i.k_j / sqrt d)                              j in W_i
      e_ij = exp(beta + lam_i) g^(i-w-j) fq_i.fk_j              j in L_i
      a_ij = e_ij / (sum_j e_ij + [L_i not empty] exp(beta + lam_i) eps),
    the weight a_ij that output y_i = sum_j a_ij v_j gives v_j.
    lam (B,H,T,1): the log of what the kind's stabilisers divided out of its
    features (no gradient, as in the kind); beta (H): the tensor win_beta."""
    T, d = q.shape[-2], q.shape[-1]
    i = torch.arange(T, dtype=torch.float64)
    lag = i[:, None] - i[None, :]
    win, lin = (lag >= 0) & (lag < w), lag >= w
    s = (q @ k.transpose(-1, -2)) / math.sqrt(d)
    e_win = torch.exp(s.masked_fill(~win, float("-inf")))
    rho = torch.exp(beta[None, :, None, None] + lam)
    g = torch.as_tensor(decay, dtype=torch.float64) ** (lag - w).clamp(min=0)
    e_lin = rho * torch.where(lin, g, torch.zeros(())) * (fq @ fk.transpose(-1, -2))
    has_lin = (i >= w).to(torch.float64)[:, None]
    den = e_win.sum(-1, keepdim=True) + e_lin.sum(-1, keepdim=True) + has_lin * rho * eps
    return (e_win + e_lin) / den


def hybrid(q, k, fq, fk, v, lam, beta, w, decay=1.0, eps=1e-6):
    """The hybrid's output y_i = sum_j a_ij v_j (hybrid_rows)."""
    return hybrid_rows(q, k, fq, fk, lam, beta, w, decay, eps) @ v


def attend(c, p, q, k, fq, fk, v, lam=None, decay=1.0):
    """The kind's normalised causal linear attention, or with a window in the
    model's configuration its sliding-window hybrid."""
    w = int(c.get("window", 0))
    if not w:
        return causal_linear(fq, fk, v, decay)
    lam = torch.zeros(q.shape[:-1] + (1,), dtype=torch.float64) if lam is None else lam.detach()
    return hybrid(q, k, fq, fk, v, lam, p("win_beta"), w, decay)


@variant("softmax")
def softmax_attention(c, p, h, rope):
    q, k, v = heads_qkv(c, p, h, rope)
    T, d = q.shape[-2], q.shape[-1]
    mask = torch.ones(T, T, dtype=torch.bool).tril()
    s = (q @ k.transpose(-1, -2)) / math.sqrt(d)
    return merge_proj(c, p, torch.softmax(s.masked_fill(~mask, float("-inf")), -1) @ v)


def positive_features(x, W, alpha, is_query, with_shift=False):
    """docs/attention-kinds.md, "Linear attention kinds": exp(W x~ - alpha |x~|^2 - c) / sqrt(m),
    x~ = x / d^(1/4); c (no gradient) = the row max for queries, for keys
    max(max_l e_0l, max_l |w_l|^2 / (4 alpha) - 60) per (sequence, head).
    W (m, d) shared by the heads, or (H, m, d) one per head.  with_shift:
    also c, (B,H,T,1) or (B,H,1,1)."""
    d, m = x.shape[-1], W.shape[-2]
    xs = x / d ** 0.25
    e = xs @ W.transpose(-1, -2) - alpha * (xs * xs).sum(-1, keepdim=True)
    if is_query:
        cst = e.max(-1, keepdim=True).values
    else:
        floor = ((W * W).sum(-1).amax(-1) / (4 * alpha) - 60)[..., None, None]
        cst = torch.maximum(e[..., :1, :].max(-1, keepdim=True).values, floor)
    f = torch.exp(e - cst.detach()) / math.sqrt(m)
    return (f, cst.detach()) if with_shift else f


def positive_attend(c, p, q, k, v, W, alpha):
    """Normalised linear attention (or its window hybrid, lam = c_q + c_k)
    of the positive features."""
    fq, cq = positive_features(q, W, alpha, True, True)
    fk, ck = positive_features(k, W, alpha, False, True)
    return attend(c, p, q, k, fq, fk, v, cq + ck)


def positive_feature_variant(name, alpha):
    @variant(name, frozen=("feat_w",))
    def fn(c, p, h, rope):
        q, k, v = heads_qkv(c, p, h, rope)
        return merge_proj(c, p, positive_attend(c, p, q, k, v, p("feat_w").detach(), alpha))
    return fn


positive_feature_variant("performer", 0.5)
positive_feature_variant("performer-prf", 0.5)


# docs/attention-kinds.md, "Linear attention kinds": one ORF matrix per head, feat_w (H*d, d)
# with head h in rows [h*d, (h+1)*d), redrawn every 16 training steps.  20
# steps put the compared batch after the first redraw, so the reference
# reads a redrawn matrix from the checkpoint.
@variant("performer-redraw", frozen=("feat_w",), steps=20)
def performer_redraw_attention(c, p, h, rope):
    C, H, d = dims(c)
    q, k, v = heads_qkv(c, p, h, rope)
    return merge_proj(c, p, positive_attend(c, p, q, k, v, p("feat_w").detach().reshape(H, d, d), 0.5))
positive_feature_variant("pff", 1.0)


@variant("cosformer", features=lambda d: 2 * d)
def cosformer_attention(c, p, h, rope):
    q, k, v = heads_qkv(c, p, h, rope)
    T, M = q.shape[-2], int(c["ctx"])
    a = math.pi * torch.arange(T, dtype=torch.float64)[:, None] / (2 * M)

    def phi(x):
        r = torch.relu(x)
        return torch.cat([r * torch.cos(a), r * torch.sin(a)], -1)

    return merge_proj(c, p, attend(c, p, q, k, phi(q), phi(k), v))


# --- Gated, decayed linear attention (docs/attention-kinds.md, "Gated
# linear kinds and causal Linformer").  Run at context 80: the C kinds'
# chunked form (32-row chunks) then carries its running state across chunk
# boundaries, and this quadratic form checks both paths.

def head_decays(values):
    """Per-head decays as a (H,1,1) tensor for causal_linear."""
    return torch.tensor(values, dtype=torch.float64)[:, None, None]


def decay_retnet(H):
    return head_decays([1.0 - 2.0 ** (-5 - h) for h in range(H)])


def decay_dijiang(H):
    a, b = math.log(1 / 32), math.log(1 / 512)
    return head_decays([1.0 - math.exp(a + (b - a) * h / (H - 1) if H > 1 else a) for h in range(H)])


def gate_proj(c, p, h, o):
    """proj( SiLU(h Wg^T) * GroupNorm_H(o) ), GroupNorm per token and head, no affine."""
    B, H, T, d = o.shape
    mu = o.mean(-1, keepdim=True)
    var = ((o - mu) ** 2).mean(-1, keepdim=True)
    n = ((o - mu) / torch.sqrt(var + float(c["ln_eps"]))).transpose(1, 2).reshape(B, T, H * d)
    return (F.silu(h @ p("gate_w").T) * n) @ p("proj_w").T + p("proj_b")


@variant("retnet", ctx=80)
def retnet_attention(c, p, h, rope):
    q, k, v = heads_qkv(c, p, h, rope)
    H, d = q.shape[1], q.shape[3]
    return gate_proj(c, p, h, causal_linear(q / math.sqrt(d), k, v, decay_retnet(H), normalise=False))


def dct2_matrix(d):
    """Orthonormal DCT-II: C_ij = s_i cos(pi (2j+1) i / 2d)."""
    i = torch.arange(d, dtype=torch.float64)[:, None]
    j = torch.arange(d, dtype=torch.float64)[None, :]
    s = torch.full((d, 1), math.sqrt(2 / d), dtype=torch.float64)
    s[0] = math.sqrt(1 / d)
    return s * torch.cos(math.pi * (2 * j + 1) * i / (2 * d))


# The DiJiang form (docs/dijiang-factors.md): per factor the paper's token
# and the released code's; /config/dijiang_form lists one token of each.
DIJIANG_FACTORS = [("features", "exp", "softmax"), ("scales", "chi", "normal"), ("dct", "dct2", "dct3"),
                   ("weights", "D", "noD"), ("square", "sq", "nosq"), ("prescale", "prescale", "noprescale"),
                   ("normaliser", "den", "noden"), ("groupnorm", "gnhead", "gnd"), ("gate", "gatenormal", "gatexavier")]
DIJIANG_PRESETS = {"dijiang": "paper", "dijiang-code": "code", "dijiang-released": "released"}


def dijiang_form(c):
    """{factor: token} from the checkpoint; every factor exactly once."""
    tokens = str(c["dijiang_form"]).split(",")
    form = {}
    for name, paper, released in DIJIANG_FACTORS:
        hits = [t for t in tokens if t in (paper, released)]
        assert len(hits) == 1, f"dijiang_form {c['dijiang_form']}: factor {name} given {len(hits)} times"
        form[name] = hits[0]
    assert len(tokens) == len(DIJIANG_FACTORS), c["dijiang_form"]
    return form


def chi_quantile(p, d):
    """F^-1 of the chi distribution with d degrees of freedom, by bisection
    on the regularised incomplete gamma function P(d/2, r^2/2)."""
    lo, hi = torch.zeros_like(p), torch.full_like(p, 10.0 + 4.0 * math.sqrt(d))
    for _ in range(200):
        mid = (lo + hi) / 2
        below = torch.special.gammainc(torch.full_like(mid, d / 2), mid * mid / 2) < p
        lo, hi = torch.where(below, mid, lo), torch.where(below, hi, mid)
    return (lo + hi) / 2


def check_scales(c, p, d):
    """The frozen scales are what the form says: the stratified chi_d radii
    in some order, or signed normals (some negative); the kinds that store a
    matrix store W = diag(t) M for the form's DCT M."""
    f = dijiang_form(c)
    M = dct2_matrix(d) if f["dct"] == "dct2" else dct2_matrix(d).T
    if c["attention"] == "dijiang":
        t = p("feat_t").detach()
    else:
        T = p("feat_w").detach() @ M.T  # diag(t) M M^T = diag(t)
        t = torch.diagonal(T)
        off = (T - torch.diag(t)).abs().max().item()
        assert off < 1e-5 * t.abs().max().item(), f"feat_w is not diag(t) M for {f['dct']} (off-diagonal {off:.2e})"
    if f["scales"] == "chi":
        want = chi_quantile((torch.arange(d, dtype=torch.float64) + 0.5) / d, d)
        err = (t.sort().values - want).abs().max().item()
        assert err < 1e-5 * want.max().item(), f"chi radii off by {err:.2e}"
    else:
        assert (t < 0).any() and (t > 0).any(), "signed normal scales should have both signs"


def has(p, name):
    try:
        p(name)
        return True
    except KeyError:
        return False


def dijiang_features(c, p, x, query, detach=True):
    """Every DiJiang form, docs/dijiang-factors.md: with x~ = x/d^(1/4)
    [prescale] or x, y = C x~ [dct2] or C^T x~ [dct3], l = t (.) y - |x~|^2/2
    [sq] or t (.) y; phi = D_h (.) exp(l - c)/sqrt(d) [exp; queries c = the
    row max, no gradient (it cancels in the ratio or in GroupNorm, and is a
    sliding window's lam); keys c = 0] or D_h (.) softmax(l) [softmax, no c],
    D_h = 1 [noD].  The kind dijiang stores t (feat_t), the others
    W = diag(t) M (feat_w, used as it is: transfer trains all of it).
    detach: the scales as constants (frozen in training).  Returns phi and
    c (B,H,T,1)."""
    f = dijiang_form(c)
    d = x.shape[-1]
    assert has(p, "feat_d") == (f["weights"] == "D") and has(p, "gn_w") == (f["groupnorm"] == "gnd")
    xs = x * (d ** -0.25 if f["prescale"] == "prescale" else 1.0)
    if c["attention"] == "dijiang":
        t = p("feat_t").detach() if detach else p("feat_t")
        M = dct2_matrix(d) if f["dct"] == "dct2" else dct2_matrix(d).T
        l = t * (xs @ M.T)
    else:
        W = p("feat_w").detach() if detach else p("feat_w")
        l = xs @ W.T
    if f["square"] == "sq":
        l = l - xs.pow(2).sum(-1, keepdim=True) / 2
    shift = torch.zeros(l.shape[:-1] + (1,), dtype=torch.float64)
    if f["features"] == "softmax":
        e = torch.softmax(l, -1)
    else:
        if query:
            shift = l.max(-1, keepdim=True).values.detach()
        e = torch.exp(l - shift) / math.sqrt(d)
    return (p("feat_d")[None, :, None, :] * e if f["weights"] == "D" else e), shift


def gate_proj_groups(c, p, h, o):
    """proj( SiLU(h Wg^T) * GroupNorm(o) ) with the released code's
    nn.GroupNorm(d, C): d groups of C/d consecutive channels per token,
    affine gn_w, gn_b."""
    B, H, T, d = o.shape
    x = o.transpose(1, 2).reshape(B * T, H * d)
    n = F.group_norm(x, d, p("gn_w"), p("gn_b"), float(c["ln_eps"])).reshape(B, T, H * d)
    return (F.silu(h @ p("gate_w").T) * n) @ p("proj_w").T + p("proj_b")


def dijiang_attention(c, p, h, rope):
    """o = decayed causal sum of phi(q).phi(k) v, normalised [den] (or with a
    window the sliding-window hybrid, which only the forms with den take) or
    not [noden]; then the gate with GroupNorm per head [gnhead] or
    nn.GroupNorm(d, C) [gnd]."""
    f = dijiang_form(c)
    q, k, v = heads_qkv(c, p, h, rope)
    check_scales(c, p, q.shape[3])
    (fq, lam), (fk, _) = dijiang_features(c, p, q, True), dijiang_features(c, p, k, False)
    if f["normaliser"] == "den":
        o = attend(c, p, q, k, fq, fk, v, lam, decay_dijiang(q.shape[1]))
    else:
        o = causal_linear(fq, fk, v, decay_dijiang(q.shape[1]), normalise=False)
    return gate_proj_groups(c, p, h, o) if f["groupnorm"] == "gnd" else gate_proj(c, p, h, o)


# 4 heads of d = 16: the released GroupNorm's groups (C/d channels) then hold
# 4 channels, as at kapprox's default shape (d = 64, 4 heads).  With groups
# of 2 (2 heads) each normalised value is +-(a - b)/sqrt((a - b)^2 + 4 eps), a
# difference of two outputs whose float32 round-off the cancellation
# amplifies beyond the sqrt(K) u model of the tolerance (measured: 7e-5
# against 2.4e-5 at 2 heads, 1e-6 at 4).
for _kind in DIJIANG_PRESETS:
    variant(_kind, ctx=80, frozen=("feat_t", "feat_w"), heads=4, width=64)(dijiang_attention)


def dijiang_flips():
    """Every single factor flipped from the paper form and from the released
    form: "dijiang+softmax", ..., "dijiang-released+exp", ...; and two
    switched forms with a sliding window (forms with the denominator)."""
    return ([f"dijiang+{r}" for _, _, r in DIJIANG_FACTORS] +
            [f"dijiang-released+{pp}" for _, pp, _ in DIJIANG_FACTORS] +
            ["dijiang+softmax+w7", "dijiang-released+den+w7"])


@variant("linformer", ctx=80, features=lambda d: 32)
def linformer_attention(c, p, h, rope):
    q, k, v = heads_qkv(c, p, h, rope)
    T, d = q.shape[2], q.shape[3]
    E, Fp = p("lin_e")[:, :T], p("lin_f")[:, :T]
    mask = torch.ones(T, T, dtype=torch.float64).tril()
    pos = torch.arange(1, T + 1, dtype=torch.float64)[:, None]
    a = torch.softmax(((q @ k.transpose(-1, -2)) / math.sqrt(d) * mask) @ E.T / pos, -1)
    return merge_proj(c, p, ((a @ Fp) * mask) @ v / pos)


@variant("hedgehog", features=lambda d: 2 * d)
def hedgehog_attention(c, p, h, rope):
    """docs/attention-kinds.md, "Hedgehog": per head u = A_h x + b_h on q and k
    (after rotary), phi = [softmax(u), softmax(-u)], normalised causal linear
    attention with eps 1e-6."""
    q, k, v = heads_qkv(c, p, h, rope)
    return merge_proj(c, p, attend(c, p, q, k, hedgehog_features(c, p, q, "hh_qw", "hh_qb"),
                                   hedgehog_features(c, p, k, "hh_kw", "hh_kb"), v))


def hedgehog_features(c, p, x, w, b):
    """[softmax(u), softmax(-u)], u = A_h x + b_h per head."""
    C, H, d = dims(c)
    u = torch.einsum("hij,bhtj->bhti", p(w).reshape(H, d, d), x) + p(b).reshape(H, 1, d)
    return torch.cat([torch.softmax(u, -1), torch.softmax(-u, -1)], -1)


# Sliding-window hybrids: one of each family of kinds (positive features
# with their stabilisers, cosFormer without, DiJiang with decay and gate,
# Hedgehog's learned maps), windows below, across and beyond the C code's
# 32-row chunks and blocks, at context 80.
windowed("performer", 5, ctx=80)
windowed("cosformer", 3)
windowed("dijiang", 7, ctx=80)
windowed("hedgehog", 33, ctx=80)


def layer_kinds(c):
    """Attention kind of every layer: softmax where the mask's bit is set."""
    mask = int(c.get("softmax_layers", 0))
    return ["softmax" if mask >> l & 1 else c["attention"] for l in range(int(c["layers"]))]


# Layer hybrids checked by default: all but one layer softmax, and one kept
# softmax layer between two converted ones (also with a sliding window in
# the converted ones).
HYBRIDS = ["dijiang+sm0.1", "hedgehog+sm1", "dijiang+w7+sm1"]


def make_rope(c, T):
    """(B,H,T,d) -> the same, GPT-NeoX rotate_half on the first rotary_dims dims."""
    r = int(c["rotary_dims"])
    inv_freq = float(c["rope_base"]) ** (-torch.arange(0, r, 2, dtype=torch.float64) / r)
    ang = torch.arange(T, dtype=torch.float64)[:, None] * inv_freq[None, :]
    cos, sin = torch.cat([ang.cos(), ang.cos()], -1), torch.cat([ang.sin(), ang.sin()], -1)

    def rope(x):
        xr, xp = x[..., :r], x[..., r:]
        x1, x2 = xr[..., : r // 2], xr[..., r // 2:]
        return torch.cat([xr * cos + torch.cat([-x2, x1], -1) * sin, xp], -1)

    return rope


# --- Attention transfer on the teacher's rows
# (docs/conversion.md#attention-transfer).  Each kind with transfer
# registers rows(c, p, q, k) -> the student's attention rows (B,H,T,T) from
# q, k (B,H,T,d, after rotary) and its transferred tensors, which are
# trainable here also where fine-tuning keeps them fixed.

TRANSFER = {}


def transfer(name, tensors, features=lambda d: d):
    """Registers fn(c, p, q, k) -> rows as kind `name`'s transfer; tensors:
    the names (without "layer<l>/") that get a row gradient, or a function
    of the checkpoint's config giving them; features(d): features per head
    (the m of the tolerance)."""
    def reg(fn):
        TRANSFER[name] = {"fn": fn, "tensors": tensors if callable(tensors) else lambda c: set(tensors),
                          "features": features}
        return fn
    return reg


def causal_rows(fq, fk, decay=1.0, normalise=True, eps=1e-6):
    """a_ij = s_ij / (sum_{j'<=i} s_ij' + eps); without a normaliser
    |s_ij| / sum_{j'<=i} |s_ij'| (the attention-weights convention)."""
    s = causal_scores(fq, fk, decay)
    if normalise:
        return s / (s.sum(-1, keepdim=True) + eps)
    return s.abs() / s.abs().sum(-1, keepdim=True)


def rows(c, p, q, k, fq, fk, lam=None, decay=1.0):
    """The kind's normalised rows (causal_rows), or with a window in the
    model's configuration its sliding-window hybrid's (hybrid_rows)."""
    w = int(c.get("window", 0))
    if not w:
        return causal_rows(fq, fk, decay)
    lam = torch.zeros(q.shape[:-1] + (1,), dtype=torch.float64) if lam is None else lam.detach()
    return hybrid_rows(q, k, fq, fk, lam, p("win_beta"), w, decay)


def positive_feature_transfer(name, alpha):
    @transfer(name, ["feat_w"])
    def fn(c, p, q, k):
        W = p("feat_w")
        fq, cq = positive_features(q, W, alpha, True, True)
        fk, ck = positive_features(k, W, alpha, False, True)
        return rows(c, p, q, k, fq, fk, cq + ck)
    return fn


positive_feature_transfer("performer", 0.5)
positive_feature_transfer("performer-prf", 0.5)
positive_feature_transfer("pff", 1.0)


def dijiang_rows(c, p, q, k):
    """The rows of every DiJiang form: normalised with the denominator (or
    the window's hybrid rows), else |s| / sum |s| (s > 0 here: positive
    features, positive decay)."""
    f = dijiang_form(c)
    (fq, lam), (fk, _) = dijiang_features(c, p, q, True, detach=False), dijiang_features(c, p, k, False, detach=False)
    if f["normaliser"] == "den":
        return rows(c, p, q, k, fq, fk, lam, decay_dijiang(q.shape[1]))
    return causal_rows(fq, fk, decay_dijiang(q.shape[1]), normalise=False)


def dijiang_transferred(c):
    """Transfer trains the scales (feat_t, or all of feat_w) and D if the
    form has it (docs/conversion.md#attention-transfer)."""
    scales = "feat_t" if c["attention"] == "dijiang" else "feat_w"
    return {scales, "feat_d"} if dijiang_form(c)["weights"] == "D" else {scales}


for _kind in DIJIANG_PRESETS:
    transfer(_kind, dijiang_transferred)(dijiang_rows)

# Switched forms whose transfer `dijiang-forms` checks: vector scales with
# softmax features and without D; matrix scales with D and the prescale;
# exp features with a denominator on matrix scales.
DIJIANG_TRANSFER_FORMS = ["dijiang+softmax+noD", "dijiang-released+D+prescale", "dijiang-released+exp+den+sq"]


@transfer("hedgehog", ["hh_qw", "hh_qb", "hh_kw", "hh_kb"], features=lambda d: 2 * d)
def hedgehog_rows(c, p, q, k):
    return rows(c, p, q, k, hedgehog_features(c, p, q, "hh_qw", "hh_qb"), hedgehog_features(c, p, k, "hh_kw", "hh_kb"))


def softmax_rows(q, k):
    T, d = q.shape[-2], q.shape[-1]
    mask = torch.ones(T, T, dtype=torch.bool).tril()
    return torch.softmax(((q @ k.transpose(-1, -2)) / math.sqrt(d)).masked_fill(~mask, float("-inf")), -1)


def forward(c, P, tokens, targets, ln1=None):
    """The loss; with a list `ln1`, also appends each block's LN1 output."""
    L, C = int(c["layers"]), int(c["width"])
    eps = float(c["ln_eps"])
    B, T = tokens.shape
    assert int(c["parallel_residual"]) == 1 and int(c["tied_embeddings"]) == 0
    kinds = layer_kinds(c)
    rope = make_rope(c, T)
    x = P["embed"][tokens]
    for l in range(L):
        p = lambda n: P[f"layer{l}/{n}"]  # noqa: E731
        h = F.layer_norm(x, (C,), p("ln1_w"), p("ln1_b"), eps)
        if ln1 is not None:
            ln1.append(h)
        a = VARIANTS[kinds[l]]["fn"](c, p, h, rope)
        h2 = F.layer_norm(x, (C,), p("ln2_w"), p("ln2_b"), eps)
        m = F.gelu(h2 @ p("fc_w").T + p("fc_b")) @ p("fcproj_w").T + p("fcproj_b")
        x = x + a + m
    x = F.layer_norm(x, (C,), P["lnf_w"], P["lnf_b"], eps)
    logits = x @ P["unembed"].T
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))


def run(kind, cmd):
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        print(f"FAIL {kind}: kapprox {cmd[1]} failed:", res.stderr)
    return res.returncode == 0


def split_spec(kind):
    """"dijiang+softmax+w7+sm0.1" -> ("dijiang+w7", ["softmax"], "0,1"): the
    registered variant (the kind, with its window), a DiJiang kind's form
    switches and a hybrid's kept layers."""
    base, *tokens = kind.split("+")
    kept, switches = "", []
    for t in tokens:
        if t.startswith("sm") and t[2:3].isdigit():
            kept = t[2:].replace(".", ",")
        elif t.startswith("w") and t[1:].isdigit():
            base += "+" + t
        else:
            switches.append(t)
    return base, switches, kept


def variant_spec(base):
    """The registered variant `base`, or "KIND+wN" made from KIND's."""
    if base in VARIANTS:
        return VARIANTS[base]
    kind, _, w = base.partition("+w")
    if kind in VARIANTS and w.isdigit():
        return dict(VARIANTS[kind], window=int(w))
    return None


def expected_form(base, switches):
    """The tokens a checkpoint of DiJiang kind `base` with `switches` must list."""
    preset = DIJIANG_PRESETS[base]
    form = [r if preset == "released" or (preset == "code" and n not in ("groupnorm", "gate")) else pp
            for n, pp, r in DIJIANG_FACTORS]
    for s in switches:
        i = next(i for i, (_, pp, r) in enumerate(DIJIANG_FACTORS) if s in (pp, r))
        form[i] = s
    return form


def check(kapprox, kind, tmp, text):
    base, switches, kept = split_spec(kind)
    form_opt = ["--dijiang-form", ",".join(switches)] if switches else []
    ck, gr = os.path.join(tmp, kind + ".h5"), os.path.join(tmp, kind + ".g.h5")
    spec = variant_spec(base)
    common = ["--text", text, "--batch", "4", "--warmup", "1", "--lr", "1e-2", "--seed", "1", "--quiet",
              "--no-final-eval"]
    shape = ["--heads", str(spec["heads"]), "--width", str(spec["width"]), "--ctx", str(spec["ctx"])]
    window = ["--window", str(spec["window"])] if spec["window"] else []
    if not kept:
        ok = run(kind, [kapprox, "train", "--layers", "2", *shape, "--steps", str(spec["steps"]),
                        "--attention", spec["kind"], *form_opt, *window, "--out", ck, "--dump-grads", gr, *common])
    else:
        teacher, student = os.path.join(tmp, kind + ".t.h5"), os.path.join(tmp, kind + ".s.h5")
        ok = (run(kind, [kapprox, "train", "--layers", "3", *shape, "--steps", "3", "--out", teacher, *common])
              and run(kind, [kapprox, "convert", "--from", teacher, "--attention", spec["kind"], *form_opt, *window,
                             "--softmax-layers", kept, "--out", student, "--seed", "2", "--quiet"])
              and run(kind, [kapprox, "finetune", "--from", student, "--steps", str(spec["steps"]), "--out", ck,
                             "--dump-grads", gr, *common]))
    if not ok:
        return False
    c, P = load(ck)
    if spec["kind"] in DIJIANG_PRESETS and str(c.get("dijiang_form")).split(",") != expected_form(spec["kind"],
                                                                                                 switches):
        print(f"FAIL {kind}: the checkpoint's dijiang_form is {c.get('dijiang_form')}, expected "
              f"{','.join(expected_form(spec['kind'], switches))}")
        return False
    if kept:
        want = ["softmax" if str(l) in kept.split(",") else spec["kind"] for l in range(3)]
        if layer_kinds(c) != want:
            print(f"FAIL {kind}: the checkpoint's layers are {layer_kinds(c)}, expected {want}")
            return False
    if int(c.get("window", 0)) != spec["window"]:
        print(f"FAIL {kind}: the checkpoint's window is {int(c.get('window', 0))}, expected {spec['window']}")
        return False
    g = h5py.File(gr, "r")
    tokens = torch.tensor(g["tokens"][()], dtype=torch.long)
    targets = torch.tensor(g["targets"][()], dtype=torch.long)
    loss = forward(c, P, tokens, targets)
    loss.backward()
    frozen = lambda name: name.split("/")[-1] in spec["frozen"]  # noqa: E731
    return compare(kind, c, P, g, loss, tokens.shape[1], spec["features"], frozen, "frozen tensor",
                   window=spec["window"])[0]


def compare(label, c, P, g, loss, T, features, zero, why_zero, note="", window=0):
    """The C loss and gradients of dump `g` against the reference's `loss`
    (backward done) within the float32 rule of the module docstring (a
    sliding window of `window` positions adds its sums to K); a
    tensor for which zero(name) holds must have an exactly zero C gradient
    (`why_zero` names the reason in a failure); returns (pass, number of
    gradients compared)."""
    L, C = int(c["layers"]), int(c["width"])
    V, m = int(c["vocab"]), features(C // int(c["heads"]))
    u = 2.0 ** -24
    K = 2 * L * (4 * C + 3 * T + V + 2 * m + window)
    tol = 10 * math.sqrt(K) * u
    ok = True
    loss_c = float(g.attrs["loss"])
    rel = abs(loss_c - loss.item()) / abs(loss.item())
    print(f"[{label}] loss: C {loss_c:.9f}  torch float64 {loss.item():.9f}  relative error {rel:.2e} "
          f"(tol {tol:.1e}, K {K}{note})")
    ok &= rel <= tol
    worst, compared = 0.0, 0
    for name, p in sorted(P.items()):
        gc = torch.tensor(g["grad"][name][()], dtype=torch.float64)
        if zero(name):
            bad = bool((gc != 0).any())
            if bad:
                print(f"  FAIL {name:20s} {why_zero} with a non-zero C gradient")
            ok &= not bad
            continue
        compared += 1
        gref = p.grad
        err = (gc - gref).norm().item()
        scale = gref.norm().item()
        r = err / (scale + 1e-300)
        worst = max(worst, r)
        bad = err > tol * scale + 1e-9 or scale == 0
        if bad or os.environ.get("VERBOSE"):
            print(f"  {'FAIL' if bad else 'ok  '} {name:20s} |g| {scale:.3e}  relative error {r:.2e}")
        ok &= not bad
    print(f"[{label}] gradients: {compared} of {len(P)} tensors compared, worst relative error {worst:.2e} "
          f"(tol {tol:.1e}): {'PASS' if ok else 'FAIL'}")
    return ok, compared


# Layer hybrids whose attention transfer is checked by default (on the
# 2-layer transfer teacher): performer's projection and dijiang's radii are
# fixed in fine-tuning but trained by transfer, in the converted layer only.
# Sliding-window hybrids (KIND+wN, also with kept softmax layers): the rows
# are the hybrid's (hybrid_rows), and win_beta is trained too.
TRANSFER_HYBRIDS = ["performer+sm0", "dijiang+sm1", "performer+w5", "hedgehog+w5", "dijiang+w5+sm0"]


def check_transfer(kapprox, kind, tmp, text, teacher):
    """Attention transfer of `kind` from the softmax `teacher` checkpoint:
    `kapprox convert --transfer-steps 3 --dump-transfer` writes the student
    after 3 steps and the loss and gradient of the next batch; here the
    same loss, from the formulas, in float64:
      L = mean_{l,b,h,i} sum_{j<=i} a_ij log(a_ij / max(â_ij, 1e-12)),
    a the teacher's softmax rows on its own LN1 output of block l, â the
    student's rows on that same input (q, k from the student's qkv, which
    conversion copied from the teacher, and not trained here).
    Tolerance: the script's float32 rule (K and u as for training, loss
    and gradients relative as in check()).  For the loss it is the strict
    side: the KL is the difference of the cross-entropy sum a log â and the
    entropy sum a log a, each a few nats, so a bound from the operands'
    round-off would be larger by (cross-entropy + entropy) / KL, which is
    printed.  Every tensor outside the transferred ones must have an
    exactly zero C gradient.  A layer hybrid "KIND+smLIST" keeps the
    listed layers softmax: they take no part, and L is the number of
    converted layers.  "KIND+wN" converts with --window N: the rows are the
    hybrid's, win_beta is one more transferred tensor, and the window's N
    exponentials per row join K."""
    base, switches, kept = split_spec(kind)
    base, _, window = base.partition("+w")
    hybrid = ["--softmax-layers", kept] if kept else []
    hybrid += ["--window", window] if window else []
    hybrid += ["--dijiang-form", ",".join(switches)] if switches else []
    ck, gr = os.path.join(tmp, kind + ".at.h5"), os.path.join(tmp, kind + ".at.g.h5")
    if not run(kind + " transfer", [kapprox, "convert", "--from", teacher, "--attention", base, *hybrid, "--out", ck,
                                    "--text", text, "--transfer-steps", "3", "--transfer-batch", "4", "--seed", "1",
                                    "--dump-transfer", gr, "--quiet"]):
        return False
    cT, PT = load(teacher)
    c, P = load(ck)
    if int(c.get("window", 0)) != int(window or 0):
        print(f"FAIL {kind} transfer: the checkpoint's window is {int(c.get('window', 0))}, expected {window}")
        return False
    spec = TRANSFER[base]
    tensors = spec["tensors"](c) | ({"win_beta"} if window else set())
    kinds = layer_kinds(c)
    converted = [l for l, k in enumerate(kinds) if k == base]
    want = ["softmax" if str(l) in kept.split(",") else base for l in range(len(kinds))] if kept else kinds
    if kinds != want or not converted:
        print(f"FAIL {kind} transfer: the checkpoint's layers are {kinds}, expected {want}")
        return False
    g = h5py.File(gr, "r")
    tokens = torch.tensor(g["tokens"][()], dtype=torch.long)
    targets = torch.tensor(g["targets"][()], dtype=torch.long)
    ln1 = []
    forward(cT, PT, tokens, targets, ln1)
    L, C, H = len(converted), int(c["width"]), int(c["heads"])
    B, T = tokens.shape
    rope = make_rope(c, T)
    mask = torch.ones(T, T, dtype=torch.bool).tril()
    loss, scale = 0.0, 0.0
    for l in converted:
        pT = lambda n: PT[f"layer{l}/{n}"]  # noqa: E731
        pS = lambda n: P[f"layer{l}/{n}"]  # noqa: E731
        h = ln1[l].detach()
        qT, kT, _ = heads_qkv(cT, pT, h, rope)
        a = softmax_rows(qT, kT).detach()
        qS, kS, _ = heads_qkv(c, pS, h, rope)
        ah = spec["fn"](c, pS, qS.detach(), kS.detach())
        a1 = torch.where(mask, a, torch.ones(()))
        ah1 = torch.where(mask, ah.clamp(min=1e-12), torch.ones(()))
        loss = loss + (a1 * (a1.log() - ah1.log())).sum() / (B * H * T * L)
        scale += float((a1 * (a1.log().abs() + ah1.log().abs())).sum()) / (B * H * T * L)
    loss.backward()
    not_transferred = lambda name: name.split("/")[-1] not in tensors  # noqa: E731
    ok, compared = compare(kind + " transfer", c, P, g, loss, T, spec["features"], not_transferred,
                           "tensor not transferred", f"; (cross-entropy + entropy) / KL = {scale / loss.item():.1f}",
                           window=int(window or 0))
    return ok and compared == L * len(tensors)


def main():
    if len(sys.argv) not in (2, 3):
        print(__doc__)
        return 2
    kapprox = sys.argv[1]
    kinds = sys.argv[2].split(",") if len(sys.argv) == 3 else list(VARIANTS) + HYBRIDS
    forms = kinds == ["dijiang-forms"]
    if forms:
        kinds = dijiang_flips()
    unknown = [k for k in kinds if not variant_spec(split_spec(k)[0])]
    if unknown:
        print(f"error: no reference for {', '.join(unknown)} (known: {', '.join(VARIANTS)})")
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        text = os.path.join(tmp, "t.txt")
        make_text(text)
        results = {k: check(kapprox, k, tmp, text) for k in kinds}
        teacher = os.path.join(tmp, "teacher.h5")
        if not run("transfer teacher", [kapprox, "train", "--text", text, "--layers", "2", "--heads", "2", "--width",
                                        "32", "--ctx", "16", "--batch", "4", "--steps", "30", "--warmup", "3", "--lr",
                                        "1e-2", "--seed", "2", "--out", teacher, "--quiet", "--no-final-eval"]):
            return 1
        default = len(sys.argv) == 2
        for k in dict.fromkeys(kinds + (TRANSFER_HYBRIDS if default else []) + (DIJIANG_TRANSFER_FORMS if forms else [])):
            if k in TRANSFER or k in TRANSFER_HYBRIDS or k in DIJIANG_TRANSFER_FORMS:
                results[k + " transfer"] = check_transfer(kapprox, k, tmp, text, teacher)
    failed = [k for k, ok in results.items() if not ok]
    print("PASS" if not failed else "FAIL: " + ", ".join(failed))
    return 0 if not failed else 1


if __name__ == "__main__":
    sys.exit(main())
