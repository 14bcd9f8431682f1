# (d) Points of each sampler projected to two coordinates: Monte Carlo
# clumps and leaves holes, low-discrepancy sequences fill the square
# evenly (and unscrambled Halton shows its correlated high coordinates).
# Data from kapprox plot: points-<i>.dat and points.vars.
load vars
cols = (n <= 5) ? n : 3
rows = (n + cols - 1) / cols
w = 340 * cols + 40; h = 360 * rows + 80
load scriptdir."/common.gp"
set multiplot layout rows, cols title title_text font ",14"
unset key
set size ratio -1
set xrange [0:1]
set yrange [0:1]
set xtics 0.5 font ",10"
set ytics 0.5 font ",10"
set xlabel xlabel_text font ",11"
set ylabel ylabel_text font ",11"
set grid lc rgb "#eeeeee"
do for [i=1:n] {
  set title label[i] font ",13"
  plot sprintf("%s/points-%d.dat", datadir, i) using 1:2 with points pt 7 ps 0.45 lc rgb "#0072B2"
}
unset multiplot
