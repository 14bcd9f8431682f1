/* kapprox reproduce TARGET: dispatches to the targets' commands, and
 * reproduce kernel itself (experiments/reproduce/kernel_table.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/kx_atomic.h"
#include "core/kx_cli.h"
#include "core/kx_dp.h"
#include "core/kx_error.h"
#include "experiments/commands/commands.h"
#include "experiments/eval/metrics.h"
#include "experiments/eval/spec_options.h"
#include "experiments/model/dec_led.h"
#include "experiments/model/dec_train.h"
#include "experiments/reproduce/kernel_table.h"

static const char cmd[] = "reproduce kernel";

static void usage(FILE *out) {
  fprintf(out,
          "usage: kapprox reproduce kernel [options]\n\n"
          "Table of each scheme's error at m = d and m = 4d (mean ± standard error over\n"
          "seeds; the smallest mean of each column in bold), on synthetic Q/K and, with\n"
          "--input, on a Q/K file (averaged over its selected heads within each seed).\n"
          "Markdown by default, LaTeX (booktabs) with --latex.\n\n"
          "  --schemes LIST      default: the sweep's default schemes\n"
          "  --seeds LIST        (default 0:9)\n"
          "  --metrics LIST      one table per metric (default kernel_rel_fro; one or more of\n"
          "                      %s)\n"
          "  --dim D             synthetic head dimension (default 64)\n"
          "  --tokens N          synthetic tokens (default 256)\n"
          "  --norm SPEC         synthetic norm of q and k (default 1)\n"
          "  --data-seed S       (default 0)\n"
          "  --input FILE.h5     also a Q/K file; --layers, --heads, --max-tokens select\n"
          "  --kernel K          softmax (default) or gauss\n"
          "  --latex             LaTeX instead of Markdown\n"
          "  --out FILE          write the table there (atomically) instead of stdout\n"
          "  --quiet             no progress messages\n"
          "  -h, --help          this text\n\n"
          "Example:\n  kapprox reproduce kernel --input qk.h5 --layers 0 --latex --out table.tex\n", kx_metric_list());
}

typedef struct {
  const char *metrics, *out;
  int latex, quiet;
} reproduce_cli;

enum { O_METRICS, O_LATEX, O_OUT, O_QUIET };

static int on_option(void *ctx, int id, const char *arg) {
  reproduce_cli *c = ctx;
  switch (id) {
  case O_METRICS: c->metrics = arg; return 0;
  case O_LATEX: c->latex = 1; return 0;
  case O_OUT: c->out = arg; return kx_check_output_path(arg, "--out");
  default: c->quiet = 1; return 0;
  }
}

static void usage_of(FILE *out, void *ctx) {
  (void)ctx;
  usage(out);
}

static const kx_cli_option own_options[] = {
    {"metrics", 1, O_METRICS}, {"latex", 0, O_LATEX}, {"out", 1, O_OUT}, {"quiet", 0, O_QUIET}, {NULL, 0, 0}};

/* The metrics of --metrics, one table each. */
static int parse_metrics(const char *list, int *metrics, size_t *n_metrics) {
  char **names = NULL;
  int rc = kx_split_list(list, "--metrics", &names, n_metrics);
  if (!rc && *n_metrics > KX_N_METRICS) rc = kx_fail(KX_EINVAL, "--metrics: at most %d", KX_N_METRICS);
  for (size_t i = 0; i < *n_metrics && !rc; i++)
    if ((metrics[i] = kx_metric_lookup(names[i])) < 0) rc = kx_fail(KX_EINVAL, "unknown metric '%s' (known: %s)", names[i], kx_metric_list());
  kx_free_strings(names, *n_metrics);
  return rc;
}

/* One table per metric to --out (atomically) or stdout. */
static int write_tables(const kx_spec *s, const reproduce_cli *c, const kx_results *res, const kx_kernel_group *groups,
                        size_t ng, const int *metrics, size_t n_metrics) {
  kx_atomic_file af;
  if (!c->out) return kx_kernel_tables_print(stdout, s, res, groups, ng, metrics, n_metrics, c->latex);
  int rc = kx_atomic_open(&af, c->out);
  if (!rc) rc = kx_kernel_tables_print(af.fp, s, res, groups, ng, metrics, n_metrics, c->latex);
  if (!rc && ferror(af.fp)) rc = kx_fail(KX_EIO, "writing '%s' failed: %s", c->out, strerror(errno ? errno : EIO));
  if (rc) kx_atomic_abort(&af);
  else rc = kx_atomic_commit(&af);
  return rc;
}

