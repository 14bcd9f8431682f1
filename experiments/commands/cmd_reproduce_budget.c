/* kapprox reproduce budget: the budget study (experiments/reproduce/budget.h).
 * Parses and checks every option before any work, so bad input leaves
 * nothing behind, then runs the study. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/kx_cli.h"
#include "core/kx_error.h"
#include "core/kx_input.h"
#include "experiments/commands/commands.h"
#include "experiments/model/dec_layers.h"
#include "experiments/reproduce/budget.h"
#include "experiments/reproduce/repro_opts.h"

static const char cmd[] = "reproduce budget";

#define DEFAULT_KINDS "softmax,performer,retnet,dijiang,dijiang-code,hedgehog+AT,hedgehog+w16+AT"
#define DEFAULT_SCRATCH "softmax,retnet"
#define DEFAULT_BUDGETS "1/64,1/16,1/4,1"
#define QUICK_KINDS "retnet,hedgehog+AT"
#define QUICK_BUDGETS "1/16,1/4"
/* Default seeds: SMALL_SEEDS at budgets up to SMALL_BUDGET (cheap runs,
 * where the seeds' spread is measured), one above. */
#define SMALL_SEEDS 3
#define SMALL_BUDGET (1.0 / 16.0)

static void usage(FILE *out) {
  fprintf(out,
          "usage: kapprox reproduce budget [options]\n\n"
          "The budget study: how the gap between a converted model and its softmax\n"
          "teacher closes with the fine-tuning budget.  Pre-trains the teacher as\n"
          "reproduce table2 does (or reuses OUTDIR/teacher.h5), converts it to each\n"
          "variant and fine-tunes it at every budget, each budget a run with its own\n"
          "schedule, for several seeds; trains --scratch-kinds from scratch with the\n"
          "same budgets.  Writes OUTDIR/budget.{md,csv,tex} (per variant: the gap at\n"
          "every budget, mean ± standard error over seeds; the tokens needed to come\n"
          "within 0.1 and 0.25 nats of the teacher; a fit gap = c + a tokens^-alpha\n"
          "with 95 %% intervals from its covariance), budget_ranks.{md,csv,tex} (the\n"
          "rank order at each budget) and the figure budget_gap.{png,svg}.  Runs are\n"
          "kept under OUTDIR/runs/b<steps>/ as reproduce table2 keeps them: with\n"
          "--outdir of a Table 2 run the study reuses its teacher and its runs.\n"
          "Interrupted, the same command resumes; finished runs are kept.\n\n"
          "  --quick             tiny teacher (as table2 --quick), budgets %s,\n"
          "                      kinds %s, one seed\n"
          "  --budgets LIST      budgets as fractions of the pre-training steps, 0.25 or\n"
          "                      1/4, above 1 allowed [%s]\n"
          "  --seeds N|LIST      seeds 0..N-1 of each converted variant, one N for every\n"
          "                      budget or one per budget [%d at budgets up to 1/16,\n"
          "                      1 above; --quick: 1]\n"
          "  --kinds LIST        variants to convert to: kinds, then +wN for a sliding\n"
          "                      window of N positions, +smL.M for softmax kept in\n"
          "                      layers L and M, +AT for attention transfer first\n"
          "                      (in this order: performer+w16+sm0+AT), or all;\n"
          "                      softmax is the control: the teacher itself fine-tuned\n"
          "                      the same way (the table's \"beyond the continued\n"
          "                      teacher\" columns compare every row with it)\n"
          "                      [%s]\n"
          "  --scratch-kinds LIST  kinds trained from scratch, or none [%s]\n"
          "  --scratch-seeds N   seeds of the rows from scratch [1]\n"
          "  --lr RATE           fine-tuning's peak learning rate [1e-3]; converted runs\n"
          "                      at another rate go to runs/b<steps>-lr<RATE>/\n"
          "  --outdir DIR        where everything goes [budget, --quick: budget-quick]\n"
          "  --teacher FILE      use this softmax checkpoint as the teacher\n"
          "  --text FILE         the text (default: the KJV corpus)\n"
          "  --no-figures        do not run gnuplot (the figure's data are still written)\n"
          "  --quiet             no progress output\n"
          KX_REPRO_SHARD_HELP "\n"
          "Time: the default study is 64 runs, 30110 training steps besides the\n"
          "teacher's 2500 (softmax from scratch at budget 1, seed 0, is the\n"
          "teacher's own pre-training: its checkpoint is taken): measured 3 h 15 min\n"
          "on the 2-core machine at 0.30-0.40 s a step, 2 h 33 min at the best\n"
          "rates seen, 0.23-0.31 s (docs/reproduce.md#time).  With --outdir of a\n"
          "finished reproduce table2 it reuses the teacher and the 1/16 runs:\n"
          "about 2 h 45 min at the measured rates.\n"
          "--quick: 25 s on the KJV on one thread of the busy machine, less idle.\n",
          QUICK_BUDGETS, QUICK_KINDS, DEFAULT_BUDGETS, SMALL_SEEDS, DEFAULT_KINDS, DEFAULT_SCRATCH);
}

