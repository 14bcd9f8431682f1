/* Front ends of the kernel experiments: kernel-error, attn-fidelity and
 * compare share one option set and the grid runner; they differ in
 * defaults and in which metrics they show. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/kx_cli.h"
#include "core/kx_error.h"
#include "commands.h"
#include "experiments/grid.h"
#include "experiments/metrics.h"

typedef struct {
  const char *name;
  const char *purpose;
  int metrics[KX_N_METRICS];
  int n_metrics;
  int kernel_schemes_only; /* default schemes exclude maps that do not estimate the kernel */
} command_kind;

static const command_kind kinds[] = {
    {"kernel-error", "kernel error of feature maps against exp(q.k) (or the Gaussian kernel)",
     {KX_METRIC_KERNEL_REL_FRO, KX_METRIC_KERNEL_REL_MSE}, 2, 1},
    {"attn-fidelity", "attention-map fidelity of feature maps against exact softmax attention",
     {KX_METRIC_ATTN_KL, KX_METRIC_ATTN_TV, KX_METRIC_ATTN_MAX_ABS, KX_METRIC_OUT_REL_ERR}, 4, 0},
    {"compare", "every scheme's kernel error and attention fidelity (the main job)",
     {KX_METRIC_KERNEL_REL_FRO, KX_METRIC_ATTN_KL, KX_METRIC_ATTN_TV, KX_METRIC_OUT_REL_ERR}, 4, 0},
};

static void usage(const command_kind *k, FILE *out) {
  fprintf(out,
          "usage: kapprox %s [options]\n\n%s.\n\n"
          "Input (default: synthetic Q/K/V):\n"
          "  --input FILE.h5     Q/K file (README: Q/K file schema); else synthetic data\n"
          "  --layers LIST       layers of the file to use (default all), e.g. 0,2 or 0:3\n"
          "  --heads LIST        heads to use (default all)\n"
          "  --max-tokens N      use the first N tokens of each head (default all)\n"
          "  --tokens N          synthetic: tokens per head (default 256)\n"
          "  --dim D             synthetic: head dimension d (default 64)\n"
          "  --norm SPEC         synthetic: norm of every q and k, '1.0' or uniform 'lo:hi'\n"
          "                      (default 1.0; norms are of the scaled vectors, logit = q.k)\n"
          "  --data-seed S       synthetic data (and random V for files without v) (default 0)\n"
          "  --causal / --no-causal  attention mask (default: the file's attribute; synthetic: no)\n"
          "\nFeature maps:\n"
          "  --schemes LIST      default: %s\n"
          "                      all: %s\n"
          "  --m LIST            numbers of features, e.g. 64 or 16,64 or 16:1024 (doubling)\n"
          "                      (default 16:1024)\n"
          "  --seeds LIST        feature-map seeds, e.g. 0:9 (default 0:9)\n"
          "  --kernel K          softmax (exp(q.k), default) or gauss (exp(-|q-k|^2/2))\n"
          "  --radii MODE        sequence (default) or stratified radii for PFF-type maps\n"
          "  --calib-pairs P     calibration pairs for fitted weights (default max(4m, 2048))\n"
          "  --ridge R           pull of fitted weights toward D = 1 (default 1e-3)\n"
          "\nOutput:\n"
          "  --out FILE.csv      every (input, layer, head, scheme, m, seed, metric) as CSV\n"
          "  --quiet             no progress and no table\n"
          "  -h, --help          this text\n"
          "\nExit status: 0 success, 1 runtime error, 2 usage error, 3 finished but some\n"
          "points failed (e.g. a weight fit that did not converge: value NaN, reason listed).\n"
          "\nFitted weights (wpff-*, wdcf*) are fitted on (q, k) pairs of the evaluated head.\n"
          "Example:\n  kapprox %s --schemes prf,pff-sobol --m 64,256 --seeds 0:4 --out err.csv\n",
          k->name, k->purpose, k->kernel_schemes_only ? "every kernel estimator" : "every scheme",
          kx_fmap_names(), k->name);
}

