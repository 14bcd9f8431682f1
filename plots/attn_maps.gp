# (c) Attention maps of one head, in the style of the paper's Fig. 3: top
# row the exact softmax weights and each scheme's approximation (one
# colour scale), bottom row approximation - exact (a diverging scale
# symmetric about 0).  Row i of a map is query i, column j key j.
# Data from kapprox plot: map-exact.txt, map-<i>.txt, mapdiff-<i>.txt,
# attn-maps.vars (n schemes, ntok tokens, labels, colour limits).
load vars
w = 300 * (n + 1) + 160; h = 760
load scriptdir."/common.gp"
# fixed margins, so every panel has the same size; the two colour bars sit
# at the right edge of the figure instead of shrinking the last panels
right = 1 - 130.0 / w
set multiplot layout 2, n + 1 title title_text font ",14" \
    margins screen 60.0 / w, screen right, screen 0.1, screen 0.87 spacing screen 30.0 / w, screen 0.11
unset key
set size ratio -1
set xrange [-0.5:ntok - 0.5]
set yrange [ntok - 0.5:-0.5]
set xtics out nomirror font ",10"
set ytics out nomirror font ",10"
# axis labels only on the outer panels: inner ones would overlap
unset xlabel
set ylabel "query i" font ",12" offset 1.5,0
set cbtics font ",10"
# keys hidden by the causal mask (j > i) are left blank rather than drawn
# as weight 0: they are "not attended", not "attended with weight 0"
shown(j, i, v) = (causal && j > i) ? NaN : v
set palette defined (0 "#440154", 0.25 "#3b528b", 0.5 "#21918c", 0.75 "#5ec962", 1 "#fde725")
set cbrange [0:cbmax]
unset colorbox
set title "exact softmax" font ",13"
plot datadir."/map-exact.txt" matrix using 1:2:(shown($1, $2, $3)) with image
unset ylabel
do for [i=1:n] {
  set title label[i] font ",13"
  if (i == n) {
    set colorbox user origin screen right + 25.0 / w, screen 0.55 size screen 12.0 / w, screen 0.3
    set cblabel "attention weight" font ",11"
  }
  plot sprintf("%s/map-%d.txt", datadir, i) matrix using 1:2:(shown($1, $2, $3)) with image
}
unset colorbox
unset cblabel
set palette defined (0 "#2166ac", 0.5 "#f7f7f7", 1 "#b2182b")
set cbrange [-dmax:dmax]
set multiplot next
set xlabel "key j" font ",12" offset 0,0.5
do for [i=1:n] {
  if (i == 1) { set ylabel "query i" font ",12" offset 1.5,0 } else { unset ylabel }
  set title "difference: ".label[i] font ",12"
  if (i == n) {
    set colorbox user origin screen right + 25.0 / w, screen 0.1 size screen 12.0 / w, screen 0.3
    set cblabel "approximate - exact" font ",11"
  }
  plot sprintf("%s/mapdiff-%d.txt", datadir, i) matrix using 1:2:(shown($1, $2, $3)) with image
}
unset multiplot
