/* kapprox bench-features: feature-map throughput (vectors per second) of
 * every registered scheme, and for the DCT maps the same map computed as a
 * dense OpenBLAS product (experiments/bench/bench_features.h). */
#include <cblas.h>
#include <getopt.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/kx_atomic.h"
#include "core/kx_cli.h"
#include "core/kx_error.h"
#include "experiments/bench/bench_features.h"
#include "experiments/commands/commands.h"
#include "experiments/eval/spec.h"

static const char cmd[] = "bench-features";

static void usage(FILE *out) {
  fprintf(out,
          "usage: kapprox bench-features [options]\n\n"
          "Throughput of kx_fmap_apply_log (vectors per second, best of --reps runs after\n"
          "a warm-up) for each scheme, input dimension d and feature count m = d x mult;\n"
          "column 'phi vec/s': kx_fmap_apply, the features themselves (exponentials included).\n"
          "The DCT maps (wdcf, wdcf-norm, dcf, wdcf-code) are also timed as a dense\n"
          "OpenBLAS product with their materialised m x d matrix (column 'dense-blas':\n"
          "a single-threaded DGEMM per thread over its part of the batch);\n"
          "'max|diff|' is the largest difference between the two results.  A last table\n"
          "times the decoder's float32 map (kx_posfeat_forward: performer, pff) on the\n"
          "same inputs rounded to float, against the measured SGEMM rate.\n\n"
          "  --schemes LIST    comma-separated schemes (default: all registered)\n"
          "  --d LIST          input dimensions (default 64,128)\n"
          "  --mult LIST       m / d factors (default 1,2,4,8)\n"
          "  --batch N         vectors per apply call (default 4096)\n"
          "  --reps N          timed repetitions, the best is reported (default 5)\n"
          "  --threads N       OpenMP and OpenBLAS threads (default 1: per-core figures)\n"
          "  --calib-pairs N   calibration pairs for fitted schemes (default 512)\n"
          "  --seed S          seed of maps and data (default 1)\n"
          "  --out FILE.csv    also write the figures as CSV (atomically)\n"
          "  --native-only     skip the dense-blas timing (to profile the native path alone)\n"
          "  --help            this text\n");
}

typedef struct {
  char **schemes;
  size_t n_schemes;
  size_t ds[16], n_d, mults[16], n_mult;
  size_t batch, reps, threads, calib_pairs;
  int native_only;
  uint64_t seed;
  const char *out;
} bench_settings;

/* 0 to run, else the exit status (-1: --help shown). */
static int parse(int argc, char **argv, bench_settings *o) {
  static const struct option opts[] = {
      {"schemes", required_argument, 0, 'S'}, {"d", required_argument, 0, 'd'},
      {"mult", required_argument, 0, 'm'},    {"batch", required_argument, 0, 'n'},
      {"reps", required_argument, 0, 'r'},    {"threads", required_argument, 0, 't'},
      {"calib-pairs", required_argument, 0, 'p'}, {"seed", required_argument, 0, 's'},
      {"out", required_argument, 0, 'o'},     {"help", no_argument, 0, 'h'},
      {"native-only", no_argument, 0, 'N'},
      {0, 0, 0, 0}};
  const char *schemes_arg = "all";
  int rc = 0, c;
  optind = 1;
  opterr = 0;
  while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
    switch (c) {
    case 'h': usage(stdout); return -1;
    case 'S': schemes_arg = optarg; break;
    case 'd': rc = kx_parse_size_list(optarg, "--d", 1, 16384, o->ds, 16, &o->n_d); break;
    case 'm': rc = kx_parse_size_list(optarg, "--mult", 1, 64, o->mults, 16, &o->n_mult); break;
    case 'n': rc = kx_parse_size(optarg, "--batch", 1, 1u << 20, &o->batch); break;
    case 'r': rc = kx_parse_size(optarg, "--reps", 1, 1000, &o->reps); break;
    case 't': rc = kx_parse_size(optarg, "--threads", 1, 1024, &o->threads); break;
    case 'p': rc = kx_parse_size(optarg, "--calib-pairs", 1, KX_SPEC_MAX_CALIB_PAIRS, &o->calib_pairs); break;
    case 's': rc = kx_parse_u64(optarg, "--seed", &o->seed); break;
    case 'o': o->out = optarg; break;
    case 'N': o->native_only = 1; break;
    default:
      kx_cli_error(cmd, "unknown or incomplete option '%s' (see --help)", argv[optind - 1]);
      return 2;
    }
    if (rc) return kx_cli_value_error(cmd, NULL);
  }
  if (optind < argc) return kx_cli_extra_operand(cmd, argv[optind], "see --help");
  if (kx_spec_parse_schemes(schemes_arg, &o->schemes, &o->n_schemes)) {
    kx_cli_error(cmd, "%s", kx_error_message());
    return 2;
  }
  return 0;
}

