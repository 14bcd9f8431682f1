#!/usr/bin/python3
"""The Python module `kapprox` against the `kapprox` command: every sampler's
points, every feature map's features (and log features) and the kernel and
attention metrics bit for bit as the command writes them for the same
arguments; bad arguments raise a clear exception (type and message checked)
and never crash the interpreter; PyTorch tensors in, tensors out.

usage: python_module.py /path/to/kapprox BUILD_PYTHON_DIR
Exit 77 (skipped) without numpy, h5py or torch."""
import csv
import os
import subprocess
import sys
import tempfile

try:
    import h5py
    import numpy as np
    import torch
except ImportError as e:
    print(f"skipped: {e} (install python3-numpy, python3-h5py, python3-torch)")
    sys.exit(77)

KX = os.path.abspath(sys.argv[1])
sys.path.insert(0, os.path.abspath(sys.argv[2]))
import kapprox  # noqa: E402

failures = []
checked = {"points": 0, "directions": 0, "features": 0, "metrics": 0, "errors": 0}


def fail(msg):
    print("FAIL:", msg)
    failures.append(msg)


def run(*args, cwd):
    r = subprocess.run([KX, *map(str, args)], cwd=cwd, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"kapprox {' '.join(map(str, args))}: exit {r.returncode}: {r.stderr.strip()}")


def same_bits(a, b):
    """Equal as stored doubles: -0.0 against 0.0 or two NaNs of other payloads differ."""
    a, b = np.ascontiguousarray(a, dtype=np.float64), np.ascontiguousarray(b, dtype=np.float64)
    return a.shape == b.shape and np.array_equal(a.view(np.uint64), b.view(np.uint64))


def first_diff(a, b):
    if a.shape != b.shape:
        return f"shape {a.shape} against {b.shape}"
    i = np.argwhere(a.view(np.uint64) != b.view(np.uint64))[0]
    return f"at {tuple(i)}: {a[tuple(i)]!r} against {b[tuple(i)]!r}"


def check_points(work):
    for name, (max_dim, randomised, _) in kapprox.sequences().items():
        dim = min(5, max_dim)
        for seed, skip in ((7, 3), (0, 0)):
            got = kapprox.points(name, 64, dim, seed=seed, skip=skip)
            run("points", "--sequence", name, "--dim", dim, "-n", 64, "--seed", seed, "--skip", skip,
                "--out", "p.h5", cwd=work)
            with h5py.File(os.path.join(work, "p.h5"), "r") as f:
                want = f["points"][()]
            if not same_bits(got, want):
                fail(f"points {name} dim {dim} seed {seed} skip {skip}: {first_diff(got, want)}")
            checked["points"] += 1
        # the same points drawn in two calls of a Sequence
        with kapprox.Sequence(name, dim, seed=7) as s:
            s.skip(3)
            two = np.vstack([s.points(20), s.points(44)])
        if not same_bits(two, kapprox.points(name, 64, dim, seed=7, skip=3)):
            fail(f"Sequence {name}: 20 + 44 points differ from 64 in one call")
        got = kapprox.directions(name, 32, dim, seed=5)
        run("points", "--sequence", name, "--dim", dim, "-n", 32, "--seed", 5, "--directions", "--out", "d.h5",
            cwd=work)
        with h5py.File(os.path.join(work, "d.h5"), "r") as f:
            want = f["points"][()]
        if not same_bits(got, want):
            fail(f"directions {name} dim {dim}: {first_diff(got, want)}")
        checked["directions"] += 1
    # directions with inverse-CDF radii: the directions are those of the (d+1)-dimensional
    # points' first d coordinates, so they differ from the plain ones; the radii are chi_d
    # quantiles, positive and finite
    dirs, radii = kapprox.directions("sobol-lms", 256, 8, seed=1, radii=True)
    if dirs.shape != (256, 8) or radii.shape != (256,) or not (np.all(radii > 0) and np.all(np.isfinite(radii))):
        fail(f"directions with radii: shapes {dirs.shape} {radii.shape}, radii range {radii.min()}..{radii.max()}")
    # |unit direction| = 1 up to the rounding of a division and a d-term sum (d ulps)
    if np.max(np.abs(np.linalg.norm(dirs, axis=1) - 1)) > 8 * np.finfo(float).eps:
        fail("directions with radii are not unit vectors")


def head_rows(qk, layer, head):
    """q, k of one head as kernel-error evaluates them (q / d^(1/4) when not scaled), and v."""
    q, k, v = qk["layers"][layer]
    d = q.shape[2]
    scale = 1.0 if qk["scaled"] else pow(float(d), -0.25)
    return (np.ascontiguousarray(scale * q[head]), np.ascontiguousarray(scale * k[head]),
            None if v is None else np.ascontiguousarray(v[head]))


