/* The figures of kapprox plot: the small data files the checked-in gnuplot
 * scripts (the .gp files in plots/) read, written atomically into DATADIR, and gnuplot
 * run on them for PNG and SVG figures:
 *   (a) err-vs-m     error against m, log-log, per scheme, 95% intervals,
 *                    reference slopes -1/2 and -1
 *   (b) err-vs-norm  error against the input norm at a fixed m
 *   (c) attn-maps    exact attention of one head next to each scheme's
 *                    approximation and their difference (paper Fig. 3 style)
 *   (d) points       each sampler's points projected to two coordinates
 * The numbers come from the library (summary.h, attn_maps.h, sequence.h);
 * the scripts only draw. */
#ifndef KX_PLOT_FIGURES_H
#define KX_PLOT_FIGURES_H

#include <stddef.h>

#include "experiments/eval/spec.h"
#include "experiments/eval/summary.h"

/* What the figures tell on the way (the caller prints them or not). */
typedef enum {
  KX_PLOT_NOTE_FIGURE,  /* "err-vs-m-2: <input>": which input a numbered figure shows */
  KX_PLOT_NOTE_SKIPPED  /* a figure the inputs do not allow, and why */
} kx_plot_note;

typedef struct {
  const char *outdir;  /* figures go here */
  const char *scripts; /* the folder of the .gp scripts (gnuplot.h: kx_plot_scripts) */
  char datadir[4096];  /* OUTDIR/data: the data files */
  int png, svg, render; /* render = 0: only the data files */
  void (*note)(void *user, kx_plot_note kind, const char *text);
  void *note_user;
} kx_plot;

/* Sets datadir to OUTDIR/data and creates it. */
int kx_plot_prepare(kx_plot *c);

/* (a) of `metric` on `input` from summary rows S and slopes L, as FIGURE. */
int kx_plot_err_vs_m(const kx_plot *c, const char *figure, const kx_summary_row *S, size_t ns,
                     const kx_slope_row *L, size_t nl, const char *input, int metric);

/* (b) at m = at_m (0: 256 if present, else the largest m).  Fewer than two
 * synthetic norms: an error if `required`, else a note and nothing drawn. */
int kx_plot_err_vs_norm(const kx_plot *c, const kx_summary_row *S, size_t ns, int metric, size_t at_m,
                        int required);

/* (a) and (b) from a results CSV (kapprox sweep, kernel-error, compare).
 * input NULL: the results' first; "all": one figure err-vs-m-<k> per input. */
int kx_plot_results(const kx_plot *c, const char *results, const char *input, int metric, size_t at_m, int want_a,
                    int want_b, int norm_required);

/* (c): the first head of `spec`, its first m and seed. */
int kx_plot_attn_maps(const kx_plot *c, const kx_spec *spec);

/* (d): n points of each sampler in dimension dim, coordinates ci and cj (1-based). */
int kx_plot_points(const kx_plot *c, char **samplers, size_t nsam, size_t n, size_t dim, size_t ci, size_t cj);

#endif
