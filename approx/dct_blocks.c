/* Stacked DCT blocks: the O(d log d) linear part of the DCT feature maps. */
#include "approx/dct_blocks.h"

#include <gsl/gsl_rng.h>
#include <stdlib.h>
#include <string.h>

#include "approx/dct_simd.h"
#include "core/kx_error.h"
#include "core/kx_rng.h"

void kx_dct_blocks_free(kx_dct_blocks *B) {
  if (!B) return;
  for (size_t b = 0; B->blocks && b < B->n_blocks; b++) {
    free(B->blocks[b].t);
    free(B->blocks[b].sign);
  }
  free(B->blocks);
  for (int k = 0; k < 4; k++) kx_dct_free(B->plans[k]);
  free(B);
}

kx_dct_blocks *kx_dct_blocks_create(size_t d, size_t m, const int *order, size_t n_order,
                                    uint64_t sign_seed, int sign_all) {
  if (d == 0 || m == 0) {
    kx_fail(KX_EINVAL, "DCT blocks need d >= 1 and m >= 1 (got d = %zu, m = %zu)", d, m);
    return NULL;
  }
  int types[4];
  size_t n_types = 0;
  for (size_t k = 0; k < n_order && n_types < 4; k++) {
    if (order[k] < 1 || order[k] > 4) {
      kx_fail(KX_EINVAL, "DCT blocks: type %d is not one of 1..4", order[k]);
      return NULL;
    }
    if (order[k] == 1 && d < 2) continue; /* DCT-I does not exist at d = 1 */
    types[n_types++] = order[k];
  }
  if (!n_types) {
    kx_fail(KX_EINVAL, "DCT blocks: no DCT type in the order is defined at d = %zu", d);
    return NULL;
  }
  kx_dct_blocks *B = kx_calloc(1, sizeof *B);
  if (!B) return NULL;
  B->d = d;
  B->m = m;
  B->n_blocks = (m + d - 1) / d;
  B->blocks = kx_calloc(B->n_blocks, sizeof *B->blocks);
  gsl_rng *rng = kx_rng_alloc(sign_seed);
  if (!B->blocks || !rng) {
    gsl_rng_free(rng);
    kx_dct_blocks_free(B);
    return NULL;
  }
  for (size_t b = 0; b < B->n_blocks; b++) {
    kx_dct_block *blk = &B->blocks[b];
    blk->type = types[b % n_types];
    blk->offset = b * d;
    blk->rows = m - blk->offset < d ? m - blk->offset : d;
    blk->t = kx_calloc(blk->rows, sizeof *blk->t);
    if (!blk->t) goto fail;
    if (b >= n_types || sign_all) {
      /* Repeating a DCT type on the same x would repeat its directions;
       * a random sign flip gives new ones at no asymptotic cost. */
      blk->sign = kx_malloc(d * sizeof *blk->sign);
      if (!blk->sign) goto fail;
      for (size_t j = 0; j < d; j++) blk->sign[j] = gsl_rng_uniform(rng) < 0.5 ? -1.0 : 1.0;
    }
    if (!B->plans[blk->type - 1] && !(B->plans[blk->type - 1] = kx_dct_create(blk->type, d)))
      goto fail;
  }
  gsl_rng_free(rng);
  return B;
fail:
  gsl_rng_free(rng);
  kx_dct_blocks_free(B);
  return NULL;
}

/* KX_DCT_BATCH rows x (d each) -> z (m each) through one batch call per
 * block; rows >= `rows` of the batch are zero padding whose results are
 * dropped.  Each kept value is t_i (out_scale_i T(in_scale .* S x)_i), the
 * same products for every row whatever the batch around it, plus
 * (bias_i - c_r) when a shift is given. */
