#!/usr/bin/env python3
"""Peer figures for `kapprox bench-features` and `kapprox bench-attention`:
the same expressions in PyTorch (float32 and float64), so docs/performance.md
can show both side by side.  A benchmark, not a test.

  feature maps:       torch.exp(x @ W.T - c), x: batch x d, W: m x d
  linear attention:   causal, chunked (chunk 64): features of q and k, then per
                      chunk the masked intra-chunk product plus the prefix state
  decoder kernel:     the float32 causal linear kernel alone (features given,
                      normalised), n = 4096, m = dv = 64, 1 and 4 heads: the
                      chunked form of experiments/bench/bench_linear.py (masked
                      product inside a chunk, running state by a cumulative
                      sum), forward under no_grad and backward by autograd,
                      timed separately; as `kapprox bench-attention` times
                      dec_linear_causal

usage: python3 experiments/bench/bench_peer_torch.py [--threads 2] [--reps 7]
           [--only features,attention,decoder] [--batch 4096] [--chunk 32]
           [--blas-threads N]
"""
import argparse
import os
import sys
import time


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


def decoder_kernel(reps, chunk, n=4096, d=64):
    from bench_linear import torch_chunked
    g = torch.Generator().manual_seed(3)
    for heads in (1, 4):
        fq = torch.rand(heads, n, d, generator=g) + 0.01
        fk = torch.rand(heads, n, d, generator=g) + 0.01
        v = 2 * torch.rand(heads, n, d, generator=g) - 1
        dout = 2 * torch.rand(heads, n, d, generator=g) - 1
        with torch.no_grad():
            fwd = best_time(lambda: torch_chunked(fq, fk, v, chunk), reps)
        leaves = [x.clone().requires_grad_() for x in (fq, fk, v)]
        bwd = float("inf")
        for r in range(reps + 1):
            for x in leaves:
                x.grad = None
            o = torch_chunked(*leaves, chunk)
            t0 = time.perf_counter()
            o.backward(dout)
            if r:
                bwd = min(bwd, time.perf_counter() - t0)
        print(f"decoder kernel float32 n={n} m=dv={d} chunk {chunk} heads {heads}: forward {1e3 * fwd:8.3f} ms"
              f"  backward {1e3 * bwd:8.3f} ms")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--only", default="features,attention,decoder",
                    help="comma-separated parts: features, attention, decoder")
    ap.add_argument("--batch", type=int, default=4096, help="vectors per feature-map call (default 4096)")
    ap.add_argument("--chunk", type=int, default=32, help="rows per chunk of the decoder kernel (default 32)")
    ap.add_argument("--blas-threads", type=int, default=None,
                    help="OPENBLAS_NUM_THREADS for torch's BLAS (set before torch loads; default: unset)")
    args = ap.parse_args()
    parts = set(args.only.split(","))
    if parts - {"features", "attention", "decoder"}:
        print(f"bench_peer_torch: error: unknown part(s) {sorted(parts - {'features', 'attention', 'decoder'})} "
              "in --only; use features, attention, decoder", file=sys.stderr)
        return 2
    if args.blas_threads is not None:
        os.environ["OPENBLAS_NUM_THREADS"] = str(args.blas_threads)
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "decoder"))
    global torch
    import torch
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} threads, OPENBLAS_NUM_THREADS="
          f"{os.environ.get('OPENBLAS_NUM_THREADS', 'unset')}, best of {args.reps}")
    if "features" in parts:
        for dtype in (torch.float64, torch.float32):
            feature_maps(dtype, args.reps, args.batch)
    if "attention" in parts:
        for dtype in (torch.float64, torch.float32):
            causal_linear(dtype, args.reps)
    if "decoder" in parts:
        decoder_kernel(args.reps, args.chunk)
    return 0


if __name__ == "__main__":
    sys.exit(main())
