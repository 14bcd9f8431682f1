/* kapprox reproduce kernel: the kernel-approximation table — each scheme's
 * error at m = d and m = 4d, mean ± standard error over seeds, on
 * synthetic data and optionally on a Q/K file — as Markdown or LaTeX. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/kx_cli.h"
#include "core/kx_error.h"
#include "experiments/commands/commands.h"
#include "experiments/eval/metrics.h"
#include "experiments/qk/qk_file.h"
#include "experiments/eval/summary.h"
#include "experiments/eval/runner.h"
#include "experiments/eval/spec_options.h"

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
  char label[160];   /* column group heading */
  char input[128];   /* input column value in the results */
  size_t d;
} column_group;

/* The head dimension of a Q/K file: that of its first selected layer. */
static int file_dim(const char *path, const int *layers, size_t n_layers, size_t *d) {
  kx_qk_file *f = kx_qk_open(path);
  if (!f) return KX_EIO;
  int rc = kx_fail(KX_EINVAL, "%s has none of the selected layers", path);
  for (size_t i = 0; i < kx_qk_n_layers(f); i++) {
    int sel = n_layers == 0;
    for (size_t k = 0; k < n_layers; k++) sel |= layers[k] == kx_qk_layer_index(f, i);
    if (!sel) continue;
    kx_qk_layer L;
    rc = kx_qk_layer_shape(f, i, &L);
    if (!rc) *d = L.d;
    kx_qk_layer_free(&L);
    break;
  }
  kx_qk_close(f);
  return rc;
}

static void cell(FILE *fp, const kx_summary_row *s, int best, int latex) {
  char buf[96];
  if (!s) snprintf(buf, sizeof buf, "n/a");
  else if (!s->n_seeds) snprintf(buf, sizeof buf, "failed");
  else if (s->n_failed) /* a mean over fewer seeds than the others says so */
    snprintf(buf, sizeof buf, latex ? "$%.3g$ (%zu of %zu seeds)" : "%.3g (%zu of %zu seeds)", s->mean, s->n_seeds,
             s->n_seeds + s->n_failed);
  else if (isnan(s->se)) snprintf(buf, sizeof buf, latex ? "$%.3g$" : "%.3g", s->mean);
  else snprintf(buf, sizeof buf, latex ? "$%.3g \\pm %.2g$" : "%.3g ± %.2g", s->mean, s->se);
  /* \boldmath: \textbf does not reach inside math mode */
  if (best && s) fprintf(fp, latex ? " & {\\boldmath%s}" : " | **%s**", buf);
  else fprintf(fp, latex ? " & %s" : " | %s", buf);
}

static void latex_escape(FILE *fp, const char *s) {
  for (; *s; s++) {
    if (strchr("_&%$#{}", *s)) fputc('\\', fp);
    fputc(*s, fp);
  }
}

