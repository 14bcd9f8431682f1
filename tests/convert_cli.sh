#!/bin/sh
# kapprox convert / finetune / eval from the command line: bad input ends
# with a message naming the problem, a non-zero exit and nothing
# overwritten; softmax -> softmax is the identity; eval reproduces train's
# validation loss; attention transfer lowers the attention KL; an
# interrupted fine-tuning resumed ends where an uninterrupted one does.
# usage: convert_cli.sh /path/to/kapprox
. "$(dirname "$0")/cli_test.sh"

i=0
while [ $i -lt 600 ]; do
  echo "in the beginning god created the heaven and the earth, day $((i % 13))." >>"$dir/t.txt"
  i=$((i + 1))
done
T="--text $dir/t.txt"
ok train $T --layers 2 --heads 2 --width 16 --ctx 16 --batch 4 --steps 60 --out "$dir/teacher.h5"
train_loss=$(sed -n 's/^validation loss (whole validation text): \([0-9.]*\) nats.*/\1/p' "$dir/out")
ok eval --checkpoint "$dir/teacher.h5" $T
eval_loss=$(sed -n 's/^  loss \([0-9.]*\) nats.*/\1/p' "$dir/out")
[ -n "$train_loss" ] && [ "$train_loss" = "$eval_loss" ] || note "eval loss '$eval_loss' != train's '$train_loss'"

# bad input; an existing --out is never touched
echo "precious" >"$dir/keep.h5"
expect 2 "--from, --attention and --out are required" -- convert --from "$dir/teacher.h5"
expect 2 "unknown --attention 'nope'" -- convert --from "$dir/teacher.h5" --attention nope --out "$dir/keep.h5"
expect 2 "is the teacher itself" -- convert --from "$dir/teacher.h5" --attention hedgehog --out "$dir/teacher.h5"
expect 1 "cannot read checkpoint" -- convert --from "$dir/missing.h5" --attention hedgehog --out "$dir/keep.h5"
expect 1 "not an HDF5 file" -- convert --from "$dir/t.txt" --attention hedgehog --out "$dir/keep.h5"
ok convert --from "$dir/teacher.h5" --attention hedgehog --out "$dir/hh.h5"
grep -q "new: layer<l>/hh_qw, layer<l>/hh_qb, layer<l>/hh_kw, layer<l>/hh_kb" "$dir/out" || note "convert does not list the new tensors"
expect 1 "conversion starts from a softmax teacher" -- convert --from "$dir/hh.h5" --attention hedgehog --out "$dir/keep.h5"
[ "$(cat "$dir/keep.h5")" = precious ] || note "a refused convert overwrote --out"
# a kind with nothing to train in its map converts without transfer, and says so
for k in softmax cosformer retnet linformer performer-redraw; do
  ok convert --from "$dir/teacher.h5" --attention $k --out "$dir/plain.h5" $T --transfer-steps 2
  grep -q "note: attention kind '$k' has nothing trainable in its feature map; converting without attention transfer" "$dir/err" ||
    note "convert --attention $k --transfer-steps: no note that it skips transfer: $(cat "$dir/err")"
  grep -q "feature maps trained by attention transfer" "$dir/out" && note "convert --attention $k claims a transfer"
done
expect 1 "not softmax" -- eval --checkpoint "$dir/hh.h5" --teacher "$dir/hh.h5" $T

# softmax -> softmax changes nothing; transfer lowers the attention KL (hedgehog here;
# every kind with transfer in test_decoder_convert)
ok convert --from "$dir/teacher.h5" --attention softmax --out "$dir/same.h5"
ok eval --checkpoint "$dir/same.h5" $T --teacher "$dir/teacher.h5"
grep -q "loss $eval_loss nats" "$dir/out" && grep -q "attention KL against .*: 0.0000 nats" "$dir/out" || note "softmax -> softmax: $(cat "$dir/out")"
kl() { sed -n 's/.*attention KL against .*: \(-\{0,1\}[0-9.]*\) nats.*/\1/p' "$dir/out"; }
ok eval --checkpoint "$dir/hh.h5" $T --teacher "$dir/teacher.h5"
kl0=$(kl)
ok convert --from "$dir/teacher.h5" --attention hedgehog --out "$dir/hh_at.h5" $T --transfer-steps 40 --quiet
ok eval --checkpoint "$dir/hh_at.h5" $T --teacher "$dir/teacher.h5"
kl1=$(kl)
awk -v a="$kl0" -v b="$kl1" 'BEGIN { exit !(b < a) }' || note "attention transfer did not lower the KL ($kl0 -> $kl1)"

