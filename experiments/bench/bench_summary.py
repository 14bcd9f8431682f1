#!/usr/bin/python3
"""Summary of experiments/bench/bench_rounds.sh output: for every figure the best
of the rounds (highest vectors/s, lowest ms) and the 1-minute load average
of the run that gave it (the larger of the `uptime` before and after),
as Markdown tables for docs/performance.md.  A benchmark summary, not a test.

usage: /usr/bin/python3 experiments/bench/bench_summary.py OUTDIR [--threads 1|2]
"""
import argparse
import glob
import os
import re
import sys

NUM = r"([-+\d.eE]+)"


def load_of(text):
    loads = [float(x) for x in re.findall(r"load average: ([\d.]+),", text)]
    return max(loads) if loads else float("nan")


def files(outdir, prefix, threads):
    name = re.compile(rf"{prefix}1t\d+\.txt" if threads == 1 else rf"{prefix}\d+\.txt")
    for path in sorted(glob.glob(os.path.join(outdir, f"{prefix}*.txt"))):
        if name.fullmatch(os.path.basename(path)):
            with open(path) as f:
                yield f.read()


def keep(best, key, value, load, higher):
    old = best.get(key)
    if old is None or (value > old[0] if higher else value < old[0]):
        best[key] = (value, load)


def c_features(outdir, threads):
    best, peak = {}, {}
    for text in files(outdir, "cf", threads):
        load = load_of(text)
        m = re.search(r"DGEMM peak \(384\^3, \d threads?\): ([\d.]+)", text)
        if m:
            keep(peak, "dgemm", float(m.group(1)), load, True)
        for line in text.splitlines():
            f = line.split()
            if len(f) >= 7 and re.fullmatch(r"[a-z][a-z0-9-]*", f[0]) and f[1].isdigit() and f[2].isdigit():
                key = (f[0], int(f[1]), int(f[2]))
                keep(best, key + ("log",), float(f[3]), load, True)
                keep(best, key + ("gflops",), float(f[4]), load, True)
                keep(best, key + ("phi",), float(f[6]), load, True)
                if f[7] != "-":  # the same map as one dense GEMM (DCT maps)
                    keep(best, key + ("dense",), float(f[7]), load, True)
            elif len(f) == 5 and f[0].isdigit() and f[1].isdigit():  # the float32 decoder map
                keep(best, ("float32-map", int(f[0]), int(f[1]), "phi"), float(f[2]), load, True)
    return best, peak


def torch_figures(outdir, prefixes, threads):
    best = {}
    for prefix in prefixes:
        for text in files(outdir, prefix, threads):
            load = load_of(text)
            blas = re.search(r"OPENBLAS_NUM_THREADS=(\S+),", text)
            blas = blas.group(1) if blas else "?"
            for m in re.finditer(rf"features torch\.(float\d+)\s+d=\s*(\d+) m=\s*(\d+)\s+{NUM} vec/s", text):
                keep(best, ("features", m.group(1), int(m.group(2)), int(m.group(3))), float(m.group(4)), load, True)
            for m in re.finditer(rf"causal linear attention torch\.(float\d+).*?:\s+{NUM} ms", text):
                keep(best, ("attention", m.group(1)), float(m.group(2)), load, False)
            for m in re.finditer(rf"decoder kernel float32 .*?heads (\d+): forward\s+{NUM} ms\s+backward\s+{NUM} ms",
                                 text):
                keep(best, ("decoder", int(m.group(1)), "fwd"), float(m.group(2)), (load, blas), False)
                keep(best, ("decoder", int(m.group(1)), "bwd"), float(m.group(3)), (load, blas), False)
    return best