def check_features(work, path, layer, head, m, tag, extra=(), schemes=None, **kw):
    qk = kapprox.read_qk(os.path.join(work, path))
    q, k, _ = head_rows(qk, layer, head)
    for scheme in schemes or kapprox.schemes():
        for log in (False, True):
            run("features", "--input", path, "--layer", layer, "--head", head, "--scheme", scheme, "--m", m,
                "--seed", 11, "--out", "f.h5", *extra, *(["--log"] if log else []), cwd=work)
            with h5py.File(os.path.join(work, "f.h5"), "r") as f:
                rows_q, rows_k = f["q"][()], f["k"][()]
                want_q, want_k = f["q_features"][()], f["k_features"][()]
            if not (same_bits(rows_q, q) and same_bits(rows_k, k)):
                fail(f"{tag}: the module's reader and scaling give other rows than the command's")
                return
            with kapprox.FeatureMap(scheme, q.shape[1], m, seed=11, calib_q=q, calib_k=k, **kw) as fm:
                got_q, got_k = fm(q, log=log), fm(k, log=log)
            for what, got, want in (("q", got_q, want_q), ("k", got_k, want_k)):
                if not same_bits(got, want):
                    fail(f"{tag}: {scheme} {'log ' if log else ''}features of {what}: {first_diff(got, want)}")
            checked["features"] += 1


def check_metrics(work, path):
    run("kernel-error", "--input", path, "--schemes", "prf,pff-sobol,wpff-sobol,wdcf", "--m", "16,32",
        "--seeds", "0:1", "--quiet", "--out", "ke.csv", cwd=work)
    run("attn-fidelity", "--input", path, "--layers", "1", "--schemes", "orf,wdcf-code", "--m", "16",
        "--seeds", "2", "--quiet", "--out", "af.csv", cwd=work)
    qk = kapprox.read_qk(os.path.join(work, path))
    for csv_name in ("ke.csv", "af.csv"):
        with open(os.path.join(work, csv_name), newline="") as f:
            rows = list(csv.DictReader(f))
        if not rows:
            fail(f"{csv_name}: no rows")
        cache = {}
        for r in rows:
            key = (int(r["layer"]), int(r["head"]), r["scheme"], int(r["m"]), int(r["seed"]))
            if key not in cache:
                q, k, v = head_rows(qk, key[0], key[1])
                with kapprox.FeatureMap(key[2], q.shape[1], key[3], seed=key[4], calib_q=q, calib_k=k) as fm:
                    cache[key] = fm.metrics(q, k, v, causal=qk["causal"])
            got, want = cache[key][r["metric"]], float(r["value"])  # %.17g: the exact double
            if not (got == want or (np.isnan(got) and np.isnan(want))):
                fail(f"{csv_name} {key} {r['metric']}: module {got!r}, command {want!r}")
            checked["metrics"] += 1


def expect(exc, words, fn, *args, **kw):
    """fn(*args) raises exc with every one of `words` in its message."""
    try:
        fn(*args, **kw)
    except exc as e:
        msg = str(e)
        if not all(w in msg for w in words):
            fail(f"{fn.__name__}{args!r}: {type(e).__name__}('{msg}') does not say {words}")
    except Exception as e:  # the wrong kind of exception
        fail(f"{fn.__name__}{args!r}: {type(e).__name__}('{e}'), expected {exc.__name__} saying {words}")
    else:
        fail(f"{fn.__name__}{args!r}: no exception, expected {exc.__name__} saying {words}")
    checked["errors"] += 1


