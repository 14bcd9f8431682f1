#!/usr/bin/python3
"""Linear attention benchmark (figures, not a test).

usage: /usr/bin/python3 experiments/bench/bench_linear.py build/decoder_bench
           [--ctx 128,1024,4096] [--tokens 4096] [--kinds softmax,performer,...]
           [--steps N] [--repeats N] [--kernel-only | --steps-only]

1. Training step time (forward + backward + clip + AdamW, the default model:
   4 layers, 4 heads, width 256, vocab 63) of every attention kind at each
   context, batch = tokens / context so every row processes the same number
   of tokens; from `decoder_bench --attention KIND`, mean over --steps steps
   after 2 warm-up steps.  The kinds run in turn, --repeats times, and each
   keeps its lowest mean: on a shared machine the load drifts, and
   interleaving spreads the drift over every kind.
2. The causal linear attention kernel of one layer, forward + backward
   (B x H = tokens/ctx x 4 sequences, m = dv = 64, normalised, float32):
   C (`decoder_bench --kernel`) against the same chunked computation in
   PyTorch (chunks of 64: masked product inside a chunk, running state
   across chunks by an exclusive cumulative sum; backward by autograd),
   float32, torch.set_num_threads(2), OPENBLAS_NUM_THREADS=1 on both sides,
   each side in its own process.
"""
import argparse
import os
import re
import subprocess
import sys
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import torch  # noqa: E402


def c_step(bench, kind, ctx, batch, steps):
    cmd = [bench, "--attention", kind, "--ctx", str(ctx), "--batch", str(batch), "--steps", str(steps),
           "--warmup", "2"]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True,
                         env=dict(os.environ, OMP_NUM_THREADS="2")).stdout
    m = re.search(r"ms/step: mean ([\d.]+), best ([\d.]+)", out)
    return float(m.group(1)), float(m.group(2))


def c_kernel(bench, ctx, batch, steps):
    cmd = [bench, "--kernel", "--ctx", str(ctx), "--batch", str(batch), "--steps", str(steps)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True,
                         env=dict(os.environ, OMP_NUM_THREADS="2")).stdout
    m = re.search(r"ms/forward\+backward: mean ([\d.]+), best ([\d.]+)", out)
    return float(m.group(1)), float(m.group(2))


def torch_chunked(fq, fk, v, chunk=64, eps=1e-6):
    """o = causal normalised linear attention of (BH, T, m) features, chunked."""
    BH, T, m = fq.shape
    n = T // chunk
    vx = torch.cat([v, torch.ones(BH, T, 1)], -1)
    q = fq.reshape(BH, n, chunk, m)
    k = fk.reshape(BH, n, chunk, m)
    vc = vx.reshape(BH, n, chunk, -1)
    mask = torch.ones(chunk, chunk).tril()
    out = ((q @ k.transpose(-1, -2)) * mask) @ vc
    kv = k.transpose(-1, -2) @ vc                    # (BH, n, m, dv+1) per chunk
    state = torch.cumsum(kv, 1) - kv                 # exclusive: chunks before
    out = (out + q @ state).reshape(BH, T, -1)
    return out[..., :-1] / (out[..., -1:] + eps)


def torch_kernel(ctx, batch, steps, heads=4, d=64):
    torch.set_num_threads(2)
    g = torch.Generator().manual_seed(0)
    BH = batch * heads
    fq = (torch.rand(BH, ctx, d, generator=g) + 0.01).requires_grad_()
    fk = (torch.rand(BH, ctx, d, generator=g) + 0.01).requires_grad_()
    v = (2 * torch.rand(BH, ctx, d, generator=g) - 1).requires_grad_()
    dout = 2 * torch.rand(BH, ctx, d, generator=g) - 1
    times = []
    for s in range(3 + steps):
        t0 = time.perf_counter()
        fq.grad = fk.grad = v.grad = None
        o = torch_chunked(fq, fk, v)
        o.backward(dout)
        if s >= 3:
            times.append(time.perf_counter() - t0)
    return 1e3 * sum(times) / len(times), 1e3 * min(times)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("bench", help="path of decoder_bench (build/decoder_bench)")
    p.add_argument("--ctx", default="128,1024,4096")
    p.add_argument("--tokens", type=int, default=4096)
    p.add_argument("--kinds", default="softmax,performer,performer-prf,pff,cosformer")
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--kernel-only", action="store_true")
    p.add_argument("--steps-only", action="store_true")
    a = p.parse_args()
    if not os.access(a.bench, os.X_OK):
        print(f"bench_linear: error: '{a.bench}' is not an executable; build it with ninja -C build", file=sys.stderr)
        return 2
    ctxs = [int(x) for x in a.ctx.split(",")]
    kinds = a.kinds.split(",")
    print(f"2 threads (OMP_NUM_THREADS=2 / torch.set_num_threads(2)), OPENBLAS_NUM_THREADS="
          f"{os.environ['OPENBLAS_NUM_THREADS']}, {a.tokens} tokens per step; mean (best) ms")
    if not a.kernel_only:
        print(f"\ntraining step, default model (4 layers, 4 heads, width 256), ms: the lowest of {a.repeats} "
              "interleaved runs' means (best single step), and softmax / kind\n")
        print("| kind | " + " | ".join(f"ctx {t} (batch {a.tokens // t})" for t in ctxs) + " |")
        print("|---|" + "---|" * len(ctxs))
        res = {}
        for t in ctxs:
            for _ in range(a.repeats):  # interleaved: a drift in machine load hits every kind alike
                for kind in kinds:
                    mean, best = c_step(a.bench, kind, t, a.tokens // t, a.steps)
                    old = res.get((kind, t), (float("inf"), float("inf")))
                    res[(kind, t)] = (min(old[0], mean), min(old[1], best))
        for kind in kinds:
            cells = []
            for t in ctxs:
                mean, best = res[(kind, t)]
                ratio = f", {res[('softmax', t)][0] / mean:.2f}x" if kind != "softmax" and ("softmax", t) in res else ""
                cells.append(f"{mean:.0f} ({best:.0f}){ratio}")
            print(f"| `{kind}` | " + " | ".join(cells) + " |", flush=True)
    if not a.steps_only:
        print(f"\ncausal linear kernel of one layer, forward + backward (m = dv = 64, 4 heads), ms: the lowest of "
              f"{a.repeats} interleaved runs' means (best single run)\n")
        print(f"| ctx (batch) | C | PyTorch {torch.__version__} chunked | PyTorch / C |")
        print("|---|---|---|---|")
        for t in ctxs:
            B = a.tokens // t
            c, tt = [float("inf")] * 2, [float("inf")] * 2
            for _ in range(a.repeats):
                c = [min(x, y) for x, y in zip(c, c_kernel(a.bench, t, B, 3 * a.steps))]
                tt = [min(x, y) for x, y in zip(tt, torch_kernel(t, B, 3 * a.steps))]
            print(f"| {t} ({B}) | {c[0]:.1f} ({c[1]:.1f}) | {tt[0]:.1f} ({tt[1]:.1f}) | {tt[0] / c[0]:.2f} |",
                  flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
