/* kapprox reproduce factors: the DiJiang factor study
 * (experiments/reproduce/factors.h).  Parses and checks every option
 * before any work, so bad input leaves nothing behind. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "core/kx_cli.h"
#include "core/kx_error.h"
#include "experiments/commands/commands.h"
#include "experiments/model/dec_layers.h"
#include "experiments/reproduce/budget.h"
#include "experiments/reproduce/factors.h"
#include "experiments/reproduce/repro_opts.h"
#include "experiments/reproduce/run_progress.h"

static const char cmd[] = "reproduce factors";

#define QUICK_FACTORS "features,normaliser"
#define DEFAULT_SEEDS 3

static void usage(FILE *out) {
  fprintf(out,
          "usage: kapprox reproduce factors [options]\n\n"
          "What makes the released DiJiang code better than the paper's form: the two\n"
          "differ in nine choices (docs/dijiang-factors.md).  Converts Table 2's teacher\n"
          "to the paper form (dijiang), to the released form (dijiang-released) and to\n"
          "each of them with one factor flipped, fine-tunes every form for the same\n"
          "budget with several seeds, and writes OUTDIR/factors.{md,csv,tex}: per form\n"
          "the gap to the teacher and the recall probe after fine-tuning (mean ±\n"
          "standard error over seeds) and each flip's effect, its difference to the end\n"
          "point it flips (paired by seed).  A form that diverges is shown as diverged\n"
          "and the study goes on.  Runs are Table 2's (OUTDIR/runs/b<steps>/): with\n"
          "--outdir of a Table 2 run it reuses the teacher and the end points.\n"
          "Interrupted, the same command resumes; finished runs are kept.\n\n"
          "  --quick             tiny teacher (as table2 --quick), factors %s,\n"
          "                      one seed\n"
          "  --factors LIST      factors to flip, by name, or all [all]: features,\n"
          "                      scales, dct, weights, square, prescale, normaliser,\n"
          "                      groupnorm, gate\n"
          "  --seeds N           seeds 0..N-1 of every form [%d; --quick: 1]\n"
          "  --budget F          fine-tuning steps as a fraction of the pre-training\n"
          "                      steps [1/16 = 0.0625, Table 2's]\n"
          "  --outdir DIR        where everything goes [factors, --quick: factors-quick]\n"
          "  --teacher FILE      use this softmax checkpoint as the teacher\n"
          "  --text FILE         the text (default: the KJV corpus)\n"
          "  --estimate          measure this machine's training step now and print the\n"
          "                      study's estimated time; runs nothing\n"
          "  --quiet             no progress output\n"
          KX_REPRO_SHARD_HELP "\n"
          "Time: the default study is 20 forms x 3 seeds = 60 runs of 156 fine-tuning\n"
          "steps (9360 steps) besides the teacher's 2500: about 1 h on the quiet 2-core\n"
          "machine, 2 h 14 min measured at load average 3 on one thread (run it with\n"
          "OMP_NUM_THREADS=1 on a busy machine); --estimate measures it now.\n",
          QUICK_FACTORS, DEFAULT_SEEDS);
}

static int check_readable(const char *path, const char *what) {
  if (path && access(path, R_OK)) return kx_fail(KX_EINVAL, "%s: cannot read '%s' (give an existing file)", what, path);
  return 0;
}

static void print_estimate(const kx_factors_study *s, const kx_factors_estimate *e) {
  char total[32], teacher[32];
  kx_format_duration(e->seconds, total, sizeof total);
  kx_format_duration((double)e->teacher_steps * e->step_s[2], teacher, sizeof teacher);
  printf("kapprox reproduce factors%s: %zu runs, %llu fine-tuning steps (+ %d a run for its evaluations)\n",
         s->quick ? " --quick" : "", e->runs, (unsigned long long)e->steps, KX_REPRO_RUN_OVERHEAD_STEPS);
  printf("measured now (median of 5 training steps at the teacher's shape): paper form %.3f s, released form "
         "%.3f s, softmax %.3f s a step\n",
         e->step_s[0], e->step_s[1], e->step_s[2]);
  printf("teacher: %llu pre-training steps still to do (%s)\n", (unsigned long long)e->teacher_steps, teacher);
  printf("estimated time: %s at this machine's present load (other processes slow every step alike)\n", total);
}

int cmd_reproduce_factors(int argc, char **argv) {
  enum { O_FACTORS = KX_REPRO_O_END, O_ESTIMATE };
  static const struct option lo[] = {KX_REPRO_LONG_OPTIONS,
                                     {"factors", 1, 0, O_FACTORS},
                                     {"estimate", 0, 0, O_ESTIMATE},
                                     {0, 0, 0, 0}};
  kx_factors_study s = {0};
  kx_repro_opts o;
  kx_repro_opts_init(&o);
  const char *factors = NULL;
  int c, rc = 0, estimate = 0;
  while (!rc && (c = getopt_long(argc, argv, ":h", lo, NULL)) != -1) {
    switch (c) {
      case O_FACTORS: factors = optarg; continue;
      case O_ESTIMATE: estimate = 1; continue;
      default: break;
    }
    if (kx_repro_option(c, optarg, argv, KX_FACTORS_MAX_SEEDS, &o, &rc)) continue;
    usage(stdout); /* 'h' */
    return 0;
  }
  if (!rc && optind < argc) rc = kx_fail(KX_EINVAL, "unexpected argument '%s'", argv[optind]);
  s.quick = o.quick, s.teacher_in = o.teacher, s.text = o.text, s.budget = o.budget;
  s.shard_i = o.shard_i, s.shard_n = o.shard_n, s.dry_run = o.dry_run;
  s.seeds = o.seeds ? o.seeds : s.quick ? 1 : DEFAULT_SEEDS;
  s.outdir = o.outdir ? o.outdir : s.quick ? "factors-quick" : "factors";
  if (!rc) rc = kx_factors_parse(factors ? factors : s.quick ? QUICK_FACTORS : "all", &s.factors);
  if (!rc) rc = kx_budget_check_outdir(s.outdir);
  if (!rc) rc = check_readable(s.teacher_in, "--teacher");
  if (!rc) rc = check_readable(s.text, "--text");
  if (rc) {
    kx_cli_error(cmd, "%s (see kapprox reproduce factors --help)", kx_error_message());
    return 2;
  }
  kx_dec_threads_init();
  if (estimate) {
    kx_factors_estimate e;
    if ((rc = kx_factors_estimate_time(&s, &e))) {
      kx_cli_error(cmd, "%s", kx_error_message());
      return 1;
    }
    print_estimate(&s, &e);
    return 0;
  }
  kx_repro_progress pg;
  kx_repro_progress_init(&pg, "factors", o.quiet || o.dry_run);
  s.pg = &pg;
  rc = kx_factors_study_run(&s);
  kx_repro_say_done(&pg);
  if (rc) kx_cli_error(cmd, "%s", kx_error_message());
  return rc ? 1 : 0;
}