def check_errors(work):
    f = kapprox.FeatureMap("prf", 4, 8, seed=1)
    x = np.random.default_rng(0).standard_normal((6, 4)) / 2
    # from the library (its message, its status as the exception class)
    expect(kapprox.InvalidArgument, ["unknown feature-map scheme 'nope'", "pff-sobol"], kapprox.FeatureMap,
           "nope", 4, 8)
    expect(kapprox.InvalidArgument, ["number of features m must be at least 1"], kapprox.FeatureMap, "prf", 4, 0)
    expect(kapprox.InvalidArgument, ["input dimension d must be at least 1"], kapprox.FeatureMap, "prf", 0, 8)
    expect(kapprox.InvalidArgument, ["calibration"], kapprox.FeatureMap, "wpff-sobol", 4, 8)
    expect(kapprox.InvalidArgument, ["radii", "'diagonal'"], kapprox.FeatureMap, "pff-sobol", 4, 8,
           radii="diagonal")
    bad = x.copy()
    bad[2, 1] = np.nan
    expect(kapprox.InvalidArgument, ["non-finite", "index 9"], f, bad)
    bad[2, 1] = np.inf
    expect(kapprox.InvalidArgument, ["non-finite"], f.apply_log, bad)
    expect(kapprox.InvalidArgument, ["unknown", "nope"], kapprox.points, "nope", 4, 2)
    expect(kapprox.InvalidArgument, ["sobol"], kapprox.points, "sobol", 4, 0)
    expect(kapprox.InvalidArgument, ["gsl-sobol", "40"], kapprox.points, "gsl-sobol", 4, 41)
    expect(kapprox.InvalidArgument, ["non-finite"], kapprox.map_metrics, f, bad, x)
    expect(kapprox.InvalidArgument, ["radii"], kapprox.directions, "sobol", 4, 3, radii=True, radii_mode="x")
    # from the module's own checks: shapes, dtypes, layout, types
    expect(ValueError, ["x has 5 columns, expected 4"], f, np.zeros((3, 5)))
    expect(ValueError, ["x must have 2 dimensions", "(4,)"], f, np.zeros(4))
    expect(TypeError, ["x must be float64", "float32"], f, np.zeros((3, 4), dtype=np.float32))
    expect(TypeError, ["x must be float64", "int64"], f, np.zeros((3, 4), dtype=np.int64))
    expect(ValueError, ["not C-contiguous"], f, np.zeros((3, 8))[:, ::2])
    expect(ValueError, ["not C-contiguous"], f, np.zeros((4, 3)).T)
    expect(TypeError, ["numpy.ndarray or a torch.Tensor", "list"], f, [[0.0] * 4] * 3)
    expect(ValueError, ["out has 2 rows, x has 6"], f, x, out=np.empty((2, 8)))
    buf = np.zeros(4 * 4 + 4 * 8)
    expect(ValueError, ["out overlaps x"], f, buf[:16].reshape(4, 4), out=buf[8:40].reshape(4, 8))
    expect(TypeError, ["m must be an int", "float"], kapprox.FeatureMap, "prf", 4, 8.0)
    expect(ValueError, ["m must be at least 0", "-1"], kapprox.FeatureMap, "prf", 4, -1)
    expect(ValueError, ["seed must be in [0, 2^64)"], kapprox.FeatureMap, "prf", 4, 8, seed=-1)
    expect(ValueError, ["kernel must be 'softmax' or 'gauss'"], kapprox.FeatureMap, "prf", 4, 8, kernel="laplace")
    expect(ValueError, ["both calib_q and calib_k"], kapprox.FeatureMap, "wpff-sobol", 4, 8, calib_q=x)
    expect(ValueError, ["ridge"], kapprox.FeatureMap, "wpff-sobol", 4, 8, calib_q=x, calib_k=x, ridge=-1.0)
    expect(ValueError, ["q has 6 rows and k 5"], kapprox.map_metrics, f, x, x[:5])
    expect(TypeError, ["kapprox.FeatureMap"], kapprox.map_metrics, "prf", x, x)
    expect(ValueError, ["logits must be square"], kapprox.attention_log_weights, np.zeros((3, 4)))
    expect(ValueError, ["as many rows"], kapprox.softmax_attention, x, x, x[:5])
    # files
    expect(kapprox.FileError, ["missing.h5"], kapprox.QKFile, os.path.join(work, "missing.h5"))
    junk = os.path.join(work, "junk.h5")
    with open(junk, "wb") as fp:
        fp.write(b"not an HDF5 file at all\n" * 100)
    expect(kapprox.FileError, ["junk.h5"], kapprox.read_qk, junk)
    with kapprox.QKFile(os.path.join(work, "qk.h5")) as qf:
        expect(ValueError, ["has no layer 7"], qf.read, 7)
    # PyTorch: float64 contiguous CPU tensors in, tensors out, the same bits as NumPy
    t = torch.from_numpy(x.copy())
    out = f(t)
    if not isinstance(out, torch.Tensor) or not same_bits(out.numpy(), f(x)):
        fail(f"a float64 tensor: {type(out).__name__}, or other values than the array's")
    expect(TypeError, ["x must be float64", "float32"], f, t.float())
    expect(ValueError, ["non-contiguous tensor", ".contiguous()"], f, torch.zeros(8, 4, dtype=torch.float64)[::2])
    grad = torch.zeros(3, 4, dtype=torch.float64, requires_grad=True)
    if f(grad).shape != (3, 8):
        fail("a tensor that requires grad was not read")
    # closed objects
    f.close()
    expect(ValueError, ["was closed"], f, x)