/* One scheme at (d, m): a line of the table and rows of the CSV. */
static void bench_map(const bench_settings *o, kx_bench_fmaps *b, const char *scheme, size_t d, size_t m,
                      double peak, FILE *csv) {
  kx_bench_fmap_times t;
  if (kx_bench_fmap_time(b, scheme, d, m, o->native_only, &t)) {
    /* One scheme out of range (e.g. a sequence's dimension limit) should
     * not end the benchmark. */
    fprintf(stderr, "kapprox bench-features: %s d=%zu m=%zu skipped: %s\n", scheme, d, m, kx_error_message());
    return;
  }
  if (t.dense_error[0])
    fprintf(stderr, "kapprox bench-features: %s d=%zu m=%zu dense path failed: %s\n", scheme, d, m, t.dense_error);
  const double tn = t.native_s, te = t.phi_s, td = t.dense_s, diff = t.max_diff;
  const double vn = (double)o->batch / tn, ve = (double)o->batch / te, vd = (double)o->batch / td;
  const double gf = vn * 2.0 * (double)m * (double)d / 1e9;
  if (isnan(td))
    printf("%-12s %5zu %6zu %14.4g %8.2f %6.1f %12.4g %14s %9s %10s\n", scheme, d, m, vn, gf, 100 * gf / peak, ve,
           "-", "-", "-");
  else
    printf("%-12s %5zu %6zu %14.4g %8.2f %6.1f %12.4g %14.4g %9.2f %10.2g\n", scheme, d, m, vn, gf,
           100 * gf / peak, ve, vd, vn / vd, diff);
  if (!isnan(t.transform_s)) {
    /* The transform's own flops: FMA-free additions and multiplications
     * against the DGEMM's FMAs counted twice, the same SIMD limit. */
    const double tgf = (double)o->batch * t.transform_flops / t.transform_s / 1e9;
    printf("  transform: %.0f flops/vector, %.2f GF/s = %.1f%% of the DGEMM peak, %.1f%% of native time\n",
           t.transform_flops, tgf, 100 * tgf / peak, 100 * t.transform_s / tn);
  }
  fflush(stdout);
  if (csv) {
    fprintf(csv, "%s,native,%zu,%zu,%zu,%zu,%zu,%.6g,%.6g,,%.4g,%.4g\n", scheme, d, m, o->batch, o->threads,
            o->reps, tn, vn, gf, peak);
    fprintf(csv, "%s,native-phi,%zu,%zu,%zu,%zu,%zu,%.6g,%.6g,,%.4g,%.4g\n", scheme, d, m, o->batch, o->threads,
            o->reps, te, ve, ve * 2.0 * (double)m * (double)d / 1e9, peak);
    if (!isnan(td))
      fprintf(csv, "%s,dense-blas,%zu,%zu,%zu,%zu,%zu,%.6g,%.6g,%.3g,%.4g,%.4g\n", scheme, d, m, o->batch,
              o->threads, o->reps, td, vd, diff, vd * 2.0 * (double)m * (double)d / 1e9, peak);
  }
}

/* The float32 decoder map's table: every (d, m) of the settings. */
static int float_maps(const bench_settings *o, kx_bench_fmaps *b, size_t max_d, size_t max_m) {
  kx_bench_float_map fm;
  if (kx_bench_float_map_alloc(&fm, o->batch, max_d, max_m)) {
    kx_cli_error(cmd, "%s", kx_error_message());
    return 1;
  }
  const double speak = kx_bench_gemm_peak(1, (int)o->threads);
  printf("\nfloat32 decoder map (kx_posfeat_forward, queries: performer, performer-prf, pff), %zu sequences\n"
         "of %zu tokens; measured SGEMM peak (384^3, %zu thread%s): %.1f GFLOP/s\n%5s %6s %14s %8s %6s\n",
         fm.sequences, fm.tokens, o->threads, o->threads == 1 ? "" : "s", speak, "d", "m", "float vec/s", "GF/s",
         "%peak");
  int rc = 0;
  for (size_t i = 0; i < o->n_d && !rc; i++)
    for (size_t j = 0; j < o->n_mult && !rc; j++) {
      const size_t d = o->ds[i], m = d * o->mults[j], n = fm.sequences * fm.tokens;
      double best;
      if (kx_bench_float_map_time(&fm, b, d, m, &best)) {
        kx_cli_error(cmd, "%s", kx_error_message());
        rc = 1;
        break;
      }
      const double gf = 2.0 * (double)m * (double)d * (double)n / best / 1e9;
      printf("%5zu %6zu %14.4g %8.2f %6.1f\n", d, m, (double)n / best, gf, 100 * gf / speak);
    }
  kx_bench_float_map_free(&fm);
  return rc;
}

