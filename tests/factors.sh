#!/bin/sh
# kapprox reproduce factors --quick end to end on a small text: bad input
# refused with exit 2 and nothing left behind (and bad --dijiang-form
# strings of train and convert); a well-formed table (Markdown, CSV,
# LaTeX); the end points shared with Table 2's runs; a form that diverges
# reported as a diverged row while the study goes on; and a run killed with
# SIGKILL and started again that redoes no finished run and ends with the
# uninterrupted run's files byte for byte (the table has no timing column).
# usage: factors.sh /path/to/kapprox
. "$(dirname "$0")/cli_test.sh"
cd "$dir" || exit 1

sh "$here/tiny_text.sh" 1500 17 >t.txt
Q="--quick --text $dir/t.txt --quiet"

# ---- bad input: exit 2, a clear message, no output folder
bad() {
  needle="$1"; shift
  expect 2 "$needle" -- reproduce factors $Q --outdir bad/out "$@"
  [ -e bad ] && { note "refused input ($*) left bad/ behind"; rm -rf bad; }
}
bad "'nope' is not a factor" --factors features,nope
bad "listed twice" --factors gate,gate
bad "empty item" --factors gate,,dct
bad "--seeds must be in" --seeds 0
bad "--budget must be > 0" --budget 0
bad "--teacher: cannot read" --teacher missing.h5
bad "unknown option" --bogus
bad "unexpected argument" extra
touch afile
expect 2 "'afile' is not a directory" -- reproduce factors $Q --outdir afile
[ -f afile ] && [ ! -s afile ] || note "--outdir afile touched the file"
"$kx" reproduce factors --help | grep -q "usage: kapprox reproduce factors" || note "--help lacks usage"
"$kx" reproduce --help | grep -q "factors" || note "reproduce --help does not list factors"
# the form switches where a kind is chosen: bad strings exit 2 and write nothing
ok train --text t.txt --layers 1 --width 16 --heads 2 --ctx 16 --steps 2 --out s.h5 --quiet
expect 2 "'fast' is not a DiJiang form switch" -- train --text t.txt --attention dijiang --dijiang-form fast \
  --steps 1 --out x.h5
expect 2 "factor features is given twice" -- train --text t.txt --attention dijiang --dijiang-form exp,softmax \
  --steps 1 --out x.h5
expect 2 "attention 'retnet' has no DiJiang form switches" -- train --text t.txt --attention retnet \
  --dijiang-form softmax --steps 1 --out x.h5
expect 2 "attention 'softmax' has no DiJiang form switches" -- train --text t.txt --dijiang-form softmax \
  --steps 1 --out x.h5
expect 2 "empty item" -- convert --from s.h5 --attention dijiang --dijiang-form softmax, --out x.h5
expect 2 "attention 'performer' has no DiJiang form switches" -- convert --from s.h5 --attention performer --dijiang-form D --out x.h5
# a sliding window needs the denominator: refused for noden forms, taken by a den form of any preset
expect 2 "attention 'dijiang+noden' cannot take a sliding window" -- convert --from s.h5 --attention dijiang \
  --dijiang-form noden --window 4 --out x.h5
expect 2 "attention 'dijiang-code' cannot take a sliding window" -- convert --from s.h5 --attention dijiang-code \
  --window 4 --out x.h5
[ -e x.h5 ] && note "a refused --dijiang-form wrote x.h5"
ok convert --from s.h5 --attention dijiang-code --dijiang-form den --window 4 --out w.h5
grep -q "(dijiang-code+den+w4)" out || note "convert does not name the windowed form: $(cat out)"
# a flipped form converts, records its form and names it in the label
ok convert --from s.h5 --attention dijiang --dijiang-form softmax,noden --out c.h5
grep -q "(dijiang+softmax+noden)" out || note "convert does not name the form: $(cat out)"
ok eval --checkpoint c.h5 --text t.txt --windows 2
grep -q "attention dijiang+softmax+noden" out || note "eval does not name the form: $(cat out)"
expect 1 "differs from the checkpoint's form" -- finetune --from c.h5 --text t.txt --steps 1 --out f.h5 \
  --dijiang-form exp
rm -rf bad

# ---- the uninterrupted run
"$kx" reproduce factors $Q --outdir a 2>err.txt || { note "reproduce factors --quick failed"; cat err.txt; }
for f in factors.md factors.csv factors.tex; do [ -s "a/$f" ] || note "a/$f missing"; done
# the --quick rows: both end points and the two factors flipped from each
for r in '| paper | — | dijiang |' '| paper | features | dijiang+softmax |' '| paper | normaliser | dijiang+noden |' \
         '| released | — | dijiang-released |' '| released | features | dijiang-released+exp |' \
         '| released | normaliser | dijiang-released+den |'; do
  grep -qF "$r" a/factors.md || note "no row '$r' in factors.md"
