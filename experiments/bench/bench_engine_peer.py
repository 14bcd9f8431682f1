#!/usr/bin/python3
"""The script a researcher would write instead of `kapprox kernel-error` or
`kapprox attn-fidelity`: numpy/scipy, written from docs/methods.md (Samplers,
Feature maps, Metrics), for the evaluation engine's benchmark
(experiments/bench/bench_engine.sh).  Not a reference for the numbers: its
samplers are scipy's (other scrambles, other random streams), so its errors
agree with kapprox's in size, not in value.

  kernel: synthetic q, k with |q| = |k| = NORM (directions uniform on the
          sphere), K = exp(Q K^T); per (scheme, m, seed) the features
          phi(x) = exp(W x - |x|^2/2) / sqrt(m) and the relative Frobenius
          error |phi(Q) phi(K)^T - K|_F / |K|_F and the mean squared
          relative error (what kernel-error reports).
  attn:   every head of a Q/K file (dump-qk's schema: scaled = 0 means the
          logit is q.k / sqrt(d)), causal; per point the attention rows of
          the estimated kernel against softmax: mean KL, mean total
          variation, max |a - a^|, |A^V - AV|_F / |AV|_F (attn-fidelity).

Set OPENBLAS_NUM_THREADS=1 (and OMP_NUM_THREADS=1) for one thread.  Prints
the CPU seconds of the computation (imports and reading excluded) and a
checksum line of the errors.
"""
import argparse
import sys
import time

import numpy as np
from scipy import special, stats
from scipy.stats import qmc

SCHEMES = ("prf", "orf", "pff-sobol", "pff-halton")


def m_list(spec):
    if ":" in spec:
        lo, hi = (int(x) for x in spec.split(":"))
        out = []
        while lo <= hi:
            out.append(lo)
            lo *= 2
        return out
    return [int(x) for x in spec.split(",")]


def chi_ppf(u, d):
    """F^-1_chi_d(u) = sqrt(F^-1_chi2_d(u))."""
    return np.sqrt(special.gammaincinv(d / 2.0, u) * 2.0)


def rows(scheme, m, d, seed):
    """The m x d matrix W of a map (docs/methods.md, Feature maps)."""
    rng = np.random.default_rng([seed, 1])  # a stream apart from the data's
    if scheme == "prf":
        return rng.standard_normal((m, d))
    if scheme == "orf":
        blocks = []
        for _ in range((m + d - 1) // d):
            q, r = np.linalg.qr(rng.standard_normal((d, d)))
            q = q * np.sign(np.diag(r))  # Haar
            blocks.append(q.T)
        w = np.vstack(blocks)[:m]
        return w * np.sqrt(rng.chisquare(d, size=m))[:, None]
    sampler = (qmc.Sobol if scheme == "pff-sobol" else qmc.Halton)(d + 1, scramble=True, seed=seed)
    u = np.clip(sampler.random(m), 2.0**-60, 1 - 2.0**-53)
    g = special.ndtri(u[:, :d])
    v = g / np.linalg.norm(g, axis=1, keepdims=True)
    return v * chi_ppf(u[:, d], d)[:, None]


def features(w, x, stabilise):
    """log phi(x) = W x - |x|^2/2 - log(m)/2, exponentiated after subtracting
    its maximum (per row for queries; once for keys), which cancels in the
    attention rows; not needed (stabilise = None) at norm 1."""
    lp = x @ w.T - 0.5 * np.sum(x * x, axis=1, keepdims=True) - 0.5 * np.log(w.shape[0])
    if stabilise == "row":
        lp -= lp.max(axis=1, keepdims=True)
    elif stabilise == "all":
        lp -= lp.max()
    return np.exp(lp)


def synthetic(n, d, norm, seed):
    rng = np.random.default_rng([seed, 0])
    q = rng.standard_normal((n, d))
    k = rng.standard_normal((n, d))
    q *= norm / np.linalg.norm(q, axis=1, keepdims=True)
    k *= norm / np.linalg.norm(k, axis=1, keepdims=True)
    return q, k


def kernel_grid(a):
    q, k = synthetic(a.tokens, a.dim, a.norm, a.data_seed)
    t0 = time.process_time()
    exact = np.exp(q @ k.T)
    exact_norm = np.linalg.norm(exact)
    total = 0.0
    for scheme in a.schemes.split(","):
        for m in m_list(a.m):
            for seed in range(a.seeds):
                w = rows(scheme, m, a.dim, seed)
                est = features(w, q, None) @ features(w, k, None).T
                fro = np.linalg.norm(est - exact) / exact_norm
                mse = np.mean((est / exact - 1.0) ** 2)
                total += fro + mse
    return time.process_time() - t0, total


def attn_grid(a):
    import h5py

    heads = []
    with h5py.File(a.input, "r") as f:
        scaled = int(f.attrs.get("scaled", 0))
        for name in sorted(k for k in f.keys() if k.startswith("layer")):
            q, k, v = (np.asarray(f[name][x], dtype=np.float64) for x in ("q", "k", "v"))
            for h in range(q.shape[0]):
                s = 1.0 if scaled else q.shape[2] ** -0.25
                heads.append((q[h] * s, k[h] * s, v[h]))
    t0 = time.process_time()
    total = 0.0
    for q, k, v in heads:
        n, d = q.shape
        mask = np.tril(np.ones((n, n), dtype=bool))
        logits = np.where(mask, q @ k.T, -np.inf)
        a_exact = np.exp(logits - logits.max(axis=1, keepdims=True))
        a_exact /= a_exact.sum(axis=1, keepdims=True)
        out = a_exact @ v
        out_norm = np.linalg.norm(out)
        log_exact = np.log(np.where(mask, a_exact, 1.0))
        for scheme in a.schemes.split(","):
            for m in m_list(a.m):
                for seed in range(a.seeds):
                    w = rows(scheme, m, d, seed)
                    est = np.where(mask, features(w, q, "row") @ features(w, k, "all").T, 0.0)
                    a_hat = est / est.sum(axis=1, keepdims=True)
                    with np.errstate(divide="ignore"):
                        log_hat = np.log(np.where(mask, a_hat, 1.0))
                    kl = np.mean(np.sum(a_exact * (log_exact - log_hat), axis=1))
                    tv = np.mean(0.5 * np.sum(np.abs(a_exact - a_hat), axis=1))
                    mx = np.max(np.abs(a_exact - a_hat))
                    err = np.linalg.norm(a_hat @ v - out) / out_norm
                    total += kl + tv + mx + err
    return time.process_time() - t0, total


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("what", choices=("kernel", "attn"))
    p.add_argument("--schemes", default=",".join(SCHEMES))
    p.add_argument("--m", default="16:1024")
    p.add_argument("--seeds", type=int, default=10, help="seeds 0 .. N-1")
    p.add_argument("--dim", type=int, default=64)
    p.add_argument("--tokens", type=int, default=256)
    p.add_argument("--norm", type=float, default=1.0)
    p.add_argument("--data-seed", type=int, default=0)
    p.add_argument("--input", help="Q/K file (attn)")
    a = p.parse_args()
    for s in a.schemes.split(","):
        if s not in SCHEMES:
            sys.exit(f"unknown scheme {s} (this script has {', '.join(SCHEMES)})")
    if a.what == "attn" and not a.input:
        sys.exit("attn needs --input FILE.h5")
    cpu, total = kernel_grid(a) if a.what == "kernel" else attn_grid(a)
    print(f"numpy {a.what}: {cpu:.3f} s CPU (checksum of the errors {total:.6g})")


if __name__ == "__main__":
    main()