def c_attention(outdir, threads):
    best = {}
    for text in files(outdir, "ca", threads):
        load = load_of(text)
        m = re.search(r"SGEMM rate \(384\^3\) measured on as many threads: ([\d.]+) GFLOP/s on 1,\s*([\d.]+) on",
                      text)
        if m:
            keep(best, ("sgemm", 1), float(m.group(1)), load, True)
            keep(best, ("sgemm", 2), float(m.group(2)), load, True)
        m = re.search(r"measured DGEMM peak \(384\^3(?:, \d+ threads?)?\): ([\d.]+)", text)
        if m:
            keep(best, ("dgemm",), float(m.group(1)), load, True)
        for line in text.splitlines():
            f = line.split()
            if len(f) == 12 and f[0].isdigit():  # the double table: linear ms, kernel ms
                keep(best, ("double", "linear"), float(f[2]), load, False)
                keep(best, ("double", "kernel"), float(f[7]), load, False)
            if len(f) == 9 and f[0].isdigit():  # float kernel: heads threads fwd ms .. bwd ms ..
                heads, thr = int(f[1]), int(f[2])
                keep(best, ("float", heads, thr, "fwd"), float(f[3]), load, False)
                keep(best, ("float", heads, thr, "bwd"), float(f[6]), load, False)
                keep(best, ("float", heads, thr, "fwdGF"), float(f[4]), load, True)
                keep(best, ("float", heads, thr, "bwdGF"), float(f[7]), load, True)
    return best