int cmd_bench_features(int argc, char **argv) {
  bench_settings o = {.ds = {64, 128}, .n_d = 2, .mults = {1, 2, 4, 8}, .n_mult = 4, .batch = 4096, .reps = 5,
                      .threads = 1, .calib_pairs = 512, .seed = 1};
  int rc = parse(argc, argv, &o);
  if (rc) return rc < 0 ? 0 : rc;
  size_t max_d = 0, max_mult = 0, max_m = 0;
  for (size_t i = 0; i < o.n_d; i++) max_d = o.ds[i] > max_d ? o.ds[i] : max_d;
  for (size_t i = 0; i < o.n_mult; i++) max_mult = o.mults[i] > max_mult ? o.mults[i] : max_mult;
  for (size_t i = 0; i < o.n_d; i++)
    for (size_t j = 0; j < o.n_mult; j++) max_m = o.ds[i] * o.mults[j] > max_m ? o.ds[i] * o.mults[j] : max_m;
  if (o.batch * max_d * max_mult * max_d > ((size_t)1 << 31)) {
    kx_cli_error(cmd, "batch x m x d = %zu x %zu x %zu is too large for one run", o.batch, max_d * max_mult, max_d);
    kx_free_strings(o.schemes, o.n_schemes);
    return 2;
  }

  omp_set_num_threads((int)o.threads);
  /* BLAS runs inside the OpenMP threads (the dense path, the DCT maps'
   * DCT-I, the peak measurement): one BLAS thread each. */
  openblas_set_num_threads(1);

  kx_bench_fmaps b;
  kx_atomic_file csv = {0};
  if (kx_bench_fmaps_alloc(&b, o.batch, o.reps, o.calib_pairs, o.seed, max_d, max_mult)) {
    kx_cli_error(cmd, "%s", kx_error_message());
    kx_free_strings(o.schemes, o.n_schemes);
    return 1;
  }
  if (o.out) {
    if (kx_atomic_open(&csv, o.out)) {
      kx_cli_error(cmd, "%s", kx_error_message());
      rc = 1;
      goto done;
    }
    fprintf(csv.fp, "scheme,path,d,m,batch,threads,reps,best_seconds,vectors_per_second,max_abs_diff,gflops,dgemm_peak_gflops\n");
  }

  const double peak = kx_bench_gemm_peak(0, (int)o.threads);
  printf("feature-map throughput: batch %zu, best of %zu after warm-up, %zu thread%s\n", o.batch,
         o.reps, o.threads, o.threads == 1 ? "" : "s");
  printf("measured DGEMM peak (384^3, %zu thread%s): %.1f GFLOP/s; GF/s below counts the dense\n"
         "map's 2 m d flops per vector (an effective rate for the DCT maps)\n\n",
         o.threads, o.threads == 1 ? "" : "s", peak);
  printf("%-12s %5s %6s %14s %8s %6s %12s %14s %9s %10s\n", "scheme", "d", "m", "native vec/s", "GF/s",
         "%peak", "phi vec/s", "dense-blas v/s", "nat/dense", "max|diff|");
  for (size_t id = 0; id < o.n_d; id++) {
    const size_t d = o.ds[id];
    kx_bench_fmaps_inputs(&b, d);
    for (size_t im = 0; im < o.n_mult; im++)
      for (size_t s = 0; s < o.n_schemes; s++) bench_map(&o, &b, o.schemes[s], d, d * o.mults[im], peak, csv.fp);
  }
  rc = float_maps(&o, &b, max_d, max_m);
  if (csv.fp && kx_atomic_commit(&csv)) {
    kx_cli_error(cmd, "%s", kx_error_message());
    rc = 1;
  }
done:
  if (rc && csv.fp) kx_atomic_abort(&csv);
  kx_bench_fmaps_free(&b);
  kx_free_strings(o.schemes, o.n_schemes);
  return rc;
}
