/* kapprox merge: combines the shards of one sweep into the files a single
 * run of the whole grid gives (results, summary, slopes and a complete
 * journal), refusing anything that would not add up to exactly that. */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/kx_cli.h"
#include "core/kx_error.h"
#include "experiments/commands/commands.h"
#include "experiments/eval/spec.h"
#include "experiments/sweep/journal.h"
#include "experiments/sweep/sweep.h"

static const char cmd[] = "merge";

static void usage(FILE *out) {
  fprintf(out,
          "usage: kapprox merge OUT.csv SHARD.csv... [--quiet]\n\n"
          "Combines the shards of one sweep (kapprox sweep --shard i/N --out SHARD.csv)\n"
          "into OUT.csv, OUT.summary.csv, OUT.slopes.csv and OUT.csv.journal, the same\n"
          "files one unsharded run writes.  Each SHARD argument is a shard's --out path\n"
          "(its journal SHARD.csv.journal is read) or the journal itself.\n\n"
          "A SHARD.summary.csv or SHARD.slopes.csv written beside a shard (as a glob\n"
          "like parts/part*.csv picks them up) is skipped with a note.\n\n"
          "Refused, with a message: shards of different grids, a shard given twice,\n"
          "missing shards, unfinished shards, a point present twice, damaged journal\n"
          "headers, or an OUT that is one of the shards.  The output files are\n"
          "replaced together: after a kill they are all old or all new (the next\n"
          "merge or sweep on OUT finishes an interrupted replacement).\n\n"
          "Exit status: 0 merged, 1 error, 2 usage error, 3 merged but some points\n"
          "failed (value NaN, reason in the failure column).\n\n"
          "  --quiet      no messages\n"
          "  -h, --help   this text\n\n"
          "Example:\n  kapprox merge results/sweep.csv results/part-*.csv\n");
}

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
static int is_shard_side_file(const char *arg) {
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

static int same_file(const char *a, const char *b) {
  struct stat sa, sb;
  return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
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
    if (!strcmp(s->arg, out) || same_file(s->arg, out) || same_file(s->journal, out_journal) ||
        same_file(s->journal, out)) {
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

int cmd_merge(int argc, char **argv) {
  static const struct option opts[] = {
      {"quiet", no_argument, 0, 'q'}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
  int quiet = 0, c;
  optind = 1;
  opterr = 0;
  while ((c = getopt_long(argc, argv, "hq", opts, NULL)) != -1) {
    switch (c) {
    case 'h': usage(stdout); return 0;
    case 'q': quiet = 1; break;
    default:
      kx_cli_error(cmd, "unknown or incomplete option '%s' (see kapprox merge --help)", argv[optind - 1]);
      return 2;
    }
  }
  if (argc - optind < 2) {
    kx_cli_error(cmd, "need OUT.csv and at least one shard (see kapprox merge --help)");
    return 2;
  }
  const char *out = argv[optind];
  if (kx_check_output_path(out, "OUT")) {
    kx_cli_error(cmd, "%s", kx_error_message());
    return 2;
  }
  size_t n_args = (size_t)(argc - optind - 1), n = 0;
  shard *sh = kx_calloc(n_args, sizeof *sh);
  if (!sh) return 1;
  int rc = 0, code = 1;
  for (size_t a = 0; a < n_args; a++) {
    const char *arg = argv[optind + 1 + a];
    if (is_shard_side_file(arg)) {
      if (!quiet) fprintf(stderr, "merge: skipping %s (a shard's summary or slopes file, not a shard)\n", arg);
      continue;
    }
    sh[n++].arg = arg;
  }
  if (n == 0) rc = kx_fail(KX_EINVAL, "no shards among the arguments (only shards' summary/slopes files)");
  if (!rc) rc = read_shards(sh, n, out);
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
    if (!rc) {
      size_t failed = kx_sweep_failed_records(all, k);
      code = failed ? KX_EXIT_SOME_FAILED : 0;
      if (!quiet) fprintf(stderr, "merged %zu shards, %zu points, into %s\n", n, k, out);
      if (failed)
        fprintf(stderr, "kapprox merge: %zu point(s) failed (value NaN, reason in the 'failure' column of %s)\n",
                failed, out);
    }
  }
  if (rc) {
    kx_cli_error(cmd, "%s", kx_error_message());
    code = 1;
  }
  free(all);
  for (size_t i = 0; i < n; i++) {
    free(sh[i].journal);
    free(sh[i].spec);
    kx_journal_contents_free(&sh[i].c);
  }
  free(sh);
  return code;
}