done
[ "$(grep -c '^| ' a/factors.md)" -eq 7 ] || note "factors.md has $(grep -c '^| ' a/factors.md) rows, want header + 6"
awk -F'|' '/^\| / && NF != 12 { bad = 1 } END { exit bad }' a/factors.md || note "a factors.md row has the wrong number of cells"
head -1 a/factors.csv | grep -q '^from,factor,form,seeds,gap,gap_se,d_gap,d_gap_se,recall_loss,recall_loss_se,d_recall_loss,d_recall_loss_se,recall_acc,recall_acc_se,d_recall_acc,d_recall_acc_se,diverged$' ||
  note "CSV header: $(head -1 a/factors.csv)"
awk -F, 'NR == 1 { n = NF } NF != n { bad = 1 } END { exit bad || NR != 7 }' a/factors.csv || note "ragged CSV"
grep -q 'end{tabular}' a/factors.tex || note "LaTeX table malformed"
# an effect is the row minus its end point (one seed: exactly the difference of the gaps)
awk -F, 'NR > 1 { gap[$3] = $5; d[$3] = $7 } END {
  e = d["dijiang+softmax"] - (gap["dijiang+softmax"] - gap["dijiang"]); if (e < 0) e = -e; exit e > 1e-6 }' a/factors.csv ||
  note "the effect of dijiang+softmax is not its gap minus dijiang's"
grep -q 'Released form minus paper form' a/factors.md || note "no overall difference in the footnote"
[ -s a/runs/b20/dijiang-s0/result.txt ] && [ -s a/runs/b20/dijiang-released+exp-s0/result.txt ] ||
  note "runs are not under runs/b<steps>/<label>-s<seed>/"

# ---- shared with Table 2: its dijiang run at 1/16 is the study's end point
mkdir d && cp a/teacher.h5 d/
"$kx" reproduce table2 $Q --kinds dijiang --scratch-seeds 0 --no-figures --outdir d 2>err.txt ||
  { note "reproduce table2 failed"; cat err.txt; }
"$kx" reproduce factors --quick --text "$dir/t.txt" --factors gate --outdir d 2>err.txt ||
  { note "a study in Table 2's folder failed"; cat err.txt; }
grep -q 'dijiang seed 0: finished earlier, kept' err.txt || note "the study did not reuse Table 2's dijiang run"
t2=$(awk -F, '$1 == "dijiang" && $2 == "converted" { print $10 }' d/table2.csv)
fs=$(awk -F, '$3 == "dijiang" { print $5 }' d/factors.csv)
[ -n "$t2" ] && [ "$t2" = "$fs" ] || note "Table 2's gap ($t2) is not the study's ($fs)"

# ---- a form that diverges: the teacher's q and k scaled up 30 times, so
# that exp features without the |x|^2 term overflow; the study reports it
if /usr/bin/python3 -c 'import h5py' 2>/dev/null; then
  cp a/teacher.h5 big.h5
  /usr/bin/python3 "$here/scale_qk.py" big.h5 30
  "$kx" reproduce factors $Q --teacher big.h5 --factors square --outdir e 2>err.txt ||
    { note "a study with a diverging form failed"; cat err.txt; }
  grep -qF '| paper | square | dijiang+nosq | diverged |' e/factors.md || note "the diverged form is not reported"
  grep -q 'Diverged: dijiang+nosq: 1 of 1 seeds' e/factors.md || note "the footnote does not name the diverged form"
  grep -qF '| released | square | dijiang-released+sq |' e/factors.md || note "the study stopped at the diverged form"
  [ -s e/runs/b20/dijiang+nosq-s0/diverged.txt ] || note "no diverged.txt"
  "$kx" reproduce factors --quick --text "$dir/t.txt" --teacher big.h5 --factors square --outdir e 2>err.txt ||
    note "the rerun failed"
  [ "$(grep -c 'finished earlier, kept' err.txt)" -eq 4 ] || note "a rerun redid a diverged run"
else
  echo "note: no h5py for /usr/bin/python3; the diverged-form check is skipped"
fi

# ---- killed in the middle of a fine-tuning (dijiang+softmax, after a checkpoint), then resumed:
# the uninterrupted files.
mkdir b && cp a/teacher.h5 b/
killed_at "dijiang+softmax seed 0: fine-tuning step 6/" reproduce factors --quick --text "$dir/t.txt" --outdir b
[ "$(ls b/runs/*/*/result.txt 2>/dev/null | wc -l)" -ge 2 ] || note "the killed run had not finished its end points"
[ -e b/factors.md ] && note "the killed run got to its table"
[ -e b/runs/b20/dijiang+softmax-s0/ft.h5 ] || note "the killed run left no fine-tuning checkpoint to resume"
resumed b reproduce factors --quick --text "$dir/t.txt" --outdir b
for f in factors.md factors.csv factors.tex; do
  cmp -s "a/$f" "b/$f" || { note "the resumed $f differs from the uninterrupted one"; diff "a/$f" "b/$f" | head; }
done
exit $fail
