#include "experiments/sweep/merge.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/kx_error.h"
#include "core/kx_fs.h"
#include "experiments/sweep/journal.h"
#include "experiments/sweep/sweep.h"

typedef struct {
  const char *arg;
  char *journal;
  kx_journal_contents c;
  uint64_t fp;
  size_t points, si, sn;
  char *spec;
} shard;

static int ends_with(const char *s, const char *suffix) {
  size_t a = strlen(s), b = strlen(suffix);
  return a >= b && !strcmp(s + a - b, suffix);
}

/* A summary or slopes file that a shard X.csv wrote beside itself
 * (X.summary.csv, X.slopes.csv): not a shard, whatever the glob says.
 * Recognised by its own journal being absent and X.csv's being present. */
int kx_merge_is_side_file(const char *arg) {
  static const char *const sides[] = {".summary.csv", ".slopes.csv"};
  if (ends_with(arg, ".journal")) return 0;
  size_t len = strlen(arg);
  char *probe = kx_malloc(len + 16);
  if (!probe) return 0;
  snprintf(probe, len + 16, "%s.journal", arg);
  int side = 0;
  if (access(probe, F_OK) != 0)
    for (size_t i = 0; i < 2 && !side; i++)
      if (ends_with(arg, sides[i])) {
        snprintf(probe, len + 16, "%.*s.csv.journal", (int)(len - strlen(sides[i])), arg);
        side = access(probe, F_OK) == 0;
      }
  free(probe);
  return side;
}

static int cmp_points(const void *pa, const void *pb) {
  long long a = kx_sweep_record_point(*(char *const *)pa), b = kx_sweep_record_point(*(char *const *)pb);
  return (a > b) - (a < b);
}

/* Reads each shard's journal (ARG or ARG.journal); refuses one that is
 * OUT itself, unreadable, not a journal or damaged. */
static int read_shards(shard *sh, size_t n, const char *out) {
  char *out_journal = kx_malloc(strlen(out) + 16);
  if (!out_journal) return KX_ENOMEM;
  snprintf(out_journal, strlen(out) + 16, "%s.journal", out);
  int rc = 0;
  for (size_t i = 0; i < n && !rc; i++) {
    shard *s = &sh[i];
    size_t len = strlen(s->arg);
    s->journal = kx_malloc(len + 16);
    if (!s->journal) {
      rc = KX_ENOMEM;
      break;
    }
    snprintf(s->journal, len + 16, ends_with(s->arg, ".journal") ? "%s" : "%s.journal", s->arg);
    if (!strcmp(s->arg, out) || kx_same_file(s->arg, out) || kx_same_file(s->journal, out_journal) ||
        kx_same_file(s->journal, out)) {
      rc = kx_fail(KX_EINVAL, "OUT '%s' is also the shard %s: merging would overwrite that shard; "
                   "choose another OUT", out, s->arg);
      break;
    }
    rc = kx_journal_read(s->journal, &s->c);
    if (rc) {
      kx_fail_context(rc, "shard %s: ", s->arg);
      break;
    }
    if (!s->c.header || kx_sweep_parse_header(s->c.header, &s->fp, &s->points, &s->si, &s->sn, &s->spec))
      rc = s->c.header ? kx_fail_context(KX_EIO, "%s: ", s->journal)
                       : kx_fail(KX_EIO, "%s: not a kapprox sweep journal", s->journal);
    else if (s->c.dropped)
      rc = kx_fail(KX_EIO, "%s has %zu damaged line(s); rerun that shard's sweep command to repair "
                   "and finish it", s->journal, s->c.dropped);
  }
  free(out_journal);
  return rc;
}

