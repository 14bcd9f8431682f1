/* Journal records of a sweep: one line per point, and the final results
 * files built from them (the same bytes for a fresh, a resumed and a
 * merged run, since all three go through kx_sweep_finish). */
#include "experiments/sweep/sweep.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/kx_error.h"
#include "experiments/eval/metrics.h"
#include "experiments/sweep/journal.h"
#include "experiments/eval/summary.h"
#include "experiments/sweep/sweep_commit.h"

long long kx_sweep_record_point(const char *payload) {
  char *end;
  errno = 0;
  unsigned long long p = strtoull(payload, &end, 10);
  if (errno || end == payload || *end != ',' || p > (unsigned long long)LLONG_MAX) return -1;
  return (long long)p;
}

char *kx_sweep_format_record(size_t p, const kx_spec_input *in, const char *kernel, const char *scheme,
                             size_t m, uint64_t seed, double q_norm, double k_norm,
                             const double v[KX_N_METRICS], const char *failure) {
  /* labels are < 128 bytes, numbers < 25 and reasons cut to fit a results row */
  const size_t cap = 1024;
  char *s = kx_malloc(cap);
  if (!s) return NULL;
  int w = snprintf(s, cap, "%zu,%s,%d,%d,%s,%s,%zu,%" PRIu64 ",%.17g,%.17g", p, in->label, in->layer, in->head,
                   kernel, scheme, m, seed, q_norm, k_norm);
  for (int k = 0; k < KX_N_METRICS && w > 0 && (size_t)w < cap; k++)
    w += failure || isnan(v[k]) ? snprintf(s + w, cap - (size_t)w, ",nan")
                                : snprintf(s + w, cap - (size_t)w, ",%.17g", v[k]);
  if (failure && w > 0 && (size_t)w < cap) {
    kx_result_row safe;
    kx_result_set_failure(&safe, failure);
    w += snprintf(s + w, cap - (size_t)w, ",%s", safe.failure);
  }
  if (w < 0 || (size_t)w >= cap) {
    free(s);
    kx_fail(KX_EINVAL, "journal record too long");
    return NULL;
  }
  return s;
}

/* Splits a record into its fields; returns the count (10 + metrics, one
 * more for a failed point), 0 if malformed. */
static size_t record_fields(char *buf, char **f) {
  size_t nf = 0;
  for (char *p = buf; nf < 11 + KX_N_METRICS;) {
    f[nf++] = p;
    char *c = strchr(p, ',');
    if (!c) break;
    *c = '\0';
    p = c + 1;
    if (nf == 11 + KX_N_METRICS) return 0; /* more fields than any record has */
  }
  return nf == 10 + KX_N_METRICS || nf == 11 + KX_N_METRICS ? nf : 0;
}

size_t kx_sweep_failed_records(char *const *records, size_t n) {
  size_t failed = 0;
  for (size_t i = 0; i < n; i++) {
    size_t commas = 0;
    for (const char *c = records[i]; *c; c++) commas += *c == ',';
    failed += commas == 10 + KX_N_METRICS;
  }
  return failed;
}