def fmt(x):
    return f"{x:.3g}" if x < 1e3 else f"{x:.2e}".replace("e+0", "e")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("outdir")
    ap.add_argument("--threads", type=int, choices=(1, 2), default=2)
    a = ap.parse_args()
    if not os.path.isdir(a.outdir):
        print(f"bench_summary: error: '{a.outdir}' is not a directory (run experiments/bench/bench_rounds.sh first)",
              file=sys.stderr)
        return 2
    cf, cpeak = c_features(a.outdir, a.threads)
    tt = torch_figures(a.outdir, ("tf",) if a.threads == 1 else ("tf", "ta", "tb"), a.threads)
    ca = c_attention(a.outdir, a.threads)
    n_rounds = len(list(files(a.outdir, "cf", a.threads)))
    print(f"{a.threads} thread(s), best of {n_rounds} rounds; (load) = 1-minute load average of the best run\n")
    if cf:
        dm = sorted({(k[1], k[2]) for k in cf})
        schemes = []
        for k in cf:
            if k[0] not in schemes and k[0] != "float32-map":
                schemes.append(k[0])

        def header():
            print("| scheme | " + " | ".join(f"d={d} m={m}" for d, m in dm) + " |")
            print("|---|" + "---|" * len(dm))

        def row(label, cell):
            """One table row: cell(d, m) gives the text or None for '-'."""
            print(f"| {label} | " + " | ".join(cell(d, m) or "-" for d, m in dm) + " |")

        def ratio(num, den, digits):
            return f"{num[0] / den[0]:.{digits}f}" if num and den else None

        def with_load(x):
            return f"{fmt(x[0])} ({x[1]:.1f})" if x else None

        print("feature maps: C phi vec/s (kx_fmap_apply, exponentials included) / PyTorch float64 "
              "torch.exp(x @ W.T - c) vec/s\n")
        header()
        for s in schemes:
            row(s, lambda d, m: ratio(cf.get((s, d, m, "phi")), tt.get(("features", "float64", d, m)), 1))
        for dt in ("float64", "float32"):
            row(f"PyTorch {dt} vec/s (load)", lambda d, m: with_load(tt.get(("features", dt, d, m))))
        for s in ("prf", "wdcf"):
            row(f"C {s} phi vec/s (load)", lambda d, m: with_load(cf.get((s, d, m, "phi"))))
        if any(k[0] == "float32-map" for k in cf):
            row("C float32 decoder map / PyTorch float32",
                lambda d, m: ratio(cf.get(("float32-map", d, m, "phi")), tt.get(("features", "float32", d, m)), 1))
            row("C float32 decoder map vec/s (load)", lambda d, m: with_load(cf.get(("float32-map", d, m, "phi"))))
        # Most any map could reach: a projection at the best rate a dense
        # map's log features reached here (prf, orf, pff-*, wpff-*; not the
        # DCT maps, nor uniform, which projects nothing), exponentials free,
        # over PyTorch.
        fast = max((v for k, v in cf.items() if k[3] == "gflops" and re.fullmatch(r"prf|orf|w?pff-.+", k[0])),
                   default=None)
        if fast:
            row(f"bound: {fast[0]:.1f} GFLOP/s / (2dm) / PyTorch float64",
                lambda d, m: ratio((fast[0] * 1e9 / (2 * d * m),), tt.get(("features", "float64", d, m)), 1))
        dct = [s for s in schemes if any((s, d, m, "dense") in cf for d, m in dm)]
        if dct:
            print("\nDCT maps (batched DCT) against the same map as one dense GEMM: best native vec/s / best "
                  "dense-blas vec/s\n")
            header()
            for s in dct:
                row(s, lambda d, m: ratio(cf.get((s, d, m, "log")), cf.get((s, d, m, "dense")), 2))
            row("wdcf native vec/s", lambda d, m: fmt(cf[("wdcf", d, m, "log")][0]) if ("wdcf", d, m, "log") in cf
                else None)
        if "dgemm" in cpeak:
            print(f"\nbench-features DGEMM peak, best: {cpeak['dgemm'][0]:.1f} GFLOP/s (load {cpeak['dgemm'][1]:.1f})")
    if ca:
        print("\nfloat32 decoder kernel, n = 4096, m = dv = 64 (ms; (load))\n")
        print("| heads, threads | C fwd | C fwd % SGEMM | C bwd | C bwd % SGEMM | PyTorch fwd | PyTorch bwd "
              "| fwd PyTorch / C | bwd PyTorch / C |")
        print("|---|---|---|---|---|---|---|---|---|")
        for key in sorted({k[1:3] for k in ca if k[0] == "float"}):
            h, thr = key
            cfw, cbw = ca[("float", h, thr, "fwd")], ca[("float", h, thr, "bwd")]
            # The share of the best SGEMM measurement on as many threads, not
            # the best of the rounds' own shares: one round's SGEMM figure can
            # come out low (a thread descheduled) and its share above 100 %.
            sg = ca.get(("sgemm", 1 if thr == 1 else 2), (float("nan"),))[0]
            pf = (100 * ca[("float", h, thr, "fwdGF")][0] / sg,)
            pb = (100 * ca[("float", h, thr, "bwdGF")][0] / sg,)
            tfw, tbw = tt.get(("decoder", h, "fwd")), tt.get(("decoder", h, "bwd"))
            tcell = (lambda x: f"{x[0]:.2f} ({x[1][0]:.1f}, BLAS {x[1][1]})" if x else "-")
            speedup = (lambda t, c: f"{t[0] / c[0]:.1f}" if t else "-")
            print(f"| {h}, {thr} | {cfw[0]:.3f} ({cfw[1]:.1f}) | {pf[0]:.1f} | {cbw[0]:.3f} ({cbw[1]:.1f}) | "
                  f"{pb[0]:.1f} | {tcell(tfw)} | {tcell(tbw)} | {speedup(tfw, cfw)} | {speedup(tbw, cbw)} |")
        for k in (("sgemm", 1), ("sgemm", 2), ("dgemm",)):
            if k in ca:
                print(f"{' '.join(map(str, k))} peak, best: {ca[k][0]:.1f} GFLOP/s (load {ca[k][1]:.1f})")
        if ("double", "linear") in ca:
            for k in (("double", "kernel"), ("double", "linear")):
                print(f"double {k[1]} ms, best: {ca[k][0]:.3f} (load {ca[k][1]:.1f})")
            for dt in ("float64", "float32"):
                t = tt.get(("attention", dt))
                if t:
                    print(f"PyTorch chunked causal linear attention {dt} (features included): {t[0]:.2f} ms "
                          f"(load {t[1]:.1f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
