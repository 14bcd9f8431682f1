/* kapprox merge: combines the shards of one sweep into the files a single
 * run of the whole grid gives (results, summary, slopes and a complete
 * journal), refusing anything that would not add up to exactly that. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/kx_cli.h"
#include "core/kx_error.h"
#include "experiments/commands/commands.h"
#include "experiments/eval/spec.h"
#include "experiments/sweep/merge.h"

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
  const char **shards = kx_calloc(n_args, sizeof *shards);
  if (!shards) return 1;
  for (size_t a = 0; a < n_args; a++) {
    const char *arg = argv[optind + 1 + a];
    if (kx_merge_is_side_file(arg)) {
      if (!quiet) fprintf(stderr, "merge: skipping %s (a shard's summary or slopes file, not a shard)\n", arg);
      continue;
    }
    shards[n++] = arg;
  }
  kx_merge_report rep;
  int rc = kx_merge_shards(out, shards, n, &rep);
  free(shards);
  if (rc) {
    kx_cli_error(cmd, "%s", kx_error_message());
    return 1;
  }
  if (!quiet) fprintf(stderr, "merged %zu shards, %zu points, into %s\n", n, rep.points, out);
  if (rep.failed)
    fprintf(stderr, "kapprox merge: %zu point(s) failed (value NaN, reason in the 'failure' column of %s)\n",
            rep.failed, out);
  return rep.failed ? KX_EXIT_SOME_FAILED : 0;
}
