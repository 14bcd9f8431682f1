/* kapprox plot: the figures of experiments/plot/figures.h (error against
 * m and against the input norm, attention maps, sampler points) with
 * gnuplot, PNG and SVG. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/kx_cli.h"
#include "core/kx_error.h"
#include "experiments/commands/commands.h"
#include "experiments/eval/attn_maps.h"
#include "experiments/eval/metrics.h"
#include "experiments/eval/spec_options.h"
#include "experiments/plot/figures.h"
#include "experiments/plot/gnuplot.h"
#include "samplers/sequence.h"

static const char cmd[] = "plot";

static void usage(FILE *out) {
  fprintf(out,
          "usage: kapprox plot [--results SWEEP.csv] [options]\n\n"
          "Draws the figures with gnuplot (PNG via pngcairo and SVG) into --outdir, after\n"
          "writing the data files the scripts read into OUTDIR/data:\n"
          "  err-vs-m      (a) error vs m, log-log, one line per scheme with 95%% intervals\n"
          "                    over seeds, fitted slopes in the legend, reference slopes\n"
          "                    -1/2 and -1                         (needs --results)\n"
          "  err-vs-norm   (b) error vs input norm at fixed m (needs --results of a sweep\n"
          "                    with at least two synthetic --norms)\n"
          "  attn-maps     (c) attention maps of one head: exact, each scheme, difference\n"
          "  points        (d) each sampler's points projected to two coordinates\n\n"
          "  --results FILE.csv  results of kapprox sweep (or kernel-error/compare --out)\n"
          "  --outdir DIR        where figures go (default figures; created)\n"
          "  --figures LIST      which of err-vs-m,err-vs-norm,attn-maps,points (default:\n"
          "                      all that the inputs allow)\n"
          "  --metric NAME       metric of (a) and (b) (default kernel_rel_fro; one of\n"
          "                      %s)\n"
          "  --input LABEL       input of (a) (default: the first in the results); 'all':\n"
          "                      one figure per input, err-vs-m-1, err-vs-m-2, ...\n"
          "  --at-m M            m of (b) (default 256 if present, else the largest)\n"
          "  --formats LIST      png,svg (default both)\n"
          "  --no-render         only write the data files (no gnuplot)\n"
          "  --scripts DIR       gnuplot scripts (default: $KAPPROX_PLOTS, the source\n"
          "                      tree's plots/, then the installed copy)\n"
          "Attention maps (c):\n"
          "  --map-schemes LIST  (default: the sweep's default schemes)\n"
          "  --map-m M           features (default 64)     --map-seed S  (default 0)\n"
          "  --map-input FILE.h5 Q/K file, with --map-layer L and --map-head H (default 0, 0)\n"
          "  --map-tokens N      synthetic tokens (default 64)\n"
          "  --map-dim D         synthetic d (default 16)  --map-norm X (default 2)\n"
          "  --map-data-seed S   synthetic data seed (default 0)\n"
          "Points (d):\n"
          "  --points-samplers LIST  (default mc,sobol,sobol-lms,halton,halton-perm)\n"
          "  --points-n N        points per sampler (default 256)\n"
          "  --points-dim S      dimension (default 8)  --points-coords I,J (default 1,2)\n"
          "  -h, --help          this text\n\n"
          "Example:\n  kapprox sweep --norms 0.5,1,1.5,2 --out sweep.csv\n"
          "  kapprox plot --results sweep.csv --outdir figures\n", kx_metric_list());
}

static void print_note(void *user, kx_plot_note kind, const char *text) {
  (void)user;
  fprintf(stderr, "%s%s\n", kind == KX_PLOT_NOTE_SKIPPED ? "kapprox plot: " : "", text);
}

static int has(char **list, size_t n, const char *s) {
  for (size_t i = 0; i < n; i++)
    if (!strcmp(list[i], s)) return 1;
  return 0;
}

/* The command line beyond the map's spec (--map-*). */
typedef struct {
  kx_plot ctx;
  const char *results, *figures, *metric_name, *input, *formats, *scripts, *samplers;
  size_t at_m, pn, pdim, coords[2];
} plot_cli;

