/* Front ends of the kernel experiments: kernel-error, attn-fidelity and
 * compare share one option set and the grid runner; they differ in
 * defaults and in which metrics they show. */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/kx_cli.h"
#include "core/kx_error.h"
#include "experiments/bench/bench_features.h"
#include "experiments/commands/commands.h"
#include "experiments/eval/metrics.h"
#include "experiments/eval/runner.h"
#include "experiments/eval/spec_options.h"

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
          "  --input FILE.h5     Q/K file (docs/file-formats.md); else synthetic data\n"
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
          "  --profile           print where the time went (maps, exact side, metrics, CSV)\n"
          "                      and the share of the DGEMM rate reached, on stderr\n"
          "  -h, --help          this text\n"
          "\nExit status: 0 success, 1 runtime error, 2 usage error, 3 finished but some\n"
          "points failed (e.g. a weight fit that did not converge: value NaN, reason listed).\n"
          "\nFitted weights (wpff-*, wdcf*) are fitted on (q, k) pairs of the evaluated head.\n"
          "Example:\n  kapprox %s --schemes prf,pff-sobol --m 64,256 --seeds 0:4 --out err.csv\n",
          k->name, k->purpose, k->kernel_schemes_only ? "every kernel estimator" : "every scheme",
          kx_fmap_names(), k->name);
}

typedef struct {
  const command_kind *kind;
  const char *out;
  int quiet, profile;
} kernel_cli;

static void usage_of(FILE *out, void *ctx) { usage(((kernel_cli *)ctx)->kind, out); }

enum { O_OUT, O_QUIET, O_PROFILE };

static int on_option(void *ctx, int id, const char *arg) {
  kernel_cli *c = ctx;
  if (id == O_QUIET || id == O_PROFILE) {
    *(id == O_QUIET ? &c->quiet : &c->profile) = 1;
    return 0;
  }
  c->out = arg;
  return kx_check_output_path(arg, "--out");
}

static const kx_cli_option own_options[] = {
    {"out", 1, O_OUT}, {"quiet", 0, O_QUIET}, {"profile", 0, O_PROFILE}, {NULL, 0, 0}};

/* The workers' times are summed over threads; the rate is the counted
 * products (runner.h) over those seconds, against one thread's DGEMM
 * measured right after the run. */
static void print_profile(const kx_eval_profile *p, double write_s) {
  const kx_eval_times *t = &p->t;
  const double busy = t->map_build + t->features + t->kernel + t->attention + t->metrics;
  const int threads = omp_get_max_threads();
  const double peak = kx_bench_gemm_peak(0, 1), rate = busy > 0 ? p->flops / busy / 1e9 : 0;
  fprintf(stderr,
          "profile: %zu points of %zu head(s) on %d thread(s) in %.3f s (%.4f s wall a point and thread)\n"
          "  heads and their exact side  %8.3f s\n"
          "  building the maps           %8.3f s  (CPU seconds, summed over threads)\n"
          "  features of q and k         %8.3f s\n"
          "  estimated kernel            %8.3f s\n"
          "  attention rows and outputs  %8.3f s\n"
          "  metrics                     %8.3f s\n"
          "  writing the CSV             %8.3f s\n"
          "  products %.2f GFLOP as dense GEMMs: %.1f GFLOP/s a thread of CPU time, %.0f %% of one thread's "
          "DGEMM (%.1f GFLOP/s, 384^3)\n",
          p->points, p->heads, threads, p->wall + write_s, p->points ? p->wall * threads / (double)p->points : 0,
          p->load, t->map_build, t->features, t->kernel, t->attention, t->metrics, write_s, p->flops / 1e9, rate,
          peak > 0 ? 100 * rate / peak : 0, peak);
}

/* The table of the command's metrics, then the failed points; the exit status. */
static int report(const command_kind *kind, int rc, const kx_results *res, const kernel_cli *c) {
  if (rc) {
    kx_cli_error(kind->name, "%s", kx_error_message());
  } else if (!c->quiet) {
    kx_results_print_summary(res, stdout, kind->metrics, kind->n_metrics);
    fflush(stdout); /* keep the table before the file message when both go to one file */
    if (c->out) fprintf(stderr, "wrote %zu rows to %s\n", res->n, c->out);
  }
  size_t failed = rc ? 0 : kx_results_failed_points(res);
  if (failed)
    fprintf(stderr, "kapprox %s: %zu point(s) failed (value NaN, reason in the table%s); every other "
            "point was computed (exit status %d)\n", kind->name, failed,
            c->out ? " and the CSV's failure column" : "", KX_EXIT_SOME_FAILED);
  return rc ? 1 : failed ? KX_EXIT_SOME_FAILED : 0;
}

static int run(const command_kind *kind, int argc, char **argv) {
  kernel_cli c = {.kind = kind};
  kx_cli_command command = {kind->name, KX_OPT_INPUT | KX_OPT_LAYERS_HEADS | KX_OPT_MAX_TOKENS | KX_OPT_SYNTHETIC |
                                            KX_OPT_NORM | KX_OPT_CAUSAL | KX_OPT_SCHEMES | KX_OPT_M | KX_OPT_SEEDS |
                                            KX_OPT_KERNEL | KX_OPT_MAP,
                            "", own_options, on_option, &c, usage_of};
  kx_spec_args a = {0};
  kx_spec_defaults(&a.spec);
  int rc = kx_spec_parse_cli(&command, argc, argv, &a);
  if (rc) return rc < 0 ? 0 : rc;
  /* a file replaces the synthetic input */
  if (a.inputs_given) a.spec.n_norms = 0;
  rc = kx_spec_args_finish(&command, &a, kind->kernel_schemes_only ? KX_SCHEMES_KERNEL_ESTIMATORS : KX_SCHEMES_EVERY,
                           "16:1024", "0:9");
  if (rc) return rc;
  const kx_spec *s = &a.spec;
  if (kx_spec_check(s)) { /* a grid that cannot run is a usage error, as in sweep */
    kx_cli_error(kind->name, "%s", kx_error_message());
    kx_spec_free(&a.spec);
    return 2;
  }
  kx_run_options o = {.progress = !c.quiet && kx_stderr_is_tty()};
  if (strcmp(kind->name, "compare"))
    for (int i = 0; i < kind->n_metrics; i++) o.metric_mask |= 1u << kind->metrics[i];
  if (!c.quiet) {
    if (s->n_files) fprintf(stderr, "input %s\n", s->files[0]);
    else
      fprintf(stderr, "input synthetic: %zu tokens, d = %zu, norms %g..%g, data seed %llu, %s\n", s->tokens, s->d,
              s->norms[0].lo, s->norms[0].hi, (unsigned long long)s->data_seed, s->causal > 0 ? "causal" : "non-causal");
  }
  kx_results res = {0};
  kx_eval_profile prof = {0};
  if (c.profile) o.profile = &prof;
  rc = kx_spec_run(s, &o, &res);
  double t0 = omp_get_wtime();
  if (!rc && c.out) rc = kx_results_write_csv(&res, c.out);
  if (!rc && c.profile) print_profile(&prof, omp_get_wtime() - t0);
  int code = report(kind, rc, &res, &c);
  kx_results_free(&res);
  kx_spec_free(&a.spec);
  return code;
}

int cmd_kernel_error(int argc, char **argv) { return run(&kinds[0], argc, argv); }
int cmd_attn_fidelity(int argc, char **argv) { return run(&kinds[1], argc, argv); }
int cmd_compare(int argc, char **argv) { return run(&kinds[2], argc, argv); }
