#include "experiments/results.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/kx_cli.h"
#include "core/kx_error.h"
#include "experiments/metrics.h"

int kx_results_add(kx_results *r, const kx_result_row *row) {
  if (r->n == r->cap) {
    size_t cap = r->cap ? 2 * r->cap : 256;
    kx_result_row *rows = realloc(r->rows, cap * sizeof *rows);
    if (!rows) return kx_fail(KX_ENOMEM, "out of memory for results");
    r->rows = rows;
    r->cap = cap;
  }
  r->rows[r->n++] = *row;
  return 0;
}

void kx_results_free(kx_results *r) {
  free(r->rows);
  memset(r, 0, sizeof *r);
}

const char kx_results_csv_header[] = "input,layer,head,kernel,scheme,m,seed,metric,value,q_norm,k_norm";

void kx_results_fprint_row(FILE *fp, const kx_result_row *w) {
  fprintf(fp, "%s,%d,%d,%s,%s,%zu,%llu,%s,%.17g,%.6g,%.6g\n", w->input, w->layer, w->head,
          w->kernel, w->scheme, w->m, (unsigned long long)w->seed, kx_metric_names[w->metric],
          w->value, w->q_norm, w->k_norm);
}

int kx_results_write_csv(const kx_results *r, const char *path) {
  kx_atomic_file f;
  int rc = kx_atomic_open(&f, path);
  if (rc) return rc;
  fprintf(f.fp, "%s\n", kx_results_csv_header);
  for (size_t i = 0; i < r->n; i++) kx_results_fprint_row(f.fp, &r->rows[i]);
  if (ferror(f.fp)) {
    kx_atomic_abort(&f);
    return kx_fail(KX_EIO, "writing '%s' failed", path);
  }
  return kx_atomic_commit(&f);
}

/* Groups are (input, kernel, scheme, m); rows arrive grouped by input, then
 * in any order, so we collect distinct keys in first-seen order. */
typedef struct {
  const kx_result_row *key;
} group;

static int same_group(const kx_result_row *a, const kx_result_row *b) {
  return a->m == b->m && !strcmp(a->scheme, b->scheme) && !strcmp(a->input, b->input) &&
         !strcmp(a->kernel, b->kernel);
}

/* mean and standard error over seeds of the per-seed head averages */
static void summarise(const kx_results *r, const kx_result_row *key, int metric, double *mean,
                      double *se, size_t *n_seeds) {
  uint64_t seeds[4096];
  double sum[4096];
  size_t count[4096], ns = 0;
  for (size_t i = 0; i < r->n; i++) {
    const kx_result_row *w = &r->rows[i];
    if (w->metric != metric || !same_group(w, key) || isnan(w->value)) continue;
    size_t s = 0;
    while (s < ns && seeds[s] != w->seed) s++;
    if (s == ns) {
      if (ns == 4096) continue;
      seeds[ns] = w->seed;
      sum[ns] = 0;
      count[ns++] = 0;
    }
    sum[s] += w->value;
    count[s]++;
  }
  double mu = 0, var = 0;
  for (size_t s = 0; s < ns; s++) mu += sum[s] / (double)count[s];
  mu /= ns ? (double)ns : 1.0;
  for (size_t s = 0; s < ns; s++) {
    double x = sum[s] / (double)count[s] - mu;
    var += x * x;
  }
  *mean = ns ? mu : NAN;
  *se = ns > 1 ? sqrt(var / (double)(ns - 1) / (double)ns) : NAN;
  *n_seeds = ns;
}

void kx_results_print_summary(const kx_results *r, FILE *out, const int *metrics, int n_metrics) {
  const kx_result_row **keys = malloc((r->n ? r->n : 1) * sizeof *keys);
  if (!keys) return;
  size_t nk = 0;
  for (size_t i = 0; i < r->n; i++) {
    size_t k = 0;
    while (k < nk && !same_group(keys[k], &r->rows[i])) k++;
    if (k == nk) keys[nk++] = &r->rows[i];
  }
  fprintf(out, "%-12s %-7s %-11s %6s %5s", "input", "kernel", "scheme", "m", "seeds");
  for (int j = 0; j < n_metrics; j++) fprintf(out, "  %22s", kx_metric_names[metrics[j]]);
  fputc('\n', out);
  for (size_t k = 0; k < nk; k++) {
    const char *in = strrchr(keys[k]->input, '/');
    in = in ? in + 1 : keys[k]->input;
    size_t seeds_shown = 0;
    char cells[16][64];
    for (int j = 0; j < n_metrics && j < 16; j++) {
      double mean, se;
      size_t ns;
      summarise(r, keys[k], metrics[j], &mean, &se, &ns);
      if (ns > seeds_shown) seeds_shown = ns;
      if (isnan(mean)) snprintf(cells[j], sizeof cells[j], "n/a");
      else if (isnan(se)) snprintf(cells[j], sizeof cells[j], "%.4g", mean);
      else snprintf(cells[j], sizeof cells[j], "%.4g ± %.2g", mean, se);
    }
    fprintf(out, "%-12.12s %-7s %-11s %6zu %5zu", in, keys[k]->kernel, keys[k]->scheme, keys[k]->m,
            seeds_shown);
    /* "±" is 2 bytes in UTF-8 but one column wide: pad by display width */
    for (int j = 0; j < n_metrics && j < 16; j++) {
      int extra = strstr(cells[j], "±") ? 1 : 0;
      fprintf(out, "  %*s", 22 + extra, cells[j]);
    }
    fputc('\n', out);
  }
  free(keys);
}
