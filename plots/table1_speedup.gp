# Table 1 of kapprox reproduce table1: tokens per second generating
# `length` tokens with each converted variant's recurrent form over its
# softmax teacher's (KV cache), against the teacher's size.
# Data: table1.txt (params, then per variant gap se speed-up), table1.vars.
load datadir."/table1.vars"
w = 900; h = 560
load scriptdir."/common.gp"
set title sprintf("Inference speed-up over softmax, generating %d tokens", length)
set xlabel "teacher parameters"
set ylabel "tokens/s over the softmax teacher's"
set logscale x 2
set format x "%.1s%c"
set offsets graph 0.08, graph 0.08, graph 0.05, graph 0.05
set key outside right top box opaque
set grid
set yrange [0:*]
plot for [i=1:n] datadir."/table1.txt" using 1:(column(3*i+1)) with linespoints lt i title label[i], \
     1 with lines lc rgb "#000000" dt 3 title "softmax"