static void apply_batch(const kx_dct_blocks *B, size_t rows, const double *x, double *z,
                        const kx_dct_blocks_shift *shift, double *work) {
  const size_t d = B->d, m = B->m, ld = kx_dct_batch_ld(d);
  double *in = work, *out = work + KX_DCT_BATCH * ld;
  double c[KX_DCT_BATCH] = {0}; /* kx_fmap_finish_log's c(x), the same sums */
  for (size_t r = 0; shift && shift->norm_coef != 0 && r < rows; r++) {
    for (size_t j = 0; j < d; j++) c[r] += x[r * d + j] * x[r * d + j];
    c[r] *= shift->norm_coef;
  }
  for (size_t b = 0; b < B->n_blocks; b++) {
    const kx_dct_block *blk = &B->blocks[b];
    const kx_dct *plan = B->plans[blk->type - 1];
    const double *is = kx_dct_in_scale(plan), *os = kx_dct_out_scale(plan);
    const double *bias = shift ? shift->bias + blk->offset : NULL;
    size_t rs, es;
    kx_dct_batch_layout(plan, &rs, &es);
    size_t done = 0; /* values of each row already written */
    if (kx_dct_batch_is_simd(plan) && rows == KX_DCT_BATCH && kx_dct_simd_tiles(d)) {
      /* a full batch on the interleaved layout: tiled transposes, same products */
      kx_dct_simd_gather(d, is, blk->sign, x, in);
      kx_dct_execute_batch(plan, work);
      done = blk->rows - blk->rows % 8;
      kx_dct_simd_scatter(done, os, blk->t, bias, c, out, z + blk->offset, m);
    } else {
      for (size_t r = 0; r < KX_DCT_BATCH; r++) {
        double *row = in + r * rs;
        if (r >= rows)
          for (size_t j = 0; j < d; j++) row[j * es] = 0;
        else if (blk->sign)
          for (size_t j = 0; j < d; j++) row[j * es] = is[j] * (blk->sign[j] * x[r * d + j]);
        else
          for (size_t j = 0; j < d; j++) row[j * es] = is[j] * x[r * d + j];
      }
      kx_dct_execute_batch(plan, work);
    }
    for (size_t r = 0; r < rows && done < blk->rows; r++) {
      double *zb = z + r * m + blk->offset;
      const double *y = out + r * rs;
      for (size_t i = done; i < blk->rows; i++) zb[i] = blk->t[i] * (os[i] * y[i * es]);
      for (size_t i = done; bias && i < blk->rows; i++) zb[i] += bias[i] - c[r];
    }
  }
}

/* Below this many batches a parallel region costs more than it saves. */
#define KX_DCT_BLOCKS_PARALLEL_BATCHES 8

int kx_dct_blocks_apply(const kx_dct_blocks *B, size_t n, const double *x, double *z) {
  return kx_dct_blocks_apply_finish(B, n, x, z, NULL, NULL, NULL);
}

int kx_dct_blocks_apply_finish(const kx_dct_blocks *B, size_t n, const double *x, double *z,
                               const kx_dct_blocks_shift *shift, kx_dct_blocks_finish finish, const void *ctx) {
  const size_t d = B->d, m = B->m, n_batches = (n + KX_DCT_BATCH - 1) / KX_DCT_BATCH;
  int failed = 0;
#pragma omp parallel if (n_batches >= KX_DCT_BLOCKS_PARALLEL_BATCHES)
  {
    /* Per-thread workspaces: the plans are shared, the workspaces never are. */
    double *work = kx_dct_batch_work_alloc(d);
#pragma omp for schedule(static)
    for (size_t s = 0; s < n_batches; s++) {
      if (!work) {
#pragma omp atomic write
        failed = 1;
        continue;
      }
      const size_t r0 = s * KX_DCT_BATCH, rows = n - r0 < KX_DCT_BATCH ? n - r0 : KX_DCT_BATCH;
      apply_batch(B, rows, x + r0 * d, z + r0 * m, shift, work);
      if (finish) finish(ctx, rows, x + r0 * d, z + r0 * m);
    }
    kx_dct_work_free(work);
  }
  /* Messages are thread-local: report on the caller's thread. */
  if (failed) return kx_fail(KX_ENOMEM, "out of memory for DCT workspaces (d = %zu)", d);
  return 0;
}

/* L e_j for every j, through the batched path itself (so the dense form
 * has exactly the map's roundings): rows of the identity in, columns of L out. */
int kx_dct_blocks_dense(const kx_dct_blocks *B, double *W) {
  const size_t d = B->d, m = B->m;
  double *e = kx_calloc(d * d, sizeof *e);
  double *cols = kx_malloc(d * m * sizeof *cols);
  int rc = 0;
  if (!e || !cols) {
    rc = KX_ENOMEM;
  } else {
    for (size_t j = 0; j < d; j++) e[j * d + j] = 1.0;
    if (!(rc = kx_dct_blocks_apply(B, d, e, cols)))
      for (size_t j = 0; j < d; j++)
        for (size_t i = 0; i < m; i++) W[i * d + j] = cols[j * m + i];
  }
  free(e);
  free(cols);
  return rc;
}
