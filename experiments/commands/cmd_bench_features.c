/* kapprox bench-features: feature-map throughput (vectors per second) of
 * every registered scheme, and for the DCT maps the same map computed as a
 * dense OpenBLAS product with its materialised W, so the O(d log d) FFTW
 * path can be weighed against an O(m d) GEMM at realistic sizes.
 *
 * Only kx_fmap_apply_log is timed, never creation: fitted schemes are
 * created on random calibration data with a fixed seed and few pairs (the
 * values of D do not change the cost of applying the map).  Each figure is
 * the best of --reps timed runs after one untimed warm-up run, on one batch
 * of random inputs (entries N(0, 1/d), |x| about 1). */
#include <cblas.h>
#include <getopt.h>
#include <gsl/gsl_rng.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "approx/fmap.h"
#include "approx/fmap_wdcf.h"
#include "core/kx_cli.h"
#include "core/kx_error.h"
#include "core/kx_seed.h"
#include "experiments/commands/commands.h"
#include "experiments/model/attn/dec_features.h"
#include "experiments/eval/spec.h"
#include "samplers/transforms.h"

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
  size_t batch, reps;
  double *x, *out, *W;
} bench_ctx;

/* Best wall time of `reps` calls of apply_log (with_exp: apply, phi
 * itself, the expression the PyTorch peer times) on the batch, after a
 * warm-up. */
static int time_native(const kx_fmap *f, const bench_ctx *b, int with_exp, double *best) {
  int (*apply)(const kx_fmap *, size_t, const double *, double *) = with_exp ? kx_fmap_apply : kx_fmap_apply_log;
  int rc = apply(f, b->batch, b->x, b->out);
  *best = INFINITY;
  for (size_t r = 0; r < b->reps && !rc; r++) {
    double t0 = kx_now_seconds();
    rc = apply(f, b->batch, b->x, b->out);
    double t = kx_now_seconds() - t0;
    if (t < *best) *best = t;
  }
  return rc;
}

/* The same map as GEMM (x W^T) plus its elementwise finish: the norm and
 * weight terms of the paper maps, the log-softmax of wdcf-code. */
static void dense_rows(const kx_fmap *f, const bench_ctx *b, size_t r0, size_t n, double *out) {
  const size_t m = f->m, d = f->d;
  const double *x = b->x + r0 * d;
  out += r0 * m;
  cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, (int)m, (int)d, 1.0, x, (int)d, b->W, (int)d, 0.0,
              out, (int)m);
  if (f->type != &kx_fmap_wdcf_code) {
    kx_fmap_finish_log(f, n, x, out);
    return;
  }
  for (size_t r = 0; r < n; r++) {
    double *z = out + r * m, mx = z[0], s = 0;
    for (size_t j = 1; j < m; j++) mx = z[j] > mx ? z[j] : mx;
    for (size_t j = 0; j < m; j++) s += exp(z[j] - mx);
    const double lse = mx + log(s);
    for (size_t j = 0; j < m; j++) z[j] -= lse;
  }
}

/* One contiguous part of the batch per OpenMP thread, each a
 * single-threaded DGEMM: the threads the native path uses too.  (With
 * OpenBLAS's own pool instead, its workers kept spinning after the call
 * and slowed the next scheme's native timing on two cores.) */
static void dense_apply(const kx_fmap *f, const bench_ctx *b, double *out) {
  const size_t n = b->batch;
#pragma omp parallel
  {
    const size_t nt = (size_t)omp_get_num_threads(), id = (size_t)omp_get_thread_num();
    const size_t r0 = n * id / nt, r1 = n * (id + 1) / nt;
    if (r1 > r0) dense_rows(f, b, r0, r1 - r0, out);
  }
}

