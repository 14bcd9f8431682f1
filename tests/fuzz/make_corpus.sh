#!/bin/sh
# Makes the seed corpus of the fuzz harnesses with the toolkit itself: the
# smallest Q/K files, checkpoints, sweep journals and merge inputs that
# still take every branch of the loaders (float32 and float64, with and
# without v, one and two layers, a layer hybrid, causal or not, complete
# and damaged journals, shards of one grid).
# usage: tests/fuzz/make_corpus.sh KAPPROX [OUTDIR]   (default tests/fuzz/corpus)
set -eu
kapprox=$(realpath "$1")
out=${2:-$(dirname "$0")/corpus}
mkdir -p "$out/qk" "$out/ckpt" "$out/journal" "$out/merge" "$out/lock" "$out/shard"
out=$(realpath "$out")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
export OMP_NUM_THREADS=1

# Q/K files: synthetic (float64 and float32) and dumped from a decoder
"$kapprox" synth-qk --out "$out/qk/synth-1layer.h5" --layers 1 --heads 1 --tokens 3 --dim 2 --seed 1 >/dev/null
"$kapprox" synth-qk --out "$out/qk/synth-2layers-f32-causal.h5" --layers 2 --heads 2 --tokens 2 --dim 2 \
  --float32 --causal --seed 2 >/dev/null

# checkpoints: the smallest decoder, trained for two steps on a tiny text
i=0
while [ $i -lt 40 ]; do echo "in the beginning $i"; i=$((i + 1)); done >text.txt
"$kapprox" train --text text.txt --out "$out/ckpt/tiny-1layer.h5" --layers 1 --heads 1 --width 4 --ctx 4 \
  --rotary 2 --steps 2 --batch 1 --eval-every 1000 --eval-batches 1 --no-final-eval --quiet >/dev/null
"$kapprox" train --text text.txt --out "$out/ckpt/tiny-2layers.h5" --layers 2 --heads 2 --width 4 --ctx 4 \
  --rotary 2 --steps 2 --batch 1 --eval-every 1000 --eval-batches 1 --no-final-eval --quiet >/dev/null
# a layer hybrid (format version 2, /config/softmax_layers): layer 0 kept
# softmax, layer 1 performer
"$kapprox" convert --from "$out/ckpt/tiny-2layers.h5" --attention performer --softmax-layers 0 \
  --out "$out/ckpt/tiny-2layers-hybrid.h5" --quiet >/dev/null
# and a sliding-window hybrid (format version 2, /config/window)
"$kapprox" train --text text.txt --out "$out/ckpt/tiny-window.h5" --layers 1 --heads 1 --width 4 --ctx 4 \
  --rotary 2 --attention performer --window 2 --steps 2 --batch 1 --eval-every 1000 --eval-batches 1 \
  --no-final-eval --quiet >/dev/null
# a DiJiang form other than its kind's preset (format version 2,
# /config/dijiang_form) with the released GroupNorm's affine tensors
"$kapprox" train --text text.txt --out "$out/ckpt/tiny-dijiang-form.h5" --layers 1 --heads 1 --width 4 --ctx 4 \
  --rotary 2 --attention dijiang --dijiang-form softmax,gnd --steps 2 --batch 1 --eval-every 1000 --eval-batches 1 \
  --no-final-eval --quiet >/dev/null
"$kapprox" dump-qk --checkpoint "$out/ckpt/tiny-1layer.h5" --text text.txt --out "$out/qk/dump-tiny.h5" \
  --tokens 2 >/dev/null

# sweep journals: a whole tiny grid, and its two shards
grid="--norms 1 --tokens 4 --dim 2 --schemes prf,orf --m 8 --seeds 0:1 --threads 1 --quiet"
# shellcheck disable=SC2086
"$kapprox" sweep $grid --out whole.csv
# shellcheck disable=SC2086
"$kapprox" sweep $grid --shard 1/2 --out part1.csv
# shellcheck disable=SC2086
"$kapprox" sweep $grid --shard 2/2 --out part2.csv
cp whole.csv.journal "$out/journal/whole.journal"
cp part2.csv.journal "$out/journal/shard-2of2.journal"
# a torn last line and a damaged record, as a kill and a bad disk leave them
head -c -7 whole.csv.journal >"$out/journal/torn.journal"
sed '8s/,/;/' whole.csv.journal >"$out/journal/damaged-record.journal"

# merge inputs: shard journals separated by the byte 0x1e (fuzz_merge.c)
sep=$(printf '\036')
{ cat part1.csv.journal; printf '%s' "$sep"; cat part2.csv.journal; } >"$out/merge/two-shards"
{ cat part2.csv.journal; printf '%s' "$sep"; cat part1.csv.journal; } >"$out/merge/two-shards-reversed"
cp whole.csv.journal "$out/merge/one-whole"
# lock files: a dead process's claim on this host, another host's, an
# unfinished record (core/kx_lock.c)
host=$(hostname)
printf 'kapprox lock\npid 4194000\nhost %s\nboot unknown\nstart 12\nsince 2024-01-01 00:00:00 UTC\ncommand kapprox train --out x.h5\n' \
  "$host" >"$out/lock/dead-here"
printf 'kapprox lock\npid 17\nhost elsewhere\nboot 1-2-3\nstart 99\nsince 2024-01-01 00:00:00 UTC\ncommand kapprox reproduce table2\n' \
  >"$out/lock/other-host"
