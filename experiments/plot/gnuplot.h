/* Drawing a figure with gnuplot, published like every other output
 * (core/kx_atomic.h): gnuplot draws into the temporary file beside the
 * figure, which is then synced and renamed over it, so a killed or failed
 * gnuplot leaves the old figure, never half a new one.  Used by kapprox
 * plot and by the reproduce tables' figures. */
#ifndef KX_GNUPLOT_H
#define KX_GNUPLOT_H

#include <stddef.h>

/* Runs `gnuplot -e "VARS; out='...'; fmt='FORMAT'" SCRIPT` (no shell) for
 * the figure OUT; vars are the script's other variables (gnuplot syntax,
 * paths in single quotes without quotes inside). */
int kx_gnuplot_figure(const char *script, const char *vars, const char *format, const char *out);

/* The folder of the figure scripts that holds `probe` (a script name):
 * `given` if not NULL (an option's value), else $KAPPROX_PLOTS, the source
 * tree's plots/, then the installed copy. */
int kx_plot_scripts(const char *given, const char *probe, char *out, size_t cap);

/* SCRIPT of the folder `scripts` with datadir and scriptdir set, drawn as
 * OUT_BASE.png and OUT_BASE.svg (each published atomically). */
int kx_plot_run(const char *scripts, const char *script, const char *datadir, const char *out_base);

#endif