static int time_dense(const kx_fmap *f, const bench_ctx *b, double *best, double *maxdiff) {
  int rc = kx_fmap_wdcf_dense(f, b->W);
  if (rc) return rc;
  const size_t nm = b->batch * f->m;
  double *ref = kx_malloc(nm * sizeof *ref);
  if (!ref) return KX_ENOMEM;
  if ((rc = kx_fmap_apply_log(f, b->batch, b->x, ref))) goto done;
  dense_apply(f, b, b->out);
  *maxdiff = 0;
  for (size_t i = 0; i < nm; i++) {
    if (isinf(ref[i]) && ref[i] == b->out[i]) continue; /* zero fitted weights */
    double e = fabs(ref[i] - b->out[i]);
    if (!(e <= *maxdiff)) *maxdiff = e;
  }
  *best = INFINITY;
  for (size_t r = 0; r < b->reps; r++) {
    double t0 = kx_now_seconds();
    dense_apply(f, b, b->out);
    double t = kx_now_seconds() - t0;
    if (t < *best) *best = t;
  }
done:
  free(ref);
  return rc;
}

/* The machine's own limit: the best DGEMM rate (GFLOP/s; SGEMM when single
 * is set) of n x n products on `threads` OpenMP threads, each a
 * single-threaded call on its share of the rows -- the way the kernels
 * measured against it use the cores.  (OpenBLAS's own thread pool would
 * leave workers spinning after the call, to compete with the OpenMP work
 * timed next.)  The best of 15 runs, short enough that on a shared machine
 * some run gets the cores to itself. */
double kx_bench_gemm_peak(int single, int threads) {
  const size_t n = 384;
  double best = INFINITY;
  void *a = calloc(n * n, 8), *b = calloc(n * n, 8), *c = calloc(n * n, 8);
  if (!a || !b || !c) {
    free(a), free(b), free(c);
    return NAN;
  }
  for (size_t i = 0; i < n * n; i++) {
    if (single) ((float *)a)[i] = ((float *)b)[i] = (float)(i % 7) * 0.125f;
    else ((double *)a)[i] = ((double *)b)[i] = (double)(i % 7) * 0.125;
  }
  const int blas_threads = openblas_get_num_threads();
  openblas_set_num_threads(1);
  for (int r = 0; r < 16; r++) {
    double t0 = kx_now_seconds();
#pragma omp parallel num_threads(threads > 1 ? threads : 1)
    {
      const size_t nt = (size_t)omp_get_num_threads(), id = (size_t)omp_get_thread_num();
      const size_t r0 = n * id / nt, rows = n * (id + 1) / nt - r0;
      if (single)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)rows, (int)n, (int)n, 1.0f,
                    (float *)a + r0 * n, (int)n, b, (int)n, 0.0f, (float *)c + r0 * n, (int)n);
      else
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)rows, (int)n, (int)n, 1.0,
                    (double *)a + r0 * n, (int)n, b, (int)n, 0.0, (double *)c + r0 * n, (int)n);
    }
    double t = kx_now_seconds() - t0;
    if (r && t < best) best = t; /* the first run warms up */
  }
  openblas_set_num_threads(blas_threads);
  free(a), free(b), free(c);
  return 2.0 * (double)n * (double)n * (double)n / best / 1e9;
}

/* Normals by inversion: gsl_randist.h would pull in GSL's own cblas
 * declarations, which clash with OpenBLAS's cblas.h. */
