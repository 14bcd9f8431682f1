#include "experiments/eval/summary.h"

#include <errno.h>
#include <gsl/gsl_cdf.h>
#include <gsl/gsl_fit.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/kx_cli.h"
#include "core/kx_error.h"
#include "experiments/eval/metrics.h"

const char kx_summary_csv_header[] =
    "input,kernel,scheme,metric,m,n_seeds,mean,se,ci95_lo,ci95_hi,q_norm,k_norm,n_failed";
const char kx_slopes_csv_header[] =
    "input,kernel,scheme,metric,n_m,n_obs,m_min,m_max,slope,slope_se,intercept";

/* Sort keys: inputs and schemes keep the order in which they first appear
 * (the grid's order), so tables read like the command that made them. */
typedef struct {
  const kx_result_row *row;
  size_t input_ord, scheme_ord;
} keyed;

static size_t ordinal(const char **seen, size_t *n_seen, const char *s) {
  for (size_t i = 0; i < *n_seen; i++)
    if (!strcmp(seen[i], s)) return i;
  seen[*n_seen] = s;
  return (*n_seen)++;
}

static int cmp_keyed(const void *pa, const void *pb) {
  const keyed *a = pa, *b = pb;
  if (a->input_ord != b->input_ord) return a->input_ord < b->input_ord ? -1 : 1;
  if (a->scheme_ord != b->scheme_ord) return a->scheme_ord < b->scheme_ord ? -1 : 1;
  int c = strcmp(a->row->kernel, b->row->kernel);
  if (c) return c;
  if (a->row->metric != b->row->metric) return a->row->metric < b->row->metric ? -1 : 1;
  if (a->row->m != b->row->m) return a->row->m < b->row->m ? -1 : 1;
  if (a->row->seed != b->row->seed) return a->row->seed < b->row->seed ? -1 : 1;
  if (a->row->layer != b->row->layer) return a->row->layer < b->row->layer ? -1 : 1;
  if (a->row->head != b->row->head) return a->row->head < b->row->head ? -1 : 1;
  return 0;
}

static keyed *sorted_rows(const kx_results *r) {
  keyed *k = kx_malloc((r->n ? r->n : 1) * sizeof *k);
  const char **inputs = kx_malloc((r->n ? r->n : 1) * sizeof *inputs);
  const char **schemes = kx_malloc((r->n ? r->n : 1) * sizeof *schemes);
  if (!k || !inputs || !schemes) {
    free(k);
    free(inputs);
    free(schemes);
    return NULL;
  }
  size_t ni = 0, ns = 0;
  for (size_t i = 0; i < r->n; i++) {
    k[i].row = &r->rows[i];
    k[i].input_ord = ordinal(inputs, &ni, r->rows[i].input);
    k[i].scheme_ord = ordinal(schemes, &ns, r->rows[i].scheme);
  }
  free(inputs);
  free(schemes);
  qsort(k, r->n, sizeof *k, cmp_keyed);
  return k;
}

static int same_series(const kx_result_row *a, const kx_result_row *b) {
  return a->metric == b->metric && !strcmp(a->input, b->input) && !strcmp(a->scheme, b->scheme) &&
         !strcmp(a->kernel, b->kernel);
}

/* One per-seed observation: the value averaged over the input's heads. */
typedef struct {
  size_t m;
  double value, q_norm, k_norm;
  int failed; /* every row of this seed is a failed point: value NaN */
} seed_obs;

/* The series that starts at sorted row i of n (rows [i, *end) share its
 * key) collapsed into per-(m, seed) head averages; returns their number. */
static size_t series_averages(const keyed *k, size_t n_rows, size_t i, seed_obs *obs, size_t *series_end) {
  size_t end = i;
  while (end < n_rows && same_series(k[end].row, k[i].row)) end++;
  *series_end = end;
  size_t n = 0;
  while (i < end) {
    size_t j = i;
    double sum = 0, qn = 0, kn = 0;
    size_t cnt = 0;
    int failed = 0;
    while (j < end && k[j].row->m == k[i].row->m && k[j].row->seed == k[i].row->seed) {
      if (!isnan(k[j].row->value)) {
        sum += k[j].row->value;
        cnt++;
      }
      failed |= k[j].row->failure[0] != '\0';
      qn += k[j].row->q_norm;
      kn += k[j].row->k_norm;
      j++;
    }
    if (cnt || failed)
      obs[n++] = (seed_obs){k[i].row->m, cnt ? sum / (double)cnt : NAN, qn / (double)(j - i),
                            kn / (double)(j - i), !cnt};
    i = j;
  }
  return n;
}