/* --seeds: one count for every budget, or one per budget. */
static int parse_seeds(const char *arg, kx_budget_study *s) {
  char **items = NULL;
  size_t n = 0;
  int rc = kx_split_list(arg, "--seeds", &items, &n);
  if (!rc && n != 1 && n != s->n_budgets)
    rc = kx_fail(KX_EINVAL, "--seeds: %zu counts for %zu budgets (give one count, or one per budget)", n,
                 s->n_budgets);
  for (size_t b = 0; !rc && b < s->n_budgets; b++)
    rc = kx_parse_size(items[n == 1 ? 0 : b], "--seeds", 1, KX_BUDGET_MAX_SEEDS, &s->seeds[b]);
  kx_free_strings(items, n);
  return rc;
}

/* An input that exists, can be read and is a regular file (a named pipe
 * would block the study until someone writes into it). */
static int check_readable(const char *path, const char *what) {
  if (path && access(path, R_OK))
    return kx_fail(KX_EINVAL, "%s: cannot read '%s' (give an existing file)", what, path);
  return path ? kx_input_check(path, what) : 0;
}

/* Every check that needs no work, so that bad input writes nothing. */
static int check_options(kx_budget_study *s, const char *budgets, const char *seeds, const char *kinds,
                         const char *scratch) {
  int rc = kx_budget_parse_list(budgets, "--budgets", s->budgets, KX_BUDGET_MAX, &s->n_budgets);
  if (!rc && seeds) rc = parse_seeds(seeds, s);
  for (size_t b = 0; !rc && !seeds && b < s->n_budgets; b++)
    s->seeds[b] = s->quick ? 1 : s->budgets[b].value <= SMALL_BUDGET ? SMALL_SEEDS : 1;
  if (!rc)
    rc = kx_budget_variants(kinds, strcmp(scratch, "none") ? scratch : NULL, s->v, KX_BUDGET_MAX_VARIANTS, &s->nv);
  if (!rc) rc = kx_budget_check_outdir(s->outdir);
  if (!rc) rc = check_readable(s->teacher_in, "--teacher");
  if (!rc) rc = check_readable(s->text, "--text");
  /* the teacher to be trained has a known length (a --teacher's is
   * checked when it is loaded) */
  uint64_t steps[KX_BUDGET_MAX];
  if (!rc && !s->teacher_in)
    rc = kx_budget_steps(s->budgets, s->n_budgets, kx_budget_planned_pretrain_steps(s->quick), steps);
  return rc;
}

