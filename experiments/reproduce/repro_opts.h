/* The options every kapprox reproduce table command shares: --quick,
 * --budget, --seeds, --outdir, --teacher, --text, --no-figures, --quiet,
 * --shard, --dry-run,
 * parsed in the command's getopt loop (its own options take codes from
 * KX_REPRO_O_END on). */
#ifndef KX_REPRO_OPTS_H
#define KX_REPRO_OPTS_H

#include <stddef.h>

typedef struct {
  int quick, figures, quiet;
  double budget;  /* fine-tuning steps / pre-training steps [1/16] */
  size_t seeds;   /* 0: not given */
  const char *outdir, *teacher, *text;
  size_t shard_i, shard_n; /* --shard i/N; shard_n 0: not given */
  int dry_run;
} kx_repro_opts;

enum {
  KX_REPRO_O_QUICK = 256, KX_REPRO_O_BUDGET, KX_REPRO_O_SEEDS, KX_REPRO_O_OUTDIR, KX_REPRO_O_TEACHER,
  KX_REPRO_O_TEXT, KX_REPRO_O_NOFIG, KX_REPRO_O_QUIET, KX_REPRO_O_SHARD, KX_REPRO_O_DRY, KX_REPRO_O_END
};

/* struct option entries of the shared options (and --help = 'h'). */
#define KX_REPRO_LONG_OPTIONS                                                                                   \
  {"quick", 0, 0, KX_REPRO_O_QUICK}, {"budget", 1, 0, KX_REPRO_O_BUDGET}, {"seeds", 1, 0, KX_REPRO_O_SEEDS},    \
      {"outdir", 1, 0, KX_REPRO_O_OUTDIR}, {"teacher", 1, 0, KX_REPRO_O_TEACHER},                               \
      {"text", 1, 0, KX_REPRO_O_TEXT}, {"no-figures", 0, 0, KX_REPRO_O_NOFIG},                                  \
      {"quiet", 0, 0, KX_REPRO_O_QUIET}, {"shard", 1, 0, KX_REPRO_O_SHARD}, {"dry-run", 0, 0, KX_REPRO_O_DRY},        \
      {"help", 0, 0, 'h'}

/* --help lines of --shard and --dry-run. */
#define KX_REPRO_SHARD_HELP                                                                    \
  "  --shard i/N         do only shard i of N of the runs (round robin), side by\n"            \
  "                      side with the other shards in the same --outdir, even on\n"          \
  "                      other hosts; then the command without --shard writes the\n"         \
  "                      tables (docs/reproduce.md#sharded-reproductions)\n"                 \
  "  --dry-run           list every run, its shard (with --shard) and its state;\n"          \
  "                      train and write nothing\n"

/* Defaults; also resets getopt (optind = 1, opterr = 0) for the loop. */
void kx_repro_opts_init(kx_repro_opts *o);
/* getopt_long's code c (with ":h" as short options and opterr = 0): a
 * shared option, a missing value or an unknown option is taken (returns 1,
 * *rc = 0 or an error with a message); the command's own options and 'h'
 * are left to it (returns 0).  max_seeds bounds --seeds. */
int kx_repro_option(int c, const char *arg, char **argv, size_t max_seeds, kx_repro_opts *o, int *rc);

#endif
