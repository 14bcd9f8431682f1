#!/usr/bin/env python3
"""Peer figures for `kapprox bench-features` and `kapprox bench-attention`:
the same expressions in PyTorch (float32 and float64), so the README can show
both side by side.  A benchmark, not a test.

  feature maps:       torch.exp(x @ W.T - c), x: batch x d, W: m x d
  linear attention:   causal, chunked (chunk 64): features of q and k, then per
                      chunk the masked intra-chunk product plus the prefix state

usage: python3 experiments/bench_peer_torch.py [--threads 2] [--reps 7]
"""
import argparse
import time

import torch


def best_time(fn, reps):
    fn()
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def feature_maps(dtype, reps, batch=4096):
    g = torch.Generator().manual_seed(1)
    for d in (64, 128):
        x = torch.randn(batch, d, generator=g, dtype=dtype) / d ** 0.5
        c = 0.5 * (x * x).sum(1, keepdim=True)
        for mult in (1, 2, 4, 8):
            m = d * mult
            W = torch.randn(m, d, generator=g, dtype=dtype)
            t = best_time(lambda: torch.exp(x @ W.T - c), reps)
            print(f"features {str(dtype):14s} d={d:4d} m={m:5d}  {batch / t:12.4g} vec/s"
                  f"  {2 * batch * m * d / t / 1e9:7.2f} GF/s")


def causal_linear(dtype, reps, n=4096, d=64, m=64, chunk=64):
    g = torch.Generator().manual_seed(2)
    q = torch.randn(n, d, generator=g, dtype=dtype) / d ** 0.5
    k = torch.randn(n, d, generator=g, dtype=dtype) / d ** 0.5
    v = torch.randn(n, d, generator=g, dtype=dtype)
    W = torch.randn(m, d, generator=g, dtype=dtype)
    mask = torch.tril(torch.ones(chunk, chunk, dtype=dtype))

    def forward():
        pq = torch.exp(q @ W.T - 0.5 * (q * q).sum(1, keepdim=True))
        pk = torch.exp(k @ W.T - 0.5 * (k * k).sum(1, keepdim=True))
        S = torch.zeros(m, d, dtype=dtype)
        z = torch.zeros(m, dtype=dtype)
        out = torch.empty(n, d, dtype=dtype)
        for s in range(0, n, chunk):
            a, b, vv = pq[s:s + chunk], pk[s:s + chunk], v[s:s + chunk]
            A = (a @ b.T) * mask
            num = A @ vv + a @ S
            den = A.sum(1) + a @ z
            out[s:s + chunk] = num / den[:, None]
            S += b.T @ vv
            z += b.sum(0)
        return out

    t = best_time(forward, reps)
    print(f"causal linear attention {str(dtype):14s} n={n} d={d} m={m}: {1e3 * t:8.3f} ms"
          f"  {8 * n * m * d / t / 1e9:6.2f} GF/s (4nmd features + 4nmd attention)")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=7)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} threads, best of {args.reps}")
    for dtype in (torch.float64, torch.float32):
        feature_maps(dtype, args.reps)
    for dtype in (torch.float64, torch.float32):
        causal_linear(dtype, args.reps)


if __name__ == "__main__":
    main()
