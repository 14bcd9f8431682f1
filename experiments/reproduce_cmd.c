/* kapprox reproduce kernel: the kernel-approximation table — each scheme's
 * error at m = d and m = 4d, mean ± standard error over seeds, on
 * synthetic data and optionally on a Q/K file — as Markdown or LaTeX. */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/kx_cli.h"
#include "core/kx_error.h"
#include "experiments/commands.h"
#include "experiments/grid.h"
#include "experiments/metrics.h"
#include "experiments/qk_file.h"
#include "experiments/summary.h"
#include "experiments/sweep.h"

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
          "  --metrics LIST      one table per metric (default kernel_rel_fro; also\n"
          "                      kernel_rel_mse, attn_kl, attn_tv, attn_max_abs, out_rel_err)\n"
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
          "Example:\n  kapprox reproduce kernel --input qk.h5 --layers 0 --latex --out table.tex\n");
}

typedef struct {
  char label[160];   /* column group heading */
  char input[128];   /* input column value in the results */
  size_t d;
} column_group;

static int to_int_list(const char *s, const char *what, int *out, size_t *n) {
  size_t tmp[KX_GRID_MAX];
  if (kx_parse_size_list(s, what, 0, 1u << 30, tmp, KX_GRID_MAX, n)) return KX_EINVAL;
  for (size_t i = 0; i < *n; i++) out[i] = (int)tmp[i];
  return 0;
}

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
    latex_escape(fp, kx_metric_names[metric]);
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
            kx_metric_names[metric], seeds, setup);
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

