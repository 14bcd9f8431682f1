/* kapprox merge: combines the shards of one sweep into the files a single
 * run of the whole grid gives (results, summary, slopes and a complete
 * journal), refusing anything that would not add up to exactly that. */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/kx_cli.h"
#include "core/kx_error.h"
#include "experiments/commands.h"
#include "experiments/journal.h"
#include "experiments/sweep.h"

static const char cmd[] = "merge";

static void usage(FILE *out) {
  fprintf(out,
          "usage: kapprox merge OUT.csv SHARD.csv... [--quiet]\n\n"
          "Combines the shards of one sweep (kapprox sweep --shard i/N --out SHARD.csv)\n"
          "into OUT.csv, OUT.summary.csv, OUT.slopes.csv and OUT.csv.journal, the same\n"
          "files one unsharded run writes.  Each SHARD argument is a shard's --out path\n"
          "(its journal SHARD.csv.journal is read) or the journal itself.\n\n"
          "Refused, with a message: shards of different grids, a shard given twice,\n"
          "missing shards, unfinished shards, or a point present twice.\n\n"
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
  size_t n = (size_t)(argc - optind - 1);
  shard *sh = kx_calloc(n, sizeof *sh);
  if (!sh) return 1;
  int rc = 0, code = 1;
  for (size_t i = 0; i < n && !rc; i++) {
    shard *s = &sh[i];
    s->arg = argv[optind + 1 + i];
    size_t len = strlen(s->arg);
    s->journal = kx_malloc(len + 16);
    if (!s->journal) {
      rc = KX_ENOMEM;
      break;
    }
    snprintf(s->journal, len + 16, ends_with(s->arg, ".journal") ? "%s" : "%s.journal", s->arg);
    rc = kx_journal_read(s->journal, &s->c);
    if (rc) {
      kx_fail_context(rc, "shard %s: ", s->arg);
      break;
    }
    if (!s->c.header ||
        kx_sweep_parse_header(s->c.header, &s->fp, &s->points, &s->si, &s->sn, &s->spec)) {
      rc = kx_fail(KX_EIO, "%s is not a kapprox sweep journal", s->journal);
      break;
    }
    if (s->c.dropped) {
      rc = kx_fail(KX_EIO, "%s has %zu damaged line(s); rerun that shard's sweep command to repair "
                   "and finish it", s->journal, s->c.dropped);
      break;
    }
  }
  /* same grid, same N, each shard once, every shard present and complete */
  for (size_t i = 1; i < n && !rc; i++) {
    if (sh[i].fp != sh[0].fp || strcmp(sh[i].spec, sh[0].spec)) {
      char diff[256];
      kx_sweep_spec_diff(sh[0].spec, sh[0].arg, sh[i].spec, sh[i].arg, diff, sizeof diff);
      rc = kx_fail(KX_EINVAL, "%s and %s are shards of different grids (%016" PRIx64 " vs %016" PRIx64
                   "; first difference: %s)", sh[0].arg, sh[i].arg, sh[0].fp, sh[i].fp, diff);
    } else if (sh[i].sn != sh[0].sn) {
      rc = kx_fail(KX_EINVAL, "%s is shard %zu/%zu but %s is shard %zu/%zu: the grid was cut into a "
                   "different number of shards", sh[0].arg, sh[0].si, sh[0].sn, sh[i].arg, sh[i].si, sh[i].sn);
    }
  }
  for (size_t i = 0; i < n && !rc; i++)
    for (size_t j = 0; j < i && !rc; j++)
      if (sh[i].si == sh[j].si)
        rc = kx_fail(KX_EINVAL, "shard %zu/%zu is given twice (%s and %s)", sh[i].si, sh[i].sn, sh[j].arg,
                     sh[i].arg);
  if (!rc && n < sh[0].sn) {
    char missing[256] = "";
    size_t used = 0;
    for (size_t k = 1; k <= sh[0].sn && used < sizeof missing - 16; k++) {
      int have = 0;
      for (size_t i = 0; i < n; i++) have |= sh[i].si == k;
      if (!have) used += (size_t)snprintf(missing + used, sizeof missing - used, "%s%zu", used ? "," : "", k);
    }
    rc = kx_fail(KX_EINVAL, "missing shard(s) %s of %zu: give all %zu shards", missing, sh[0].sn, sh[0].sn);
  }
  unsigned char *seen = NULL;
  char **all = NULL;
  size_t total = 0;
  if (!rc) {
    seen = kx_calloc(sh[0].points ? sh[0].points : 1, 1);
    for (size_t i = 0; i < n; i++) total += sh[i].c.n;
    all = kx_malloc((total ? total : 1) * sizeof *all);
    if (!seen || !all) rc = KX_ENOMEM;
  }
  size_t k = 0;
  for (size_t i = 0; i < n && !rc; i++) {
    size_t expect = 0;
    for (size_t p = sh[i].si - 1; p < sh[i].points; p += sh[i].sn) expect++;
    for (size_t r = 0; r < sh[i].c.n && !rc; r++) {
      long long p = kx_sweep_record_point(sh[i].c.records[r]);
      if (p < 0 || (size_t)p >= sh[i].points || (size_t)p % sh[i].sn != sh[i].si - 1)
        rc = kx_fail(KX_EIO, "%s holds a record that is not a point of shard %zu/%zu", sh[i].journal,
                     sh[i].si, sh[i].sn);
      else if (seen[p])
        rc = kx_fail(KX_EIO, "point %lld is present twice (in %s)", p, sh[i].journal);
      else {
        seen[p] = 1;
        all[k++] = sh[i].c.records[r];
      }
    }
    if (!rc && sh[i].c.n != expect)
      rc = kx_fail(KX_EINVAL, "shard %zu/%zu (%s) is unfinished: %zu of %zu points; rerun its sweep "
                   "command to finish it", sh[i].si, sh[i].sn, sh[i].arg, sh[i].c.n, expect);
  }
  if (!rc) {
    /* the merged journal says "1/1": rerunning the unsharded sweep on OUT
     * finds every point done */
    char *header = kx_sweep_header(sh[0].fp, sh[0].points, 1, 1, sh[0].spec);
    char *jpath = kx_malloc(strlen(out) + 16);
    if (!header || !jpath) rc = KX_ENOMEM;
    if (!rc) {
      snprintf(jpath, strlen(out) + 16, "%s.journal", out);
      rc = kx_sweep_finish(out, all, k); /* sorts `all` by point */
    }
    if (!rc) rc = kx_journal_write_all(jpath, header, all, k);
    free(header);
    free(jpath);
    if (!rc) {
      code = 0;
      if (!quiet) fprintf(stderr, "merged %zu shards, %zu points, into %s\n", n, k, out);
    }
  }
  if (rc) {
    kx_cli_error(cmd, "%s", kx_error_message());
    code = 1;
  }
  free(seen);
  free(all);
  for (size_t i = 0; i < n; i++) {
    free(sh[i].journal);
    free(sh[i].spec);
    kx_journal_contents_free(&sh[i].c);
  }
  free(sh);
  return code;
}
