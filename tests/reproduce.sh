#!/bin/sh
# kapprox reproduce kernel: a Markdown table (and LaTeX with --latex) with
# one row per scheme and columns m = d, 4d for synthetic data and a Q/K
# file; bad options are refused.
# usage: reproduce.sh /path/to/kapprox
. "$(dirname "$0")/cli_test.sh"
cd "$dir" || exit 1
T="--schemes prf --seeds 0:2 --tokens 16 --dim 4 --quiet"

"$kx" reproduce kernel $T --out t.md || note "reproduce kernel failed"
grep -q '^| scheme | synthetic, norm 1, m = d = 4 | synthetic, norm 1, m = 4d = 16 |$' t.md || note "Markdown header wrong: $(cat t.md)"
grep -q '^| prf | \*\*[0-9.e-]* ± [0-9.e-]*\*\* | \*\*[0-9.e-]* ± [0-9.e-]*\*\* |$' t.md || note "Markdown row wrong: $(cat t.md)"
"$kx" synth-qk --out qk.h5 --layers 1 --heads 2 --tokens 16 --dim 8 2>/dev/null || note "synth-qk failed"
"$kx" reproduce kernel $T --input qk.h5 --latex --out t.tex || note "reproduce kernel --latex failed"
grep -q 'begin{tabular}{lcccc}' t.tex || note "LaTeX table lacks 4 columns"
grep -q '\$m = 8\$ & \$m = 32\$' t.tex || note "LaTeX lacks the file's m = d, 4d"
"$kx" reproduce kernel $T --out t2.md && cmp -s t.md t2.md || note "same seeds gave different tables"

expect 2 "unknown target" -- reproduce table9
expect 2 "usage: kapprox reproduce" -- reproduce
expect 2 "unknown scheme 'nope'" -- reproduce kernel --schemes nope
expect 2 "unknown metric" -- reproduce kernel --metrics nope
expect 1 "no such file" -- reproduce kernel $T --input missing.h5
"$kx" reproduce kernel --help | grep -q "usage: kapprox reproduce kernel" || note "--help lacks usage"

# reproduce table1/table2: options refused before any work, as usage
# errors, leaving no output folder behind
sh "$here/tiny_text.sh" >t.txt
Q="--quick --text t.txt --quiet"
expect 2 "--kinds: 'bogus' is not a kind" -- reproduce table2 $Q --kinds bogus --outdir t2
expect 2 "--maps: 'bogus' is not a variant of this run" -- reproduce table2 $Q --maps bogus --outdir t2
expect 2 "--maps: 'performer' is not a variant of this run" -- reproduce table2 $Q --kinds hedgehog --maps performer --outdir t2
[ ! -e t2 ] || note "a refused reproduce table2 left its output folder"
mkfifo fifo.txt
expect 1 "is a named pipe" -- reproduce table2 $Q --text fifo.txt --outdir t2/x
expect 1 "cannot open text file 'missing.txt'" -- reproduce table2 $Q --text missing.txt --outdir t2
[ ! -e t2 ] || note "reproduce table2 refused for its --text left an output folder: $(find t2)"
"$kx" train --text t.txt --layers 1 --heads 2 --width 16 --ctx 16 --batch 2 --steps 1 --quiet --out small.h5 >/dev/null 2>&1
expect 2 "not the shape of one of the --quick sizes" -- reproduce table1 $Q --teacher small.h5 --outdir t1
[ "$(grep -o "see[^)]*--help" err | wc -l)" -eq 1 ] || note "table1 --teacher: the hint is not given once: $(cat err)"
exit $fail
