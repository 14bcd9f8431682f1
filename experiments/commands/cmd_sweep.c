/* kapprox sweep: the resumable, shardable ablation grid (sweep.h). */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/kx_cli.h"
#include "core/kx_error.h"
#include "experiments/commands/commands.h"
#include "experiments/sweep/journal.h"
#include "experiments/eval/metrics.h"
#include "experiments/eval/summary.h"
#include "experiments/eval/spec_options.h"
#include "experiments/sweep/sweep.h"

static const char cmd[] = "sweep";

static void usage(FILE *out) {
  fprintf(out,
          "usage: kapprox sweep [options]\n\n"
          "Ablation sweep: inputs x schemes x m x seeds, every point evaluated by every\n"
          "metric.  Each finished point is journalled at once (OUT.journal), so an\n"
          "interrupted sweep (Ctrl-C, kill -9, power loss) resumes when the same command\n"
          "runs again; nothing is lost or counted twice.  When all points are done it\n"
          "writes OUT (long CSV, sorted), OUT.summary.csv (mean, standard error, 95%%\n"
          "t-interval over seeds) and OUT.slopes.csv (slope of log error vs log m).\n\n"
          "Grid:\n"
          "  --schemes LIST      feature maps (default: the first six of prf, orf, pff-mc,\n"
          "                      pff-sobol, wpff-sobol, wdcf, pff-halton that exist;\n"
          "                      this build: %s)\n"
          "                      all: %s\n"
          "  --m LIST            numbers of features (default 8:1024, i.e. 8,16,...,1024)\n"
          "  --seeds LIST        feature-map seeds (default 0:9)\n"
          "  --norms LIST        synthetic inputs, one per norm of q and k, e.g. 0.5,1,1.5,2;\n"
          "                      an item lo:hi draws norms uniformly (default 1; none when\n"
          "                      --input is given, unless --norms is given too; 'none': no\n"
          "                      synthetic input)\n"
          "  --tokens N          synthetic tokens per head (default 256)\n"
          "  --dim D             synthetic head dimension d (default 64)\n"
          "  --data-seed S       synthetic data (and V of files without v) (default 0)\n"
          "  --input FILE.h5     Q/K file (repeatable); every selected head is an input\n"
          "  --layers LIST       layers of the files (default all)\n"
          "  --heads LIST        heads of the files (default all)\n"
          "  --max-tokens N      first N tokens of each head (default all)\n"
          "  --causal / --no-causal  mask (default: the file's attribute; synthetic: no)\n"
          "  --kernel K          softmax (default) or gauss\n"
          "  --radii MODE        sequence (default) or stratified (PFF-type maps)\n"
          "  --calib-pairs P     calibration pairs of fitted weights (default max(4m, 2048))\n"
          "  --calib-all-pairs   fit weights on every (q, k) pair of the head once\n"
          "                      instead of random pairs\n"
          "  --ridge R           pull of fitted weights toward D = 1 (default 1e-3)\n"
          "\nRunning:\n"
          "  --out FILE.csv      results (default sweep.csv); journal FILE.csv.journal\n"
          "  --shard i/N         run only shard i of N (1 <= i <= N; points p with\n"
          "                      p mod N = i-1); combine with kapprox merge\n"
          "  --force             discard an existing journal/results of another grid\n"
          "  --dry-run           print the grid, its fingerprint and this shard's size, and\n"
          "                      how much of it the journal holds; compute nothing\n"
          "  --threads T         OpenMP threads (default: all cores)\n"
          "  --quiet             no progress line and no messages\n"
          "  -h, --help          this text\n"
          "\nExit status: 0 complete, 1 runtime error, 2 usage error, 3 complete but some\n"
          "points failed (value NaN, reason in the results' failure column), 130\n"
          "interrupted (rerun the same command to resume).\n"
          "\nExamples:\n"
          "  kapprox sweep --norms 0.5,1,1.5,2 --out results/sweep.csv\n"
          "  kapprox sweep --shard 3/8 --out part3.csv   # then: kapprox merge all.csv part*.csv\n",
          "listed at the end", kx_fmap_names());
}

/* The convergence rates at a glance: slope of log error against log m per
 * input and scheme, for the metrics most often quoted. */