# the recall probe: default length ctx/2 - 1 = 7, in the text and the CSV;
# a length that does not fit the context is a usage error and writes nothing
ok eval --checkpoint "$dir/hh.h5" $T --teacher "$dir/teacher.h5" --kl-windows 2 --out "$dir/e.csv"
grep -q "^  recall: 64 random strings of 7 characters, each repeated once: second copy loss" "$dir/out" ||
  note "eval prints no recall probe: $(cat "$dir/out")"
grep -q "^  recall of the teacher: 64 random strings of 7 characters" "$dir/out" || note "eval: no teacher recall"
printed=$(sed -n 's/^  recall: .*second copy loss \([0-9.]*\) nats.*first copy \([0-9.]*\) nats.*/\1 \2/p' "$dir/out")
csv=$(awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) c[$i] = i }
               NR == 2 { printf "%.4f %.4f", $c["recall_loss"], $c["recall_first_loss"] }' "$dir/e.csv")
[ -n "$printed" ] && [ "$printed" = "$csv" ] || note "eval's CSV recall ($csv) is not the printed one ($printed)"
head -1 "$dir/e.csv" | grep -q "recall_length,recall_strings,recall_loss,recall_accuracy,recall_first_loss" ||
  note "eval's CSV header: $(head -1 "$dir/e.csv")"
expect 2 "do not fit the context 16" -- eval --checkpoint "$dir/hh.h5" $T --recall-length 9 --out "$dir/e2.csv"
expect 2 "--recall-length must be in" -- eval --checkpoint "$dir/hh.h5" $T --recall-length 1
[ ! -e "$dir/e2.csv" ] || note "a refused eval wrote its --out"
ok eval --checkpoint "$dir/hh.h5" $T --recall-length 8 --recall-strings 3
grep -q "recall: 3 random strings of 8 characters" "$dir/out" || note "eval --recall-length 8 --recall-strings 3"
ok eval --checkpoint "$dir/hh.h5" $T --recall-strings 0
! grep -q "recall" "$dir/out" || note "eval --recall-strings 0 still probes"

# fine-tuning: bad input, then interrupted + resumed = uninterrupted
F="--batch 4 --quiet --no-final-eval"
expect 2 "--budget must be > 0" -- finetune --from "$dir/hh.h5" --out "$dir/ft.h5" --budget 0
expect 2 "give --steps or --budget" -- finetune --from "$dir/hh.h5" --out "$dir/ft.h5" --budget 0.1 --steps 3
# a budget of less than one step, a warm-up longer than the run: said, not rounded or ignored
expect 2 "is 0.25 steps, less than one" -- finetune --from "$dir/hh.h5" --out "$dir/ft.h5" --budget 0.0001
expect 2 "--warmup 1000 is longer than the run's 156 steps" -- finetune --from "$dir/hh.h5" --out "$dir/ft.h5" --warmup 1000
expect 2 "--warmup 20 is longer than the run's 10 steps" -- train $T --steps 10 --warmup 20 --out "$dir/ft.h5"
[ ! -e "$dir/ft.h5" ] || note "a refused finetune wrote --out"
expect 2 "--out FILE is required" -- finetune --from "$dir/hh.h5"
expect 2 "is the model to fine-tune itself" -- finetune --from "$dir/hh.h5" --out "$dir/hh.h5"
ok finetune --from "$dir/hh.h5" --out "$dir/ft.h5" $T $F --steps 12 --log "$dir/full.csv"
ok finetune --from "$dir/hh.h5" --out "$dir/ft2.h5" $T $F --steps 12 --stop-after 5
cp "$dir/ft2.h5" "$dir/ft2.copy"
expect 1 "is not a fine-tuning of" -- finetune --from "$dir/teacher.h5" --resume "$dir/ft2.h5" --out "$dir/ft2.h5" $T
cmp -s "$dir/ft2.h5" "$dir/ft2.copy" || note "a refused resume changed the checkpoint"
expect 1 "--steps 13 differs from the checkpoint's 12" -- finetune --from "$dir/hh.h5" --resume "$dir/ft2.h5" --out "$dir/ft2.h5" $T --steps 13
ok finetune --from "$dir/hh.h5" --resume "$dir/ft2.h5" --out "$dir/ft2.h5" $T --quiet --no-final-eval --log "$dir/resumed.csv"
[ "$(tail -1 "$dir/full.csv" | cut -d, -f1-5)" = "$(tail -1 "$dir/resumed.csv" | cut -d, -f1-5)" ] ||
  note "resumed fine-tuning ends at $(tail -1 "$dir/resumed.csv"), uninterrupted at $(tail -1 "$dir/full.csv")"