int cmd_reproduce_budget(int argc, char **argv) {
  enum { O_BUDGETS = KX_REPRO_O_END, O_KINDS, O_SCRATCH_KINDS, O_SCRATCH_SEEDS, O_LR };
  static const struct option lo[] = {{"quick", 0, 0, KX_REPRO_O_QUICK},
                                     {"budgets", 1, 0, O_BUDGETS},
                                     {"seeds", 1, 0, KX_REPRO_O_SEEDS},
                                     {"kinds", 1, 0, O_KINDS},
                                     {"scratch-kinds", 1, 0, O_SCRATCH_KINDS},
                                     {"scratch-seeds", 1, 0, O_SCRATCH_SEEDS},
                                     {"lr", 1, 0, O_LR},
                                     {"outdir", 1, 0, KX_REPRO_O_OUTDIR},
                                     {"teacher", 1, 0, KX_REPRO_O_TEACHER},
                                     {"text", 1, 0, KX_REPRO_O_TEXT},
                                     {"no-figures", 0, 0, KX_REPRO_O_NOFIG},
                                     {"quiet", 0, 0, KX_REPRO_O_QUIET},
                                     {"shard", 1, 0, KX_REPRO_O_SHARD},
                                     {"dry-run", 0, 0, KX_REPRO_O_DRY},
                                     {"help", 0, 0, 'h'},
                                     {0, 0, 0, 0}};
  kx_budget_study *s = kx_calloc(1, sizeof *s);
  if (!s) return 1;
  kx_repro_opts o;
  kx_repro_opts_init(&o);
  const char *budgets = NULL, *seeds = NULL, *kinds = NULL, *scratch = DEFAULT_SCRATCH;
  s->scratch_seeds = 1;
  int c, rc = 0;
  while (!rc && (c = getopt_long(argc, argv, ":h", lo, NULL)) != -1) {
    switch (c) {
      case O_BUDGETS: budgets = optarg; continue;
      case KX_REPRO_O_SEEDS: seeds = optarg; continue;
      case O_KINDS: kinds = optarg; continue;
      case O_SCRATCH_KINDS: scratch = optarg; continue;
      case O_SCRATCH_SEEDS:
        rc = kx_parse_size(optarg, "--scratch-seeds", 1, KX_BUDGET_MAX_SEEDS, &s->scratch_seeds);
        continue;
      case O_LR:
        rc = kx_parse_double(optarg, "--lr", &s->ft_lr);
        if (!rc && !(s->ft_lr > 0 && s->ft_lr <= 1))
          rc = kx_fail(KX_EINVAL, "--lr must be in (0, 1], got %s", optarg);
        continue;
      default: break;
    }
    if (kx_repro_option(c, optarg, argv, KX_BUDGET_MAX_SEEDS, &o, &rc)) continue;
    usage(stdout); /* 'h' */
    free(s);
    return 0;
  }
  if (!rc && optind < argc) rc = kx_fail(KX_EINVAL, "unexpected argument '%s'", argv[optind]);
  s->quick = o.quick, s->figures = o.figures, s->teacher_in = o.teacher, s->text = o.text;
  s->shard_i = o.shard_i, s->shard_n = o.shard_n, s->dry_run = o.dry_run;
  s->outdir = o.outdir ? o.outdir : s->quick ? "budget-quick" : "budget";
  if (!rc)
    rc = check_options(s, budgets ? budgets : s->quick ? QUICK_BUDGETS : DEFAULT_BUDGETS, seeds,
                       kinds ? kinds : s->quick ? QUICK_KINDS : DEFAULT_KINDS, scratch);
  if (rc) {
    kx_cli_error(cmd, "%s (see kapprox reproduce budget --help)", kx_error_message());
    free(s);
    return 2;
  }
  kx_repro_progress pg;
  kx_repro_progress_init(&pg, "budget", o.quiet || o.dry_run);
  s->pg = &pg;
  kx_dec_threads_init();
  rc = kx_budget_study_run(s);
  kx_repro_say_done(&pg);
  if (rc) kx_cli_error(cmd, "%s", kx_error_message());
  free(s);
  return rc ? 1 : 0;
}