static int reproduce_kernel(int argc, char **argv) {
  reproduce_cli c = {.metrics = "kernel_rel_fro"};
  kx_cli_command command = {cmd, KX_OPT_SCHEMES | KX_OPT_SEEDS | KX_OPT_SYNTHETIC | KX_OPT_NORM | KX_OPT_INPUT |
                                     KX_OPT_LAYERS_HEADS | KX_OPT_MAX_TOKENS | KX_OPT_KERNEL,
                            "", own_options, on_option, &c, usage_of};
  kx_spec_args a = {0};
  kx_spec_defaults(&a.spec);
  int rc = kx_spec_parse_cli(&command, argc, argv, &a);
  if (rc) return rc < 0 ? 0 : rc;
  if ((rc = kx_spec_args_finish(&command, &a, KX_SCHEMES_COMPARISON, NULL, "0:9"))) return rc;
  int metrics[KX_N_METRICS];
  size_t n_metrics = 0;
  kx_spec grid = a.spec; /* the grid as run_groups runs it: m = d and 4d */
  grid.m[0] = grid.d;
  grid.m[1] = 4 * grid.d;
  grid.n_m = 2;
  if (kx_spec_check(&grid) || parse_metrics(c.metrics, metrics, &n_metrics)) {
    kx_cli_error(cmd, "%s", kx_error_message());
    kx_spec_free(&a.spec);
    return 2;
  }
  kx_kernel_group groups[2];
  size_t ng = 0;
  kx_results res = {0};
  kx_run_options o = {.progress = !c.quiet && kx_stderr_is_tty()};
  rc = kx_kernel_groups(&a.spec, groups, &ng);
  for (size_t g = 0; g < ng && !rc; g++) {
    if (!c.quiet)
      fprintf(stderr, "reproduce kernel: %s, d = %zu, m = %zu and %zu\n", g ? groups[g].input : "synthetic",
              groups[g].d, groups[g].d, 4 * groups[g].d);
    rc = kx_kernel_group_run(&a.spec, groups, g, &o, &res);
  }
  if (!rc) rc = write_tables(&a.spec, &c, &res, groups, ng, metrics, n_metrics);
  if (rc) kx_cli_error(cmd, "%s", kx_error_message());
  size_t failed = rc ? 0 : kx_results_failed_points(&res);
  if (failed)
    fprintf(stderr, "kapprox %s: %zu point(s) failed and are left out of the means (exit status %d)\n", cmd,
            failed, KX_EXIT_SOME_FAILED);
  kx_results_free(&res);
  kx_spec_free(&a.spec);
  return rc ? 1 : failed ? KX_EXIT_SOME_FAILED : 0;
}

/* The targets of kapprox reproduce: kapprox --help, reproduce --help and
 * the "unknown target" message list them from here. */
static const struct {
  const char *name;
  kx_command_fn run;
  const char *summary;
  int data_parallel; /* under mpirun: its training runs split over the processes */
} targets[] = {
    {"kernel", reproduce_kernel, "kernel-approximation error of each scheme at m = d and m = 4d", 0},
    {"table1", cmd_reproduce_table1, "softmax teachers of three sizes converted to DiJiang: quality, speed-up", 1},
    {"table2", cmd_reproduce_table2, "the decoder converted to every linear-attention kind and fine-tuned", 1},
    {"budget", cmd_reproduce_budget, "the gap to the teacher of converted kinds at several fine-tuning budgets", 1},
    {"factors", cmd_reproduce_factors, "what makes the released DiJiang better: each factor flipped, with seeds", 1},
    {"all", cmd_reproduce_all, "every table and figure of the toolkit into one folder, with an index", 0},
};
#define N_TARGETS (sizeof targets / sizeof targets[0])

/* A target under mpirun on several processes: rank 0 runs it, and its
 * training runs are split over every process (kx_dec_train_led). */
typedef struct {
  size_t target;
  int argc;
  char **argv;
} led_target;

static int run_led(void *arg) {
  led_target *t = arg;
  return targets[t->target].run(t->argc - 1, t->argv + 1);
}

static int run_data_parallel(size_t i, int argc, char **argv) {
  char what[64];
  snprintf(what, sizeof what, "reproduce %s", targets[i].name);
  if (!targets[i].data_parallel) { /* every rank would do the whole target into the same files */
    kx_cli_error(what, "does not run on several processes; start it without mpirun (table1, table2, budget and "
                 "factors do: docs/reproduce.md#data-parallel-reproductions-over-mpi)");
    return 2;
  }
  if (kx_dp_same_args(argc, argv)) {
    kx_cli_error(what, "%s", kx_error_message());
    return 2;
  }
  led_target t = {i, argc, argv};
  return kx_dec_train_led(run_led, &t);
}

/* "kernel, table1, table2, all" */
static const char *target_names(void) {
  static char names[128];
  if (!names[0])
    for (size_t i = 0; i < N_TARGETS; i++)
      snprintf(names + strlen(names), sizeof names - strlen(names), "%s%s", i ? ", " : "", targets[i].name);
  return names;
}

const char *cmd_reproduce_summary(void) {
  static char summary[192];
  if (!summary[0]) snprintf(summary, sizeof summary, "tables of the paper's claims (targets: %s)", target_names());
  return summary;
}

static void usage_group(FILE *out) {
  fprintf(out, "usage: kapprox reproduce <target> [options]\n\n"
               "Tables of the paper's claims, from this toolkit's numbers.  Targets:\n");
  for (size_t i = 0; i < N_TARGETS; i++) fprintf(out, "  %-8s %s\n", targets[i].name, targets[i].summary);
  fprintf(out, "\nkapprox reproduce <target> --help for the options of one target.\n");
}

int cmd_reproduce(int argc, char **argv) {
  if (argc < 2) {
    usage_group(stderr);
    return 2;
  }
  if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
    usage_group(stdout);
    return 0;
  }
  for (size_t i = 0; i < N_TARGETS; i++)
    if (!strcmp(argv[1], targets[i].name)) {
      if (kx_dp_size() == 1) return targets[i].run(argc - 1, argv + 1);
      return run_data_parallel(i, argc, argv);
    }
  kx_cli_error("reproduce", "unknown target '%s' (known: %s)", argv[1], target_names());
  return 2;
}
