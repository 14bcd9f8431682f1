#!/bin/sh
# The pipeline on a model nobody here trained (docs/llama.md): kapprox
# import of llama2.c's stories260K, a corpus of its own samples (sample
# --tokens-out, reproducible with a seed), eval on it, convert to linear
# kinds, finetune performer on it (its loss falls), dump-qk and
# bench-inference; bad token files and options refused.
# usage: llama_cli.sh /path/to/kapprox /path/to/stories260K.bin
. "$(dirname "$0")/cli_test.sh"
model=$2

ok import --from "$model" --out "$dir/s.h5"
# enough stories that every 20th (validation) holds more than a context of 512
ok sample --checkpoint "$dir/s.h5" --tokens-out "$dir/c.bin" --length 24000 --temperature 0.8 --seed 1
[ "$(wc -c <"$dir/c.bin")" -eq 48000 ] || note "the corpus has $(wc -c <"$dir/c.bin") bytes, want 48000"
ok sample --checkpoint "$dir/s.h5" --tokens-out "$dir/c2.bin" --length 3000 --temperature 0.8 --seed 1
head -c 6000 "$dir/c.bin" | cmp -s - "$dir/c2.bin" || note "sample --tokens-out is not reproducible with a fixed seed"
loss() { awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == "loss") c = i } NR == 2 { print $c }' "$1"; }
ok eval --checkpoint "$dir/s.h5" --text "$dir/c.bin" --recall-strings 0 --out "$dir/t.csv"
teacher=$(loss "$dir/t.csv")
# performer: converted, fine-tuned on the teacher's samples (closer to the teacher than before)
ok convert --from "$dir/s.h5" --attention performer --out "$dir/p.h5" --seed 0 --quiet
ok eval --checkpoint "$dir/p.h5" --text "$dir/c.bin" --recall-strings 0 --out "$dir/p0.csv"
ok finetune --from "$dir/p.h5" --text "$dir/c.bin" --steps 20 --batch 4 --out "$dir/pf.h5" --quiet --no-final-eval
ok eval --checkpoint "$dir/pf.h5" --text "$dir/c.bin" --recall-strings 0 --teacher "$dir/s.h5" --kl-windows 2 \
  --out "$dir/p1.csv"
before=$(loss "$dir/p0.csv") after=$(loss "$dir/p1.csv")
echo "teacher $teacher; performer $before after conversion, $after after 20 fine-tuning steps"
awk -v t="$teacher" -v b="$before" 'BEGIN { exit !(t < b) }' || note "the teacher ($teacher) is not better than its converted copy ($before)"
awk -v a="$after" -v b="$before" 'BEGIN { exit !(a < b) }' || note "fine-tuning did not lower the loss ($before -> $after)"
ok sample --checkpoint "$dir/pf.h5" --temperature 0 --length 50
# the other kinds convert and decode token by token on the llama block
for kind in dijiang hedgehog; do
  ok convert --from "$dir/s.h5" --attention "$kind" --out "$dir/$kind.h5" --seed 0 --quiet
  ok sample --checkpoint "$dir/$kind.h5" --temperature 0 --length 50
done
ok dump-qk --checkpoint "$dir/s.h5" --text "$dir/c.bin" --tokens 32 --out "$dir/qk.h5"
ok bench-inference --checkpoint "$dir/s.h5" --attention softmax --lengths 64 --seconds 0.05 --out "$dir/b.csv" --no-figure

# bad token files: an odd byte count, an id beyond the vocabulary, empty
printf '\001\000\005' >"$dir/odd.bin"
expect 1 "odd length (3 bytes)" -- eval --checkpoint "$dir/s.h5" --text "$dir/odd.bin"
printf '\001\000\000\002' >"$dir/big.bin"
expect 1 "token 1 of '$dir/big.bin' is id 512, beyond the model's vocabulary of 512" -- eval --checkpoint "$dir/s.h5" --text "$dir/big.bin"
: >"$dir/empty.bin"
expect 1 "is empty" -- eval --checkpoint "$dir/s.h5" --text "$dir/empty.bin"
# prompts of ids; --tokens-out is for models of token ids
expect 2 "'512' is not a token id of this model" -- sample --checkpoint "$dir/s.h5" --prompt "1,512"
"$here/tiny_text.sh" >"$dir/t.txt"
ok train --text "$dir/t.txt" --layers 1 --heads 2 --width 16 --ctx 16 --batch 2 --quiet --no-final-eval --steps 2 --out "$dir/char.h5"
expect 2 "is a character model" -- sample --checkpoint "$dir/char.h5" --tokens-out "$dir/x.bin"
[ ! -e "$dir/x.bin" ] || note "a refused --tokens-out wrote its file"
exit $fail