enum { O_RESULTS, O_OUTDIR, O_FIGURES, O_METRIC, O_INPUT, O_ATM, O_FORMATS, O_NORENDER, O_SCRIPTS, O_PSAMPLERS,
       O_PN, O_PDIM, O_PCOORDS };

static const kx_cli_option own_options[] = {
    {"results", 1, O_RESULTS}, {"outdir", 1, O_OUTDIR},   {"figures", 1, O_FIGURES}, {"metric", 1, O_METRIC},
    {"input", 1, O_INPUT},     {"at-m", 1, O_ATM},        {"formats", 1, O_FORMATS}, {"no-render", 0, O_NORENDER},
    {"scripts", 1, O_SCRIPTS}, {"points-samplers", 1, O_PSAMPLERS}, {"points-n", 1, O_PN},
    {"points-dim", 1, O_PDIM}, {"points-coords", 1, O_PCOORDS}, {NULL, 0, 0}};

static int on_option(void *ctx, int id, const char *arg) {
  plot_cli *c = ctx;
  size_t n;
  switch (id) {
  case O_RESULTS: c->results = arg; return 0;
  case O_OUTDIR: c->ctx.outdir = arg; return 0;
  case O_FIGURES: c->figures = arg; return 0;
  case O_METRIC: c->metric_name = arg; return 0;
  case O_INPUT: c->input = arg; return 0;
  case O_ATM: return kx_parse_size(arg, "--at-m", 1, KX_SPEC_MAX_M, &c->at_m);
  case O_FORMATS: c->formats = arg; return 0;
  case O_NORENDER: c->ctx.render = 0; return 0;
  case O_SCRIPTS: c->scripts = arg; return 0;
  case O_PSAMPLERS: c->samplers = arg; return 0;
  case O_PN: return kx_parse_size(arg, "--points-n", 1, 1u << 20, &c->pn);
  case O_PDIM: return kx_parse_size(arg, "--points-dim", 2, KX_SPEC_MAX_DIM, &c->pdim);
  default:
    if (kx_parse_size_list(arg, "--points-coords", 1, KX_SPEC_MAX_DIM, c->coords, 2, &n)) return KX_EINVAL;
    return n == 2 ? 0 : kx_fail(KX_EINVAL, "--points-coords takes two coordinates, e.g. 1,2");
  }
}

static void usage_of(FILE *out, void *ctx) {
  (void)ctx;
  usage(out);
}

/* The lists of figures, formats and samplers, checked. */
typedef struct {
  char **figs, **fmts, **samplers;
  size_t nfigs, nfmts, nsamplers;
  int metric;
} plot_lists;

static void free_lists(plot_lists *l) {
  kx_free_strings(l->figs, l->nfigs);
  kx_free_strings(l->fmts, l->nfmts);
  kx_free_strings(l->samplers, l->nsamplers);
}

static int parse_lists(plot_cli *c, plot_lists *l) {
  static const char *const known[] = {"err-vs-m", "err-vs-norm", "attn-maps", "points"};
  memset(l, 0, sizeof *l);
  l->metric = kx_metric_lookup(c->metric_name);
  int rc = l->metric < 0 ? kx_fail(KX_EINVAL, "unknown --metric '%s' (known: %s)", c->metric_name, kx_metric_list()) : 0;
  if (!rc && c->figures) rc = kx_split_list(c->figures, "--figures", &l->figs, &l->nfigs);
  for (size_t i = 0; i < l->nfigs && !rc; i++) {
    int ok = 0;
    for (int k = 0; k < 4; k++) ok |= !strcmp(l->figs[i], known[k]);
    if (!ok) rc = kx_fail(KX_EINVAL, "unknown figure '%s' (known: err-vs-m,err-vs-norm,attn-maps,points)", l->figs[i]);
  }
  if (!rc && c->formats) {
    rc = kx_split_list(c->formats, "--formats", &l->fmts, &l->nfmts);
    c->ctx.png = c->ctx.svg = 0;
    for (size_t i = 0; i < l->nfmts && !rc; i++) {
      if (!strcmp(l->fmts[i], "png")) c->ctx.png = 1;
      else if (!strcmp(l->fmts[i], "svg")) c->ctx.svg = 1;
      else rc = kx_fail(KX_EINVAL, "--formats: '%s' is neither png nor svg", l->fmts[i]);
    }
  }
  if (!rc) rc = kx_split_list(c->samplers, "--points-samplers", &l->samplers, &l->nsamplers);
  if (!rc && !c->samplers[0]) rc = kx_fail(KX_EINVAL, "--points-samplers: empty list");
  for (size_t i = 0; i < l->nsamplers && !rc; i++)
    if (!kx_sequence_lookup(l->samplers[i])) rc = kx_fail(KX_EINVAL, "unknown sampler '%s'", l->samplers[i]);
  if (!rc && (strchr(c->ctx.outdir, '\'') || (c->scripts && strchr(c->scripts, '\''))))
    rc = kx_fail(KX_EINVAL, "paths for gnuplot must not contain a single quote");
  return rc;
}

