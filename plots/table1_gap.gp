# Table 1 of kapprox reproduce table1: the gap between each converted
# variant's validation loss and its softmax teacher's, after fine-tuning
# with the same fraction of pre-training, against the teacher's size
# (mean over seeds, error bars one standard error).
# Data: table1.txt (params, then per variant gap se speed-up), table1.vars.
load datadir."/table1.vars"
w = 900; h = 560
load scriptdir."/common.gp"
set title sprintf("Gap to the softmax teacher after fine-tuning (%g of pre-training)", budget)
set xlabel "teacher parameters"
set ylabel "validation loss - teacher's (nats/char)"
set logscale x 2
set format x "%.1s%c"
set offsets graph 0.08, graph 0.08, graph 0.05, graph 0.05
set key outside right top box opaque
set grid
plot for [i=1:n] datadir."/table1.txt" using 1:(column(3*i-1)):(column(3*i)) with yerrorlines lt i title label[i], \
     0 with lines lc rgb "#000000" dt 3 title "teacher"
