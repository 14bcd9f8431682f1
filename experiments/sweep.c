#include "experiments/sweep.h"

#include <cblas.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <omp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/kx_cli.h"
#include "core/kx_error.h"
#include "experiments/journal.h"
#include "experiments/metrics.h"
#include "experiments/qk_file.h"
#include "experiments/summary.h"

void kx_sweep_defaults(kx_sweep *s) {
  memset(s, 0, sizeof *s);
  kx_fmap_default_options(&s->fmap);
  s->tokens = 256;
  s->d = 64;
  s->causal = -1;
  s->shard_i = s->shard_n = 1;
}

void kx_sweep_free(kx_sweep *s) {
  free(s->inputs);
  free(s->spec);
  s->inputs = NULL;
  s->spec = NULL;
}

int kx_parse_shard(const char *spec, size_t *i, size_t *n) {
  const char *slash = spec ? strchr(spec, '/') : NULL;
  char a[32];
  if (!slash || (size_t)(slash - spec) >= sizeof a)
    return kx_fail(KX_EINVAL, "--shard '%s' must be i/N, e.g. 2/8 (shard 2 of 8)", spec ? spec : "");
  memcpy(a, spec, (size_t)(slash - spec));
  a[slash - spec] = '\0';
  size_t vi, vn;
  if (kx_parse_size(a, "--shard i", 0, 1u << 30, &vi) || kx_parse_size(slash + 1, "--shard N", 0, 1u << 30, &vn))
    return kx_fail(KX_EINVAL, "--shard '%s' must be i/N with whole numbers 1 <= i <= N, e.g. 2/8", spec);
  if (vn == 0 || vi == 0 || vi > vn)
    return kx_fail(KX_EINVAL, "--shard '%s': need 1 <= i <= N (shards are numbered 1..N)", spec);
  *i = vi;
  *n = vn;
  return 0;
}

/* The paper's comparison: MC against QMC directions, with and without
 * fitted weights; only registered schemes are used, so the default works
 * whichever feature maps this build has. */
int kx_sweep_default_schemes(char ***items, size_t *n) {
  static const char *const preferred[] = {"prf", "orf", "pff-mc", "pff-sobol", "pff-halton",
                                          "wpff-sobol", "wdcf", NULL};
  char buf[1024] = "";
  size_t count = 0;
  for (size_t i = 0; preferred[i] && count < 6; i++)
    if (kx_fmap_lookup(preferred[i])) {
      if (count++) strcat(buf, ",");
      strcat(buf, preferred[i]);
    }
  /* fewer than six of those: fill up with other kernel estimators */
  for (size_t i = 0; kx_fmap_types[i] && count < 6; i++) {
    const kx_fmap_type *t = kx_fmap_types[i];
    int taken = 0;
    for (size_t k = 0; preferred[k]; k++) taken |= !strcmp(preferred[k], t->name);
    if (taken || !t->kernel_estimator || strlen(buf) + strlen(t->name) + 2 > sizeof buf) continue;
    if (count++) strcat(buf, ",");
    strcat(buf, t->name);
  }
  return kx_split_list(buf, "schemes", items, n);
}

/* ---- the canonical text of a grid ---------------------------------- */

typedef struct {
  char *s;
  size_t len, cap;
  int failed;
} strbuf;

