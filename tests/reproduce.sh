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
exit $fail
