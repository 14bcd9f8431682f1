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
  char failure[200];     /* "" or why the point failed (value is then NaN); no commas */
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

/* Reads a file written by kx_results_write_csv (or a sweep), appending its
 * rows to r; a foreign header or a malformed line is an error naming the
 * line. */
int kx_results_read_csv(const char *path, kx_results *r);

/* Writes all rows atomically (temporary file + rename); kx_results_fwrite
 * writes them to an open stream (errors: check ferror). */
int kx_results_write_csv(const kx_results *r, const char *path);
void kx_results_fwrite(const kx_results *r, FILE *fp);

/* Copies a failure reason into row->failure, made safe for the CSV (commas,
 * tabs and line breaks become spaces or semicolons). */
void kx_result_set_failure(kx_result_row *row, const char *reason);
/* Distinct points (input, layer, head, scheme, m, seed) that failed. */
size_t kx_results_failed_points(const kx_results *r);

/* Prints an aligned table: per input, scheme and m, each selected metric as
 * mean +- standard error over seeds, after averaging over layers and heads
 * within each seed.  The "seeds" column counts the seeds each mean is over
 * ("8/10" when 2 of 10 failed); failed points are listed with their reason
 * below the table. */
void kx_results_print_summary(const kx_results *r, FILE *out, const int *metrics, int n_metrics);

#endif
