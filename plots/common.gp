# Shared set-up of every kapprox figure, loaded by the figure scripts.
# kapprox plot passes: fmt ("png" or "svg"), out (output file), datadir,
# vars (the figure's variables file in datadir), scriptdir; the figure
# script sets w and h (pixels) before loading this.
# Labels are plain text (noenhanced): scheme names contain '-' and '_'.
if (fmt eq "svg") {
  set terminal svg size w,h dynamic noenhanced font "Helvetica,15" background rgb "white"
} else {
  set terminal pngcairo size w,h noenhanced font "Helvetica,15" background rgb "white"
}
set output out
set border lw 1.2
# a colour-blind-safe cycle (Okabe-Ito), one colour per scheme
set linetype 1 lc rgb "#0072B2" lw 2 pt 7
set linetype 2 lc rgb "#D55E00" lw 2 pt 5
set linetype 3 lc rgb "#009E73" lw 2 pt 9
set linetype 4 lc rgb "#CC79A7" lw 2 pt 11
set linetype 5 lc rgb "#E69F00" lw 2 pt 13
set linetype 6 lc rgb "#56B4E9" lw 2 pt 4
set linetype 7 lc rgb "#000000" lw 2 pt 6
set linetype 8 lc rgb "#999933" lw 2 pt 8
# schemes 9..16 reuse the colours, dashed and with other markers, so a
# comparison of every registered map still tells each line apart
set linetype 9 lc rgb "#0072B2" lw 2 dt 2 pt 10
set linetype 10 lc rgb "#D55E00" lw 2 dt 2 pt 12
set linetype 11 lc rgb "#009E73" lw 2 dt 2 pt 14
set linetype 12 lc rgb "#CC79A7" lw 2 dt 2 pt 3
set linetype 13 lc rgb "#E69F00" lw 2 dt 2 pt 1
set linetype 14 lc rgb "#56B4E9" lw 2 dt 2 pt 2
set linetype 15 lc rgb "#000000" lw 2 dt 2 pt 15
set linetype 16 lc rgb "#999933" lw 2 dt 2 pt 9
set linetype cycle 16
