#!/usr/bin/python3
"""Per-token decoding with a KV cache: the C softmax decoder (kapprox
bench-inference --attention softmax) against the same model in PyTorch.

usage: OPENBLAS_NUM_THREADS=1 /usr/bin/python3 experiments/bench/bench_infer_vs_torch.py \
           build/kapprox [--lengths 1024,4096 --seconds 2 --threads 1 --torch-threads 2]

PyTorch side: float32, torch.set_num_threads(--torch-threads, 2), no autograd, the model of
bench_vs_torch.py (the C decoder's architecture, default size 4 layers, 4
heads, width 256, vocab 64) decoding one token at a time against a
preallocated KV cache that already holds L positions (the cost of a step
depends only on the cache length, not on its contents).  Timed as the C
side: 4 untimed steps, then steps for --seconds (at least 16, at most L/16).
The C side runs first, as a separate process, so the two never share the
cores; its own thread count is --threads.
"""
import argparse
import math
import os
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from bench_vs_torch import Model  # noqa: E402


def rope(t, cos, sin, r):
    tr, tp = t[..., :r], t[..., r:]
    t1, t2 = tr[..., : r // 2], tr[..., r // 2:]
    return torch.cat([tr * cos + torch.cat([-t2, t1], -1) * sin, tp], -1)


def step(m, tok, pos, kc, vc):
    """Logits of token `tok` at position `pos`; appends its k, v to the caches."""
    x = m.embed(tok)  # (1, 1, C)
    cos, sin = m.cos[pos:pos + 1], m.sin[pos:pos + 1]
    for li, b in enumerate(m.blocks):
        C = x.shape[-1]
        H, d, r = b.H, C // b.H, b.r
        q, k, v = b.qkv(b.ln1(x)).split(C, -1)
        q, k, v = (t.reshape(1, 1, H, d).transpose(1, 2) for t in (q, k, v))
        q, k = rope(q, cos, sin, r), rope(k, cos, sin, r)
        kc[li][:, :, pos] = k[:, :, 0]
        vc[li][:, :, pos] = v[:, :, 0]
        s = (q @ kc[li][:, :, : pos + 1].transpose(-1, -2)) * (1.0 / math.sqrt(d))
        a = torch.softmax(s, -1) @ vc[li][:, :, : pos + 1]
        a = b.proj(a.transpose(1, 2).reshape(1, 1, C))
        x = x + a + b.fcproj(F.gelu(b.fc(b.ln2(x))))
    return m.unembed(m.lnf(x))


def time_torch(L, a):
    torch.manual_seed(0)
    torch.set_num_threads(a.torch_threads)
    steps_max = 4 + max(16, L // 16)
    m = Model(a.vocab, a.width, a.heads, a.layers, L + steps_max)
    d = a.width // a.heads
    kc = [torch.randn(1, a.heads, L + steps_max, d) for _ in range(a.layers)]
    vc = [torch.randn(1, a.heads, L + steps_max, d) for _ in range(a.layers)]
    tok = torch.zeros(1, 1, dtype=torch.long)
    with torch.no_grad():
        for w in range(4):
            step(m, tok, L + w, kc, vc)
        n, t0 = 0, time.perf_counter()
        while 4 + n < steps_max:
            step(m, tok, L + 4 + n, kc, vc)
            n += 1
            if n >= 16 and time.perf_counter() - t0 >= a.seconds:
                break
        return 1e3 * (time.perf_counter() - t0) / n


def time_c(a):
    with tempfile.TemporaryDirectory() as tmp:
        csv = os.path.join(tmp, "c.csv")
        subprocess.run([a.kapprox, "bench-inference", "--attention", "softmax", "--lengths", a.lengths,
                        "--seconds", str(a.seconds), "--threads", str(a.threads), "--layers", str(a.layers),
                        "--heads", str(a.heads), "--width", str(a.width), "--out", csv, "--no-figure"],
                       check=True, stdout=subprocess.DEVNULL)
        rows = [line.split(",") for line in open(csv).read().split("\n")[1:] if line]
        return {int(r[1]): float(r[5]) for r in rows}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("kapprox")
    p.add_argument("--lengths", default="1024,4096")
    p.add_argument("--seconds", type=float, default=2.0)
    p.add_argument("--threads", type=int, default=1)
    # one thread on each side is the steadier comparison on a machine that other jobs share
    p.add_argument("--torch-threads", type=int, default=2)
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--width", type=int, default=256)
    p.add_argument("--vocab", type=int, default=64)
    a = p.parse_args()
    c = time_c(a)
    print(f"{'length':>8} {'C ms/token':>11} {'PyTorch ms/token':>17} {'C / PyTorch':>12}")
    for L in (int(x) for x in a.lengths.split(",")):
        t = time_torch(L, a)
        print(f"{L:>8} {c[L]:>11.3f} {t:>17.3f} {c[L] / t:>12.2f}")


if __name__ == "__main__":
    main()