static void random_fill(gsl_rng *rng, size_t n, double sd, double *x) {
  for (size_t i = 0; i < n; i++) x[i] = sd * kx_normal_inv(gsl_rng_uniform_pos(rng));
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

/* The decoder's float32 map as its performer, performer-prf, performer-redraw
 * and pff kinds run it (kx_posfeat_forward, queries, alpha 1/2: the softmax
 * kernel): sequences of 128 tokens, one SGEMM each, on the OpenMP threads,
 * the batch's inputs rounded to float and a prf matrix.  The float
 * counterpart of the double table, for PyTorch's float32 figures. */
#define FLOAT_MAP_TOKENS 128
static int float_maps(const bench_settings *o, const bench_ctx *b, gsl_rng *rng) {
  const size_t T = o->batch < FLOAT_MAP_TOKENS ? o->batch : FLOAT_MAP_TOKENS, BH = o->batch / T, n = BH * T;
  size_t max_d = 0, max_m = 0;
  for (size_t i = 0; i < o->n_d; i++)
    for (size_t j = 0; j < o->n_mult; j++) {
      max_d = o->ds[i] > max_d ? o->ds[i] : max_d;
      max_m = o->ds[i] * o->mults[j] > max_m ? o->ds[i] * o->mults[j] : max_m;
    }
  float *x = kx_malloc(n * max_d * sizeof *x), *f = kx_malloc(n * max_m * sizeof *f);
  float *W = kx_malloc(max_m * max_d * sizeof *W);
  int rc = 0;
  if (!x || !f || !W) {
    kx_cli_error("bench-features", "out of memory");
    rc = 1;
  }
  const double speak = rc ? 0 : kx_bench_gemm_peak(1, (int)o->threads);
  if (!rc)
    printf("\nfloat32 decoder map (kx_posfeat_forward, queries: performer, performer-prf, pff), %zu sequences\n"
           "of %zu tokens; measured SGEMM peak (384^3, %zu thread%s): %.1f GFLOP/s\n%5s %6s %14s %8s %6s\n",
           BH, T, o->threads, o->threads == 1 ? "" : "s", speak, "d", "m", "float vec/s", "GF/s", "%peak");
  for (size_t i = 0; i < o->n_d && !rc; i++)
    for (size_t j = 0; j < o->n_mult && !rc; j++) {
      const size_t d = o->ds[i], m = d * o->mults[j];
      gsl_rng_set(rng, kx_gsl_seed(kx_seed_derive(o->seed, 1000 + d)));
      random_fill(rng, n * d, 1.0 / sqrt((double)d), b->out);
      for (size_t k = 0; k < n * d; k++) x[k] = (float)b->out[k];
      if (kx_posfeat_matrix("prf", d, m, o->seed, W)) {
        kx_cli_error("bench-features", "%s", kx_error_message());
        rc = 1;
        break;
      }
      double best = INFINITY;
      for (size_t r = 0; r <= o->reps; r++) { /* run 0 warms up */
        double t0 = kx_now_seconds();
        kx_posfeat_forward(W, 1, m, d, 0.5f, 1, BH, T, x, f, NULL, 0);
        double t = kx_now_seconds() - t0;
        if (r && t < best) best = t;
      }
      const double gf = 2.0 * (double)m * (double)d * (double)n / best / 1e9;
      printf("%5zu %6zu %14.4g %8.2f %6.1f\n", d, m, (double)n / best, gf, 100 * gf / speak);
    }
  free(x), free(f), free(W);
  return rc;
}

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
      kx_cli_error("bench-features", "unknown or incomplete option '%s' (see --help)", argv[optind - 1]);
      return 2;
    }
    if (rc) return kx_cli_value_error("bench-features", NULL);
  }
  if (optind < argc) return kx_cli_extra_operand("bench-features", argv[optind], "see --help");
  if (kx_spec_parse_schemes(schemes_arg, &o->schemes, &o->n_schemes)) {
    kx_cli_error("bench-features", "%s", kx_error_message());
    return 2;
  }
  return 0;
}

/* One scheme at (d, m): the native path, and for WDCF maps the dense BLAS
 * path it replaces; a line of the table and rows of the CSV. */
static void bench_map(const bench_settings *o, bench_ctx *b, const char *scheme, size_t d, size_t m,
                      const kx_fmap_options *fo, double peak, FILE *csv) {
  kx_fmap *f = kx_fmap_create(scheme, d, m, o->seed, fo);
  double tn = NAN, te = NAN, td = NAN, diff = NAN;
  if (!f || time_native(f, b, 0, &tn) || time_native(f, b, 1, &te)) {
    /* One scheme out of range (e.g. a sequence's dimension limit) should
     * not end the benchmark. */
    fprintf(stderr, "kapprox bench-features: %s d=%zu m=%zu skipped: %s\n", scheme, d, m, kx_error_message());
    kx_fmap_free(f);
    return;
  }
  if (!o->native_only && kx_fmap_is_wdcf(f) && time_dense(f, b, &td, &diff)) {
    fprintf(stderr, "kapprox bench-features: %s d=%zu m=%zu dense path failed: %s\n", scheme, d, m,
            kx_error_message());
    td = diff = NAN;
  }
  const double vn = (double)o->batch / tn, ve = (double)o->batch / te, vd = (double)o->batch / td;
  const double gf = vn * 2.0 * (double)m * (double)d / 1e9;
  if (isnan(td))
    printf("%-12s %5zu %6zu %14.4g %8.2f %6.1f %12.4g %14s %9s %10s\n", scheme, d, m, vn, gf, 100 * gf / peak, ve,
           "-", "-", "-");
  else
    printf("%-12s %5zu %6zu %14.4g %8.2f %6.1f %12.4g %14.4g %9.2f %10.2g\n", scheme, d, m, vn, gf,
           100 * gf / peak, ve, vd, vn / vd, diff);
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
  kx_fmap_free(f);
}

