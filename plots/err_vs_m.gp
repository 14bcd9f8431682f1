# (a) Error against the number of features m, log-log: one line per scheme
# with 95% intervals over seeds (fitted slope in the legend) and reference
# lines of slope -1/2 (Monte Carlo rate) and -1 (the paper's QMC claim).
# Data and labels come from kapprox plot (the vars file, err-vs-m.vars).
w = 1450; h = 800
load scriptdir."/common.gp"
load vars
set title title_text font ",15"
set xlabel "number of features m (log scale)"
set ylabel ylabel_text.", dimensionless (log scale)"
set logscale xy
set xrange [xmin:xmax]
set yrange [ymin:ymax]
set format x "%g"
set format y "%g"
set grid xtics ytics mytics lc rgb "#dddddd" lw 1
# the legend sits outside the plot: it never hides a line
set key outside right center Left reverse box lc rgb "#bbbbbb" font ",14" spacing 1.3
set key title "scheme, fitted slope of\nlog error vs log m ± SE" font ",13"
plot for [i=1:n] file[i] using 1:2:3:4 with yerrorlines lt i ps 1.1 title label[i], \
     ref_half * x**(-0.5) with lines dt 2 lw 2 lc rgb "#666666" title "reference: slope -1/2 (MC)", \
     ref_one * x**(-1) with lines dt 3 lw 2.5 lc rgb "#000000" title "reference: slope -1 (QMC claim)"
