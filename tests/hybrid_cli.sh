#!/bin/sh
# Layer hybrids from the command line: `convert --softmax-layers` refuses a
# bad list with exit 2 and writes nothing; a hybrid converts, fine-tunes
# (and refuses to resume against another mask), is scored with the
# attention KL, samples through recurrent decoding as its parallel form
# does, dumps its Q/K and is benchmarked.
# usage: hybrid_cli.sh /path/to/kapprox
. "$(dirname "$0")/cli_test.sh"

"$here/tiny_text.sh" >"$dir/t.txt"
T="--text $dir/t.txt"
ok train $T --layers 3 --heads 2 --width 16 --ctx 16 --batch 2 --steps 4 --quiet --no-final-eval --out "$dir/teacher.h5"

# bad lists: exit 2, nothing written, an existing --out untouched
echo "precious" >"$dir/keep.h5"
C="convert --from $dir/teacher.h5 --attention performer"
expect 2 "layer 3 does not exist; the model has 3 layers (0 to 2)" -- $C --softmax-layers 3 --out "$dir/new.h5"
expect 2 "layer 1 is listed twice" -- $C --softmax-layers 1,1 --out "$dir/new.h5"
expect 2 "'one' is not a layer index" -- $C --softmax-layers one --out "$dir/new.h5"
expect 2 "empty item" -- $C --softmax-layers 0,,1 --out "$dir/new.h5"
expect 2 "every layer of the model" -- $C --softmax-layers 0,1,2 --out "$dir/new.h5"
expect 2 "a layer hybrid needs another attention kind" -- convert --from "$dir/teacher.h5" --attention softmax \
  --softmax-layers 0 --out "$dir/new.h5"
expect 2 "every layer of the model" -- $C --softmax-layers 2,0,1 --out "$dir/keep.h5"
[ ! -e "$dir/new.h5" ] || note "a refused convert wrote its --out"
[ "$(cat "$dir/keep.h5")" = precious ] || note "a refused convert overwrote --out"

# the hybrid: label, tensors, checkpoint attribute
ok $C --softmax-layers 2,0 --out "$dir/hy.h5"
grep -q -- "-> $dir/hy.h5 (performer+sm0.2)" "$dir/out" || note "convert does not name the hybrid: $(cat "$dir/out")"
grep -q "layers 0,2 keep the teacher's softmax attention" "$dir/out" || note "convert does not list the kept layers"
ok eval --checkpoint "$dir/hy.h5" $T --teacher "$dir/teacher.h5" --kl-windows 2
grep -q "attention performer+sm0.2" "$dir/out" || note "eval does not name the hybrid: $(cat "$dir/out")"
grep -q "attention KL against" "$dir/out" || note "eval gives no attention KL for a hybrid"

# fine-tuning keeps the mask; a resume against another hybrid is refused
ok finetune --from "$dir/hy.h5" --out "$dir/ft.h5" $T --steps 3 --batch 2 --quiet --no-final-eval
ok eval --checkpoint "$dir/ft.h5" $T
grep -q "attention performer+sm0.2" "$dir/out" || note "fine-tuning lost the mask: $(cat "$dir/out")"
ok $C --softmax-layers 1 --out "$dir/hy1.h5"
expect 1 "is not a fine-tuning of" -- finetune --from "$dir/hy1.h5" --resume "$dir/ft.h5" --out "$dir/ft.h5" $T

# sampling decodes recurrently: a KV cache in layers 0 and 2, performer's
# state in layer 1 (test_decoder_hybrid compares its logits with the
# parallel form's)
ok sample --checkpoint "$dir/ft.h5" --prompt "and" --length 40 --temperature 0
[ -s "$dir/out" ] || note "sample printed nothing"
ok dump-qk --checkpoint "$dir/ft.h5" $T --out "$dir/qk.h5" --tokens 8
grep -q "scaled = 0" "$dir/out" || note "dump-qk of performer+softmax layers: $(cat "$dir/out")"
ok bench-inference --checkpoint "$dir/ft.h5" --lengths 16 --seconds 0.02 --out "$dir/b.csv" --no-figure
grep -q "^performer+sm0.2,16," "$dir/b.csv" || note "bench-inference does not label the hybrid: $(cat "$dir/b.csv")"
exit $fail
