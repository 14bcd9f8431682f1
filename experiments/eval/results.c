#include "experiments/eval/results.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/kx_cli.h"
#include "core/kx_error.h"
#include "core/kx_input.h"
#include "experiments/eval/metrics.h"
#include "experiments/eval/summary.h"

int kx_results_add(kx_results *r, const kx_result_row *row) {
  int rc = kx_reserve(&r->rows, &r->cap, r->n, sizeof *r->rows, 256, "results");
  if (rc) return rc;
  r->rows[r->n++] = *row;
  return 0;
}

void kx_results_free(kx_results *r) {
  free(r->rows);
  memset(r, 0, sizeof *r);
}

const char kx_results_csv_header[] = "input,layer,head,kernel,scheme,m,seed,metric,value,q_norm,k_norm,failure";
/* files written before the failure column existed */
static const char csv_header_v1[] = "input,layer,head,kernel,scheme,m,seed,metric,value,q_norm,k_norm";

void kx_results_fprint_row(FILE *fp, const kx_result_row *w) {
  fprintf(fp, "%s,%d,%d,%s,%s,%zu,%llu,%s,%.17g,%.6g,%.6g,%s\n", w->input, w->layer, w->head,
          w->kernel, w->scheme, w->m, (unsigned long long)w->seed, kx_metrics[w->metric].name,
          w->value, w->q_norm, w->k_norm, w->failure);
}

void kx_result_set_failure(kx_result_row *row, const char *reason) {
  snprintf(row->failure, sizeof row->failure, "%s", reason && *reason ? reason : "failed");
  for (char *c = row->failure; *c; c++) {
    if (*c == ',') *c = ';';
    else if (*c == '\t' || *c == '\n' || *c == '\r') *c = ' ';
  }
}

static int same_point(const kx_result_row *a, const kx_result_row *b) {
  return a->m == b->m && a->seed == b->seed && a->layer == b->layer && a->head == b->head &&
         !strcmp(a->scheme, b->scheme) && !strcmp(a->input, b->input);
}

size_t kx_results_failed_points(const kx_results *r) {
  size_t n = 0;
  for (size_t i = 0; i < r->n; i++)
    if (r->rows[i].failure[0] && !(i > 0 && r->rows[i - 1].failure[0] && same_point(&r->rows[i - 1], &r->rows[i])))
      n++;
  return n;
}

void kx_results_fwrite(const kx_results *r, FILE *fp) {
  fprintf(fp, "%s\n", kx_results_csv_header);
  for (size_t i = 0; i < r->n; i++) kx_results_fprint_row(fp, &r->rows[i]);
}

int kx_results_write_csv(const kx_results *r, const char *path) {
  kx_atomic_file f;
  int rc = kx_atomic_open(&f, path);
  if (rc) return rc;
  errno = 0;
  kx_results_fwrite(r, f.fp);
  if (fflush(f.fp) != 0 || ferror(f.fp)) {
    int e = errno ? errno : EIO;
    kx_atomic_abort(&f);
    return kx_fail(KX_EIO, "writing '%s' failed: %s", path, strerror(e));
  }
  return kx_atomic_commit(&f);
}

/* Splits a CSV line in place at commas (no quoting: no field of ours holds
 * a comma). */
static size_t split_fields(char *line, char **fields, size_t cap) {
  size_t n = 0;
  for (char *p = line;;) {
    if (n < cap) fields[n] = p;
    n++;
    char *c = strchr(p, ',');
    if (!c) break;
    *c = '\0';
    p = c + 1;
  }
  return n;
}