printf 'kapprox lock\npid 12' >"$out/lock/torn"
# shard plans (fuzz_shard.c): the harness's own plan, another N's, a torn
# one, one with a NUL byte, the own plan with a NUL byte and more after it,
# an empty file
printf 'kapprox reproduce shards 1\nshards 2\nteacher teacher.h5\ntext (the KJV corpus)\nscores 32 windows, attention KL 4 windows\nrun runs/b20/performer-s0\nrun runs/b20/performer+AT-s0\nrun runs/b20/softmax-scratch-s0\n' \
  >"$out/shard/same"
sed 's/shards 2/shards 3/' "$out/shard/same" >"$out/shard/other-n"
head -c 100 "$out/shard/same" >"$out/shard/torn"
printf 'kapprox reproduce shards 1\nshards 2\nteacher teacher.h5\000\nrun x\n' >"$out/shard/nul"
{ cat "$out/shard/same"; printf '\000tail\n'; } >"$out/shard/same-nul-tail"
: >"$out/shard/empty"
# llama2.c checkpoints (fuzz_llama2c.c): one tiny model (width 8, SwiGLU
# 12, one layer, 2 heads on 1 key/value head, 16 tokens, seq_len 8) as the
# legacy and the version-1 export, shared and separate classifier, an int8
# header and a truncated legacy file
mkdir -p "$out/llama2c"
/usr/bin/python3 - "$out/llama2c" <<'PY'
import struct, sys
import numpy as np
out = sys.argv[1] + "/"
C, Fh, L, H, Hkv, V, S = 8, 12, 1, 2, 1, 16, 8
d = C // H
KV = Hkv * d
rng = np.random.default_rng(1)
t = {"tok": rng.normal(0, .5, (V, C)), "att": np.ones((L, C)), "wq": rng.normal(0, .3, (L, C, C)),
     "wk": rng.normal(0, .3, (L, KV, C)), "wv": rng.normal(0, .3, (L, KV, C)), "wo": rng.normal(0, .3, (L, C, C)),
     "ffn": np.ones((L, C)), "w1": rng.normal(0, .3, (L, Fh, C)), "w2": rng.normal(0, .3, (L, C, Fh)),
     "w3": rng.normal(0, .3, (L, Fh, C)), "norm": np.ones(C), "cls": rng.normal(0, .5, (V, C)),
     "rope": np.zeros((2, S, d // 2))}
legacy = ["tok", "att", "wq", "wk", "wv", "wo", "ffn", "w1", "w2", "w3", "norm", "rope"]
v1 = ["att", "ffn", "norm", "tok", "wq", "wk", "wv", "wo", "w1", "w2", "w3"]
body = lambda names: b"".join(np.asarray(t[n], dtype="<f4").tobytes() for n in names)
v1_header = lambda version, shared: (lambda h: h + b"\0" * (256 - len(h)))(
    struct.pack("<Ii7iB", 0x616B3432, version, C, Fh, L, H, Hkv, V, S, shared))
files = {"legacy-shared": struct.pack("<7i", C, Fh, L, H, Hkv, V, S) + body(legacy),
         "legacy-separate": struct.pack("<7i", C, Fh, L, H, Hkv, -V, S) + body(legacy + ["cls"]),
         "v1-shared": v1_header(1, 1) + body(v1), "v1-separate": v1_header(1, 0) + body(v1 + ["cls"]),
         "v2-int8": v1_header(2, 1) + b"\0" * 64}
files["legacy-truncated"] = files["legacy-shared"][:-4]
for name, data in files.items():
    open(out + name, "wb").write(data)
PY
# token files (fuzz_tokens.c: 25 stories from BOS, one story, an odd
# length, an id beyond the vocabulary of 512) and llama2.c tokenizers
# (fuzz_tokenizer.c: byte pieces and merges, three pieces, a truncated one)
mkdir -p "$out/tokens" "$out/tokenizer"
/usr/bin/python3 - "$out" <<'PY'
import struct, sys
import numpy as np
o = sys.argv[1] + "/tokens/"
rng = np.random.default_rng(2)
a = []
for s in range(25):
    a += [1] + rng.integers(2, 512, rng.integers(3, 12)).tolist()
np.array(a, dtype="<u2").tofile(o + "stories-25")
np.array([1, 5, 6, 7, 8], dtype="<u2").tofile(o + "one-story")
open(o + "odd", "wb").write(b"\x01\x00\x05")
np.array([1, 600], dtype="<u2").tofile(o + "beyond-vocab")
o = sys.argv[1] + "/tokenizer/"
def tok(pieces, path):
    b = struct.pack("<i", max(len(p) for p, _ in pieces))
    for p, s in pieces:
        b += struct.pack("<fi", s, len(p)) + p
    open(o + path, "wb").write(b)
base = [(b"<unk>", 0.), (b"\n<s>\n", 0.), (b"\n</s>\n", 0.)] + [(f"<0x{i:02X}>".encode(), 0.) for i in range(256)]
tok(base + [(b" ", -1.), (b"a", -2.), (b"b", -3.), (b"ab", -4.), (b" a", -5.), (b" ab", -6.), (b"\xc3\xa9", -7.)],
    "small-byte-fallback")
tok([(b"a", 0.), (b"b", 0.), (b"ab", 1.)], "three")
open(o + "truncated", "wb").write(struct.pack("<ifi", 3, 0., 5) + b"ab")
PY
ls -l "$out"/*