# the sliding-window hybrid (docs/conversion.md): a bad window is refused
# before anything is read or written (exit 2); a window of the whole
# context gives back the teacher (its loss, attention KL 0); attention transfer
# (output target), eval, fine-tuning and sampling work on a hybrid
expect 2 "a window of 0 is the kind alone" -- convert --from "$dir/teacher.h5" --attention dijiang --window 0 --out "$dir/keep.h5"
expect 2 "beyond the context 16" -- convert --from "$dir/teacher.h5" --attention dijiang --window 17 --out "$dir/keep.h5"
expect 2 "'softmax' cannot take a sliding window" -- convert --from "$dir/teacher.h5" --attention softmax --window 4 --out "$dir/keep.h5"
expect 2 "no normaliser" -- convert --from "$dir/teacher.h5" --attention retnet --window 4 --out "$dir/keep.h5"
expect 2 "no normaliser" -- convert --from "$dir/teacher.h5" --attention dijiang-code --window 4 --out "$dir/keep.h5"
expect 2 "not a product of query" -- convert --from "$dir/teacher.h5" --attention linformer --window 4 --out "$dir/keep.h5"
expect 2 "'softmax' cannot take a sliding window" -- train $T --window 4 --out "$dir/keep.h5"
expect 2 "beyond the context 16" -- train $T --attention performer --ctx 16 --window 32 --out "$dir/keep.h5"
[ "$(cat "$dir/keep.h5")" = precious ] || note "a refused window overwrote --out"
ok convert --from "$dir/teacher.h5" --attention performer --window 16 --out "$dir/pf16.h5"
grep -q "(performer+w16)" "$dir/out" && grep -q "new: .*layer<l>/win_beta" "$dir/out" || note "convert --window: $(cat "$dir/out")"
ok eval --checkpoint "$dir/pf16.h5" $T --teacher "$dir/teacher.h5"
grep -q "loss $eval_loss nats" "$dir/out" && grep -q "(attention performer+w16)" "$dir/out" &&
  [ -n "$(kl)" ] && awk -v a="$(kl)" 'BEGIN { exit !(a * a < 1e-8) }' ||
  note "a window of the whole context is the teacher: $(cat "$dir/out")"
ok convert --from "$dir/teacher.h5" --attention hedgehog --window 4 --out "$dir/hhw.h5" $T --transfer-steps 20 --quiet
ok eval --checkpoint "$dir/hhw.h5" $T --teacher "$dir/teacher.h5"
[ -n "$(kl)" ] || note "eval of a hybrid: no attention KL: $(cat "$dir/out")"
ok finetune --from "$dir/hhw.h5" --out "$dir/ftw.h5" $T $F --steps 4
expect 1 "--window 8 differs from the checkpoint's 4" -- finetune --from "$dir/hhw.h5" --out "$dir/ftw2.h5" $T $F --steps 4 --window 8
ok sample --checkpoint "$dir/ftw.h5" --prompt "in the" --length 40 --seed 2
for c in convert finetune eval; do
  "$kx" $c --help >"$dir/out" 2>&1 && grep -q "usage: kapprox $c" "$dir/out" || note "$c --help"
done
exit $fail
