/* Stacked DCT blocks: the O(d log d) linear part of the DCT feature maps. */
#include "approx/dct_blocks.h"

#include <gsl/gsl_rng.h>
#include <stdlib.h>
#include <string.h>

#include "core/kx_error.h"
#include "core/kx_seed.h"

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
  gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
  if (!B->blocks || !rng) {
    if (!rng) kx_fail(KX_ENOMEM, "out of memory for a random generator");
    gsl_rng_free(rng);
    kx_dct_blocks_free(B);
    return NULL;
  }
  gsl_rng_set(rng, kx_gsl_seed(sign_seed));
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

/* One row: x (d) -> z (m).  xs and y are d-length scratch. */
static void apply_row(const kx_dct_blocks *B, const double *x, double *z, double *xs, double *y,
                      double *work) {
  const size_t d = B->d;
  for (size_t b = 0; b < B->n_blocks; b++) {
    const kx_dct_block *blk = &B->blocks[b];
    const double *src = x;
    if (blk->sign) {
      for (size_t j = 0; j < d; j++) xs[j] = blk->sign[j] * x[j];
      src = xs;
    }
    kx_dct_apply(B->plans[blk->type - 1], src, y, work);
    double *zb = z + blk->offset;
    for (size_t i = 0; i < blk->rows; i++) zb[i] = blk->t[i] * y[i];
  }
}

/* Below this many rows a parallel region costs more than it saves. */
#define KX_DCT_BLOCKS_PARALLEL_ROWS 256

int kx_dct_blocks_apply(const kx_dct_blocks *B, size_t n, const double *x, double *z) {
  const size_t d = B->d, m = B->m;
  int failed = 0;
#pragma omp parallel if (n >= KX_DCT_BLOCKS_PARALLEL_ROWS)
  {
    /* Per-thread buffers: the plans are shared, the workspaces never are. */
    double *work = kx_dct_work_alloc(d);
    double *scratch = malloc(2 * d * sizeof *scratch);
#pragma omp for schedule(static)
    for (size_t r = 0; r < n; r++) {
      if (!work || !scratch) {
#pragma omp atomic write
        failed = 1;
        continue;
      }
      apply_row(B, x + r * d, z + r * m, scratch, scratch + d, work);
    }
    kx_dct_work_free(work);
    free(scratch);
  }
  /* Messages are thread-local: report on the caller's thread. */
  if (failed) return kx_fail(KX_ENOMEM, "out of memory for DCT workspaces (d = %zu)", d);
  return 0;
}

int kx_dct_blocks_dense(const kx_dct_blocks *B, double *W) {
  const size_t d = B->d, m = B->m;
  double *e = kx_calloc(d, sizeof *e);
  double *col = kx_malloc(m * sizeof *col);
  double *scratch = kx_malloc(2 * d * sizeof *scratch);
  double *work = kx_dct_work_alloc(d);
  int rc = 0;
  if (!e || !col || !scratch || !work) {
    rc = KX_ENOMEM;
  } else {
    for (size_t j = 0; j < d; j++) {
      e[j] = 1.0;
      apply_row(B, e, col, scratch, scratch + d, work);
      for (size_t i = 0; i < m; i++) W[i * d + j] = col[i];
      e[j] = 0.0;
    }
  }
  free(e);
  free(col);
  free(scratch);
  kx_dct_work_free(work);
  return rc;
}
