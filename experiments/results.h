/* Result rows of the kernel experiments, in long format (one row per
 * input, layer, head, scheme, m, seed, metric) so pandas and gnuplot read
 * them directly, and their summary over seeds (mean, standard error). */
#ifndef KX_RESULTS_H
#define KX_RESULTS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef struct {
  char input[128];  /* "synthetic" or the file name */
  int layer, head;  /* -1 for synthetic data */
  char kernel[16];  /* "softmax" or "gauss" */
  char scheme[32];
  size_t m;
  uint64_t seed;
  int metric;       /* kx_metric */
  double value;
  double q_norm, k_norm; /* mean norms of the (scaled) inputs of this head */
} kx_result_row;

typedef struct {
  kx_result_row *rows;
  size_t n, cap;
} kx_results;

int kx_results_add(kx_results *r, const kx_result_row *row);
void kx_results_free(kx_results *r);

/* The CSV header line (no newline) and one row, shared by every writer. */
extern const char kx_results_csv_header[];
void kx_results_fprint_row(FILE *fp, const kx_result_row *row);

/* Writes all rows atomically (temporary file + rename). */
int kx_results_write_csv(const kx_results *r, const char *path);

/* Prints an aligned table: per input, scheme and m, each selected metric as
 * mean +- standard error over seeds, after averaging over layers and heads
 * within each seed. */
void kx_results_print_summary(const kx_results *r, FILE *out, const int *metrics, int n_metrics);

#endif