/* Same grid, same N, each shard once, every shard present. */
static int check_shards(const shard *sh, size_t n) {
  for (size_t i = 1; i < n; i++) {
    if (sh[i].fp != sh[0].fp || strcmp(sh[i].spec, sh[0].spec)) {
      char diff[256];
      kx_sweep_spec_diff(sh[0].spec, sh[0].arg, sh[i].spec, sh[i].arg, diff, sizeof diff);
      return kx_fail(KX_EINVAL, "%s and %s are shards of different grids (%016" PRIx64 " vs %016" PRIx64
                     "; first difference: %s)", sh[0].arg, sh[i].arg, sh[0].fp, sh[i].fp, diff);
    }
    if (sh[i].sn != sh[0].sn)
      return kx_fail(KX_EINVAL, "%s is shard %zu/%zu but %s is shard %zu/%zu: the grid was cut into a "
                     "different number of shards", sh[0].arg, sh[0].si, sh[0].sn, sh[i].arg, sh[i].si, sh[i].sn);
  }
  for (size_t i = 0; i < n; i++)
    for (size_t j = 0; j < i; j++)
      if (sh[i].si == sh[j].si)
        return kx_fail(KX_EINVAL, "shard %zu/%zu is given twice (%s and %s)", sh[i].si, sh[i].sn, sh[j].arg,
                       sh[i].arg);
  if (n >= sh[0].sn) return 0;
  char missing[256] = "";
  size_t used = 0;
  for (size_t k = 1; k <= sh[0].sn && used < sizeof missing - 16; k++) {
    int have = 0;
    for (size_t i = 0; i < n; i++) have |= sh[i].si == k;
    if (!have) used += (size_t)snprintf(missing + used, sizeof missing - used, "%s%zu", used ? "," : "", k);
  }
  return kx_fail(KX_EINVAL, "missing shard(s) %s of %zu: give all %zu shards", missing, sh[0].sn, sh[0].sn);
}

/* Every record a point of its shard, each point once, each shard complete;
 * counts follow from the validated header fields, so nothing is sized by
 * them.  *all (sorted by point) borrows the shards' records. */
static int collect_records(const shard *sh, size_t n, char ***all_out, size_t *k_out) {
  size_t total = 0, k = 0;
  for (size_t i = 0; i < n; i++) total += sh[i].c.n;
  char **all = kx_malloc((total ? total : 1) * sizeof *all);
  int rc = all ? 0 : KX_ENOMEM;
  for (size_t i = 0; i < n && !rc; i++) {
    size_t expect = (sh[i].points - sh[i].si) / sh[i].sn + 1;
    for (size_t r = 0; r < sh[i].c.n && !rc; r++) {
      long long p = kx_sweep_record_point(sh[i].c.records[r]);
      if (p < 0 || (size_t)p >= sh[i].points || (size_t)p % sh[i].sn != sh[i].si - 1)
        rc = kx_fail(KX_EIO, "%s holds a record that is not a point of shard %zu/%zu", sh[i].journal,
                     sh[i].si, sh[i].sn);
      else all[k++] = sh[i].c.records[r];
    }
    if (!rc && sh[i].c.n != expect)
      rc = kx_fail(KX_EINVAL, "shard %zu/%zu (%s) is %s: %zu of %zu points; rerun its sweep "
                   "command to finish it", sh[i].si, sh[i].sn, sh[i].arg,
                   sh[i].c.n < expect ? "unfinished" : "damaged (too many records)", sh[i].c.n, expect);
  }
  if (!rc) {
    qsort(all, k, sizeof *all, cmp_points);
    for (size_t i = 1; i < k && !rc; i++)
      if (kx_sweep_record_point(all[i]) == kx_sweep_record_point(all[i - 1]))
        rc = kx_fail(KX_EIO, "point %lld is present twice", kx_sweep_record_point(all[i]));
  }
  *all_out = all;
  *k_out = k;
  return rc;
}

int kx_merge_shards(const char *out, const char *const *shards, size_t n, kx_merge_report *rep) {
  rep->points = rep->failed = 0;
  if (n == 0) return kx_fail(KX_EINVAL, "no shards among the arguments (only shards' summary/slopes files)");
  shard *sh = kx_calloc(n, sizeof *sh);
  if (!sh) return KX_ENOMEM;
  for (size_t i = 0; i < n; i++) sh[i].arg = shards[i];
  int rc = read_shards(sh, n, out);
  if (!rc) rc = check_shards(sh, n);
  char **all = NULL;
  size_t k = 0;
  if (!rc) rc = collect_records(sh, n, &all, &k);
  int repaired = 0;
  if (!rc) rc = kx_sweep_recover_outputs(out, &repaired);
  if (!rc) {
    /* the merged journal says "1/1": rerunning the unsharded sweep on OUT
     * finds every point done */
    char *header = kx_sweep_header(sh[0].fp, sh[0].points, 1, 1, sh[0].spec);
    rc = header ? kx_sweep_finish(out, all, k, header) : KX_ENOMEM; /* sorts `all` by point */
    free(header);
    if (!rc) rep->points = k, rep->failed = kx_sweep_failed_records(all, k);
  }
  free(all);
  for (size_t i = 0; i < n; i++) {
    free(sh[i].journal);
    free(sh[i].spec);
    kx_journal_contents_free(&sh[i].c);
  }
  free(sh);
  return rc;
}