static int reproduce_kernel(int argc, char **argv) {
  enum { O_SCHEMES = 256, O_SEEDS, O_METRICS, O_DIM, O_TOKENS, O_NORM, O_DSEED, O_INPUT, O_LAYERS, O_HEADS,
         O_MAXTOK, O_KERNEL, O_LATEX, O_OUT, O_QUIET };
  static const struct option opts[] = {
      {"schemes", required_argument, 0, O_SCHEMES}, {"seeds", required_argument, 0, O_SEEDS},
      {"metrics", required_argument, 0, O_METRICS}, {"dim", required_argument, 0, O_DIM},
      {"tokens", required_argument, 0, O_TOKENS},   {"norm", required_argument, 0, O_NORM},
      {"data-seed", required_argument, 0, O_DSEED}, {"input", required_argument, 0, O_INPUT},
      {"layers", required_argument, 0, O_LAYERS},   {"heads", required_argument, 0, O_HEADS},
      {"max-tokens", required_argument, 0, O_MAXTOK}, {"kernel", required_argument, 0, O_KERNEL},
      {"latex", no_argument, 0, O_LATEX},           {"out", required_argument, 0, O_OUT},
      {"quiet", no_argument, 0, O_QUIET},           {"help", no_argument, 0, 'h'},
      {0, 0, 0, 0}};
  kx_grid g;
  kx_grid_defaults(&g);
  const char *schemes = NULL, *seed_list = "0:9", *metrics_arg = "kernel_rel_fro", *out = NULL, *input = NULL;
  int latex = 0, quiet = 0, rc = 0, c;
  optind = 1;
  opterr = 0;
  while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
    switch (c) {
    case 'h': usage(stdout); return 0;
    case O_SCHEMES: schemes = optarg; break;
    case O_SEEDS: seed_list = optarg; break;
    case O_METRICS: metrics_arg = optarg; break;
    case O_DIM: rc = kx_parse_size(optarg, "--dim", 1, 21200, &g.d); break;
    case O_TOKENS: rc = kx_parse_size(optarg, "--tokens", 1, 1u << 16, &g.tokens); break;
    case O_NORM: rc = kx_parse_norm_spec(optarg, &g.norm); break;
    case O_DSEED: rc = kx_parse_u64(optarg, "--data-seed", &g.data_seed); break;
    case O_INPUT: input = optarg; break;
    case O_LAYERS: rc = to_int_list(optarg, "--layers", g.layers, &g.n_layers); break;
    case O_HEADS: rc = to_int_list(optarg, "--heads", g.heads, &g.n_heads); break;
    case O_MAXTOK: rc = kx_parse_size(optarg, "--max-tokens", 1, 1u << 20, &g.max_tokens); break;
    case O_KERNEL:
      rc = kx_parse_kernel(optarg, &g.fmap.kernel);
      break;
    case O_LATEX: latex = 1; break;
    case O_OUT: rc = kx_check_output_path(optarg, "--out"); out = optarg; break;
    case O_QUIET: quiet = 1; break;
    default:
      kx_cli_error(cmd, "unknown or incomplete option '%s' (see kapprox reproduce kernel --help)", argv[optind - 1]);
      return 2;
    }
    if (rc) {
      kx_cli_error(cmd, "%s", kx_error_message());
      return 2;
    }
  }
  if (optind < argc) {
    kx_cli_error(cmd, "unexpected argument '%s'", argv[optind]);
    return 2;
  }
  char **metric_names = NULL;
  size_t n_metrics = 0;
  int metrics[KX_N_METRICS];
  rc = schemes ? kx_grid_parse_schemes(schemes, &g.schemes, &g.n_schemes)
               : kx_sweep_default_schemes(&g.schemes, &g.n_schemes);
  if (!rc) rc = kx_parse_u64_list(seed_list, "--seeds", g.seeds, KX_GRID_MAX, &g.n_seeds);
  if (!rc) rc = kx_split_list(metrics_arg, "--metrics", &metric_names, &n_metrics);
  if (!rc && n_metrics > KX_N_METRICS) rc = kx_fail(KX_EINVAL, "--metrics: at most %d", KX_N_METRICS);
  for (size_t i = 0; i < n_metrics && !rc; i++)
    if ((metrics[i] = kx_metric_lookup(metric_names[i])) < 0)
      rc = kx_fail(KX_EINVAL, "unknown metric '%s'", metric_names[i]);
  kx_free_strings(metric_names, n_metrics);
  if (rc) {
    kx_cli_error(cmd, "%s", kx_error_message());
    kx_free_strings(g.schemes, g.n_schemes);
    return 2;
  }
  g.progress = !quiet && kx_stderr_is_tty();
  /* synthetic first, then the file, each with its own m = d, 4d */
  column_group groups[2];
  size_t ng = 0;
  kx_results res = {0};
  groups[ng] = (column_group){.d = g.d};
  /* no '|' in headings: it would split a Markdown table cell */
  if (g.norm.lo == g.norm.hi) snprintf(groups[ng].label, sizeof groups[ng].label, "synthetic, norm %g", g.norm.lo);
  else snprintf(groups[ng].label, sizeof groups[ng].label, "synthetic, norms %g-%g", g.norm.lo, g.norm.hi);
  snprintf(groups[ng].input, sizeof groups[ng].input, "synthetic");
  ng++;
  g.m[0] = g.d;
  g.m[1] = 4 * g.d;
  g.n_m = 2;
  if (!quiet) fprintf(stderr, "reproduce kernel: synthetic, d = %zu, m = %zu and %zu\n", g.d, g.m[0], g.m[1]);
  rc = kx_grid_run(&g, &res);
  if (!rc && input) {
    size_t d = 0;
    rc = file_dim(input, g.layers, g.n_layers, &d);
    if (!rc) {
      groups[ng] = (column_group){.d = d};
      const char *base = strrchr(input, '/');
      snprintf(groups[ng].label, sizeof groups[ng].label, "%s", base ? base + 1 : input);
      snprintf(groups[ng].input, sizeof groups[ng].input, "%s", input);
      ng++;
      g.qk_path = input;
      g.m[0] = d;
      g.m[1] = 4 * d;
      if (!quiet) fprintf(stderr, "reproduce kernel: %s, d = %zu, m = %zu and %zu\n", input, d, g.m[0], g.m[1]);
      rc = kx_grid_run(&g, &res);
    }
  }
  kx_summary_row *S = NULL;
  size_t ns = 0;
  if (!rc) rc = kx_summarise(&res, &S, &ns);
  if (!rc) {
    kx_atomic_file af;
    FILE *fp = stdout;
    if (out) {
      rc = kx_atomic_open(&af, out);
      fp = rc ? NULL : af.fp;
    }
    if (fp) {
      char setup[512];
      snprintf(setup, sizeof setup, "%s kernel; synthetic: %zu tokens, d = %zu, norm %g, data seed %llu%s%s",
               g.fmap.kernel == KX_KERNEL_GAUSS ? "Gaussian" : "softmax", g.tokens, g.d, g.norm.lo,
               (unsigned long long)g.data_seed, input ? "; file: " : "", input ? input : "");
      for (size_t i = 0; i < n_metrics; i++) {
        if (i) fputc('\n', fp);
        write_table(fp, S, ns, g.schemes, g.n_schemes, groups, ng, metrics[i], g.n_seeds, latex, setup);
      }
      if (out) {
        if (ferror(fp)) {
          kx_atomic_abort(&af);
          rc = kx_fail(KX_EIO, "writing '%s' failed: %s", out, strerror(errno ? errno : EIO));
        } else {
          rc = kx_atomic_commit(&af);
        }
      }
    }
  }
  if (rc) kx_cli_error(cmd, "%s", kx_error_message());
  size_t failed = rc ? 0 : kx_results_failed_points(&res);
  if (failed)
    fprintf(stderr, "kapprox %s: %zu point(s) failed and are left out of the means (exit status %d)\n", cmd,
            failed, KX_EXIT_SOME_FAILED);
  free(S);
  kx_results_free(&res);
  kx_free_strings(g.schemes, g.n_schemes);
  return rc ? 1 : failed ? KX_EXIT_SOME_FAILED : 0;
}

static void usage_group(FILE *out) {
  fprintf(out, "usage: kapprox reproduce <target> [options]\n\n"
               "Tables of the paper's claims, from this toolkit's numbers.  Targets:\n"
               "  kernel   kernel-approximation error of each scheme at m = d and m = 4d\n"
               "  table2   the decoder converted to every linear-attention kind and fine-tuned\n"
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
  kx_cli_error("reproduce", "unknown target '%s' (known: kernel, table2)", argv[1]);
  return 2;
}
