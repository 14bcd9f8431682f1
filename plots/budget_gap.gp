# The figure of kapprox reproduce budget: the gap to the softmax teacher
# (validation loss minus the teacher's, nats per char or token) against the fine-tuning
# budget in tokens (steps x batch x context), log x axis.  One line per
# variant through its mean gaps, error bars one standard error over seeds
# (none with one seed), dashed for the rows trained from scratch; the
# fitted curve c + a tokens^-alpha of each variant (where the fit exists)
# thin and dotted in the same colour; the teacher is the zero line.
# Data: budget-<i>.txt ("tokens gap se"), budget.vars (n, label[],
# scratch[], fit_c[], fit_a[], fit_alpha[], tmin, tmax; unit: "char", or
# "token" on token data).
load datadir."/budget.vars"
if (!exists("unit")) unit = "char"
w = 1000; h = 760
load scriptdir."/common.gp"
set title "Gap to the teacher against the fine-tuning budget"
set xlabel "fine-tuning budget (tokens = steps × batch × context)"
set ylabel sprintf("gap to the teacher (nats/%s), mean ± s.e.", unit)
# below the plot, in two columns: eight or more long labels beside it would squeeze the axes;
# the bottom margin is sized to the key's rows (variants, the fit, the teacher), since gnuplot's
# own estimate lets the box ride over the x label
set key below maxcols 2 box opaque width 1
set bmargin 5 + ceil((n + 2) / 2.0)
set grid
set logscale x
# SI prefixes: 100k, 1M (labels are plain text)
set format x "%.0s%c"
set offsets 0, 0, graph 0.05, graph 0.05
set xrange [tmin / 1.6 : tmax * 1.6]
set samples 200
fit_curve(x, i) = fit_c[i] + fit_a[i] * x ** (-fit_alpha[i])
plot for [i=1:n] sprintf("%s/budget-%d.txt", datadir, i) using 1:2:3 with yerrorlines lt i \
       dt 1 + scratch[i] title label[i], \
     for [i=1:n] fit_curve(x, i) with lines lt i lw 1 dt 3 notitle, \
     NaN with lines lc rgb "#555555" lw 1 dt 3 title "fit c + a t^-α", \
     0 with lines lc rgb "#000000" lw 2 dt 3 title "teacher (softmax)"