static void sb_printf(strbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(strbuf *b, const char *fmt, ...) {
  if (b->failed) return;
  for (;;) {
    va_list ap;
    va_start(ap, fmt);
    int w = vsnprintf(b->s ? b->s + b->len : NULL, b->s ? b->cap - b->len : 0, fmt, ap);
    va_end(ap);
    if (w < 0) {
      b->failed = 1;
      return;
    }
    if (b->s && b->len + (size_t)w < b->cap) {
      b->len += (size_t)w;
      return;
    }
    size_t cap = (b->cap ? 2 * b->cap : 256) + (size_t)w;
    char *s = realloc(b->s, cap);
    if (!s) {
      b->failed = 1;
      return;
    }
    b->s = s;
    b->cap = cap;
  }
}

static uint64_t fnv1a(uint64_t h, const void *data, size_t len) {
  const unsigned char *p = data;
  for (size_t i = 0; i < len; i++) h = (h ^ p[i]) * 0x100000001b3ULL;
  return h;
}
#define FNV_OFFSET 0xcbf29ce484222325ULL

/* A file enters the fingerprint by its bytes, not its name or date: a
 * regenerated identical file is the same input, an edited one is not. */
static int hash_file(const char *path, uint64_t *h, uint64_t *size) {
  FILE *fp = fopen(path, "rb");
  if (!fp) return kx_fail(KX_EIO, "cannot open '%s': %s", path, strerror(errno));
  unsigned char buf[1 << 16];
  size_t got;
  *h = FNV_OFFSET;
  *size = 0;
  while ((got = fread(buf, 1, sizeof buf, fp)) > 0) {
    *h = fnv1a(*h, buf, got);
    *size += got;
  }
  int bad = ferror(fp);
  fclose(fp);
  return bad ? kx_fail(KX_EIO, "reading '%s' failed", path) : 0;
}

static int selected(const int *list, size_t n, int v) {
  if (n == 0) return 1;
  for (size_t i = 0; i < n; i++)
    if (list[i] == v) return 1;
  return 0;
}

static int add_input(kx_sweep *s, size_t *cap, const kx_sweep_input *in) {
  if (s->n_inputs == *cap) {
    size_t c = *cap ? 2 * *cap : 16;
    kx_sweep_input *p = realloc(s->inputs, c * sizeof *p);
    if (!p) return kx_fail(KX_ENOMEM, "out of memory listing inputs");
    s->inputs = p;
    *cap = c;
  }
  s->inputs[s->n_inputs++] = *in;
  return 0;
}

static int list_file_heads(kx_sweep *s, int fi, size_t *cap) {
  const char *path = s->files[fi];
  if (strpbrk(path, ",\t\n\r"))
    return kx_fail(KX_EINVAL, "input path '%s' contains a comma, tab or newline, which the CSV "
                   "results cannot hold; rename or link the file", path);
  if (strlen(path) >= sizeof s->inputs[0].label)
    return kx_fail(KX_EINVAL, "input path '%s' is longer than %zu characters", path,
                   sizeof s->inputs[0].label - 1);
  kx_qk_file *f = kx_qk_open(path);
  if (!f) return KX_EIO;
  int rc = 0;
  for (size_t i = 0; i < s->n_layers && !rc; i++) {
    int found = 0;
    for (size_t j = 0; j < kx_qk_n_layers(f); j++) found |= kx_qk_layer_index(f, j) == s->layers[i];
    if (!found) rc = kx_fail(KX_EINVAL, "%s has no layer %d", path, s->layers[i]);
  }
  for (size_t j = 0; j < kx_qk_n_layers(f) && !rc; j++) {
    if (!selected(s->layers, s->n_layers, kx_qk_layer_index(f, j))) continue;
    kx_qk_layer L;
    if ((rc = kx_qk_read_layer(f, j, &L))) break;
    for (size_t h = 0; h < s->n_heads && !rc; h++)
      if (s->heads[h] < 0 || (size_t)s->heads[h] >= L.heads)
        rc = kx_fail(KX_EINVAL, "%s layer %d has heads 0..%zu; head %d does not exist", path, L.index,
                     L.heads - 1, s->heads[h]);
    for (size_t h = 0; h < L.heads && !rc; h++) {
      if (!selected(s->heads, s->n_heads, (int)h)) continue;
      kx_sweep_input in = {.file = fi, .layer_pos = j, .layer = L.index, .head = (int)h};
      snprintf(in.label, sizeof in.label, "%s", path);
      rc = add_input(s, cap, &in);
    }
    kx_qk_layer_free(&L);
  }
  kx_qk_close(f);
  return rc;
}

int kx_sweep_prepare(kx_sweep *s) {
  free(s->inputs);
  free(s->spec);
  s->inputs = NULL;
  s->spec = NULL;
  s->n_inputs = 0;
  s->input_error = 0;
  if (!s->n_schemes) return kx_fail(KX_EINVAL, "empty grid: no schemes");
  if (!s->n_m) return kx_fail(KX_EINVAL, "empty grid: no values of m");
  if (!s->n_seeds) return kx_fail(KX_EINVAL, "empty grid: no seeds");
  if (!s->n_norms && !s->n_files)
    return kx_fail(KX_EINVAL, "empty grid: no inputs (give --norms for synthetic data and/or --input FILE)");
  for (size_t i = 0; i < s->n_schemes; i++) {
    if (!kx_fmap_lookup(s->schemes[i]))
      return kx_fail(KX_EINVAL, "unknown scheme '%s' (known: %s)", s->schemes[i], kx_fmap_names());
    for (size_t j = 0; j < i; j++)
      if (!strcmp(s->schemes[i], s->schemes[j]))
        return kx_fail(KX_EINVAL, "scheme '%s' is listed twice", s->schemes[i]);
  }
  /* duplicates would make two points with the same key */
  for (size_t i = 0; i < s->n_m; i++) {
    if (s->m[i] == 0) return kx_fail(KX_EINVAL, "m must be at least 1");
    for (size_t j = 0; j < i; j++)
      if (s->m[i] == s->m[j]) return kx_fail(KX_EINVAL, "m = %zu is listed twice", s->m[i]);
  }
  for (size_t i = 0; i < s->n_seeds; i++)
    for (size_t j = 0; j < i; j++)
      if (s->seeds[i] == s->seeds[j])
        return kx_fail(KX_EINVAL, "seed %" PRIu64 " is listed twice", s->seeds[i]);
  for (size_t i = 0; i < s->n_norms; i++)
    for (size_t j = 0; j < i; j++)
      if (s->norms[i].lo == s->norms[j].lo && s->norms[i].hi == s->norms[j].hi)
        return kx_fail(KX_EINVAL, "norm %g is listed twice", s->norms[i].lo);
  if (s->n_norms && (s->tokens == 0 || s->d == 0))
    return kx_fail(KX_EINVAL, "synthetic data needs --tokens >= 1 and --dim >= 1");
  if (s->shard_n == 0 || s->shard_i == 0 || s->shard_i > s->shard_n)
    return kx_fail(KX_EINVAL, "shard %zu/%zu: need 1 <= i <= N", s->shard_i, s->shard_n);

  size_t cap = 0;
  int rc = 0;
  for (size_t i = 0; i < s->n_norms && !rc; i++) {
    kx_sweep_input in = {.file = -1, .norm = i, .layer = -1, .head = -1};
    if (s->norms[i].lo == s->norms[i].hi) snprintf(in.label, sizeof in.label, "synthetic:norm=%g", s->norms[i].lo);
    else snprintf(in.label, sizeof in.label, "synthetic:norm=%g:%g", s->norms[i].lo, s->norms[i].hi);
    rc = add_input(s, &cap, &in);
  }
  for (size_t f = 0; f < s->n_files && !rc; f++) rc = list_file_heads(s, (int)f, &cap);
  s->input_error = rc != 0;
  if (rc) return rc;
  if (!s->n_inputs) return kx_fail(KX_EINVAL, "empty grid: the selected layers and heads hold no heads");
  s->n_points = s->n_inputs * s->n_schemes * s->n_m * s->n_seeds;
  if (s->shard_n > s->n_points)
    return kx_fail(KX_EINVAL, "--shard %zu/%zu: the grid has only %zu points, so some shards would "
                   "be empty; use at most %zu shards", s->shard_i, s->shard_n, s->n_points, s->n_points);

  /* Canonical text: "key=value" fields joined by ';', in a fixed order. */
  strbuf b = {0};
  /* every kx_fmap_options field that changes a number belongs here */
  sb_printf(&b, "kernel=%s;radii=%s;calib_pairs=%zu;calib_all_pairs=%d;ridge=%.17g;schemes=",
            s->fmap.kernel == KX_KERNEL_GAUSS ? "gauss" : "softmax", s->fmap.radii ? s->fmap.radii : "sequence",
            s->fmap.n_calib_pairs, s->fmap.calib_all_pairs, s->fmap.ridge);
  for (size_t i = 0; i < s->n_schemes; i++) sb_printf(&b, "%s%s", i ? "," : "", s->schemes[i]);
  sb_printf(&b, ";m=");
  for (size_t i = 0; i < s->n_m; i++) sb_printf(&b, "%s%zu", i ? "," : "", s->m[i]);
  sb_printf(&b, ";seeds=");
  for (size_t i = 0; i < s->n_seeds; i++) sb_printf(&b, "%s%" PRIu64, i ? "," : "", s->seeds[i]);
  sb_printf(&b, ";norms=");
  for (size_t i = 0; i < s->n_norms; i++) sb_printf(&b, "%s%.17g:%.17g", i ? "," : "", s->norms[i].lo, s->norms[i].hi);
  sb_printf(&b, ";tokens=%zu;dim=%zu;data_seed=%" PRIu64 ";causal=%d;files=", s->tokens, s->d,
            s->data_seed, s->causal);
  for (size_t i = 0; i < s->n_files && !rc; i++) {
    uint64_t h, size;
    rc = hash_file(s->files[i], &h, &size);
    s->input_error = rc != 0;
    sb_printf(&b, "%s%s@%" PRIu64 "#%016" PRIx64, i ? "," : "", s->files[i], size, h);
  }
  sb_printf(&b, ";layers=");
  for (size_t i = 0; i < s->n_layers; i++) sb_printf(&b, "%s%d", i ? "," : "", s->layers[i]);
  sb_printf(&b, ";heads=");
  for (size_t i = 0; i < s->n_heads; i++) sb_printf(&b, "%s%d", i ? "," : "", s->heads[i]);
  sb_printf(&b, ";max_tokens=%zu", s->max_tokens);
  /* records hold one value per metric: a build with other metrics cannot
   * resume or merge this journal */
  sb_printf(&b, ";metrics=");
  for (int k = 0; k < KX_N_METRICS; k++) sb_printf(&b, "%s%s", k ? "," : "", kx_metric_names[k]);
  if (rc) {
    free(b.s);
    return rc;
  }
  if (b.failed) {
    free(b.s);
    return kx_fail(KX_ENOMEM, "out of memory describing the grid");
  }
  s->spec = b.s;
  s->fingerprint = fnv1a(FNV_OFFSET, s->spec, strlen(s->spec));
  return 0;
}

/* ---- journal header and records ------------------------------------ */

char *kx_sweep_header(uint64_t fingerprint, size_t n_points, size_t shard_i, size_t shard_n,
                      const char *spec) {
  strbuf b = {0};
  sb_printf(&b, "kapprox-sweep-journal 1\ngrid %016" PRIx64 "\npoints %zu\nshard %zu/%zu\nspec %s\nrecords:\n",
            fingerprint, n_points, shard_i, shard_n, spec);
  if (b.failed) {
    free(b.s);
    kx_fail(KX_ENOMEM, "out of memory");
    return NULL;
  }
  return b.s;
}

int kx_sweep_parse_header(const char *h, uint64_t *fp, size_t *n_points, size_t *si, size_t *sn,
                          char **spec) {
  *spec = NULL;
  if (!h || strncmp(h, "kapprox-sweep-journal 1\n", 24))
    return kx_fail(KX_EIO, "not a kapprox sweep journal");
  unsigned long long f, np, i, n;
  int used = 0;
  if (sscanf(h + 24, "grid %llx\npoints %llu\nshard %llu/%llu\nspec %n", &f, &np, &i, &n, &used) != 4 || !used)
    return kx_fail(KX_EIO, "damaged sweep journal header");
  const char *sp = h + 24 + used, *nl = strchr(sp, '\n');
  if (!nl) return kx_fail(KX_EIO, "damaged sweep journal header");
  *spec = kx_malloc((size_t)(nl - sp) + 1);
  if (!*spec) return KX_ENOMEM;
  memcpy(*spec, sp, (size_t)(nl - sp));
  (*spec)[nl - sp] = '\0';
  *fp = f;
  *n_points = np;
  *si = i;
  *sn = n;
  return 0;
}

void kx_sweep_spec_diff(const char *a, const char *name_a, const char *b, const char *name_b,
                        char *out, size_t cap) {
  /* walk both field lists in step; fields are in a fixed order */
  while (*a || *b) {
    const char *ea = strchr(a, ';'), *eb = strchr(b, ';');
    size_t la = ea ? (size_t)(ea - a) : strlen(a), lb = eb ? (size_t)(eb - b) : strlen(b);
    if (la != lb || memcmp(a, b, la)) {
      const char *eq = memchr(b, '=', lb);
      size_t key = eq ? (size_t)(eq - b) : 0;
      int wa = (int)(la - (key ? key + 1 : 0)), wb = (int)(lb - (key ? key + 1 : 0));
      const char *va = a + (key ? key + 1 : 0), *vb = b + (key ? key + 1 : 0);
      if (wa > 60) wa = 60;
      if (wb > 60) wb = 60;
      snprintf(out, cap, "%.*s is '%.*s%s' in %s but '%.*s%s' in %s", (int)key, b, wa, va,
               (size_t)wa < la - (key ? key + 1 : 0) ? "..." : "", name_a, wb, vb,
               (size_t)wb < lb - (key ? key + 1 : 0) ? "..." : "", name_b);
      return;
    }
    a += la + (ea ? 1 : 0);
    b += lb + (eb ? 1 : 0);
  }
  snprintf(out, cap, "no field differs (different versions of kapprox?)");
}

long long kx_sweep_record_point(const char *payload) {
  char *end;
  errno = 0;
  unsigned long long p = strtoull(payload, &end, 10);
  if (errno || end == payload || *end != ',' || p > (unsigned long long)LLONG_MAX) return -1;
  return (long long)p;
}

/* idx,input,layer,head,kernel,scheme,m,seed,q_norm,k_norm,<one value per metric> */
static char *format_record(size_t p, const kx_sweep_input *in, const char *kernel, const char *scheme,
                           size_t m, uint64_t seed, double q_norm, double k_norm,
                           const double v[KX_N_METRICS]) {
  strbuf b = {0};
  sb_printf(&b, "%zu,%s,%d,%d,%s,%s,%zu,%" PRIu64 ",%.17g,%.17g", p, in->label, in->layer, in->head,
            kernel, scheme, m, seed, q_norm, k_norm);
  for (int k = 0; k < KX_N_METRICS; k++) {
    if (isnan(v[k])) sb_printf(&b, ",nan");
    else sb_printf(&b, ",%.17g", v[k]);
  }
  if (b.failed) {
    free(b.s);
    return NULL;
  }
  return b.s;
}

/* Parses a record back into result rows (one per defined metric). */
static int record_rows(const char *payload, kx_results *out) {
  char buf[1024];
  if (strlen(payload) >= sizeof buf) return kx_fail(KX_EIO, "journal record too long");
  strcpy(buf, payload);
  char *f[10 + KX_N_METRICS + 1];
  size_t nf = 0;
  for (char *p = buf; nf < sizeof f / sizeof f[0];) {
    f[nf++] = p;
    char *c = strchr(p, ',');
    if (!c) break;
    *c = '\0';
    p = c + 1;
  }
  if (nf != 10 + KX_N_METRICS) return kx_fail(KX_EIO, "journal record has %zu fields, expected %d", nf, 10 + KX_N_METRICS);
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
  for (int k = 0; k < KX_N_METRICS; k++) {
    w.metric = k;
    w.value = strtod(f[10 + k], NULL);
    if (isnan(w.value)) continue; /* metric undefined for this scheme, as in the grid runner */
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

int kx_sweep_finish(const char *out, char **records, size_t n) {
  qsort(records, n, sizeof *records, cmp_records);
  kx_results res = {0};
  int rc = 0;
  for (size_t i = 0; i < n && !rc; i++) rc = record_rows(records[i], &res);
  char *journal = NULL, *summary = NULL, *slopes = NULL;
  if (!rc) rc = kx_sweep_paths(out, &journal, &summary, &slopes);
  if (!rc) rc = kx_results_write_csv(&res, out);
  kx_summary_row *srows = NULL;
  kx_slope_row *lrows = NULL;
  size_t ns = 0, nl = 0;
  if (!rc) rc = kx_summarise(&res, &srows, &ns);
  if (!rc) rc = kx_summary_write_csv(summary, srows, ns);
  if (!rc) rc = kx_fit_slopes(&res, &lrows, &nl);
  if (!rc) rc = kx_slopes_write_csv(slopes, lrows, nl);
  free(srows);
  free(lrows);
  free(journal);
  free(summary);
  free(slopes);
  kx_results_free(&res);
  return rc;
}

/* ---- running ----------------------------------------------------------- */

static volatile sig_atomic_t stop_requested;

/* First Ctrl-C (or SIGTERM, which Slurm sends at the time limit): finish
 * the points in flight, which are journalled, and stop.  A second one
 * kills at once; the journal is safe either way. */
static void on_signal(int sig) {
  if (stop_requested) {
    signal(sig, SIG_DFL);
    raise(sig);
  }
  stop_requested = 1;
}

typedef struct {
  size_t p, input, scheme, mi, si;
} point_ref;

static point_ref decode(const kx_sweep *s, size_t p) {
  point_ref r = {.p = p};
  r.si = p % s->n_seeds;
  p /= s->n_seeds;
  r.mi = p % s->n_m;
  p /= s->n_m;
  r.scheme = p % s->n_schemes;
  r.input = p / s->n_schemes;
  return r;
}

/* Checks that a journal record says what the grid says about its point, so
 * a damaged but checksummed line (or a bug) cannot slip in. */
static int record_matches(const kx_sweep *s, const char *payload, size_t p) {
  point_ref r = decode(s, p);
  char prefix[512];
  snprintf(prefix, sizeof prefix, "%zu,%s,%d,%d,%s,%s,%zu,%" PRIu64 ",", p, s->inputs[r.input].label,
           s->inputs[r.input].layer, s->inputs[r.input].head,
           s->fmap.kernel == KX_KERNEL_GAUSS ? "gauss" : "softmax", s->schemes[r.scheme], s->m[r.mi],
           s->seeds[r.si]);
  return !strncmp(payload, prefix, strlen(prefix));
}

typedef struct {
  kx_qk_file *file;
  int file_index;
  size_t layer_pos;
  kx_qk_layer layer;
  int have_layer;
} file_cache;

static void cache_free(file_cache *c) {
  if (c->have_layer) kx_qk_layer_free(&c->layer);
  if (c->file) kx_qk_close(c->file);
  memset(c, 0, sizeof *c);
  c->file_index = -1;
}

/* Loads the q, k, v of one input head into newly allocated arrays. */
static int load_head(const kx_sweep *s, const kx_sweep_input *in, file_cache *c, double **q,
                     double **k, double **v, size_t *n, size_t *d, size_t *dv, int *causal) {
  *q = *k = *v = NULL;
  if (in->file < 0) {
    *n = s->tokens;
    *d = *dv = s->d;
    *causal = s->causal > 0;
    *q = kx_malloc(*n * *d * sizeof **q);
    *k = kx_malloc(*n * *d * sizeof **k);
    *v = kx_malloc(*n * *d * sizeof **v);
    if (!*q || !*k || !*v) return KX_ENOMEM;
    return kx_synthetic_qkv(*n, *d, *d, s->norms[in->norm], s->data_seed, *q, *k, *v);
  }
  if (c->file_index != in->file) {
    cache_free(c);
    c->file = kx_qk_open(s->files[in->file]);
    if (!c->file) return KX_EIO;
    c->file_index = in->file;
  }
  if (!c->have_layer || c->layer_pos != in->layer_pos) {
    if (c->have_layer) kx_qk_layer_free(&c->layer);
    c->have_layer = 0;
    int rc = kx_qk_read_layer(c->file, in->layer_pos, &c->layer);
    if (rc) return rc;
    c->have_layer = 1;
    c->layer_pos = in->layer_pos;
  }
  const kx_qk_layer *L = &c->layer;
  *d = L->d;
  size_t dvv = L->v ? L->dv : L->d;
  *q = kx_malloc(L->tokens * *d * sizeof **q);
  *k = kx_malloc(L->tokens * *d * sizeof **k);
  *v = kx_malloc(L->tokens * dvv * sizeof **v);
  if (!*q || !*k || !*v) return KX_ENOMEM;
  *causal = s->causal >= 0 ? s->causal : kx_qk_causal(c->file);
  return kx_grid_head_from_layer(L, (size_t)in->head, s->max_tokens, kx_qk_scaled(c->file), s->data_seed,
                                 *q, *k, *v, n, dv);
}

typedef struct {
  size_t done, total, resumed;
  double t0, last_draw;
  int draw;
} progress;

static void draw_progress(progress *pr, int final) {
  double now = kx_now_seconds();
  if (!pr->draw || (!final && now - pr->last_draw < 0.2)) return;
  pr->last_draw = now;
  double el = now - pr->t0;
  size_t fresh = pr->done - pr->resumed;
  double rate = el > 0 ? (double)fresh / el : 0;
  double left = rate > 0 ? (double)(pr->total - pr->done) / rate : 0;
  fprintf(stderr, "\r  sweep: %zu/%zu points (%.0f%%)  %.1f points/s  elapsed %.0fs  left ~%.0fs   ",
          pr->done, pr->total, 100.0 * (double)pr->done / (double)(pr->total ? pr->total : 1), rate, el,
          left);
  if (final) fputc('\n', stderr);
  fflush(stderr);
}

static int cmp_by_m_desc(const void *pa, const void *pb, void *ctx) {
  const kx_sweep *s = ctx;
  point_ref a = decode(s, *(const size_t *)pa), b = decode(s, *(const size_t *)pb);
  if (s->m[a.mi] != s->m[b.mi]) return s->m[a.mi] > s->m[b.mi] ? -1 : 1;
  return (*(const size_t *)pa > *(const size_t *)pb) - (*(const size_t *)pa < *(const size_t *)pb);
}

/* Runs the missing points of one input head in parallel, journalling each
 * as soon as it is done. */
static int run_input(const kx_sweep *s, size_t u, const size_t *todo, size_t n_todo, file_cache *cache,
                     kx_journal *j, progress *pr) {
  const kx_sweep_input *in = &s->inputs[u];
  double *q, *k, *v;
  size_t n, d, dv;
  int causal;
  kx_head_reference ref;
  memset(&ref, 0, sizeof ref);
  int rc = load_head(s, in, cache, &q, &k, &v, &n, &d, &dv, &causal);
  if (!rc) rc = kx_head_reference_init(&ref, n, d, dv, q, k, v, causal, s->fmap.kernel);
  const char *kernel = s->fmap.kernel == KX_KERNEL_GAUSS ? "gauss" : "softmax";
  int failed = rc;
  char message[512] = "";
#pragma omp parallel for schedule(dynamic, 1)
  for (size_t t = 0; t < n_todo; t++) {
    int skip;
#pragma omp atomic read
    skip = failed;
    if (skip || stop_requested) continue;
    point_ref r = decode(s, todo[t]);
    double values[KX_N_METRICS];
    int prc = kx_grid_eval_point(&s->fmap, &ref, s->schemes[r.scheme], s->m[r.mi], s->seeds[r.si], values);
    char *payload = NULL;
    if (!prc) {
      payload = format_record(todo[t], in, kernel, s->schemes[r.scheme], s->m[r.mi], s->seeds[r.si],
                              ref.q_norm, ref.k_norm, values);
      if (!payload) prc = kx_fail(KX_ENOMEM, "out of memory formatting a record");
    }
    /* the write is serialised; the wait for the disk is not, so one
     * thread's fdatasync overlaps the other's computing */
#pragma omp critical(kx_sweep_journal)
    {
      int f;
#pragma omp atomic read
      f = failed;
      if (!prc && !f) prc = kx_journal_write_record(j, payload);
    }
    if (!prc) prc = kx_journal_sync(j);
#pragma omp critical(kx_sweep_journal)
    {
      if (prc && !failed) {
        snprintf(message, sizeof message, "%s", kx_error_message());
#pragma omp atomic write
        failed = prc;
      }
      if (!prc) {
        pr->done++;
        draw_progress(pr, 0);
      }
    }
    free(payload);
    if (s->throttle_ms && !prc) usleep(s->throttle_ms * 1000u);
  }
  if (failed && message[0]) kx_fail(failed, "%s", message);
  if (failed && in->file >= 0)
    kx_fail_context(failed, "%s layer %d head %d: ", in->label, in->layer, in->head);
  kx_head_reference_free(&ref);
  free(q);
  free(k);
  free(v);
  return failed;
}

int kx_sweep_run(const kx_sweep *s, const char *out, kx_sweep_report *rep) {
  memset(rep, 0, sizeof *rep);
  double t0 = kx_now_seconds();
  char *jpath, *summary, *slopes;
  int rc = kx_sweep_paths(out, &jpath, &summary, &slopes);
  if (rc) return rc;
  free(summary);
  free(slopes);
  char *header = kx_sweep_header(s->fingerprint, s->n_points, s->shard_i, s->shard_n, s->spec);
  if (!header) {
    free(jpath);
    return KX_ENOMEM;
  }
  /* A results file without its journal cannot be checked against the
   * grid; refuse rather than overwrite someone's numbers. */
  if (!s->force && access(out, F_OK) == 0 && access(jpath, F_OK) != 0) {
    rc = kx_fail(KX_EIO, "'%s' exists but its journal '%s' does not, so it cannot be checked "
                 "against this grid; use --force to overwrite it, or another --out", out, jpath);
    free(header);
    free(jpath);
    return rc;
  }
  kx_journal j;
  kx_journal_contents c;
  rc = kx_journal_open(&j, jpath, s->force, &c);
  if (rc) {
    free(header);
    free(jpath);
    return rc;
  }
  /* no complete header: a journal torn while its header was written (no
   * record can follow an incomplete header, so starting over loses
   * nothing), or someone else's file, which is not ours to overwrite */
  if (!c.header && c.bytes > 0 && strncmp(c.start, "kapprox-sweep-journal", c.bytes < 21 ? c.bytes : 21)) {
    rc = kx_fail(KX_EIO, "'%s' is not a sweep journal; use --force to overwrite it, or another --out", jpath);
  } else if (!c.header) {
    /* new journal (or one torn while its header was written) */
    rc = kx_journal_start(&j, header);
  } else if (strcmp(c.header, header)) {
    uint64_t fp;
    size_t np, si, sn;
    char *spec = NULL;
    if (kx_sweep_parse_header(c.header, &fp, &np, &si, &sn, &spec)) {
      rc = kx_fail(KX_EIO, "'%s' is not a sweep journal; use --force to overwrite it, or another --out", jpath);
    } else if (fp == s->fingerprint && strcmp(spec, s->spec) == 0) {
      rc = kx_fail(KX_EINVAL, "'%s' holds shard %zu/%zu of this grid, but this run is shard %zu/%zu; "
                   "use the same --shard, or another --out", jpath, si, sn, s->shard_i, s->shard_n);
    } else {
      char diff[320];
      kx_sweep_spec_diff(spec, "the journal", s->spec, "this command", diff, sizeof diff);
      rc = kx_fail(KX_EINVAL, "'%s' belongs to a different grid (grid %016" PRIx64 ", this command's is "
                   "%016" PRIx64 "; first difference: %s); rerun with the original options to resume it, "
                   "use --force to discard it, or choose another --out", jpath, fp, s->fingerprint, diff);
    }
    free(spec);
  }
  /* which points of this shard are already done */
  size_t shard_points = 0;
  for (size_t p = s->shard_i - 1; p < s->n_points; p += s->shard_n) shard_points++;
  rep->shard_points = shard_points;
  unsigned char *done = rc ? NULL : kx_calloc(s->n_points, 1);
  if (!rc && !done) rc = KX_ENOMEM;
  size_t dup_or_bad = 0;
  for (size_t i = 0; i < c.n && !rc; i++) {
    long long p = kx_sweep_record_point(c.records[i]);
    if (p < 0 || (size_t)p >= s->n_points || (size_t)p % s->shard_n != s->shard_i - 1 ||
        !record_matches(s, c.records[i], (size_t)p) || done[p]) {
      /* a duplicate or a stray record is dropped (and recomputed if needed) */
      free(c.records[i]);
      c.records[i] = NULL;
      dup_or_bad++;
      continue;
    }
    done[p] = 1;
    rep->resumed++;
  }
  if (!rc && dup_or_bad) {
    size_t w = 0;
    for (size_t i = 0; i < c.n; i++)
      if (c.records[i]) c.records[w++] = c.records[i];
    c.n = w;
    c.dropped += dup_or_bad;
  }
  rep->dropped = c.dropped;
  if (!rc && c.dropped) rc = kx_journal_repair(&j, &c);
  kx_journal_contents_free(&c);
  free(header);

  if (!rc && rep->resumed < shard_points) {
    struct sigaction sa, old_int, old_term;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    stop_requested = 0;
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    /* points run in parallel; nested BLAS threads would only fight them */
    openblas_set_num_threads(1);
    progress pr = {.done = rep->resumed, .total = shard_points, .resumed = rep->resumed,
                   .t0 = kx_now_seconds(), .draw = s->progress};
    size_t per_input = s->n_schemes * s->n_m * s->n_seeds;
    size_t *todo = kx_malloc(per_input * sizeof *todo);
    file_cache cache;
    memset(&cache, 0, sizeof cache);
    cache.file_index = -1;
    if (!todo) rc = KX_ENOMEM;
    for (size_t u = 0; u < s->n_inputs && !rc && !stop_requested; u++) {
      size_t n_todo = 0;
      for (size_t p = u * per_input; p < (u + 1) * per_input; p++)
        if (p % s->shard_n == s->shard_i - 1 && !done[p]) todo[n_todo++] = p;
      if (!n_todo) continue;
      /* largest maps first, so the last points to finish are cheap ones */
      qsort_r(todo, n_todo, sizeof *todo, cmp_by_m_desc, (void *)s);
      size_t before = pr.done;
      rc = run_input(s, u, todo, n_todo, &cache, &j, &pr);
      rep->computed += pr.done - before;
    }
    draw_progress(&pr, 1);
    cache_free(&cache);
    free(todo);
    rep->interrupted = stop_requested != 0;
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
  }
  free(done);
  kx_journal_close(&j);

  if (!rc && !rep->interrupted) {
    /* Final files come from the journal alone, so a resumed run, a fresh
     * run and a merge of shards write the same bytes. */
    kx_journal_contents all;
    rc = kx_journal_read(jpath, &all);
    if (!rc && all.n != shard_points)
      rc = kx_fail(KX_EIO, "'%s' holds %zu records after the run, expected %zu", jpath, all.n, shard_points);
    if (!rc) rc = kx_sweep_finish(out, all.records, all.n);
    kx_journal_contents_free(&all);
  }
  free(jpath);
  rep->seconds = kx_now_seconds() - t0;
  return rc;
}