static void print_slopes(const char *out) {
  static const int shown[] = {KX_METRIC_KERNEL_REL_FRO, KX_METRIC_ATTN_TV, KX_METRIC_OUT_REL_ERR};
  kx_results res = {0};
  kx_slope_row *L = NULL;
  size_t nl = 0;
  if (kx_results_read_csv(out, &res) || kx_fit_slopes(&res, &L, &nl)) {
    kx_results_free(&res);
    return;
  }
  printf("slope of log(error) vs log(m) +- standard error (Monte Carlo: -1/2; paper's QMC claim: -1)\n");
  /* as wide as the longest name (at least the widths of earlier versions): names are not cut */
  int w_in = 24, w_scheme = 12;
  for (size_t i = 0; i < nl; i++) {
    if ((int)strlen(L[i].input) > w_in) w_in = (int)strlen(L[i].input);
    if ((int)strlen(L[i].scheme) > w_scheme) w_scheme = (int)strlen(L[i].scheme);
  }
  printf("%-*s %-*s", w_in, "input", w_scheme, "scheme");
  for (size_t k = 0; k < sizeof shown / sizeof shown[0]; k++) printf(" %18s", kx_metrics[shown[k]].name);
  printf("\n");
  for (size_t i = 0; i < nl; i++) {
    /* one line per (input, kernel, scheme), at its first row: maps that do
     * not estimate the kernel have no kernel_rel_fro row */
    int seen = 0;
    for (size_t j = 0; j < i && !seen; j++)
      seen = !strcmp(L[j].input, L[i].input) && !strcmp(L[j].scheme, L[i].scheme) && !strcmp(L[j].kernel, L[i].kernel);
    if (seen) continue;
    printf("%-*s %-*s", w_in, L[i].input, w_scheme, L[i].scheme);
    for (size_t k = 0; k < sizeof shown / sizeof shown[0]; k++) {
      char cell[48] = "n/a";
      for (size_t j = 0; j < nl; j++)
        if (L[j].metric == shown[k] && !strcmp(L[j].input, L[i].input) && !strcmp(L[j].scheme, L[i].scheme) &&
            !strcmp(L[j].kernel, L[i].kernel) && L[j].slope == L[j].slope)
          snprintf(cell, sizeof cell, "%.3f +- %.3f", L[j].slope, L[j].slope_se);
      printf(" %18s", cell);
    }
    printf("\n");
  }
  free(L);
  kx_results_free(&res);
}

static void usage_with_defaults(FILE *out, void *ctx) {
  (void)ctx;
  usage(out);
  char **names;
  size_t n;
  if (!kx_spec_default_schemes(KX_SCHEMES_COMPARISON, &names, &n)) {
    fprintf(out, "\nDefault schemes of this build:");
    for (size_t i = 0; i < n; i++) fprintf(out, "%s%s", i ? "," : " ", names[i]);
    fprintf(out, "\n");
    kx_free_strings(names, n);
  }
}

/* What the command line says beyond the grid. */
typedef struct {
  kx_sweep *sweep;
  const char *out;
  int quiet, dry_run;
  size_t threads, throttle;
} sweep_cli;

enum { O_OUT, O_SHARD, O_FORCE, O_THREADS, O_QUIET, O_THROTTLE, O_DRYRUN };

static int on_option(void *ctx, int id, const char *arg) {
  sweep_cli *c = ctx;
  switch (id) {
  case O_OUT: c->out = arg; return kx_check_output_path(arg, "--out");
  case O_SHARD: return kx_parse_shard(arg, &c->sweep->shard_i, &c->sweep->shard_n);
  case O_FORCE: c->sweep->force = 1; return 0;
  case O_THREADS: return kx_parse_size(arg, "--threads", 1, 4096, &c->threads);
  case O_QUIET: c->quiet = 1; return 0;
  case O_THROTTLE: return kx_parse_size(arg, "--throttle-ms", 0, 60000, &c->throttle);
  default: c->dry_run = 1; return 0;
  }
}

static const kx_cli_option own_options[] = {
    {"out", 1, O_OUT},     {"shard", 1, O_SHARD},   {"force", 0, O_FORCE},     {"threads", 1, O_THREADS},
    {"quiet", 0, O_QUIET}, {"dry-run", 0, O_DRYRUN},
    /* test hook, deliberately undocumented: pause after each point so a
     * test can kill the sweep part-way */
    {"throttle-ms", 1, O_THROTTLE}, {NULL, 0, 0}};

/* Parses the command line and prepares the grid; 0 to run, else the exit
 * status (-1: --help shown). */
static int parse(int argc, char **argv, sweep_cli *c) {
  kx_cli_command command = {cmd, KX_OPT_INPUTS | KX_OPT_LAYERS_HEADS | KX_OPT_MAX_TOKENS | KX_OPT_SYNTHETIC |
                                      KX_OPT_NORMS | KX_OPT_CAUSAL | KX_OPT_SCHEMES | KX_OPT_M | KX_OPT_SEEDS |
                                      KX_OPT_KERNEL | KX_OPT_MAP | KX_OPT_ALL_PAIRS,
                            "", own_options, on_option, c, usage_with_defaults};
  kx_spec_args a = {0};
  kx_spec_defaults(&a.spec);
  int rc = kx_spec_parse_cli(&command, argc, argv, &a);
  if (rc) return rc;
  /* synthetic norm 1 unless files are the inputs (or --norms says otherwise) */
  if (!a.norms_given && a.inputs_given) a.spec.n_norms = 0;
  a.spec.norm_labels = 1;
  if ((rc = kx_spec_args_finish(&command, &a, KX_SCHEMES_COMPARISON, "8:1024", "0:9"))) return rc;
  c->sweep->grid = a.spec;
  c->sweep->throttle_ms = (unsigned)c->throttle;
  rc = kx_sweep_prepare(c->sweep);
  if (!rc) return 0;
  kx_cli_error(cmd, "%s", kx_error_message());
  kx_sweep_free(c->sweep);
  kx_spec_free(&c->sweep->grid);
  /* a file that cannot be read (or lacks a layer or head) is a runtime
   * failure, as in kernel-error; a bad grid is a usage error */
  return c->sweep->input_error || rc != KX_EINVAL ? 1 : 2;
}