static void copy_key(const kx_result_row *w, char *input, char *kernel, char *scheme) {
  snprintf(input, 128, "%s", w->input);
  snprintf(kernel, 16, "%s", w->kernel);
  snprintf(scheme, 32, "%s", w->scheme);
}

int kx_summarise(const kx_results *r, kx_summary_row **out, size_t *n_out) {
  const size_t cap = r->n ? r->n : 1;
  keyed *k = sorted_rows(r);
  seed_obs *obs = kx_malloc(cap * sizeof *obs);
  kx_summary_row *rows = kx_calloc(cap, sizeof *rows);
  size_t nr = 0;
  const int rc = k && obs && rows ? 0 : KX_ENOMEM;
  for (size_t i = 0; i < r->n && !rc;) {
    size_t end, no = series_averages(k, r->n, i, obs, &end);
    for (size_t a = 0; a < no;) {
      size_t b = a, ns = 0, n_failed = 0;
      double sum = 0, qn = 0, kn = 0;
      while (b < no && obs[b].m == obs[a].m) {
        if (obs[b].failed) n_failed++;
        else {
          sum += obs[b].value;
          qn += obs[b].q_norm;
          kn += obs[b].k_norm;
          ns++;
        }
        b++;
      }
      double mean = ns ? sum / (double)ns : NAN, var = 0;
      for (size_t c = a; c < b; c++)
        if (!obs[c].failed) var += (obs[c].value - mean) * (obs[c].value - mean);
      kx_summary_row *s = &rows[nr++];
      copy_key(k[i].row, s->input, s->kernel, s->scheme);
      s->metric = k[i].row->metric;
      s->m = obs[a].m;
      s->n_seeds = ns;
      s->n_failed = n_failed;
      s->mean = mean;
      s->q_norm = ns ? qn / (double)ns : obs[a].q_norm;
      s->k_norm = ns ? kn / (double)ns : obs[a].k_norm;
      if (ns > 1) {
        s->se = sqrt(var / (double)(ns - 1) / (double)ns);
        double t = gsl_cdf_tdist_Pinv(0.975, (double)(ns - 1));
        s->ci_lo = mean - t * s->se;
        s->ci_hi = mean + t * s->se;
      } else {
        s->se = s->ci_lo = s->ci_hi = NAN;
      }
      a = b;
    }
    i = end;
  }
  if (rc) free(rows), rows = NULL;
  free(k);
  free(obs);
  *out = rows;
  *n_out = nr;
  return rc;
}