static int default_schemes(int kernel_only, char ***items, size_t *n) {
  char buf[1024] = "";
  for (size_t i = 0; kx_fmap_types[i]; i++) {
    if (kernel_only && !kx_fmap_types[i]->kernel_estimator) continue;
    if (buf[0]) strcat(buf, ",");
    strncat(buf, kx_fmap_types[i]->name, sizeof buf - strlen(buf) - 1);
  }
  return kx_split_list(buf, "schemes", items, n);
}

static int to_int_list(const char *s, const char *what, int *out, size_t *n) {
  size_t tmp[KX_GRID_MAX];
  if (kx_parse_size_list(s, what, 0, 1u << 30, tmp, KX_GRID_MAX, n)) return KX_EINVAL;
  for (size_t i = 0; i < *n; i++) out[i] = (int)tmp[i];
  return 0;
}

static int run(const command_kind *kind, int argc, char **argv) {
  enum { O_INPUT = 256, O_LAYERS, O_HEADS, O_MAXTOK, O_TOKENS, O_DIM, O_NORM, O_DSEED, O_CAUSAL,
         O_NOCAUSAL, O_SCHEMES, O_M, O_SEEDS, O_KERNEL, O_RADII, O_PAIRS, O_RIDGE, O_OUT, O_QUIET };
  static const struct option opts[] = {
      {"input", required_argument, 0, O_INPUT},   {"layers", required_argument, 0, O_LAYERS},
      {"heads", required_argument, 0, O_HEADS},   {"max-tokens", required_argument, 0, O_MAXTOK},
      {"tokens", required_argument, 0, O_TOKENS}, {"dim", required_argument, 0, O_DIM},
      {"norm", required_argument, 0, O_NORM},     {"data-seed", required_argument, 0, O_DSEED},
      {"causal", no_argument, 0, O_CAUSAL},       {"no-causal", no_argument, 0, O_NOCAUSAL},
      {"schemes", required_argument, 0, O_SCHEMES}, {"m", required_argument, 0, O_M},
      {"seeds", required_argument, 0, O_SEEDS},   {"kernel", required_argument, 0, O_KERNEL},
      {"radii", required_argument, 0, O_RADII},   {"calib-pairs", required_argument, 0, O_PAIRS},
      {"ridge", required_argument, 0, O_RIDGE},   {"out", required_argument, 0, O_OUT},
      {"quiet", no_argument, 0, O_QUIET},         {"help", no_argument, 0, 'h'},
      {0, 0, 0, 0}};
  kx_grid g;
  kx_grid_defaults(&g);
  const char *out_path = NULL, *schemes = NULL, *m_list = "16:1024", *seed_list = "0:9";
  int quiet = 0, rc = 0;
  optind = 1;
  opterr = 0;
  int c;
  while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
    switch (c) {
    case 'h': usage(kind, stdout); return 0;
    case O_INPUT: g.qk_path = optarg; break;
    case O_LAYERS: rc = to_int_list(optarg, "--layers", g.layers, &g.n_layers); break;
    case O_HEADS: rc = to_int_list(optarg, "--heads", g.heads, &g.n_heads); break;
    case O_MAXTOK: rc = kx_parse_size(optarg, "--max-tokens", 1, 1u << 20, &g.max_tokens); break;
    case O_TOKENS: rc = kx_parse_size(optarg, "--tokens", 1, 1u << 16, &g.tokens); break;
    case O_DIM: rc = kx_parse_size(optarg, "--dim", 1, 21200, &g.d); break;
    case O_NORM: rc = kx_parse_norm_spec(optarg, &g.norm); break;
    case O_DSEED: rc = kx_parse_u64(optarg, "--data-seed", &g.data_seed); break;
    case O_CAUSAL: g.causal = 1; break;
    case O_NOCAUSAL: g.causal = 0; break;
    case O_SCHEMES: schemes = optarg; break;
    case O_M: m_list = optarg; break;
    case O_SEEDS: seed_list = optarg; break;
    case O_KERNEL:
      rc = kx_parse_kernel(optarg, &g.fmap.kernel);
      break;
    case O_RADII: g.fmap.radii = optarg; break;
    case O_PAIRS: rc = kx_parse_size(optarg, "--calib-pairs", 1, 1u << 24, &g.fmap.n_calib_pairs); break;
    case O_RIDGE: rc = kx_parse_nonneg_double(optarg, "--ridge", &g.fmap.ridge); break;
    case O_OUT:
      out_path = optarg;
      rc = kx_check_output_path(optarg, "--out");
      break;
    case O_QUIET: quiet = 1; break;
    default:
      kx_cli_error(kind->name, "unknown or incomplete option '%s' (see kapprox %s --help)",
                   argv[optind - 1], kind->name);
      return 2;
    }
    if (rc) {
      kx_cli_error(kind->name, "%s", kx_error_message());
      return 2;
    }
  }
  if (optind < argc) {
    kx_cli_error(kind->name, "unexpected argument '%s' (see kapprox %s --help)", argv[optind], kind->name);
    return 2;
  }
  if (strcmp(g.fmap.radii, "sequence") && strcmp(g.fmap.radii, "stratified")) {
    kx_cli_error(kind->name, "--radii must be sequence or stratified, got '%s'", g.fmap.radii);
    return 2;
  }
  rc = schemes ? kx_grid_parse_schemes(schemes, &g.schemes, &g.n_schemes)
               : default_schemes(kind->kernel_schemes_only, &g.schemes, &g.n_schemes);
  if (!rc) rc = kx_parse_size_list(m_list, "--m", 1, 1u << 20, g.m, KX_GRID_MAX, &g.n_m);
  if (!rc) rc = kx_parse_u64_list(seed_list, "--seeds", g.seeds, KX_GRID_MAX, &g.n_seeds);
  if (rc) {
    kx_cli_error(kind->name, "%s", kx_error_message());
    kx_free_strings(g.schemes, g.n_schemes);
    return 2;
  }
  g.progress = !quiet && kx_stderr_is_tty();
  if (strcmp(kind->name, "compare"))
    for (int i = 0; i < kind->n_metrics; i++) g.metric_mask |= 1u << kind->metrics[i];
  if (!quiet) {
    if (g.qk_path) fprintf(stderr, "input %s\n", g.qk_path);
    else
      fprintf(stderr, "input synthetic: %zu tokens, d = %zu, norms %g..%g, data seed %llu, %s\n",
              g.tokens, g.d, g.norm.lo, g.norm.hi, (unsigned long long)g.data_seed,
              g.causal > 0 ? "causal" : "non-causal");
  }
  kx_results res = {0};
  rc = kx_grid_run(&g, &res);
  if (!rc && out_path) rc = kx_results_write_csv(&res, out_path);
  if (rc) {
    kx_cli_error(kind->name, "%s", kx_error_message());
  } else if (!quiet) {
    kx_results_print_summary(&res, stdout, kind->metrics, kind->n_metrics);
    fflush(stdout); /* keep the table before the file message when both go to one file */
    if (out_path) fprintf(stderr, "wrote %zu rows to %s\n", res.n, out_path);
  }
  size_t failed = rc ? 0 : kx_results_failed_points(&res);
  if (failed)
    fprintf(stderr, "kapprox %s: %zu point(s) failed (value NaN, reason in the table%s); every other "
            "point was computed (exit status %d)\n", kind->name, failed,
            out_path ? " and the CSV's failure column" : "", KX_EXIT_SOME_FAILED);
  kx_results_free(&res);
  kx_free_strings(g.schemes, g.n_schemes);
  return rc ? 1 : failed ? KX_EXIT_SOME_FAILED : 0;
}

int cmd_kernel_error(int argc, char **argv) { return run(&kinds[0], argc, argv); }
int cmd_attn_fidelity(int argc, char **argv) { return run(&kinds[1], argc, argv); }
int cmd_compare(int argc, char **argv) { return run(&kinds[2], argc, argv); }
