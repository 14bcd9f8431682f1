/* kapprox sweep: the resumable, shardable ablation grid (sweep.h). */
#include <getopt.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/kx_cli.h"
#include "core/kx_error.h"
#include "commands.h"
#include "experiments/journal.h"
#include "experiments/metrics.h"
#include "experiments/summary.h"
#include "experiments/sweep.h"

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

static int to_int_list(const char *s, const char *what, int *out, size_t *n) {
  size_t tmp[KX_GRID_MAX];
  if (kx_parse_size_list(s, what, 0, 1u << 30, tmp, KX_GRID_MAX, n)) return KX_EINVAL;
  for (size_t i = 0; i < *n; i++) out[i] = (int)tmp[i];
  return 0;
}

static int parse_norms(const char *s, kx_sweep *g) {
  if (!strcmp(s, "none")) {
    g->n_norms = 0;
    return 0;
  }
  char **items;
  size_t n;
  if (kx_split_list(s, "--norms", &items, &n)) return KX_EINVAL;
  int rc = 0;
  if (n > KX_GRID_MAX) rc = kx_fail(KX_EINVAL, "--norms: more than %d values", KX_GRID_MAX);
  for (size_t i = 0; i < n && !rc; i++) rc = kx_parse_norm_spec(items[i], &g->norms[i]);
  if (!rc) g->n_norms = n;
  kx_free_strings(items, n);
  return rc;
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
  for (size_t k = 0; k < sizeof shown / sizeof shown[0]; k++) printf(" %18s", kx_metric_names[shown[k]]);
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

int cmd_sweep(int argc, char **argv) {
  enum { O_INPUT = 256, O_LAYERS, O_HEADS, O_MAXTOK, O_TOKENS, O_DIM, O_NORMS, O_DSEED, O_CAUSAL,
         O_NOCAUSAL, O_SCHEMES, O_M, O_SEEDS, O_KERNEL, O_RADII, O_PAIRS, O_RIDGE, O_OUT, O_SHARD,
         O_FORCE, O_THREADS, O_QUIET, O_THROTTLE, O_ALLPAIRS, O_DRYRUN };
  static const struct option opts[] = {
      {"input", required_argument, 0, O_INPUT},   {"layers", required_argument, 0, O_LAYERS},
      {"heads", required_argument, 0, O_HEADS},   {"max-tokens", required_argument, 0, O_MAXTOK},
      {"tokens", required_argument, 0, O_TOKENS}, {"dim", required_argument, 0, O_DIM},
      {"norms", required_argument, 0, O_NORMS},   {"data-seed", required_argument, 0, O_DSEED},
      {"causal", no_argument, 0, O_CAUSAL},       {"no-causal", no_argument, 0, O_NOCAUSAL},
      {"schemes", required_argument, 0, O_SCHEMES}, {"m", required_argument, 0, O_M},
      {"seeds", required_argument, 0, O_SEEDS},   {"kernel", required_argument, 0, O_KERNEL},
      {"radii", required_argument, 0, O_RADII},   {"calib-pairs", required_argument, 0, O_PAIRS},
      {"ridge", required_argument, 0, O_RIDGE},   {"out", required_argument, 0, O_OUT},
      {"calib-all-pairs", no_argument, 0, O_ALLPAIRS}, {"dry-run", no_argument, 0, O_DRYRUN},
      {"shard", required_argument, 0, O_SHARD},   {"force", no_argument, 0, O_FORCE},
      {"threads", required_argument, 0, O_THREADS}, {"quiet", no_argument, 0, O_QUIET},
      /* test hook, deliberately undocumented: pause after each point so a
       * test can kill the sweep part-way */
      {"throttle-ms", required_argument, 0, O_THROTTLE},
      {"help", no_argument, 0, 'h'},              {0, 0, 0, 0}};
  kx_sweep g;
  kx_sweep_defaults(&g);
  const char *out = "sweep.csv", *schemes = NULL, *m_list = "8:1024", *seed_list = "0:9";
  int quiet = 0, rc = 0, norms_given = 0, dry_run = 0;
  size_t threads = 0, throttle = 0;
  optind = 1;
  opterr = 0;
  int c;
  while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
    switch (c) {
    case 'h': {
      usage(stdout);
      char **names;
      size_t n;
      if (!kx_sweep_default_schemes(&names, &n)) {
        printf("\nDefault schemes of this build:");
        for (size_t i = 0; i < n; i++) printf("%s%s", i ? "," : " ", names[i]);
        printf("\n");
        kx_free_strings(names, n);
      }
      kx_free_strings(g.schemes, g.n_schemes);
      return 0;
    }
    case O_INPUT:
      if (g.n_files == KX_SWEEP_MAX_FILES) rc = kx_fail(KX_EINVAL, "at most %d --input files", KX_SWEEP_MAX_FILES);
      else g.files[g.n_files++] = optarg;
      break;
    case O_LAYERS: rc = to_int_list(optarg, "--layers", g.layers, &g.n_layers); break;
    case O_HEADS: rc = to_int_list(optarg, "--heads", g.heads, &g.n_heads); break;
    case O_MAXTOK: rc = kx_parse_size(optarg, "--max-tokens", 1, 1u << 20, &g.max_tokens); break;
    case O_TOKENS: rc = kx_parse_size(optarg, "--tokens", 1, 1u << 16, &g.tokens); break;
    case O_DIM: rc = kx_parse_size(optarg, "--dim", 1, 21200, &g.d); break;
    case O_NORMS: rc = parse_norms(optarg, &g); norms_given = 1; break;
    case O_DSEED: rc = kx_parse_u64(optarg, "--data-seed", &g.data_seed); break;
    case O_CAUSAL: g.causal = 1; break;
    case O_NOCAUSAL: g.causal = 0; break;
    case O_SCHEMES: schemes = optarg; break;
    case O_M: m_list = optarg; break;
    case O_SEEDS: seed_list = optarg; break;
    case O_KERNEL:
      rc = kx_parse_kernel(optarg, &g.fmap.kernel);
      break;
    case O_RADII:
      g.fmap.radii = optarg;
      if (strcmp(optarg, "sequence") && strcmp(optarg, "stratified"))
        rc = kx_fail(KX_EINVAL, "--radii must be sequence or stratified, got '%s'", optarg);
      break;
    case O_PAIRS: rc = kx_parse_size(optarg, "--calib-pairs", 1, 1u << 24, &g.fmap.n_calib_pairs); break;
    case O_RIDGE: rc = kx_parse_nonneg_double(optarg, "--ridge", &g.fmap.ridge); break;
    case O_ALLPAIRS: g.fmap.calib_all_pairs = 1; break;
    case O_DRYRUN: dry_run = 1; break;
    case O_OUT:
      out = optarg;
      rc = kx_check_output_path(optarg, "--out");
      break;
    case O_SHARD: rc = kx_parse_shard(optarg, &g.shard_i, &g.shard_n); break;
    case O_FORCE: g.force = 1; break;
    case O_THREADS: rc = kx_parse_size(optarg, "--threads", 1, 4096, &threads); break;
    case O_QUIET: quiet = 1; break;
    case O_THROTTLE: rc = kx_parse_size(optarg, "--throttle-ms", 0, 60000, &throttle); break;
    default:
      kx_cli_error(cmd, "unknown or incomplete option '%s' (see kapprox sweep --help)", argv[optind - 1]);
      return 2;
    }
    if (rc) {
      kx_cli_error(cmd, "%s", kx_error_message());
      return 2;
    }
  }
  if (optind < argc) {
    kx_cli_error(cmd, "unexpected argument '%s' (see kapprox sweep --help)", argv[optind]);
    return 2;
  }
  if (!norms_given && g.n_files == 0) {
    g.norms[0] = (kx_norm_spec){1.0, 1.0};
    g.n_norms = 1;
  }
  g.throttle_ms = (unsigned)throttle;
  rc = schemes ? kx_grid_parse_schemes(schemes, &g.schemes, &g.n_schemes)
               : kx_sweep_default_schemes(&g.schemes, &g.n_schemes);
  if (!rc) rc = kx_parse_size_list(m_list, "--m", 1, 1u << 20, g.m, KX_GRID_MAX, &g.n_m);
  if (!rc) rc = kx_parse_u64_list(seed_list, "--seeds", g.seeds, KX_GRID_MAX, &g.n_seeds);
  if (!rc) {
    rc = kx_sweep_prepare(&g);
    /* a file that cannot be read (or lacks a layer or head) is a runtime
     * failure, as in kernel-error; a bad grid is a usage error */
    if (rc && (g.input_error || rc != KX_EINVAL)) {
      kx_cli_error(cmd, "%s", kx_error_message());
      kx_sweep_free(&g);
      kx_free_strings(g.schemes, g.n_schemes);
      return 1;
    }
  }
  if (rc) {
    kx_cli_error(cmd, "%s", kx_error_message());
    kx_sweep_free(&g);
    kx_free_strings(g.schemes, g.n_schemes);
    return 2;
  }
  if (dry_run) {
    size_t mine = 0;
    for (size_t p = g.shard_i - 1; p < g.n_points; p += g.shard_n) mine++;
    printf("grid %016llx: %zu inputs x %zu schemes x %zu m x %zu seeds = %zu points; shard %zu/%zu holds %zu\n",
           (unsigned long long)g.fingerprint, g.n_inputs, g.n_schemes, g.n_m, g.n_seeds, g.n_points, g.shard_i,
           g.shard_n, mine);
    for (size_t i = 0; i < g.n_inputs; i++) printf("  input %zu: %s layer %d head %d\n", i, g.inputs[i].label,
                                                   g.inputs[i].layer, g.inputs[i].head);
    printf("spec %s\n", g.spec);
    char *j, *sm, *sl;
    if (!kx_sweep_paths(out, &j, &sm, &sl)) {
      kx_journal_contents c;
      char *header = kx_sweep_header(g.fingerprint, g.n_points, g.shard_i, g.shard_n, g.spec);
      if (kx_journal_read(j, &c)) printf("journal %s: none yet\n", j);
      else printf("journal %s: %zu records%s, %zu damaged line(s)\n", j, c.n,
                  c.header && header && !strcmp(c.header, header) ? "" : " (of ANOTHER grid or shard)", c.dropped);
      free(header);
      kx_journal_contents_free(&c);
      free(j);
      free(sm);
      free(sl);
    }
    kx_sweep_free(&g);
    kx_free_strings(g.schemes, g.n_schemes);
    return 0;
  }
  if (threads) omp_set_num_threads((int)threads);
  g.progress = !quiet && kx_stderr_is_tty();
  if (!quiet)
    fprintf(stderr, "sweep: %zu inputs x %zu schemes x %zu m x %zu seeds = %zu points%s (grid %016llx)\n",
            g.n_inputs, g.n_schemes, g.n_m, g.n_seeds, g.n_points,
            g.shard_n > 1 ? ", this shard a slice" : "", (unsigned long long)g.fingerprint);
  kx_sweep_report rep;
  rc = kx_sweep_run(&g, out, &rep);
  int code = 0;
  if (rc) {
    kx_cli_error(cmd, "%s", kx_error_message());
    code = 1;
  } else if (rep.interrupted) {
    fprintf(stderr, "kapprox sweep: interrupted with %zu of %zu points saved in %s.journal; run the same "
            "command again to resume\n", rep.resumed + rep.computed, rep.shard_points, out);
    code = 130;
  } else if (!quiet) {
    if (rep.repaired)
      fprintf(stderr, "finished replacing the final files of %s, which an earlier run was killed in the "
              "middle of\n", out);
    if (rep.dropped) fprintf(stderr, "dropped %zu damaged journal line(s) (torn by an interruption); "
                             "their points were recomputed\n", rep.dropped);
    fprintf(stderr, "%zu points (%zu resumed from the journal, %zu computed) in %.1f s; wrote %s",
            rep.shard_points, rep.resumed, rep.computed, rep.seconds, out);
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
  if (!rc && !rep.interrupted && rep.failed) {
    fprintf(stderr, "kapprox sweep: %zu point(s) failed (value NaN, reason in the 'failure' column of %s); "
            "every other point was computed (exit status %d)\n", rep.failed, out, KX_EXIT_SOME_FAILED);
    code = KX_EXIT_SOME_FAILED;
  }
  kx_sweep_free(&g);
  kx_free_strings(g.schemes, g.n_schemes);
  return code;
}
