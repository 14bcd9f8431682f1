/* kapprox reproduce table1: the paper's Table 1 at this toolkit's scale:
 * softmax teachers of three sizes converted to DiJiang, fine-tuned with
 * 1/16 of their pre-training steps, scored and timed generating
 * (experiments/reproduce/table1.h runs it). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/kx_cli.h"
#include "core/kx_error.h"
#include "experiments/commands/commands.h"
#include "experiments/reproduce/repro_opts.h"
#include "experiments/reproduce/table1.h"

static const char cmd[] = "reproduce table1";

static void usage(FILE *out) {
  fprintf(out,
          "usage: kapprox reproduce table1 [options]\n\n"
          "Table 1 of the paper at this scale: pre-trains softmax teachers of three sizes\n"
          "(4 layers, width 128, 256 and 512, head dimension 64: about 0.8M, 3.2M and\n"
          "12.7M parameters, each 2500 steps of kapprox train's defaults) or reuses\n"
          "OUTDIR/<size>/teacher.h5, converts each to DiJiang (paper form and released\n"
          "code's form), fine-tunes with --budget of its pre-training steps for several\n"
          "seeds, times generating --length tokens (softmax with a KV cache against the\n"
          "recurrent form), and writes OUTDIR/table1.{md,csv,tex} (mean ± standard\n"
          "error over seeds) and two figures against model size: the gap to the teacher\n"
          "and the inference speed-up.  Interrupted, the same command resumes: finished\n"
          "teachers, runs and timings are kept.\n\n"
          "  --quick             three toy models (2 layers, width 16, 32, 64, context 32,\n"
          "                      128 steps), one seed, --length 256: the pipeline in seconds\n"
          "  --budget F          fine-tuning steps as a fraction of the pre-training steps\n"
          "                      [1/16 = 0.0625, the paper's cost ratio]\n"
          "  --seeds N           seeds 0..N-1 per variant [3; --quick: 1]\n"
          "  --outdir DIR        where everything goes [table1, --quick: table1-quick]\n"
          "  --teacher FILE      use this softmax checkpoint as the teacher of the size it\n"
          "                      has (e.g. reproduce table2's teacher.h5 for width 256)\n"
          "  --text FILE         the text (default: the KJV corpus)\n"
          "  --kinds LIST        attention kinds to convert to [dijiang,dijiang-code]\n"
          "  --length N          tokens generated for the inference throughput [2048]\n"
          "  --sizes LIST        only the teachers of these widths [128,256,512; --quick:\n"
          "                      16,32,64]\n"
          "  --no-figures        do not run gnuplot (the figures' data are still written)\n"
          "  --quiet             no progress output\n" KX_REPRO_SHARD_HELP);
}

int cmd_reproduce_table1(int argc, char **argv) {
  enum { O_KINDS = KX_REPRO_O_END, O_LENGTH, O_SIZES };
  static const struct option lo[] = {KX_REPRO_LONG_OPTIONS,
                                     {"kinds", 1, 0, O_KINDS},
                                     {"length", 1, 0, O_LENGTH},
                                     {"sizes", 1, 0, O_SIZES},
                                     {0, 0, 0, 0}};
  kx_repro_opts o;
  kx_repro_opts_init(&o);
  kx_table1_opts t = {0};
  int c, rc = 0;
  while (!rc && (c = getopt_long(argc, argv, ":h", lo, NULL)) != -1) {
    if (kx_repro_option(c, optarg, argv, KX_TABLE1_MAX_SEEDS, &o, &rc)) continue;
    switch (c) {
      case O_KINDS: t.kinds = optarg; break;
      case O_LENGTH: rc = kx_parse_size(optarg, "--length", 2, 1 << 20, &t.length); break;
      case O_SIZES: t.sizes = optarg; break;
      default: usage(stdout); return 0; /* 'h' */
    }
  }
  if (!rc && optind < argc) rc = kx_fail(KX_EINVAL, "unexpected argument '%s'", argv[optind]);
  t.quick = o.quick, t.figures = o.figures, t.quiet = o.quiet, t.budget = o.budget, t.seeds = o.seeds;
  t.outdir = o.outdir, t.teacher = o.teacher, t.text = o.text;
  t.shard_i = o.shard_i, t.shard_n = o.shard_n, t.dry_run = o.dry_run;
  int usage_error = 1;
  if (!rc) rc = kx_table1_run(&t, &usage_error);
  if (rc && usage_error) {
    kx_cli_error(cmd, "%s (see kapprox reproduce table1 --help)", kx_error_message());
    return 2;
  }
  if (rc) kx_cli_error(cmd, "%s", kx_error_message());
  return rc ? 1 : 0;
}