int kx_results_read_csv(const char *path, kx_results *r) {
  FILE *fp = kx_input_fopen(path, "results file");
  if (!fp) return KX_EIO;
  char line[4096];
  int rc = 0;
  size_t lineno = 0;
  while (!rc && fgets(line, sizeof line, fp)) {
    lineno++;
    size_t len = strlen(line);
    if (len && line[len - 1] == '\n') line[--len] = '\0';
    if (len && line[len - 1] == '\r') line[--len] = '\0';
    if (lineno == 1) {
      if (strcmp(line, kx_results_csv_header) && strcmp(line, csv_header_v1))
        rc = kx_fail(KX_EIO, "'%s' is not a kapprox results CSV (header should be '%s')", path,
                     kx_results_csv_header);
      continue;
    }
    if (!len) continue;
    char *f[13];
    size_t nf = split_fields(line, f, 13);
    kx_result_row w = {0};
    char *end;
    int ok = nf == 11 || nf == 12;
    if (nf == 12) ok = snprintf(w.failure, sizeof w.failure, "%s", f[11]) < (int)sizeof w.failure;
    if (ok) {
      ok = snprintf(w.input, sizeof w.input, "%s", f[0]) < (int)sizeof w.input &&
           snprintf(w.kernel, sizeof w.kernel, "%s", f[3]) < (int)sizeof w.kernel &&
           snprintf(w.scheme, sizeof w.scheme, "%s", f[4]) < (int)sizeof w.scheme;
      w.layer = (int)strtol(f[1], &end, 10);
      ok = ok && !*end && *f[1];
      w.head = (int)strtol(f[2], &end, 10);
      ok = ok && !*end && *f[2];
      w.m = (size_t)strtoull(f[5], &end, 10);
      ok = ok && !*end && *f[5];
      w.seed = (uint64_t)strtoull(f[6], &end, 10);
      ok = ok && !*end && *f[6];
      w.metric = kx_metric_lookup(f[7]);
      ok = ok && w.metric >= 0;
      w.value = strtod(f[8], &end);
      ok = ok && !*end && *f[8];
      w.q_norm = strtod(f[9], &end);
      ok = ok && !*end && *f[9];
      w.k_norm = strtod(f[10], &end);
      ok = ok && !*end && *f[10];
    }
    if (!ok) rc = kx_fail(KX_EIO, "'%s' line %zu is malformed", path, lineno);
    else rc = kx_results_add(r, &w);
  }
  if (!rc && lineno == 0) rc = kx_fail(KX_EIO, "'%s' is empty", path);
  fclose(fp);
  return rc;
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

/* The summary row (summary.h: mean and standard error over seeds of the
 * per-seed head averages) of a group and metric, or NULL. */
static const kx_summary_row *find_summary(const kx_summary_row *S, size_t ns, const kx_result_row *key, int metric) {
  for (size_t i = 0; i < ns; i++)
    if (S[i].metric == metric && S[i].m == key->m && !strcmp(S[i].scheme, key->scheme) &&
        !strcmp(S[i].input, key->input) && !strcmp(S[i].kernel, key->kernel))
      return &S[i];
  return NULL;
}

void kx_results_print_summary(const kx_results *r, FILE *out, const int *metrics, int n_metrics) {
  const kx_result_row **keys = malloc((r->n ? r->n : 1) * sizeof *keys);
  kx_summary_row *S = NULL;
  size_t n_summary = 0;
  if (!keys || kx_summarise(r, &S, &n_summary)) {
    free(keys);
    return;
  }
  size_t nk = 0;
  /* columns as wide as their longest entry: file names are not cut */
  int w_in = 12, w_scheme = 11; /* the widths of earlier versions, at least */
  for (size_t i = 0; i < r->n; i++) {
    size_t k = 0;
    while (k < nk && !same_group(keys[k], &r->rows[i])) k++;
    if (k == nk) keys[nk++] = &r->rows[i];
    const char *in = strrchr(r->rows[i].input, '/');
    in = in ? in + 1 : r->rows[i].input;
    if ((int)strlen(in) > w_in) w_in = (int)strlen(in);
    if ((int)strlen(r->rows[i].scheme) > w_scheme) w_scheme = (int)strlen(r->rows[i].scheme);
  }
  fprintf(out, "%-*s %-7s %-*s %6s %5s", w_in, "input", "kernel", w_scheme, "scheme", "m", "seeds");
  for (int j = 0; j < n_metrics; j++) fprintf(out, "  %22s", kx_metrics[metrics[j]].name);
  fputc('\n', out);
  for (size_t k = 0; k < nk; k++) {
    const char *in = strrchr(keys[k]->input, '/');
    in = in ? in + 1 : keys[k]->input;
    size_t seeds_shown = 0;
    char cells[16][64];
    for (int j = 0; j < n_metrics && j < 16; j++) {
      const kx_summary_row *sr = find_summary(S, n_summary, keys[k], metrics[j]);
      double mean = sr ? sr->mean : NAN, se = sr ? sr->se : NAN;
      size_t ns = sr ? sr->n_seeds : 0;
      if (ns > seeds_shown) seeds_shown = ns;
      if (isnan(mean)) snprintf(cells[j], sizeof cells[j], "n/a");
      else if (isnan(se)) snprintf(cells[j], sizeof cells[j], "%.4g", mean);
      else snprintf(cells[j], sizeof cells[j], "%.4g ± %.2g", mean, se);
    }
    /* seeds with a failed point in this group */
    uint64_t failed_seeds[64];
    size_t n_failed = 0;
    for (size_t i = 0; i < r->n; i++) {
      const kx_result_row *w = &r->rows[i];
      if (!w->failure[0] || !same_group(w, keys[k])) continue;
      size_t s = 0;
      while (s < n_failed && failed_seeds[s] != w->seed) s++;
      if (s == n_failed && n_failed < 64) failed_seeds[n_failed++] = w->seed;
    }
    char seeds[32];
    if (n_failed) snprintf(seeds, sizeof seeds, "%zu/%zu", seeds_shown, seeds_shown + n_failed);
    else snprintf(seeds, sizeof seeds, "%zu", seeds_shown);
    fprintf(out, "%-*s %-7s %-*s %6zu %5s", w_in, in, keys[k]->kernel, w_scheme, keys[k]->scheme, keys[k]->m,
            seeds);
    /* "±" is 2 bytes in UTF-8 but one column wide: pad by display width */
    for (int j = 0; j < n_metrics && j < 16; j++) {
      if (n_failed && !seeds_shown) snprintf(cells[j], sizeof cells[j], "failed");
      int extra = strstr(cells[j], "±") ? 1 : 0;
      fprintf(out, "  %*s", 22 + extra, cells[j]);
    }
    fputc('\n', out);
  }
  free(keys);
  free(S);
  size_t n_failed = kx_results_failed_points(r), shown = 0;
  if (!n_failed) return;
  fprintf(out, "%zu point(s) failed (value NaN in the results CSV, reason in its 'failure' column):\n", n_failed);
  for (size_t i = 0; i < r->n && shown < 10; i++) {
    const kx_result_row *w = &r->rows[i];
    if (!w->failure[0] || (i > 0 && r->rows[i - 1].failure[0] && same_point(&r->rows[i - 1], w))) continue;
    const char *in = strrchr(w->input, '/');
    in = in ? in + 1 : w->input;
    if (w->layer >= 0) fprintf(out, "  %s layer %d head %d", in, w->layer, w->head);
    else fprintf(out, "  %s", in);
    fprintf(out, " %s m=%zu seed=%llu: %s\n", w->scheme, w->m, (unsigned long long)w->seed, w->failure);
    shown++;
  }
  if (n_failed > shown) fprintf(out, "  ... and %zu more\n", n_failed - shown);
}