/* --map-* options: one head (synthetic 64 tokens, d = 16, norm 2, causal),
 * m = 64, seed 0.  0 to go on, else the exit status (-1: --help shown). */
static int parse(int argc, char **argv, plot_cli *c, kx_spec_args *a) {
  kx_cli_command command = {cmd, KX_OPT_INPUT | KX_OPT_LAYER_HEAD | KX_OPT_SYNTHETIC | KX_OPT_NORM | KX_OPT_SCHEMES |
                                     KX_OPT_M_ONE | KX_OPT_SEED,
                            "map-", own_options, on_option, c, usage_of};
  kx_spec *s = &a->spec;
  kx_attention_map_spec_defaults(s);
  int rc = kx_spec_parse_cli(&command, argc, argv, a);
  if (rc) return rc;
  if (a->inputs_given) s->n_norms = 0;
  return kx_spec_args_finish(&command, a, KX_SCHEMES_COMPARISON, NULL, NULL);
}

int cmd_plot(int argc, char **argv) {
  plot_cli c = {.ctx = {.outdir = "figures", .png = 1, .svg = 1, .render = 1, .note = print_note},
                .metric_name = "kernel_rel_fro",
                .samplers = "mc,sobol,sobol-lms,halton,halton-perm", .pn = 256, .pdim = 8, .coords = {1, 2}};
  kx_spec_args a = {0};
  int rc = parse(argc, argv, &c, &a);
  if (rc) return rc < 0 ? 0 : rc;
  plot_lists l;
  rc = parse_lists(&c, &l);
  int want_a = l.figs ? has(l.figs, l.nfigs, "err-vs-m") : c.results != NULL;
  int want_b = l.figs ? has(l.figs, l.nfigs, "err-vs-norm") : c.results != NULL;
  int want_c = l.figs ? has(l.figs, l.nfigs, "attn-maps") : 1;
  int want_d = l.figs ? has(l.figs, l.nfigs, "points") : 1;
  if (!rc && (want_a || want_b) && !c.results) rc = kx_fail(KX_EINVAL, "err-vs-m and err-vs-norm need --results SWEEP.csv");
  if (rc) {
    kx_cli_error(cmd, "%s", kx_error_message());
    free_lists(&l);
    kx_spec_free(&a.spec);
    return 2;
  }
  char scripts_dir[4096];
  rc = kx_plot_prepare(&c.ctx);
  if (!rc && c.ctx.render) rc = kx_plot_scripts(c.scripts, "err_vs_m.gp", scripts_dir, sizeof scripts_dir);
  c.ctx.scripts = scripts_dir;
  if (!rc && (want_a || want_b))
    rc = kx_plot_results(&c.ctx, c.results, c.input, l.metric, c.at_m, want_a, want_b, l.figs != NULL);
  if (!rc && want_c) rc = kx_plot_attn_maps(&c.ctx, &a.spec);
  if (!rc && want_d) rc = kx_plot_points(&c.ctx, l.samplers, l.nsamplers, c.pn, c.pdim, c.coords[0], c.coords[1]);
  if (rc) kx_cli_error(cmd, "%s", kx_error_message());
  else fprintf(stderr, "figures in %s/ (data in %s/)\n", c.ctx.outdir, c.ctx.datadir);
  free_lists(&l);
  kx_spec_free(&a.spec);
  return rc ? 1 : 0;
}