int cmd_bench_features(int argc, char **argv) {
  bench_settings o = {.ds = {64, 128}, .n_d = 2, .mults = {1, 2, 4, 8}, .n_mult = 4, .batch = 4096, .reps = 5,
                      .threads = 1, .calib_pairs = 512, .seed = 1};
  int rc = parse(argc, argv, &o);
  if (rc) return rc < 0 ? 0 : rc;
  size_t max_d = 0, max_mult = 0;
  for (size_t i = 0; i < o.n_d; i++) max_d = o.ds[i] > max_d ? o.ds[i] : max_d;
  for (size_t i = 0; i < o.n_mult; i++) max_mult = o.mults[i] > max_mult ? o.mults[i] : max_mult;
  if (o.batch * max_d * max_mult * max_d > ((size_t)1 << 31)) {
    kx_cli_error("bench-features", "batch x m x d = %zu x %zu x %zu is too large for one run",
                 o.batch, max_d * max_mult, max_d);
    kx_free_strings(o.schemes, o.n_schemes);
    return 2;
  }

  omp_set_num_threads((int)o.threads);
  /* BLAS runs inside the OpenMP threads (dense_apply, the DCT maps' DCT-I,
   * the peak measurement): one BLAS thread each. */
  openblas_set_num_threads(1);

  const size_t n_calib = 256;
  bench_ctx b = {.batch = o.batch, .reps = o.reps};
  b.x = kx_malloc(o.batch * max_d * sizeof *b.x);
  b.out = kx_malloc(o.batch * max_d * max_mult * sizeof *b.out);
  b.W = kx_malloc(max_d * max_mult * max_d * sizeof *b.W);
  double *cq = kx_malloc(n_calib * max_d * sizeof *cq), *ck = kx_malloc(n_calib * max_d * sizeof *ck);
  gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
  kx_atomic_file csv = {0};
  if (!b.x || !b.out || !b.W || !cq || !ck || !rng) {
    kx_cli_error("bench-features", "out of memory");
    rc = 1;
    goto done;
  }
  if (o.out) {
    if (kx_atomic_open(&csv, o.out)) {
      kx_cli_error("bench-features", "%s", kx_error_message());
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
    /* The same inputs for every scheme and m at this d. */
    gsl_rng_set(rng, kx_gsl_seed(kx_seed_derive(o.seed, 1000 + d)));
    random_fill(rng, o.batch * d, 1.0 / sqrt((double)d), b.x);
    random_fill(rng, n_calib * d, 1.0 / sqrt((double)d), cq);
    random_fill(rng, n_calib * d, 1.0 / sqrt((double)d), ck);
    kx_fmap_options fo;
    kx_fmap_default_options(&fo);
    fo.calib_q = cq;
    fo.calib_k = ck;
    fo.n_calib_q = fo.n_calib_k = n_calib;
    fo.n_calib_pairs = o.calib_pairs;
    for (size_t im = 0; im < o.n_mult; im++)
      for (size_t s = 0; s < o.n_schemes; s++) bench_map(&o, &b, o.schemes[s], d, d * o.mults[im], &fo, peak, csv.fp);
  }
  if (!rc) rc = float_maps(&o, &b, rng);
  if (csv.fp && kx_atomic_commit(&csv)) {
    kx_cli_error("bench-features", "%s", kx_error_message());
    rc = 1;
  }
done:
  if (rc && csv.fp) kx_atomic_abort(&csv);
  gsl_rng_free(rng);
  free(b.x);
  free(b.out);
  free(b.W);
  free(cq);
  free(ck);
  kx_free_strings(o.schemes, o.n_schemes);
  return rc;
}