static void write_table(FILE *fp, const kx_summary_row *S, size_t ns, char **schemes, size_t nsch,
                        const column_group *g, size_t ng, int metric, size_t seeds, int latex,
                        const char *setup) {
  size_t ncol = 2 * ng;
  /* the best (smallest) mean of each column */
  double best[16];
  for (size_t c = 0; c < ncol; c++) {
    best[c] = INFINITY;
    for (size_t s = 0; s < nsch; s++) {
      const kx_summary_row *r = kx_summary_find(S, ns, g[c / 2].input, schemes[s], metric, (c % 2 ? 4 : 1) * g[c / 2].d);
      if (r && r->mean < best[c]) best[c] = r->mean;
    }
  }
  if (latex) {
    fprintf(fp, "%% kapprox reproduce kernel: %s\n\\begin{table}[t]\n\\centering\n\\caption{", setup);
    latex_escape(fp, kx_metrics[metric].name);
    fprintf(fp, " of each feature map at $m = d$ and $m = 4d$, mean $\\pm$ standard error over %zu seeds.}\n", seeds);
    fprintf(fp, "\\begin{tabular}{l");
    for (size_t c = 0; c < ncol; c++) fputc('c', fp);
    fprintf(fp, "}\n\\toprule\n");
    for (size_t k = 0; k < ng; k++) {
      fprintf(fp, " & \\multicolumn{2}{c}{");
      latex_escape(fp, g[k].label);
      fputc('}', fp);
    }
    fprintf(fp, " \\\\\nscheme");
    for (size_t k = 0; k < ng; k++) fprintf(fp, " & $m = %zu$ & $m = %zu$", g[k].d, 4 * g[k].d);
    fprintf(fp, " \\\\\n\\midrule\n");
  } else {
    fprintf(fp, "**%s** at m = d and m = 4d, mean ± standard error over %zu seeds (%s; best in bold)\n\n",
            kx_metrics[metric].name, seeds, setup);
    fprintf(fp, "| scheme");
    for (size_t k = 0; k < ng; k++) fprintf(fp, " | %s, m = d = %zu | %s, m = 4d = %zu", g[k].label, g[k].d, g[k].label, 4 * g[k].d);
    fprintf(fp, " |\n|---");
    for (size_t c = 0; c < ncol; c++) fprintf(fp, "|---:");
    fprintf(fp, "|\n");
  }
  for (size_t s = 0; s < nsch; s++) {
    if (latex) latex_escape(fp, schemes[s]);
    else fprintf(fp, "| %s", schemes[s]);
    for (size_t c = 0; c < ncol; c++) {
      const kx_summary_row *r = kx_summary_find(S, ns, g[c / 2].input, schemes[s], metric, (c % 2 ? 4 : 1) * g[c / 2].d);
      cell(fp, r, r && r->mean == best[c], latex);
    }
    fprintf(fp, latex ? " \\\\\n" : " |\n");
  }
  if (latex) fprintf(fp, "\\bottomrule\n\\end{tabular}\n\\end{table}\n");
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

/* Synthetic first, then the file, each with its own m = d, 4d, into one
 * set of results; groups receive the tables' column groups. */
static int run_groups(const kx_spec *spec, int quiet, column_group *groups, size_t *ng, kx_results *res) {
  kx_spec s = *spec;
  kx_run_options o = {.progress = !quiet && kx_stderr_is_tty()};
  const kx_norm_spec norm = s.norms[0];
  groups[0] = (column_group){.d = s.d};
  /* no '|' in headings: it would split a Markdown table cell */
  if (norm.lo == norm.hi) snprintf(groups[0].label, sizeof groups[0].label, "synthetic, norm %g", norm.lo);
  else snprintf(groups[0].label, sizeof groups[0].label, "synthetic, norms %g-%g", norm.lo, norm.hi);
  snprintf(groups[0].input, sizeof groups[0].input, "synthetic");
  *ng = 1;
  s.n_files = 0;
  s.m[0] = s.d;
  s.m[1] = 4 * s.d;
  s.n_m = 2;
  if (!quiet) fprintf(stderr, "reproduce kernel: synthetic, d = %zu, m = %zu and %zu\n", s.d, s.m[0], s.m[1]);
  int rc = kx_spec_run(&s, &o, res);
  if (rc || !spec->n_files) return rc;
  const char *input = spec->files[0];
  size_t d = 0;
  if ((rc = file_dim(input, s.layers, s.n_layers, &d))) return rc;
  groups[1] = (column_group){.d = d};
  const char *base = strrchr(input, '/');
  snprintf(groups[1].label, sizeof groups[1].label, "%s", base ? base + 1 : input);
  snprintf(groups[1].input, sizeof groups[1].input, "%s", input);
  *ng = 2;
  s.n_norms = 0;
  s.n_files = 1;
  s.m[0] = d;
  s.m[1] = 4 * d;
  if (!quiet) fprintf(stderr, "reproduce kernel: %s, d = %zu, m = %zu and %zu\n", input, d, s.m[0], s.m[1]);
  return kx_spec_run(&s, &o, res);
}

/* One table per metric to --out (atomically) or stdout. */
static int write_tables(const kx_spec *s, const reproduce_cli *c, const kx_results *res, const column_group *groups,
                        size_t ng, const int *metrics, size_t n_metrics) {
  kx_summary_row *S = NULL;
  size_t ns = 0;
  int rc = kx_summarise(res, &S, &ns);
  kx_atomic_file af;
  FILE *fp = stdout;
  if (!rc && c->out) {
    rc = kx_atomic_open(&af, c->out);
    fp = rc ? NULL : af.fp;
  }
  if (!rc) {
    char setup[512];
    snprintf(setup, sizeof setup, "%s kernel; synthetic: %zu tokens, d = %zu, norm %g, data seed %llu%s%s",
             s->fmap.kernel == KX_KERNEL_GAUSS ? "Gaussian" : "softmax", s->tokens, s->d, s->norms[0].lo,
             (unsigned long long)s->data_seed, s->n_files ? "; file: " : "", s->n_files ? s->files[0] : "");
    for (size_t i = 0; i < n_metrics; i++) {
      if (i) fputc('\n', fp);
      write_table(fp, S, ns, s->schemes, s->n_schemes, groups, ng, metrics[i], s->n_seeds, c->latex, setup);
    }
    if (c->out && ferror(fp)) {
      kx_atomic_abort(&af);
      rc = kx_fail(KX_EIO, "writing '%s' failed: %s", c->out, strerror(errno ? errno : EIO));
    } else if (c->out) {
      rc = kx_atomic_commit(&af);
    }
  }
  free(S);
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
  column_group groups[2];
  size_t ng = 0;
  kx_results res = {0};
  rc = run_groups(&a.spec, c.quiet, groups, &ng, &res);
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

static void usage_group(FILE *out) {
  fprintf(out, "usage: kapprox reproduce <target> [options]\n\n"
               "Tables of the paper's claims, from this toolkit's numbers.  Targets:\n"
               "  kernel   kernel-approximation error of each scheme at m = d and m = 4d\n"
               "  table2   the decoder converted to every linear-attention kind and fine-tuned\n"
               "  budget   the gap to the teacher of converted kinds at several fine-tuning budgets\n"
               "  all      every table and figure of the toolkit into one folder, with an index\n\n"
               "kapprox reproduce <target> --help for the options of one target.\n");
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
  if (!strcmp(argv[1], "kernel")) return reproduce_kernel(argc - 1, argv + 1);
  if (!strcmp(argv[1], "table1")) return cmd_reproduce_table1(argc - 1, argv + 1);
  if (!strcmp(argv[1], "table2")) return cmd_reproduce_table2(argc - 1, argv + 1);
  if (!strcmp(argv[1], "all")) return cmd_reproduce_all(argc - 1, argv + 1);
  if (!strcmp(argv[1], "budget")) return cmd_reproduce_budget(argc - 1, argv + 1);
  kx_cli_error("reproduce", "unknown target '%s' (known: kernel, table1, table2, budget, all)", argv[1]);
  return 2;
}