def check_functions():
    """The array functions against NumPy written from their documented formulas."""
    rng = np.random.default_rng(3)
    q, k, v = (rng.standard_normal((12, 5)) / 2 for _ in range(3))
    L = kapprox.log_kernel_exact(q, k)
    # one dot product of 5 terms: a few ulps of values of size ~1
    if np.max(np.abs(L - q @ k.T)) > 1e-14:
        fail("log_kernel_exact differs from q k^T")
    G = kapprox.log_kernel_exact(q, k, kernel="gauss")
    if np.max(np.abs(G + 0.5 * ((q[:, None, :] - k[None, :, :]) ** 2).sum(-1))) > 1e-14:
        fail("log_kernel_exact gauss differs from -|q-k|^2/2")
    for causal in (False, True):
        logits = q @ k.T
        if causal:
            logits = np.where(np.tril(np.ones((12, 12))) > 0, logits, -np.inf)
        a = np.exp(logits - logits.max(1, keepdims=True))
        a /= a.sum(1, keepdims=True)
        # rows of 12 weights each: relative round-off of exp, a sum and a division, ~1e-15
        if np.max(np.abs(kapprox.softmax_attention(q, k, v, causal=causal) - a @ v)) > 1e-13:
            fail(f"softmax_attention (causal={causal}) differs from softmax(q k^T) v")
        lw = kapprox.attention_log_weights(q @ k.T, causal=causal)
        if np.max(np.abs(np.exp(lw) - a)) > 1e-14:
            fail(f"attention_log_weights (causal={causal}) differs from log softmax")
        with kapprox.FeatureMap("prf", 5, 64, seed=2) as fm:
            lq, lk = fm(q, log=True), fm(k, log=True)
        K = np.exp(lq) @ np.exp(lk).T
        if causal:
            K = np.tril(K)
        want = (K @ v) / K.sum(1, keepdims=True)
        if np.max(np.abs(kapprox.linear_attention(lq, lk, v, causal=causal) - want)) > 1e-12:
            fail(f"linear_attention (causal={causal}) differs from phi(q) phi(k)^T v / row sums")
        if np.max(np.abs(kapprox.log_kernel_estimate(lq, lk) - np.log(np.exp(lq) @ np.exp(lk).T))) > 1e-13:
            fail("log_kernel_estimate differs from log(phi(q) phi(k)^T)")


with tempfile.TemporaryDirectory() as work:
    try:
        check_points(work)
        # scaled = 1 (synth-qk), causal, with v; and scaled = 0 (written as a model would,
        # logit = q.k/sqrt(d)) without v, float32
        run("synth-qk", "--out", "qk.h5", "--layers", 2, "--heads", 2, "--tokens", 48, "--dim", 16, "--causal",
            "--seed", 4, cwd=work)
        rng = np.random.default_rng(9)
        with h5py.File(os.path.join(work, "raw.h5"), "w") as h:
            h.attrs["format"], h.attrs["scaled"], h.attrs["causal"] = "kapprox-qk", 0, 0
            for name in ("q", "k"):
                h.create_dataset(f"layer3/{name}", data=rng.standard_normal((2, 40, 8)).astype(np.float32))
        check_features(work, "qk.h5", 1, 1, 32, "qk.h5 layer 1 head 1")
        check_features(work, "raw.h5", 3, 0, 24, "raw.h5 (scaled 0, float32) layer 3")
        check_features(work, "qk.h5", 0, 0, 16, "gauss kernel, stratified radii",
                       extra=("--kernel", "gauss", "--radii", "stratified"), kernel="gauss", radii="stratified")
        # the module benchmark's shape (d = 64, m = 256: DCT blocks II, IV, III and I, the last on
        # the GEMM route) over 1100 rows: two of the library's spans of 1024 rows and a padded
        # last batch of 32, so the module's arrays go through every part of the batched path
        run("synth-qk", "--out", "wide.h5", "--layers", 1, "--heads", 1, "--tokens", 1100, "--dim", 64,
            "--seed", 5, cwd=work)
        check_features(work, "wide.h5", 0, 0, 256, "wide.h5 (d = 64, m = 256, 1100 rows)",
                       schemes=("wdcf", "wdcf-norm", "pff-sobol", "prf"))
        check_metrics(work, "qk.h5")
        check_errors(work)
        check_functions()
    except Exception as e:  # a command that failed, or the module raising where it must not
        fail(f"{type(e).__name__}: {e}")
print(", ".join(f"{v} {k}" for k, v in checked.items()), "checked")
sys.exit(1 if failures else 0)
