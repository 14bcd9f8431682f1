/* The grid of a sweep: validation, its inputs, the canonical text and
 * fingerprint that identify it, and the journal header that carries them
 * (see sweep.h). */
#include "experiments/sweep/sweep.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/kx_cli.h"
#include "core/kx_error.h"
#include "core/kx_input.h"
#include "experiments/sweep/journal.h"
#include "experiments/eval/metrics.h"
#include "experiments/qk/qk_file.h"

void kx_sweep_defaults(kx_sweep *s) {
  memset(s, 0, sizeof *s);
  kx_spec_defaults(&s->grid);
  s->grid.norm_labels = 1;
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
    return kx_fail(KX_EINVAL, "shard '%s' must be i/N, e.g. 2/8 (shard 2 of 8)", spec ? spec : "");
  memcpy(a, spec, (size_t)(slash - spec));
  a[slash - spec] = '\0';
  size_t vi, vn;
  if (kx_parse_size(a, "shard i", 0, 1u << 30, &vi) || kx_parse_size(slash + 1, "shard N", 0, 1u << 30, &vn))
    return kx_fail(KX_EINVAL, "shard '%s' must be i/N with whole numbers 1 <= i <= N, e.g. 2/8", spec);
  if (vn == 0 || vi == 0 || vi > vn)
    return kx_fail(KX_EINVAL, "shard '%s': need 1 <= i <= N (shards are numbered 1..N)", spec);
  *i = vi;
  *n = vn;
  return 0;
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
  FILE *fp = kx_input_fopen(path, "input");
  if (!fp) return KX_EIO;
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

/* Canonical text: "key=value" fields joined by ';', in a fixed order;
 * every kx_fmap_options field that changes a number belongs here.  NULL
 * with a message if a file cannot be read or memory runs out. */
static char *canonical_text(const kx_sweep *sw, int *input_error) {
  const kx_spec *s = &sw->grid;
  int rc = 0;
  strbuf b = {0};
  sb_printf(&b, "kernel=%s;radii=%s;calib_pairs=%zu;calib_all_pairs=%d;ridge=%.17g;schemes=",
            kx_spec_kernel_name(s), s->fmap.radii ? s->fmap.radii : "sequence",
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
    *input_error = rc != 0;
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
  for (int k = 0; k < KX_N_METRICS; k++) sb_printf(&b, "%s%s", k ? "," : "", kx_metrics[k].name);
  if (!rc && b.failed) kx_fail(KX_ENOMEM, "out of memory describing the grid");
  if (rc || b.failed) {
    free(b.s);
    return NULL;
  }
  return b.s;
}

int kx_sweep_prepare(kx_sweep *s) {
  kx_sweep_free(s);
  s->n_inputs = 0;
  s->input_error = 0;
  int rc = kx_spec_check(&s->grid);
  if (rc) return rc;
  if (s->shard_n == 0 || s->shard_i == 0 || s->shard_i > s->shard_n)
    return kx_fail(KX_EINVAL, "shard %zu/%zu: need 1 <= i <= N", s->shard_i, s->shard_n);
  rc = kx_spec_list_inputs(&s->grid, &s->inputs, &s->n_inputs);
  s->input_error = rc != 0;
  if (rc) return rc;
  if (!s->n_inputs) return kx_fail(KX_EINVAL, "empty grid: the selected layers and heads hold no heads");
  s->n_points = s->n_inputs * s->grid.n_schemes * s->grid.n_m * s->grid.n_seeds;
  if (s->shard_n > s->n_points)
    return kx_fail(KX_EINVAL, "shard %zu/%zu: the grid has only %zu points, so some shards would "
                   "be empty; use at most %zu shards", s->shard_i, s->shard_n, s->n_points, s->n_points);
  s->spec = canonical_text(s, &s->input_error);
  if (!s->spec) return s->input_error ? KX_EIO : KX_ENOMEM;
  s->fingerprint = fnv1a(FNV_OFFSET, s->spec, strlen(s->spec));
  return 0;
}

/* ---- journal header and records ------------------------------------ */

/* Header lines (version 2): the grid, point count, shard and spec, then
 * "check" with the CRC-32 of every header line before it, so a damaged
 * header is recognised like a damaged record. */
char *kx_sweep_header(uint64_t fingerprint, size_t n_points, size_t shard_i, size_t shard_n,
                      const char *spec) {
  strbuf b = {0};
  sb_printf(&b, "kapprox-sweep-journal 2\ngrid %016" PRIx64 "\npoints %zu\nshard %zu/%zu\nspec %s\n",
            fingerprint, n_points, shard_i, shard_n, spec);
  if (!b.failed) sb_printf(&b, "check %08x\nrecords:\n", (unsigned)kx_crc32(b.s, b.len));
  if (b.failed) {
    free(b.s);
    kx_fail(KX_ENOMEM, "out of memory");
    return NULL;
  }
  return b.s;
}

/* A whole decimal or hex number ending at `end` (the line's newline). */
static int header_number(const char *s, const char *end, int base, unsigned long long *out) {
  if (s >= end || !(base == 16 ? isxdigit((unsigned char)*s) : isdigit((unsigned char)*s))) return 0;
  errno = 0;
  char *e;
  *out = strtoull(s, &e, base);
  return !errno && e == end;
}

int kx_sweep_parse_header(const char *h, uint64_t *fp, size_t *n_points, size_t *si, size_t *sn,
                          char **spec) {
  *spec = NULL;
  int version;
  if (h && !strncmp(h, "kapprox-sweep-journal 1\n", 24)) version = 1;
  else if (h && !strncmp(h, "kapprox-sweep-journal 2\n", 24)) version = 2;
  else return kx_fail(KX_EIO, "not a kapprox sweep journal");
  /* one field per line, in a fixed order */
  static const char *const keys[] = {"grid ", "points ", "shard ", "spec ", "check "};
  const char *line[5], *eol[5], *p = h + 24;
  const int n_lines = version == 2 ? 5 : 4;
  for (int i = 0; i < n_lines; i++) {
    const char *nl = strchr(p, '\n');
    if (!nl || strncmp(p, keys[i], strlen(keys[i])))
      return kx_fail(KX_EIO, "damaged sweep journal header (line '%s' missing or damaged)", keys[i]);
    line[i] = p + strlen(keys[i]);
    eol[i] = nl;
    p = nl + 1;
  }
  if (strcmp(p, "records:\n")) return kx_fail(KX_EIO, "damaged sweep journal header (unexpected lines)");
  unsigned long long f, np, i, n, check;
  if (version == 2 && (!header_number(line[4], eol[4], 16, &check) || eol[4] - line[4] != 8 ||
                       (uint32_t)check != kx_crc32(h, (size_t)(line[4] - strlen(keys[4]) - h))))
    return kx_fail(KX_EIO, "damaged sweep journal header (checksum mismatch)");
  const char *slash = memchr(line[2], '/', (size_t)(eol[2] - line[2]));
  if (!header_number(line[0], eol[0], 16, &f) || eol[0] - line[0] != 16 || !header_number(line[1], eol[1], 10, &np) ||
      !slash || !header_number(line[2], slash, 10, &i) || !header_number(slash + 1, eol[2], 10, &n))
    return kx_fail(KX_EIO, "damaged sweep journal header (grid, points or shard unreadable)");
  if (np == 0 || np > SIZE_MAX / 2 || n == 0 || n > np || i == 0 || i > n)
    return kx_fail(KX_EIO, "damaged sweep journal header: shard %llu/%llu of %llu points is impossible "
                   "(need 1 <= i <= N <= points)", i, n, np);
  size_t spec_len = (size_t)(eol[3] - line[3]);
  if (fnv1a(FNV_OFFSET, line[3], spec_len) != f)
    return kx_fail(KX_EIO, "damaged sweep journal header (the grid fingerprint does not match the spec)");
  *spec = kx_malloc(spec_len + 1);
  if (!*spec) return KX_ENOMEM;
  memcpy(*spec, line[3], spec_len);
  (*spec)[spec_len] = '\0';
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
