# (b) Error against the norm of the inputs at a fixed m, log y axis: the
# error of positive random features grows like exp(|q + k|^2), so this is
# the variable that matters.  Data from kapprox plot (err-vs-norm.vars).
w = 1450; h = 800
load scriptdir."/common.gp"
load vars
set title title_text font ",15"
set xlabel "norm |q| = |k| of every query and key (scaled: q.k is the logit)"
set ylabel ylabel_text.", dimensionless (log scale)"
set logscale y
set format y "%g"
set offsets graph 0.05, graph 0.05, 0, 0
set grid xtics ytics mytics lc rgb "#dddddd" lw 1
# the legend sits outside the plot: it never hides a line
set key outside right center Left reverse box lc rgb "#bbbbbb" font ",14" spacing 1.3
set key title "scheme" font ",13"
set yrange [ymin:ymax]
plot for [i=1:n] file[i] using 1:2:3:4 with yerrorlines lt i ps 1.1 title label[i]
