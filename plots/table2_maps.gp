# Figure 3 of kapprox reproduce table2 (the paper's Figure 3): attention of
# the last block averaged over heads, on the first validation window, for
# the softmax teacher and each chosen variant after fine-tuning (seed 0).
# Row i is query i, column j key j; keys above the diagonal are masked.
# One colour scale for every panel, square-root so that the off-diagonal
# structure stays visible next to the strong recent-token weights.
# Data: map-0.txt (teacher), map-<i>.txt, fig3.vars (n, ntok, layer, label[]).
load datadir."/fig3.vars"
w = 300 * (n + 1) + 160; h = 460
load scriptdir."/common.gp"
right = 1 - 130.0 / w
set multiplot layout 1, n + 1 title sprintf("Attention of block %d averaged over heads, after fine-tuning", layer) \
    font ",14" margins screen 60.0 / w, screen right, screen 0.17, screen 0.82 spacing screen 30.0 / w, screen 0.1
unset key
set size ratio -1
set xrange [-0.5:ntok - 0.5]
set yrange [ntok - 0.5:-0.5]
set xtics out nomirror font ",10"
set ytics out nomirror font ",10"
set xlabel "key j" font ",12"
set ylabel "query i" font ",12" offset 1.5,0
shown(j, i, v) = j > i ? NaN : sqrt(v)
set palette defined (0 "#440154", 0.25 "#3b528b", 0.5 "#21918c", 0.75 "#5ec962", 1 "#fde725")
set cbrange [0:1]
set cbtics ("0" 0, "0.01" 0.1, "0.05" sqrt(0.05), "0.2" sqrt(0.2), "0.5" sqrt(0.5), "1" 1) font ",10"
unset colorbox
set title "teacher (softmax)" font ",13"
if (n == 0) {
  set colorbox user origin screen right + 25.0 / w, screen 0.2 size screen 12.0 / w, screen 0.55
  set cblabel "attention weight" font ",11"
}
plot datadir."/map-0.txt" matrix using 1:2:(shown($1, $2, $3)) with image
unset ylabel
do for [i=1:n] {
  set title label[i] font ",13"
  if (i == n) {
    set colorbox user origin screen right + 25.0 / w, screen 0.2 size screen 12.0 / w, screen 0.55
    set cblabel "attention weight" font ",11"
  }
  plot sprintf("%s/map-%d.txt", datadir, i) matrix using 1:2:(shown($1, $2, $3)) with image
}
unset multiplot
