#!/usr/bin/python3
"""Test as a client would: run the documentation's own Python snippets, read
from README.md and docs/*.md at test time, with Debian's python3 (h5py, numpy,
pandas, torch) against the built program, plus the pages' cheap shell recipes.

Every ```python block of every page must carry a marker line
"<!-- snippet: NAME ... -->" right above it, and NAME must be one this test
knows how to set up and check, so a new snippet cannot go untested.

usage: readme_snippets.py /path/to/kapprox [PAGE.md | DIR]...
A DIR stands for README.md and docs/*.md under it; without pages, the
source tree this script belongs to.
Exit 77 (skipped) when a Python module the snippets import is missing."""
import ast
import csv
import math
import os
import re
import shlex
import subprocess
import sys
import tempfile

try:
    import h5py  # noqa: F401
    import numpy as np
    import pandas  # noqa: F401
    import torch
except ImportError as e:
    print(f"skipped: {e} (install python3-h5py, python3-numpy, python3-pandas, python3-torch)")
    sys.exit(77)

KX = os.path.abspath(sys.argv[1])


def doc_pages(args):
    """The Markdown pages to read: README.md and docs/*.md of each directory
    argument, each file argument as given."""
    pages = []
    for a in args or [os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")]:
        if os.path.isdir(a):
            pages.append(os.path.join(a, "README.md"))
            docs = os.path.join(a, "docs")
            if os.path.isdir(docs):
                pages += sorted(os.path.join(docs, f) for f in os.listdir(docs) if f.endswith(".md"))
        else:
            pages.append(a)
    return pages


PAGES = doc_pages(sys.argv[2:])
failures = []


def fail(msg):
    print("FAIL:", msg)
    failures.append(msg)


def doc_blocks(path):
    """(marker name or None, language, code, "page:line" of its first line) of
    every fenced block of one page."""
    lines = open(path, encoding="utf-8").read().split("\n")
    name, i = None, 0
    while i < len(lines):
        m = re.match(r"<!-- snippet: ([\w-]+)", lines[i])
        fence = re.match(r"```(\w*)\s*$", lines[i])
        if m:
            name = m.group(1)
        elif fence:
            j = i + 1
            while j < len(lines) and lines[j].rstrip() != "```":
                j += 1
            yield name, fence.group(1), "\n".join(lines[i + 1:j]), f"{os.path.basename(path)}:{i + 2}"
            name, i = None, j
        elif lines[i].strip():
            name = None  # a marker names only the block right below it
        i += 1


def run_snippet(code, cwd, env):
    """Executes `code` in cwd with the names in env; returns (namespace, value
    of a trailing expression, as the interactive interpreter would show)."""
    tree = ast.parse(code)
    last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
    ns = dict(env)
    old = os.getcwd()
    os.chdir(cwd)
    try:
        exec(compile(tree, "doc snippet", "exec"), ns)
        value = eval(compile(ast.Expression(last.value), "doc snippet", "eval"), ns) if last else None
    finally:
        os.chdir(old)
    return ns, value


def kapprox(cwd, *args):
    r = subprocess.run([KX, *args], cwd=cwd, capture_output=True, text=True)
    if r.returncode != 0:
        fail(f"kapprox {' '.join(args)}: exit {r.returncode}: {r.stderr.strip()}")
    return r.returncode == 0


def read_rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def shell_recipe(cwd, line):
    """A documented shell line, run with the built program first on PATH."""
    env = dict(os.environ, PATH=os.path.dirname(KX) + os.pathsep + os.environ["PATH"])
    r = subprocess.run(line, shell=True, cwd=cwd, env=env, capture_output=True, text=True)
    if r.returncode != 0:
        fail(f"documented recipe `{line}`: exit {r.returncode}: {r.stderr.strip()}")
    return r.returncode == 0


# --- the snippets, each with what it needs and what it must produce ---------

def check_qk_write(code, work):
    # per_layer: 2 layers of (heads 4, tokens 64, d 16) tensors, as forward
    # hooks would collect them; seeded.
    g = torch.Generator().manual_seed(7)
    per_layer = [tuple(torch.randn(4, 64, 16, generator=g) * 0.5 for _ in range(3)) for _ in range(2)]
    run_snippet(code, work, {"per_layer": per_layer})
    # the documentation's own recipe on the file the snippet wrote
    recipe = [l for b in BLOCKS if b[1] == "sh" for l in b[2].split("\n")
              if l.startswith("kapprox attn-fidelity --input qk.h5")]
    if len(recipe) != 1:
        fail(f"the documentation has {len(recipe)} `kapprox attn-fidelity --input qk.h5 ...` "
             "recipes, want 1")
        return
    if not shell_recipe(work, recipe[0]):
        return
    out = shlex.split(recipe[0])
    rows = read_rows(os.path.join(work, out[out.index("--out") + 1]))
    seen = {(r["layer"], r["head"]) for r in rows}
    want = {(str(L), str(h)) for L in range(2) for h in range(4)}
    if seen != want:
        fail(f"attn-fidelity on the snippet's file covered (layer, head) {sorted(seen)}, want {sorted(want)}")
    if not kapprox(work, "kernel-error", "--input", "qk.h5", "--schemes", "prf", "--m", "16", "--seeds", "0",
                   "--out", "ke.csv"):
        return
    # kapprox read the values the snippet wrote: its q_norm column is the mean
    # of |q_t| / d^(1/4) (scaled = 0).  The CSV prints it with 6 significant
    # digits (at most 5e-6 relative off) from float32 data (round-off of a
    # 16-term sum and a square root, a few 1e-7): 6e-6 relative.
    for r in read_rows(os.path.join(work, "ke.csv")):
        q = per_layer[int(r["layer"])][0][int(r["head"])].float().numpy().astype(np.float64)
        want_norm = float(np.mean(np.linalg.norm(q, axis=1)) / 16 ** 0.25)
        if not math.isclose(float(r["q_norm"]), want_norm, rel_tol=6e-6):
            fail(f"kernel-error read layer {r['layer']} head {r['head']} with q_norm {r['q_norm']}, "
                 f"the snippet wrote {want_norm}")
            break


def check_pandas(code, work):
    os.makedirs(os.path.join(work, "results"), exist_ok=True)
    if not kapprox(work, "compare", "--out", "results/compare.csv", "--m", "16,32", "--seeds", "0:2",
                   "--tokens", "32", "--dim", "8"):
        return
    _, table = run_snippet(code, work, {})
    # the same means and standard errors from the csv module
    groups = {}
    for r in read_rows(os.path.join(work, "results", "compare.csv")):
        if r["metric"] == "kernel_rel_fro":
            groups.setdefault((r["scheme"], int(r["m"])), []).append(float(r["value"]))
    if table is None or len(table) != len(groups):
        fail(f"pandas snippet: {0 if table is None else len(table)} groups, the CSV has {len(groups)}")
        return
    for (scheme, m), v in groups.items():
        mean = sum(v) / len(v)
        sem = math.sqrt(sum((x - mean) ** 2 for x in v) / (len(v) - 1) / len(v))
        got = table.loc[(scheme, m)]
        # sums of 3 doubles in another order: round-off 1e-15 relative
        if not (math.isclose(got["mean"], mean, rel_tol=1e-12) and
                math.isclose(got["sem"], sem, rel_tol=1e-9, abs_tol=1e-15)):
            fail(f"pandas snippet: {scheme} m={m}: {got['mean']} ± {got['sem']}, csv module {mean} ± {sem}")


TEXT = "".join(f"and the lord said unto moses, behold the light of day {i}.\n" for i in range(300))


def trained(work):
    path = os.path.join(work, "decoder.h5")
    if not os.path.exists(path):
        with open(os.path.join(work, "t.txt"), "w") as f:
            f.write(TEXT)
        kapprox(work, "train", "--text", "t.txt", "--layers", "2", "--heads", "2", "--width", "16", "--ctx", "16",
                "--batch", "2", "--steps", "3", "--quiet", "--no-final-eval", "--out", "decoder.h5")
    return os.path.exists(path)


def check_qk_read(code, work):
    if not trained(work) or not kapprox(work, "dump-qk", "--checkpoint", "decoder.h5", "--text", "t.txt",
                                        "--out", "qk.h5", "--tokens", "12"):
        return
    ns, _ = run_snippet(code, work, {})
    if ns["q"].shape != (2, 12, 8) or ns["k"].shape != (2, 12, 8):
        fail(f"qk-read snippet: q {ns['q'].shape}, k {ns['k'].shape}, want (2, 12, 8) (heads, tokens, d)")
    if (ns["scaled"], ns["causal"]) != (0, 1):
        fail(f"qk-read snippet: scaled={ns['scaled']} causal={ns['causal']}, dump-qk writes 0 and 1")
    attn = ns["attn"]
    # rows of a causal softmax: nothing above the diagonal, and they sum to 1
    # up to float32 round-off (the file holds float32): the division and a
    # 12-term sum each add at most one ulp (eps) per term.
    tol = 2 * 12 * np.finfo(attn.dtype).eps
    if not np.allclose(attn.sum(axis=1), 1.0, rtol=0, atol=tol) or np.any(np.triu(attn, 1) != 0):
        fail("qk-read snippet: the attention rows are not causal softmax rows")


def check_ckpt_read(code, work):
    if not trained(work):
        return
    ns, _ = run_snippet(code, work, {})
    chars = sorted(set(TEXT))
    if list(ns["vocab"]) != chars:
        fail(f"ckpt-read snippet: vocabulary {ns['vocab']!r}, the text has {''.join(chars)!r}")
    cfg = ns["config"]
    if (int(cfg["layers"]), int(cfg["width"]), int(cfg["vocab"])) != (2, 16, len(chars)):
        fail(f"ckpt-read snippet: config {cfg}")
    p = ns["params"]
    if p.get("embed", np.zeros(0)).shape != (len(chars), 16) or "layer1/qkv_w" not in p:
        fail(f"ckpt-read snippet: parameters {sorted(p)}")


def check_hybrid_kinds(code, work):
    # the page's 4-layer hybrid: layers 0 and 3 kept softmax
    if not os.path.exists(os.path.join(work, "t.txt")):
        with open(os.path.join(work, "t.txt"), "w") as f:
            f.write(TEXT)
    if not (kapprox(work, "train", "--text", "t.txt", "--layers", "4", "--heads", "2", "--width", "16", "--ctx",
                    "16", "--batch", "2", "--steps", "2", "--quiet", "--no-final-eval", "--out", "teacher4.h5")
            and kapprox(work, "convert", "--from", "teacher4.h5", "--attention", "performer", "--softmax-layers",
                        "0,3", "--out", "hy.h5", "--quiet")):
        return
    ns, _ = run_snippet(code, work, {"print": lambda *a: None})
    if ns["kinds"] != ["softmax", "performer", "performer", "softmax"]:
        fail(f"hybrid-kinds snippet: layer kinds {ns['kinds']}")


# docs/library.md: the Python module, from the build tree beside the program
# (build/python), against the program's own outputs
sys.path.insert(0, os.path.join(os.path.dirname(KX), "python"))


def check_python_points(code, work):
    ns, value = run_snippet(code, work, {})
    if not kapprox(work, "points", "--sequence", "sobol-lms", "--dim", "8", "-n", "1024", "--seed", "3",
                   "--out", "pts.h5"):
        return
    with h5py.File(os.path.join(work, "pts.h5"), "r") as f:
        want = f["points"][()]
    if not np.array_equal(ns["x"], want):
        fail("python-points snippet: its points differ from kapprox points --sequence sobol-lms")
    # chi_64 radii lie around sqrt(64) = 8: unit directions times radii
    norms = np.linalg.norm(ns["w"], axis=1)
    if ns["w"].shape != (256, 64) or not 6 < np.median(norms) < 10:
        fail(f"python-points snippet: w of shape {ns['w'].shape}, median norm {np.median(norms)}, "
             "want (256, 64) and about 8")
    if value != ["gsl-halton", "gsl-niederreiter", "gsl-reversehalton", "gsl-sobol"]:
        fail(f"python-points snippet: the first sequences are {value}")


def check_python_fmap(code, work):
    _, (err, fro) = run_snippet(code, work, {})
    # the same |K^ - K|_F / |K|_F twice: NumPy's products against the library's log-domain
    # GEMM; 512^2 terms summed in other orders, relative round-off ~1e-13
    if not (math.isclose(err, fro, rel_tol=1e-9) and 0 < err < 0.5):
        fail(f"python-fmap snippet: NumPy's kernel error {err}, the module's kernel_rel_fro {fro}")


def check_python_torch(code, work):
    ns, value = run_snippet(code, work, {})
    if value is not True or not isinstance(ns["phi"], torch.Tensor) or tuple(ns["phi"].shape) != (4096, 128):
        fail(f"python-torch snippet: {value!r}, phi a {type(ns['phi']).__name__}")


def check_python_qk(code, work):
    if not (kapprox(work, "synth-qk", "--out", "qk.h5", "--layers", "1", "--heads", "2", "--tokens", "64",
                    "--dim", "16") and
            kapprox(work, "kernel-error", "--input", "qk.h5", "--layers", "0", "--heads", "0", "--schemes",
                    "wpff-sobol", "--m", "64", "--seeds", "0", "--quiet", "--out", "ke-qk.csv")):
        return
    _, value = run_snippet(code, work, {})
    want = [float(r["value"]) for r in read_rows(os.path.join(work, "ke-qk.csv")) if r["metric"] == "kernel_rel_fro"]
    # the CSV prints %.17g: the same double, so equality
    if want != [value]:
        fail(f"python-qk snippet: kernel_rel_fro {value!r}, kapprox kernel-error wrote {want}")


def check_python_errors(code, work):
    printed = []
    run_snippet(code, work, {"print": lambda *a: printed.append(" ".join(map(str, a)))})
    want = ["prf: the number of features m must be at least 1",
            "x must be float64, got float32 (convert it with .astype(numpy.float64))"]
    if printed != want:
        fail(f"python-errors snippet printed {printed}, the page says {want}")


HANDLERS = {"python-points": check_python_points, "python-fmap": check_python_fmap,
            "python-torch": check_python_torch, "python-qk": check_python_qk,
            "python-errors": check_python_errors,
            "qk-write": check_qk_write, "pandas-summary": check_pandas, "qk-read": check_qk_read,
            "ckpt-read": check_ckpt_read, "hybrid-kinds": check_hybrid_kinds}

BLOCKS = [b for page in PAGES for b in doc_blocks(page)]
with tempfile.TemporaryDirectory() as work:
    seen = set()
    for name, lang, code, line in BLOCKS:
        if lang != "python":
            continue
        if name not in HANDLERS:
            fail(f"{line}: a python block without a known '<!-- snippet: NAME -->' marker "
                 f"({name!r}); give it one and a check in tests/readme_snippets.py")
            continue
        if name in seen:
            fail(f"{line}: the snippet '{name}' appears twice; give each its own name and check")
            continue
        seen.add(name)
        try:
            HANDLERS[name](code, work)
            print(f"ran snippet {name} ({line})")
        except Exception as e:  # the snippet itself failed, as a client would see it
            fail(f"snippet {name} ({line}) raised {type(e).__name__}: {e}")
    for name in sorted(set(HANDLERS) - seen):
        fail(f"no page has the snippet '{name}' any more")
    # The cheap shell recipes (seconds) run as written; training, the main
    # job and the full-size compare take minutes and are left out.
    for name, lang, code, line in BLOCKS:
        for cmd in code.split("\n") if lang == "sh" else []:
            if re.match(r"kapprox (kernel-error|points) ", cmd) and shell_recipe(work, cmd):
                print(f"ran recipe `{cmd}` (block at {line})")
sys.exit(1 if failures else 0)
