#!/usr/bin/python3
"""Feature-map throughput through the Python module `kapprox` against the same
maps through the C program (`kapprox bench-features`) and against the PyTorch
expression of experiments/bench/bench_peer_torch.py (torch.exp(x @ W.T - c),
float64).  A benchmark, not a test.

For each scheme and (d, m): vectors per second of FeatureMap.__call__ (phi,
exponentials included: the C program's 'native-phi' path) on a batch of
--batch vectors, best of --reps timed calls after a warm-up, one thread
everywhere (OMP_NUM_THREADS, OpenBLAS, torch); the module's overhead per call:
the best time of a call on one vector (of 1000) minus the C program's best
per-call time at --batch 1 --reps 1000.

Every figure is the best of --rounds rounds on both sides.

usage: PYTHONPATH=build/python /usr/bin/python3 experiments/bench/bench_module.py build/kapprox
           [--schemes prf,pff-sobol,wdcf] [--d 64] [--mult 1,4] [--batch 4096] [--reps 7] [--rounds 3]"""
import argparse
import csv
import os
import subprocess
import sys
import tempfile
import time

os.environ["OMP_NUM_THREADS"] = "1"
os.environ["OPENBLAS_NUM_THREADS"] = "1"

import numpy as np  # noqa: E402

import kapprox  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_peer_torch import best_time  # noqa: E402


def c_program(kx, schemes, d, mult, batch, reps):
    """{(scheme, d, m): vectors/s of the native-phi path} from kapprox bench-features."""
    with tempfile.TemporaryDirectory() as work:
        out = os.path.join(work, "b.csv")
        subprocess.run([kx, "bench-features", "--schemes", ",".join(schemes), "--d", str(d), "--mult",
                        ",".join(map(str, mult)), "--batch", str(batch), "--reps", str(reps), "--threads", "1",
                        "--native-only", "--out", out], check=True, capture_output=True)
        with open(out, newline="") as f:
            return {(r["scheme"], int(r["d"]), int(r["m"])): float(r["vectors_per_second"])
                    for r in csv.DictReader(f) if r["path"] == "native-phi"}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("kapprox")
    ap.add_argument("--schemes", default="prf,pff-sobol,wdcf")
    ap.add_argument("--d", type=int, default=64)
    ap.add_argument("--mult", default="1,4")
    ap.add_argument("--batch", type=int, default=4096)
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    schemes, mult = a.schemes.split(","), [int(x) for x in a.mult.split(",")]
    try:
        import torch
        torch.set_num_threads(1)
    except ImportError:
        torch = None
    # the C program's figures: the best of --rounds runs, as the module's below (a loaded machine
    # takes a core away now and then; the best of a few rounds is what each side can do)
    c_batch, c_one = {}, {}
    for _ in range(a.rounds):
        for best, got in ((c_batch, c_program(a.kapprox, schemes, a.d, mult, a.batch, a.reps)),
                          (c_one, c_program(a.kapprox, schemes, a.d, mult, 1, 1000))):
            for key, vps in got.items():
                best[key] = max(best.get(key, 0.0), vps)
    rng = np.random.default_rng(1)
    d = a.d
    # inputs as bench-features draws them: entries N(0, 1/d)
    x = rng.standard_normal((a.batch, d)) / d ** 0.5
    calib = rng.standard_normal((512, d)) / d ** 0.5
    x1 = np.ascontiguousarray(x[:1])
    print(f"libkapprox {kapprox.version()}, d = {d}, batch {a.batch}, one thread, best of {a.reps} calls, "
          f"best of {a.rounds} rounds")
    print(f"{'scheme':12s} {'m':>5s} {'module vec/s':>13s} {'C vec/s':>11s} {'module/C':>9s} "
          f"{'torch vec/s':>12s} {'call on 1 vector':>17s} {'C call':>9s} {'overhead':>9s}")
    for scheme in schemes:
        for k in mult:
            m = d * k
            f = kapprox.FeatureMap(scheme, d, m, seed=1, calib_q=calib, calib_k=calib)
            out = np.empty((a.batch, m))
            t_batch = min(best_time(lambda: f(x, out=out), a.reps) for _ in range(a.rounds))
            # with the output allocated by the call
            t_new = min(best_time(lambda: f(x), a.reps) for _ in range(a.rounds))
            # one-vector calls: the best of 1000 single calls, as bench-features --batch 1 --reps 1000
            # times the C call (a best, not a mean: on a loaded machine a mean counts the time the
            # process waited for a core)
            out1 = np.empty((1, m))
            t_one = min(best_time(lambda: f(x1, out=out1), 1000) for _ in range(a.rounds))
            module_vps, c_vps = a.batch / t_batch, c_batch[(scheme, d, m)]
            c_call = 1 / c_one[(scheme, d, m)]
            torch_col = "-"
            if torch is not None:
                xt = torch.from_numpy(x)
                W = torch.randn(m, d, dtype=torch.float64)
                c = 0.5 * (xt * xt).sum(1, keepdim=True)
                torch_col = f"{a.batch / best_time(lambda: torch.exp(xt @ W.T - c), a.reps):.4g}"
            print(f"{scheme:12s} {m:5d} {module_vps:13.4g} {c_vps:11.4g} {module_vps / c_vps:9.3f} "
                  f"{torch_col:>12s} {t_one * 1e6:14.2f} us {c_call * 1e6:6.2f} us {(t_one - c_call) * 1e6:6.2f} us"
                  f"   (new output each call: {a.batch / t_new:.4g} vec/s)")
            f.close()


if __name__ == "__main__":
    main()
