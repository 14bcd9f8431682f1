/* kapprox reproduce table2: the paper's central experiment at this
 * toolkit's scale.  Pre-train (or reuse) the softmax teacher, convert it to
 * every attention kind of the table, fine-tune each with the same budget
 * over several seeds, train each kind from scratch with that budget too,
 * and write the comparison as Markdown, CSV and LaTeX, with Figure 2
 * (validation loss against step) and Figure 3 (head-averaged attention
 * maps after fine-tuning); experiments/reproduce/table2.h runs it. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/kx_cli.h"
#include "core/kx_error.h"
#include "experiments/commands/commands.h"
#include "experiments/model/dec_attn.h"
#include "experiments/reproduce/repro_opts.h"
#include "experiments/reproduce/table2.h"

static const char cmd[] = "reproduce table2";

static void usage(FILE *out) {
  fprintf(out,
          "usage: kapprox reproduce table2 [options]\n\n"
          "Table 2 of the paper at this scale: pre-trains the softmax teacher with kapprox\n"
          "train's defaults (or reuses OUTDIR/teacher.h5), converts it to every attention\n"
          "kind, fine-tunes each with the same budget for several seeds, trains each kind\n"
          "from scratch with the same budget, and writes OUTDIR/table2.{md,csv,tex} (mean\n"
          "± standard error over seeds) and Figures 2 and 3 (PNG and SVG).  Kinds with a\n"
          "trainable feature map also run with attention transfer first (label +AT): a\n"
          "quarter of the budget's steps distils the teacher's attention, the rest\n"
          "fine-tunes.  Interrupted, the same command resumes: finished runs are kept.\n\n"
          "  --quick             tiny teacher (2 layers, width 32, context 32, 320 steps),\n"
          "                      one seed: the whole pipeline in about a minute\n"
          "  --budget F          fine-tuning steps as a fraction of the pre-training steps\n"
          "                      [1/16 = 0.0625, the paper's cost ratio]\n"
          "  --seeds N           seeds 0..N-1 per variant [3; --quick: 1]\n"
          "  --outdir DIR        where everything goes [table2, --quick: table2-quick]\n"
          "  --teacher FILE      use this softmax checkpoint as the teacher\n"
          "  --text FILE         the text (default: the KJV corpus)\n"
          "  --kinds LIST        attention kinds to convert to [every kind of the\n"
          "                      attention table but the teacher's softmax:\n"
          "                      %s]\n"
          "  --maps LIST         variants in Figure 3 besides the teacher [performer,\n"
          "                      dijiang, dijiang-code, hedgehog+AT, those that exist]\n"
          "  --scratch-seeds N   seeds of the rows trained from scratch [1; 0: no such rows]\n"
          "  --no-figures        do not run gnuplot (the figures' data are still written)\n"
          "  --quiet             no progress output\n"
          KX_REPRO_SHARD_HELP,
          strncmp(kx_dec_attn_names(), "softmax, ", 9) ? kx_dec_attn_names() : kx_dec_attn_names() + 9);
}

int cmd_reproduce_table2(int argc, char **argv) {
  enum { O_KINDS = KX_REPRO_O_END, O_MAPS, O_SCRATCH };
  static const struct option lo[] = {KX_REPRO_LONG_OPTIONS,
                                     {"kinds", 1, 0, O_KINDS},
                                     {"maps", 1, 0, O_MAPS},
                                     {"scratch-seeds", 1, 0, O_SCRATCH},
                                     {0, 0, 0, 0}};
  kx_repro_opts o;
  kx_repro_opts_init(&o);
  kx_table2_opts t = {.scratch_seeds = 1};
  char **kinds = NULL, **maps = NULL;
  size_t n_kinds = 0, n_maps = 0;
  const char *kinds_arg = NULL, *maps_arg = "performer,dijiang,dijiang-code,hedgehog+AT";
  int c, rc = 0;
  while (!rc && (c = getopt_long(argc, argv, ":h", lo, NULL)) != -1) {
    if (kx_repro_option(c, optarg, argv, KX_TABLE2_MAX_SEEDS, &o, &rc)) continue;
    switch (c) {
      case O_KINDS: kinds_arg = optarg; break;
      case O_MAPS: maps_arg = optarg, t.maps_given = 1; break;
      case O_SCRATCH: rc = kx_parse_size(optarg, "--scratch-seeds", 0, KX_TABLE2_MAX_SEEDS, &t.scratch_seeds); break;
      default: usage(stdout); return 0; /* 'h' */
    }
  }
  if (!rc && optind < argc) rc = kx_fail(KX_EINVAL, "unexpected argument '%s'", argv[optind]);
  if (!rc && kinds_arg) rc = kx_split_list(kinds_arg, "--kinds", &kinds, &n_kinds);
  if (!rc) rc = kx_split_list(maps_arg, "--maps", &maps, &n_maps);
  t.quick = o.quick, t.figures = o.figures, t.quiet = o.quiet, t.budget = o.budget, t.seeds = o.seeds;
  t.outdir = o.outdir, t.teacher = o.teacher, t.text = o.text;
  t.shard_i = o.shard_i, t.shard_n = o.shard_n, t.dry_run = o.dry_run;
  t.kinds = kinds, t.n_kinds = n_kinds, t.maps = maps, t.n_maps = n_maps;
  int usage_error = 1;
  if (!rc) rc = kx_table2_run(&t, &usage_error);
  if (rc && usage_error) kx_cli_error(cmd, "%s (see kapprox reproduce table2 --help)", kx_error_message());
  else if (rc) kx_cli_error(cmd, "%s", kx_error_message());
  kx_free_strings(kinds, n_kinds);
  kx_free_strings(maps, n_maps);
  return rc ? usage_error ? 2 : 1 : 0;
}
