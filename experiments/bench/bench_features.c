#include "experiments/bench/bench_features.h"

#include <cblas.h>
#include <gsl/gsl_rng.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>

#include "approx/dct.h"
#include "approx/dct_blocks.h"
#include "approx/fmap.h"
#include "approx/fmap_wdcf.h"
#include "core/kx_cli.h"
#include "core/kx_error.h"
#include "core/kx_seed.h"
#include "experiments/model/attn/dec_features.h"
#include "samplers/transforms.h"

/* Best wall time of `reps` calls of apply_log (with_exp: apply, phi
 * itself, the expression the PyTorch peer times) on the batch, after a
 * warm-up. */
static int time_native(const kx_fmap *f, const kx_bench_fmaps *b, int with_exp, double *best) {
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
static void dense_rows(const kx_fmap *f, const kx_bench_fmaps *b, size_t r0, size_t n, double *out) {
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
static void dense_apply(const kx_fmap *f, const kx_bench_fmaps *b, double *out) {
  const size_t n = b->batch;
#pragma omp parallel
  {
    const size_t nt = (size_t)omp_get_num_threads(), id = (size_t)omp_get_thread_num();
    const size_t r0 = n * id / nt, r1 = n * (id + 1) / nt;
    if (r1 > r0) dense_rows(f, b, r0, r1 - r0, out);
  }
}

static int time_dense(const kx_fmap *f, const kx_bench_fmaps *b, double *best, double *maxdiff) {
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

/* The DCT maps' transforms alone (kx_dct_execute_batch on every block, no
 * gather, scaling or exponentials), over the batch split as the map
 * splits it, on workspaces that stay in cache: the rate the transform
 * itself reaches, to weigh against the measured SIMD limit. */
static int time_transforms(const kx_fmap *f, const kx_bench_fmaps *b, double *best, double *flops) {
  const kx_dct_blocks *B = kx_fmap_wdcf_blocks(f);
  const size_t n_batches = (b->batch + KX_DCT_BATCH - 1) / KX_DCT_BATCH;
  *flops = 0;
  for (size_t k = 0; k < B->n_blocks; k++) *flops += kx_dct_batch_flops(B->plans[B->blocks[k].type - 1]);
  *best = INFINITY;
  int failed = 0;
  for (size_t r = 0; r <= b->reps; r++) { /* run 0 warms up */
    double t0 = kx_now_seconds();
#pragma omp parallel
    {
      double *work = kx_dct_batch_work_alloc(B->d);
      if (!work) {
#pragma omp atomic write
        failed = 1;
      } else {
        for (size_t i = 0; i < 2 * KX_DCT_BATCH * kx_dct_batch_ld(B->d); i++) work[i] = 1e-3 * (double)(i % 97);
#pragma omp for schedule(static)
        for (size_t s = 0; s < n_batches; s++)
          for (size_t k = 0; k < B->n_blocks; k++) kx_dct_execute_batch(B->plans[B->blocks[k].type - 1], work);
      }
      kx_dct_work_free(work);
    }
    double t = kx_now_seconds() - t0;
    if (r && t < *best) *best = t;
  }
  return failed ? kx_fail(KX_ENOMEM, "out of memory for DCT workspaces") : 0;
}

/* The machine's own limit: n x n products on `threads` OpenMP threads, each
 * a single-threaded call on its share of the rows -- the way the kernels
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

int kx_bench_fmaps_alloc(kx_bench_fmaps *b, size_t batch, size_t reps, size_t calib_pairs, uint64_t seed,
                         size_t max_d, size_t max_mult) {
  *b = (kx_bench_fmaps){.batch = batch, .reps = reps, .calib_pairs = calib_pairs, .seed = seed, .n_calib = 256};
  b->x = kx_malloc(batch * max_d * sizeof *b->x);
  b->out = kx_malloc(batch * max_d * max_mult * sizeof *b->out);
  b->W = kx_malloc(max_d * max_mult * max_d * sizeof *b->W);
  b->cq = kx_malloc(b->n_calib * max_d * sizeof *b->cq);
  b->ck = kx_malloc(b->n_calib * max_d * sizeof *b->ck);
  b->rng = gsl_rng_alloc(gsl_rng_mt19937);
  if (b->x && b->out && b->W && b->cq && b->ck && b->rng) return 0;
  kx_bench_fmaps_free(b);
  return kx_fail(KX_ENOMEM, "out of memory");
}

void kx_bench_fmaps_free(kx_bench_fmaps *b) {
  if (b->rng) gsl_rng_free(b->rng);
  free(b->x), free(b->out), free(b->W), free(b->cq), free(b->ck);
  *b = (kx_bench_fmaps){0};
}

void kx_bench_fmaps_inputs(kx_bench_fmaps *b, size_t d) {
  gsl_rng_set(b->rng, kx_gsl_seed(kx_seed_derive(b->seed, 1000 + d)));
  random_fill(b->rng, b->batch * d, 1.0 / sqrt((double)d), b->x);
  random_fill(b->rng, b->n_calib * d, 1.0 / sqrt((double)d), b->cq);
  random_fill(b->rng, b->n_calib * d, 1.0 / sqrt((double)d), b->ck);
}

int kx_bench_fmap_time(kx_bench_fmaps *b, const char *scheme, size_t d, size_t m, int native_only,
                       kx_bench_fmap_times *t) {
  kx_fmap_options fo;
  kx_fmap_default_options(&fo);
  fo.calib_q = b->cq;
  fo.calib_k = b->ck;
  fo.n_calib_q = fo.n_calib_k = b->n_calib;
  fo.n_calib_pairs = b->calib_pairs;
  *t = (kx_bench_fmap_times){.native_s = NAN, .phi_s = NAN, .dense_s = NAN, .max_diff = NAN,
                             .transform_s = NAN};
  kx_fmap *f = kx_fmap_create(scheme, d, m, b->seed, &fo);
  int rc = f ? 0 : KX_EINVAL;
  if (!rc) rc = time_native(f, b, 0, &t->native_s);
  if (!rc) rc = time_native(f, b, 1, &t->phi_s);
  if (!rc && kx_fmap_is_wdcf(f)) rc = time_transforms(f, b, &t->transform_s, &t->transform_flops);
  if (!rc && !native_only && kx_fmap_is_wdcf(f) && time_dense(f, b, &t->dense_s, &t->max_diff)) {
    snprintf(t->dense_error, sizeof t->dense_error, "%s", kx_error_message());
    t->dense_s = t->max_diff = NAN;
  }
  kx_fmap_free(f);
  return rc;
}

int kx_bench_float_map_alloc(kx_bench_float_map *fm, size_t batch, size_t max_d, size_t max_m) {
  enum { TOKENS = 128 };
  fm->tokens = batch < TOKENS ? batch : TOKENS;
  fm->sequences = batch / fm->tokens;
  const size_t n = fm->sequences * fm->tokens;
  fm->x = kx_malloc(n * max_d * sizeof *fm->x);
  fm->f = kx_malloc(n * max_m * sizeof *fm->f);
  fm->W = kx_malloc(max_m * max_d * sizeof *fm->W);
  if (fm->x && fm->f && fm->W) return 0;
  kx_bench_float_map_free(fm);
  return kx_fail(KX_ENOMEM, "out of memory");
}

void kx_bench_float_map_free(kx_bench_float_map *fm) {
  free(fm->x), free(fm->f), free(fm->W);
  fm->x = fm->f = fm->W = NULL;
}

int kx_bench_float_map_time(kx_bench_float_map *fm, kx_bench_fmaps *b, size_t d, size_t m, double *best) {
  const size_t n = fm->sequences * fm->tokens;
  gsl_rng_set(b->rng, kx_gsl_seed(kx_seed_derive(b->seed, 1000 + d)));
  random_fill(b->rng, n * d, 1.0 / sqrt((double)d), b->out);
  for (size_t k = 0; k < n * d; k++) fm->x[k] = (float)b->out[k];
  int rc = kx_posfeat_matrix("prf", d, m, b->seed, fm->W);
  if (rc) return rc;
  *best = INFINITY;
  for (size_t r = 0; r <= b->reps; r++) { /* run 0 warms up */
    double t0 = kx_now_seconds();
    kx_posfeat_forward(fm->W, 1, m, d, 0.5f, 1, fm->sequences, fm->tokens, fm->x, fm->f, NULL, 0, NULL);
    double t = kx_now_seconds() - t0;
    if (r && t < *best) *best = t;
  }
  return 0;
}
