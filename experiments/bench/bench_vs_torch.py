#!/usr/bin/python3
"""Times one training step (forward + backward + AdamW) of the C decoder and
of an equivalent PyTorch model side by side, same sizes, same threads.

usage: OPENBLAS_NUM_THREADS=1 /usr/bin/python3 experiments/bench/bench_vs_torch.py \
           build/decoder_bench [--layers 4 --heads 4 --width 128 --ctx 64 --batch 16 --vocab 63 --steps 30]

PyTorch side: float32, torch.set_num_threads(2), OPENBLAS_NUM_THREADS=1 (set
here before torch is imported if unset), the architecture of the C decoder
(parallel residual, partial rotary on 25% of each head, exact GELU, untied
unembedding, causal softmax attention written out since torch 1.13 has no
fused attention), AdamW with the C defaults.  Both sides are timed the same
way: mean and best over --steps steps after 3 warm-up steps.  The C side is
run as a separate process (decoder_bench) so the two never share the cores.
"""
import argparse
import math
import os
import re
import subprocess
import sys
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402


class Block(nn.Module):
    def __init__(self, C, H, r):
        super().__init__()
        self.H, self.r = H, r
        self.ln1, self.ln2 = nn.LayerNorm(C), nn.LayerNorm(C)
        self.qkv, self.proj = nn.Linear(C, 3 * C), nn.Linear(C, C)
        self.fc, self.fcproj = nn.Linear(C, 4 * C), nn.Linear(4 * C, C)

    def forward(self, x, cos, sin, mask):
        B, T, C = x.shape
        H, d, r = self.H, C // self.H, self.r
        q, k, v = self.qkv(self.ln1(x)).split(C, -1)
        q, k, v = (t.reshape(B, T, H, d).transpose(1, 2) for t in (q, k, v))

        def rope(t):
            tr, tp = t[..., :r], t[..., r:]
            t1, t2 = tr[..., : r // 2], tr[..., r // 2:]
            return torch.cat([tr * cos + torch.cat([-t2, t1], -1) * sin, tp], -1)

        q, k = rope(q), rope(k)
        s = (q @ k.transpose(-1, -2)) * (1.0 / math.sqrt(d))
        a = torch.softmax(s.masked_fill(mask, float("-inf")), -1) @ v
        a = self.proj(a.transpose(1, 2).reshape(B, T, C))
        m = self.fcproj(F.gelu(self.fc(self.ln2(x))))
        return x + a + m


class Model(nn.Module):
    def __init__(self, V, C, H, L, T):
        super().__init__()
        d = C // H
        r = (d // 4) & ~1
        self.embed = nn.Embedding(V, C)
        self.blocks = nn.ModuleList(Block(C, H, r) for _ in range(L))
        self.lnf = nn.LayerNorm(C)
        self.unembed = nn.Linear(C, V, bias=False)
        inv = 10000.0 ** (-torch.arange(0, r, 2, dtype=torch.float32) / r)
        ang = torch.arange(T, dtype=torch.float32)[:, None] * inv[None]
        self.register_buffer("cos", torch.cat([ang.cos(), ang.cos()], -1))
        self.register_buffer("sin", torch.cat([ang.sin(), ang.sin()], -1))
        self.register_buffer("mask", ~torch.ones(T, T, dtype=torch.bool).tril())

    def forward(self, idx, tgt):
        x = self.embed(idx)
        for b in self.blocks:
            x = b(x, self.cos, self.sin, self.mask)
        logits = self.unembed(self.lnf(x))
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), tgt.reshape(-1))


def time_torch(a):
    torch.manual_seed(0)
    torch.set_num_threads(2)
    m = Model(a.vocab, a.width, a.heads, a.layers, a.ctx)
    decay = [p for n, p in m.named_parameters() if p.dim() == 2]
    other = [p for n, p in m.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": other, "weight_decay": 0.0}],
                            lr=1e-3, betas=(0.9, 0.95), eps=1e-8)
    idx = torch.randint(0, a.vocab, (a.batch, a.ctx))
    tgt = torch.randint(0, a.vocab, (a.batch, a.ctx))
    times = []
    for s in range(3 + a.steps):
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss = m(idx, tgt)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(m.parameters(), 1.0)
        opt.step()
        if s >= 3:
            times.append(time.perf_counter() - t0)
    return 1e3 * sum(times) / len(times), 1e3 * min(times)


def time_c(a):
    cmd = [a.bench, "--layers", str(a.layers), "--heads", str(a.heads), "--width", str(a.width), "--ctx",
           str(a.ctx), "--batch", str(a.batch), "--vocab", str(a.vocab), "--steps", str(a.steps)]
    env = dict(os.environ, OMP_NUM_THREADS="2")
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True).stdout
    mm = re.search(r"ms/step: mean ([\d.]+), best ([\d.]+)", out)
    share = re.search(r"matmul share: ([\d.]+)%", out)
    return float(mm.group(1)), float(mm.group(2)), float(share.group(1))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("bench", help="path of the decoder_bench program (build/decoder_bench)")
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--width", type=int, default=128)
    p.add_argument("--ctx", type=int, default=64)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--vocab", type=int, default=63)
    p.add_argument("--steps", type=int, default=30)
    a = p.parse_args()
    if not os.access(a.bench, os.X_OK):
        print(f"bench_vs_torch: error: '{a.bench}' is not an executable; build it with ninja -C build",
              file=sys.stderr)
        return 2
    c_mean, c_best, share = time_c(a)
    t_mean, t_best = time_torch(a)
    tok = a.batch * a.ctx
    print(f"config: layers {a.layers}, heads {a.heads}, width {a.width}, ctx {a.ctx}, batch {a.batch}, "
          f"vocab {a.vocab}; 2 threads; OPENBLAS_NUM_THREADS={os.environ['OPENBLAS_NUM_THREADS']}")
    print(f"C decoder:       {c_mean:7.1f} ms/step mean, {c_best:7.1f} best  ({tok / c_mean * 1e3:8.0f} tokens/s; "
          f"{share:.0f}% in sgemm)")
    print(f"PyTorch {torch.__version__}: {t_mean:7.1f} ms/step mean, {t_best:7.1f} best  "
          f"({tok / t_mean * 1e3:8.0f} tokens/s)")
    print(f"ratio C/PyTorch: {c_mean / t_mean:.2f} (mean), {c_best / t_best:.2f} (best)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
