# Figure 2 of kapprox reproduce table2: validation loss against the step of
# the fine-tuning budget, one line per converted variant (mean over seeds),
# the softmax teacher as a horizontal line.  Variants with attention
# transfer (+AT) start after their transfer steps.  The loss is kapprox
# train's validation estimate (8 batches of evenly spaced windows), the
# teacher's on the same windows.
# Data: curve-<i>.txt ("step loss"), fig2.vars (n, label[], teacher, budget,
# unit: "char", or "token" on token data).
load datadir."/fig2.vars"
if (!exists("unit")) unit = "char"
w = 900; h = 600
load scriptdir."/common.gp"
set title "Fine-tuning after conversion (validation loss, mean over seeds)"
set xlabel "step of the budget (attention transfer + fine-tuning)"
set ylabel sprintf("validation loss (nats/%s)", unit)
set key outside right top box opaque
set grid
set xrange [0:budget]
plot for [i=1:n] sprintf("%s/curve-%d.txt", datadir, i) using 1:2 with linespoints lt i title label[i], \
     teacher with lines lc rgb "#000000" lw 2 dt 3 title "teacher (softmax)"