int kx_fit_slopes(const kx_results *r, kx_slope_row **out, size_t *n_out) {
  const size_t cap = r->n ? r->n : 1;
  keyed *k = sorted_rows(r);
  seed_obs *obs = kx_malloc(cap * sizeof *obs);
  double *x = kx_malloc(cap * sizeof *x), *y = kx_malloc(cap * sizeof *y);
  kx_slope_row *rows = kx_calloc(cap, sizeof *rows);
  size_t nr = 0;
  const int rc = k && obs && x && y && rows ? 0 : KX_ENOMEM;
  for (size_t i = 0; i < r->n && !rc;) {
    size_t end, no = series_averages(k, r->n, i, obs, &end), nxy = 0, n_m = 0, m_min = 0, m_max = 0, last_m = 0;
    /* log of an error needs a positive error; an exact zero (possible for
     * some metrics at large m) carries no rate information */
    for (size_t a = 0; a < no; a++) {
      if (!(obs[a].value > 0) || !isfinite(obs[a].value)) continue;
      x[nxy] = log((double)obs[a].m);
      y[nxy++] = log(obs[a].value);
      if (n_m == 0 || obs[a].m != last_m) {
        n_m++;
        last_m = obs[a].m;
        if (n_m == 1) m_min = obs[a].m;
        m_max = obs[a].m;
      }
    }
    kx_slope_row *s = &rows[nr++];
    copy_key(k[i].row, s->input, s->kernel, s->scheme);
    s->metric = k[i].row->metric;
    s->n_m = n_m;
    s->n_obs = nxy;
    s->m_min = m_min;
    s->m_max = m_max;
    s->slope = s->slope_se = s->intercept = NAN;
    if (nxy >= 3 && n_m >= 2) {
      double c0, c1, cov00, cov01, cov11, sumsq;
      if (gsl_fit_linear(x, 1, y, 1, nxy, &c0, &c1, &cov00, &cov01, &cov11, &sumsq) == 0) {
        s->slope = c1;
        s->slope_se = sqrt(cov11);
        s->intercept = c0;
      }
    }
    i = end;
  }
  if (rc) free(rows), rows = NULL;
  free(k);
  free(obs);
  free(x);
  free(y);
  *out = rows;
  *n_out = nr;
  return rc;
}

void kx_summary_fwrite(FILE *fp, const kx_summary_row *rows, size_t n) {
  fprintf(fp, "%s\n", kx_summary_csv_header);
  for (size_t i = 0; i < n; i++) {
    const kx_summary_row *s = &rows[i];
    fprintf(fp, "%s,%s,%s,%s,%zu,%zu,%.10g,%.6g,%.10g,%.10g,%.6g,%.6g,%zu\n", s->input, s->kernel,
            s->scheme, kx_metrics[s->metric].name, s->m, s->n_seeds, s->mean, s->se, s->ci_lo,
            s->ci_hi, s->q_norm, s->k_norm, s->n_failed);
  }
}

void kx_slopes_fwrite(FILE *fp, const kx_slope_row *rows, size_t n) {
  fprintf(fp, "%s\n", kx_slopes_csv_header);
  for (size_t i = 0; i < n; i++) {
    const kx_slope_row *s = &rows[i];
    fprintf(fp, "%s,%s,%s,%s,%zu,%zu,%zu,%zu,%.6g,%.4g,%.6g\n", s->input, s->kernel, s->scheme,
            kx_metrics[s->metric].name, s->n_m, s->n_obs, s->m_min, s->m_max, s->slope, s->slope_se,
            s->intercept);
  }
}

/* One writer for both tables: atomic file, stream writer, error with its reason. */
static int write_atomic(const char *path, void (*body)(FILE *, const void *, size_t), const void *rows, size_t n) {
  kx_atomic_file f;
  int rc = kx_atomic_open(&f, path);
  if (rc) return rc;
  errno = 0;
  body(f.fp, rows, n);
  if (fflush(f.fp) != 0 || ferror(f.fp)) {
    int e = errno ? errno : EIO;
    kx_atomic_abort(&f);
    return kx_fail(KX_EIO, "writing '%s' failed: %s", path, strerror(e));
  }
  return kx_atomic_commit(&f);
}

static void summary_body(FILE *fp, const void *rows, size_t n) { kx_summary_fwrite(fp, rows, n); }
static void slopes_body(FILE *fp, const void *rows, size_t n) { kx_slopes_fwrite(fp, rows, n); }

int kx_summary_write_csv(const char *path, const kx_summary_row *rows, size_t n) {
  return write_atomic(path, summary_body, rows, n);
}

int kx_slopes_write_csv(const char *path, const kx_slope_row *rows, size_t n) {
  return write_atomic(path, slopes_body, rows, n);
}

const kx_summary_row *kx_summary_find(const kx_summary_row *rows, size_t n, const char *input,
                                      const char *scheme, int metric, size_t m) {
  for (size_t i = 0; i < n; i++)
    if (rows[i].metric == metric && rows[i].m == m && !strcmp(rows[i].scheme, scheme) &&
        (!input || !strcmp(rows[i].input, input)))
      return &rows[i];
  return NULL;
}
