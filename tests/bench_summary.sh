#!/bin/sh
# The benchmark recipe of docs/performance.md, at tiny sizes:
# the outputs of kapprox bench-features, bench-attention and the PyTorch
# peer, named as experiments/bench/bench_rounds.sh names them, summarised by
# experiments/bench/bench_summary.py into tables with a figure in every cell the
# documentation quotes.  Checks that the three programs and the summary still
# agree on their formats, and that the DCT maps' FFTW path equals their
# dense form (max|diff| far below the features' size); timings are not
# checked.  Skipped (77) without /usr/bin/python3 and torch.
# usage: bench_summary.sh /path/to/kapprox
. "$(dirname "$0")/cli_test.sh"
cd "$dir" || exit 1
/usr/bin/python3 -c "import torch" 2>/dev/null || { echo "skipped: /usr/bin/python3 with torch is needed"; exit 77; }
peer="$here/../experiments/bench/bench_peer_torch.py"
summary="$here/../experiments/bench/bench_summary.py"
mkdir one two
{ uptime; "$kx" bench-features --d 64 --mult 1,4 --reps 1 --batch 64 --schemes prf,wdcf --threads 1; uptime; } \
  >one/cf1t1.txt 2>err.txt || note "bench-features failed: $(cat err.txt)"
{ uptime; "$kx" bench-attention --tokens 256 --repeat 1 --heads 2; uptime; } >one/ca1t1.txt 2>err.txt ||
  note "bench-attention failed: $(cat err.txt)"
{ uptime; /usr/bin/python3 "$peer" --only features,decoder --reps 1 --threads 1 --batch 64 --blas-threads 1; uptime; } \
  >one/tf1t1.txt 2>err.txt || note "the PyTorch peer failed: $(cat err.txt)"
/usr/bin/python3 "$summary" one --threads 1 >s1.txt 2>err.txt || note "bench_summary --threads 1 failed: $(cat err.txt)"
num='[0-9][0-9.e+-]*'
for row in "prf" "wdcf" "PyTorch float64 vec/s (load)" "bound: $num GFLOP/s / (2dm) / PyTorch float64" \
           "C float32 decoder map / PyTorch float32"; do
  grep -q "^| $row | $num.* | $num.* |$" s1.txt || note "the feature table has no figures in its '$row' row"
done
sed -n '/^DCT maps (batched DCT)/,/^bench-features DGEMM/p' s1.txt >dct.txt
grep -q "^| wdcf | $num | $num |$" dct.txt || note "no DCT/dense ratios for wdcf"
grep -q "^| wdcf native vec/s | $num | $num |$" dct.txt || note "no native rates for wdcf"
grep -q "^| 1, 1 | $num ($num) | $num | $num ($num) | $num | $num .* | $num | $num |$" s1.txt ||
  note "the float32 kernel row lacks a figure"
grep -q "^double linear ms, best: $num" s1.txt || note "no double linear attention figure"
awk '$1 == "wdcf" && NF == 10 { seen = 1; if ($10 !~ /^[0-9][0-9.e+-]*$/ || $10 + 0 > 1e-10) bad = 1 }
     END { exit !(seen && !bad) }' one/cf1t1.txt ||
  note "wdcf's FFTW path and its dense form differ (or no max|diff| was printed)"
cp one/cf1t1.txt two/cf1.txt
cp one/ca1t1.txt two/ca1.txt
{ uptime; /usr/bin/python3 "$peer" --only features --reps 1 --batch 64; uptime; } >two/tf1.txt 2>&1 ||
  note "the PyTorch peer (features) failed"
{ uptime; /usr/bin/python3 "$peer" --only attention,decoder --reps 1; uptime; } >two/ta1.txt 2>&1 ||
  note "the PyTorch peer (attention) failed"
/usr/bin/python3 "$summary" two --threads 2 >s2.txt 2>err.txt || note "bench_summary --threads 2 failed: $(cat err.txt)"
grep -q "^PyTorch chunked causal linear attention float64 (features included): $num ms" s2.txt ||
  note "no PyTorch linear attention figure in the two-thread summary"
/usr/bin/python3 "$summary" nowhere >/dev/null 2>err.txt && note "bench_summary accepted a missing directory"
grep -q "not a directory" err.txt || note "bench_summary's error does not name the problem"
[ $fail = 0 ] || { echo "--- s1.txt"; cat s1.txt; echo "--- s2.txt"; cat s2.txt; }
exit $fail