static void dry_run(const kx_sweep *g, const char *out) {
  const kx_spec *s = &g->grid;
  size_t mine = 0;
  for (size_t p = g->shard_i - 1; p < g->n_points; p += g->shard_n) mine++;
  printf("grid %016llx: %zu inputs x %zu schemes x %zu m x %zu seeds = %zu points; shard %zu/%zu holds %zu\n",
         (unsigned long long)g->fingerprint, g->n_inputs, s->n_schemes, s->n_m, s->n_seeds, g->n_points, g->shard_i,
         g->shard_n, mine);
  for (size_t i = 0; i < g->n_inputs; i++)
    printf("  input %zu: %s layer %d head %d\n", i, g->inputs[i].label, g->inputs[i].layer, g->inputs[i].head);
  printf("spec %s\n", g->spec);
  char *j, *sm, *sl;
  if (kx_sweep_paths(out, &j, &sm, &sl)) return;
  kx_journal_contents c;
  char *header = kx_sweep_header(g->fingerprint, g->n_points, g->shard_i, g->shard_n, g->spec);
  if (kx_journal_read(j, &c)) printf("journal %s: none yet\n", j);
  else printf("journal %s: %zu records%s, %zu damaged line(s)\n", j, c.n,
              c.header && header && !strcmp(c.header, header) ? "" : " (of ANOTHER grid or shard)", c.dropped);
  free(header);
  kx_journal_contents_free(&c);
  free(j);
  free(sm);
  free(sl);
}

/* The run's outcome on stderr (and the slopes on stdout); the exit status. */
static int report(int rc, const kx_sweep_report *rep, const char *out, int quiet) {
  if (rc) {
    kx_cli_error(cmd, "%s", kx_error_message());
    if (rep->conflict)
      fprintf(stderr, "kapprox sweep: rerun with the original options to resume, use --force to discard "
              "what is there, or choose another --out\n");
    return 1;
  }
  if (rep->interrupted) {
    fprintf(stderr, "kapprox sweep: interrupted with %zu of %zu points saved in %s.journal; run the same "
            "command again to resume\n", rep->resumed + rep->computed, rep->shard_points, out);
    return 130;
  }
  if (!quiet) {
    if (rep->repaired)
      fprintf(stderr, "finished replacing the final files of %s, which an earlier run was killed in the "
              "middle of\n", out);
    if (rep->dropped) fprintf(stderr, "dropped %zu damaged journal line(s) (torn by an interruption); "
                              "their points were recomputed\n", rep->dropped);
    fprintf(stderr, "%zu points (%zu resumed from the journal, %zu computed) in %.1f s; wrote %s",
            rep->shard_points, rep->resumed, rep->computed, rep->seconds, out);
    char *j, *s, *l;
    if (!kx_sweep_paths(out, &j, &s, &l)) {
      fprintf(stderr, ", %s, %s", s, l);
      free(j);
      free(s);
      free(l);
    }
    fputc('\n', stderr);
    print_slopes(out);
  }
  if (!rep->failed) return 0;
  fprintf(stderr, "kapprox sweep: %zu point(s) failed (value NaN, reason in the 'failure' column of %s); "
          "every other point was computed (exit status %d)\n", rep->failed, out, KX_EXIT_SOME_FAILED);
  return KX_EXIT_SOME_FAILED;
}

int cmd_sweep(int argc, char **argv) {
  kx_sweep g;
  kx_sweep_defaults(&g);
  sweep_cli c = {.sweep = &g, .out = "sweep.csv"};
  int rc = parse(argc, argv, &c);
  if (rc) return rc < 0 ? 0 : rc;
  if (c.dry_run) {
    dry_run(&g, c.out);
  } else {
    if (c.threads) omp_set_num_threads((int)c.threads);
    g.progress = !c.quiet && kx_stderr_is_tty();
    if (!c.quiet)
      fprintf(stderr, "sweep: %zu inputs x %zu schemes x %zu m x %zu seeds = %zu points%s (grid %016llx)\n",
              g.n_inputs, g.grid.n_schemes, g.grid.n_m, g.grid.n_seeds, g.n_points,
              g.shard_n > 1 ? ", this shard a slice" : "", (unsigned long long)g.fingerprint);
    kx_sweep_report rep;
    rc = report(kx_sweep_run(&g, c.out, &rep), &rep, c.out, c.quiet);
  }
  kx_sweep_free(&g);
  kx_spec_free(&g.grid);
  return rc;
}
