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
ls -l "$out"/*
