/* Drawing a figure with gnuplot, published like every other output
 * (core/kx_atomic.h): gnuplot draws into the temporary file beside the
 * figure, which is then synced and renamed over it, so a killed or failed
 * gnuplot leaves the old figure, never half a new one.  Used by kapprox
 * plot; reproduce table2's figures can draw through it too. */
#ifndef KX_GNUPLOT_H
#define KX_GNUPLOT_H

/* Runs `gnuplot -e "VARS; out='...'; fmt='FORMAT'" SCRIPT` (no shell) for
 * the figure OUT; vars are the script's other variables (gnuplot syntax,
 * paths in single quotes without quotes inside). */
int kx_gnuplot_figure(const char *script, const char *vars, const char *format, const char *out);

#endif
