#!/bin/sh
# kapprox reproduce table2 --quick on a model nobody here trained
# (docs/llama.md#table-2-on-stories260k): llama2.c's stories260K, imported
# with a context of 64, as the teacher; a corpus of its own samples (token
# ids) as the text.  The table says its losses are per token and that the
# teacher is weights only; the teacher's row is kapprox eval's score of the
# same windows; fine-tuning lowers a converted kind's loss; a text file
# given as the corpus of a token model is refused before anything is
# written; kapprox eval labels its loss per token; and the budget study
# runs on the same teacher and corpus, per token, reusing Table 2's run.
# usage: llama_table2.sh /path/to/kapprox /path/to/stories260K.bin
. "$(dirname "$0")/cli_test.sh"
model=$2
cd "$dir" || exit 1

ok import --from "$model" --ctx 64 --out t.h5
# about 200 samples of at most 64 tokens: every 20th (validation) holds
# several windows of 64
ok sample --checkpoint t.h5 --tokens-out c.bin --length 12000 --temperature 1 --seed 1

# a text where token ids are wanted: refused, nothing written
sh "$here/tiny_text.sh" 300 3 >t.txt
expect 1 "t.txt" -- reproduce table2 --quick --teacher t.h5 --text t.txt --quiet --outdir bad
[ -e bad ] && note "a refused corpus left an output folder"

# 10 fine-tuning steps (0.004 of the 2500 taken for a weights-only teacher)
"$kx" reproduce table2 --quick --teacher t.h5 --text c.bin --kinds performer --budget 0.004 \
  --scratch-seeds 1 --quiet --outdir a 2>err.txt || { note "reproduce table2 on stories260K failed"; cat err.txt; }
cat a/table2.md
grep -q '| bits/token |' a/table2.md || note "the table's bits column is not per token: $(sed -n 3p a/table2.md)"
grep -q 'losses in nats per token' a/table2.md || note "the setup does not say the losses are per token"
grep -q 'Llama block, vocabulary 512 token ids, weights only (t.h5, pre-training not recorded)' a/table2.md ||
  note "the setup does not describe the imported teacher: $(sed -n 1p a/table2.md)"
grep -q 'budget 10 steps of batch 16' a/table2.md || note "the setup does not state the budget of 10 steps"
for r in "performer | converted" "performer | converted + AT" "softmax | scratch" "performer | scratch"; do
  grep -q "^| $r |" a/table2.md || note "no row '$r'"
done
grep -q '^unit = "token"$' a/figdata/fig2.vars || note "Figure 2's data do not say the unit is the token"
if command -v gnuplot >/dev/null; then
  [ -s a/fig2_curves.png ] && [ -s a/fig3_attention_maps.png ] || note "a figure is missing"
fi

# the budget study on the same teacher and corpus, in the same folder: Table 2's performer run
# at 10 steps is reused and the control added (one run); losses and the figure per token
"$kx" reproduce budget --quick --teacher t.h5 --text c.bin --kinds softmax,performer --scratch-kinds none \
  --budgets 0.004 --no-figures --outdir a 2>err.txt || { note "reproduce budget on stories260K failed"; cat err.txt; }
grep -q 'performer seed 0: finished earlier, kept' err.txt || note "the budget study did not reuse Table 2's run"
grep -q '(nats/token)' a/budget.md || note "budget.md's gap is not per token"
# its gap and its gap beyond the continued teacher
grep -q '^| performer | converted | [0-9.]* | [0-9.]* |' a/budget.md || note "no performer row with the control: $(cat a/budget.md)"
grep -q '^unit = "token"$' a/figdata/budget.vars || note "the budget figure's data do not say the unit is the token"

# the teacher's row is kapprox eval on the same 32 windows (batch 16, as the table's runs)
ok eval --checkpoint t.h5 --text c.bin --windows 32 --batch 16 --recall-strings 0 --out e.csv
col() { awk -F, -v k="$2" 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == k) c = i } NR > 1 && $1 == "'"$3"'" && $2 == "'"$4"'" { print $c }' "$1"; }
teacher=$(col a/table2.csv val_loss "teacher (softmax)" pre-trained)
evald=$(awk -F, 'NR == 2 { print $4 }' e.csv)
# both are the same double sum printed with %.9g (eval) and %.6g or more (table)
awk -v a="$teacher" -v b="$evald" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(a > 0 && d <= 1e-5 * b) }' ||
  note "the teacher's row ($teacher) is not kapprox eval's loss on the same windows ($evald)"
# windows from a story's BOS (docs/llama.md#token-data): the imported model
# predicts its own samples (below log 512 = 6.238, uniform logits) and
# better than any student after 10 steps
awk -v a="$teacher" 'BEGIN { exit !(a < 6.238) }' || note "the teacher's loss $teacher is not below log 512"
awk -F'|' -v t="$teacher" '/\| (converted|converted \+ AT|scratch) \|/ { if (!($4 + 0 > t)) bad = bad $2 } END { if (bad) { print bad; exit 1 } }' \
  a/table2.md || note "a student scores better than the teacher ($teacher)"
grep -q "^  loss [0-9.]* nats/token = [0-9.]* bits/token, next-token accuracy" out || note "eval does not say its loss is per token: $(cat out)"
# fine-tuning lowers performer's loss from its converted value
conv=$(col a/table2.csv conv_loss performer converted)
ft=$(col a/table2.csv val_loss performer converted)
awk -v a="$ft" -v b="$conv" 'BEGIN { exit !(a < b) }' || note "performer: fine-tuning did not lower the loss ($conv -> $ft)"
exit $fail
