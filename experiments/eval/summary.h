/* Statistics of long-format results over seeds, for the sweep's summary
 * files, the plots and the kernel tables:
 *  - per (input, kernel, scheme, metric, m): mean, standard error and a
 *    95% Student-t interval over seeds, each seed first averaged over the
 *    layers and heads of the input;
 *  - per (input, kernel, scheme, metric): the least-squares slope of
 *    log(error) against log(m) over every (m, seed) with its standard
 *    error, i.e. the empirical convergence rate (MC: -1/2 for RMS-type
 *    errors, QMC claimed -1). */
#ifndef KX_SUMMARY_H
#define KX_SUMMARY_H

#include <stddef.h>
#include <stdio.h>

#include "experiments/eval/results.h"

typedef struct {
  char input[128];
  char kernel[16];
  char scheme[32];
  int metric;
  size_t m;
  size_t n_seeds;                /* seeds the mean is over */
  size_t n_failed;               /* seeds whose point failed (not in the mean) */
  double mean, se, ci_lo, ci_hi; /* mean NaN without seeds; se and interval NaN with fewer than 2 */
  double q_norm, k_norm;         /* mean norms of the input's heads */
} kx_summary_row;

typedef struct {
  char input[128];
  char kernel[16];
  char scheme[32];
  int metric;
  size_t n_m, n_obs;         /* distinct m values, (m, seed) observations used */
  size_t m_min, m_max;
  double slope, slope_se, intercept; /* NaN with fewer than 3 observations or 2 m values */
} kx_slope_row;

/* Rows come out ordered by input and scheme in first-appearance order, then
 * kernel, metric and m ascending, whatever the order of r. */
int kx_summarise(const kx_results *r, kx_summary_row **out, size_t *n);
int kx_fit_slopes(const kx_results *r, kx_slope_row **out, size_t *n);

extern const char kx_summary_csv_header[];
extern const char kx_slopes_csv_header[];
int kx_summary_write_csv(const char *path, const kx_summary_row *rows, size_t n);
int kx_slopes_write_csv(const char *path, const kx_slope_row *rows, size_t n);
/* The same to an open stream (errors: check ferror). */
void kx_summary_fwrite(FILE *fp, const kx_summary_row *rows, size_t n);
void kx_slopes_fwrite(FILE *fp, const kx_slope_row *rows, size_t n);

/* Looks up the summary row of (input, scheme, metric, m); NULL if absent.
 * input NULL matches any input. */
const kx_summary_row *kx_summary_find(const kx_summary_row *rows, size_t n, const char *input,
                                      const char *scheme, int metric, size_t m);

#endif