/* Parses a record back into result rows (one per defined metric). */
static int record_rows(const char *payload, kx_results *out) {
  char buf[1024];
  if (strlen(payload) >= sizeof buf) return kx_fail(KX_EIO, "journal record too long");
  strcpy(buf, payload);
  char *f[11 + KX_N_METRICS];
  size_t nf = record_fields(buf, f);
  if (!nf) return kx_fail(KX_EIO, "journal record '%.60s...' has the wrong number of fields", payload);
  kx_result_row w = {0};
  snprintf(w.input, sizeof w.input, "%s", f[1]);
  w.layer = atoi(f[2]);
  w.head = atoi(f[3]);
  snprintf(w.kernel, sizeof w.kernel, "%s", f[4]);
  snprintf(w.scheme, sizeof w.scheme, "%s", f[5]);
  w.m = (size_t)strtoull(f[6], NULL, 10);
  w.seed = (uint64_t)strtoull(f[7], NULL, 10);
  w.q_norm = strtod(f[8], NULL);
  w.k_norm = strtod(f[9], NULL);
  const int failed = nf == 11 + KX_N_METRICS;
  const kx_fmap_type *type = kx_fmap_lookup(w.scheme);
  if (failed) kx_result_set_failure(&w, f[10 + KX_N_METRICS]);
  for (int k = 0; k < KX_N_METRICS; k++) {
    w.metric = k;
    w.value = strtod(f[10 + k], NULL);
    /* metric undefined for this scheme, as in the grid runner; a failed
     * point keeps a NaN row for every metric the scheme has */
    if (failed ? !kx_metric_defined(k, type ? type->kernel_estimator : 1) : isnan(w.value)) continue;
    int rc = kx_results_add(out, &w);
    if (rc) return rc;
  }
  return 0;
}

static int cmp_records(const void *pa, const void *pb) {
  long long a = kx_sweep_record_point(*(char *const *)pa), b = kx_sweep_record_point(*(char *const *)pb);
  return (a > b) - (a < b);
}

int kx_sweep_paths(const char *out, char **journal, char **summary, char **slopes) {
  size_t len = strlen(out), base = len;
  if (len > 4 && !strcmp(out + len - 4, ".csv")) base = len - 4;
  *journal = kx_malloc(len + 16);
  *summary = kx_malloc(base + 16);
  *slopes = kx_malloc(base + 16);
  if (!*journal || !*summary || !*slopes) {
    free(*journal);
    free(*summary);
    free(*slopes);
    return KX_ENOMEM;
  }
  snprintf(*journal, len + 16, "%s.journal", out);
  snprintf(*summary, base + 16, "%.*s.summary.csv", (int)base, out);
  snprintf(*slopes, base + 16, "%.*s.slopes.csv", (int)base, out);
  return 0;
}

int kx_sweep_recover_outputs(const char *out, int *repaired) {
  char *journal, *summary, *slopes;
  int rc = kx_sweep_paths(out, &journal, &summary, &slopes);
  if (rc) return rc;
  const char *paths[] = {out, summary, slopes, journal};
  /* refused before any work, not after it */
  rc = kx_commit_check_targets(paths, 4);
  if (!rc) rc = kx_commit_recover(out, paths, 4, repaired);
  free(journal);
  free(summary);
  free(slopes);
  return rc;
}

int kx_sweep_finish(const char *out, char **records, size_t n, const char *journal_header) {
  qsort(records, n, sizeof *records, cmp_records);
  kx_results res = {0};
  int rc = 0;
  for (size_t i = 0; i < n && !rc; i++) rc = record_rows(records[i], &res);
  char *journal = NULL, *summary = NULL, *slopes = NULL;
  if (!rc) rc = kx_sweep_paths(out, &journal, &summary, &slopes);
  kx_summary_row *srows = NULL;
  kx_slope_row *lrows = NULL;
  size_t ns = 0, nl = 0;
  if (!rc) rc = kx_summarise(&res, &srows, &ns);
  if (!rc) rc = kx_fit_slopes(&res, &lrows, &nl);
  kx_commit_group g;
  const char *paths[] = {out, summary, slopes, journal};
  if (!rc) rc = kx_commit_open(&g, out, paths, journal_header ? 4 : 3);
  if (!rc) {
    errno = 0;
    kx_results_fwrite(&res, g.fp[0]);
    kx_summary_fwrite(g.fp[1], srows, ns);
    kx_slopes_fwrite(g.fp[2], lrows, nl);
    if (journal_header) kx_journal_fwrite(g.fp[3], journal_header, records, n);
    rc = kx_commit_finish(&g);
  }
  free(srows);
  free(lrows);
  free(journal);
  free(summary);
  free(slopes);
  kx_results_free(&res);
  return rc;
}
