/* kapprox reproduce kernel: the kernel-approximation table -- each scheme's
 * error at m = d and m = 4d, mean ± standard error over seeds, on
 * synthetic data and optionally on a Q/K file -- as Markdown or LaTeX.
 *
 * A column group is one input at its own head dimension d: the synthetic
 * input of the grid, then the grid's first Q/K file (averaged over its
 * selected heads within each seed). */
#ifndef KX_KERNEL_TABLE_H
#define KX_KERNEL_TABLE_H

#include <stddef.h>
#include <stdio.h>

#include "experiments/eval/results.h"
#include "experiments/eval/runner.h"
#include "experiments/eval/spec.h"

typedef struct {
  char label[160]; /* column group heading */
  char input[128]; /* input column value in the results */
  size_t d;
} kx_kernel_group;

/* The groups of the grid: synthetic, and the first file if it has one (its
 * d read from its first selected layer).  groups has room for 2. */
int kx_kernel_groups(const kx_spec *spec, kx_kernel_group *groups, size_t *ng);

/* Runs group g of the grid at m = d and 4d, adding to res. */
int kx_kernel_group_run(const kx_spec *spec, const kx_kernel_group *groups, size_t g, const kx_run_options *o,
                        kx_results *res);

/* One table per metric, separated by a blank line, Markdown or LaTeX. */
int kx_kernel_tables_print(FILE *fp, const kx_spec *spec, const kx_results *res, const kx_kernel_group *groups,
                           size_t ng, const int *metrics, size_t n_metrics, int latex);

#endif
