/* "wdcf-code": the feature map of the authors' released code
 * (YuchuanTian/DiJiang, modeling_gpt_neox_dijiang.py; docs/methods.md,
 * "The released code's map"), which is
 * not the paper's Eq. 12:
 *
 *   phi(x)_j = softmax_j( t_j (x C)_j )   over the m features,
 *
 * x C the row vector times the orthonormal DCT-II matrix, i.e. the
 * orthonormal DCT-III of x; t_j = Phi^-1(u_j) signed standard normals from
 * pseudo-random u_j (GSL mt19937, seed stream 3: the code's torch.rand); no
 * |x|^2 term, no 1/sqrt m, no D.  Its inner product does not target
 * exp(q.k) (kernel_estimator = 0): only attention-level metrics mean
 * anything for it.  apply_log returns the log-softmax, so every row of
 * exp(logphi) sums to one.
 *
 * m != d uses the block scheme of fmap_wdcf.c with every block transposed
 * (x C_b = C_b^T x): types III, IV, II, I (IV and I are symmetric), then the
 * same types on seeded random sign flips of x; the softmax runs over all m
 * features.  The t_j are drawn in feature order across the blocks. */
#include <gsl/gsl_rng.h>
#include <math.h>

#include <stdlib.h>

#include "approx/fmap_wdcf.h"
#include "approx/vexp.h"
#include "core/kx_error.h"
#include "core/kx_rng.h"
#include "core/kx_seed.h"
#include "samplers/transforms.h"

enum { STREAM_SIGNS = 1, STREAM_NORMALS = 3 };

static int code_init(kx_fmap *f) {
  static const int order[] = {3, 4, 2, 1};
  kx_dct_blocks *B =
      kx_dct_blocks_create(f->d, f->m, order, 4, kx_seed_derive(f->seed, STREAM_SIGNS), 0);
  if (!B) return KX_ENOMEM; /* d, m validated by kx_fmap_create */
  f->state = B;
  gsl_rng *rng = kx_rng_alloc(kx_seed_derive(f->seed, STREAM_NORMALS));
  if (!rng) return KX_ENOMEM;
  for (size_t b = 0; b < B->n_blocks; b++)
    for (size_t i = 0; i < B->blocks[b].rows; i++)
      B->blocks[b].t[i] = kx_normal_inv(gsl_rng_uniform_pos(rng));
  gsl_rng_free(rng);
  /* The softmax normalises each row; no scale, weight or norm term. */
  f->norm_coef = 0;
  for (size_t i = 0; i < f->m; i++) f->log_weight[i] = 0;
  return 0;
}

/* exp(z_j - max) goes through a stack buffer this many at a time; an
 * element's exp does not depend on its chunk (vexp.h) and the sum runs in
 * feature order either way. */
#define CODE_EXP_CHUNK 256

/* log-softmax of each row of z (rows x m), on one FFTW batch while it is
 * in cache; with max-subtraction, exact for any finite logits. */
static void log_softmax_batch(const void *ctx, size_t rows, const double *x, double *z) {
  (void)x;
  const size_t m = ((const kx_fmap *)ctx)->m;
  double e[CODE_EXP_CHUNK];
  for (size_t r = 0; r < rows; r++) {
    double *row = z + r * m;
    double mx = row[0];
    for (size_t j = 1; j < m; j++)
      if (row[j] > mx) mx = row[j];
    double s = 0;
    for (size_t j0 = 0; j0 < m; j0 += CODE_EXP_CHUNK) {
      const size_t len = m - j0 < CODE_EXP_CHUNK ? m - j0 : CODE_EXP_CHUNK;
      kx_vexp_shift(len, row + j0, mx, e);
      for (size_t j = 0; j < len; j++) s += e[j];
    }
    const double lse = mx + log(s);
    for (size_t j = 0; j < m; j++) row[j] -= lse;
  }
}

static void softmax_batch(const void *ctx, size_t rows, const double *x, double *z) {
  log_softmax_batch(ctx, rows, x, z);
  kx_vexp(rows * ((const kx_fmap *)ctx)->m, z, z);
}

static int code_apply_log(const kx_fmap *f, size_t n, const double *x, double *logphi) {
  return kx_dct_blocks_apply_finish(f->state, n, x, logphi, NULL, log_softmax_batch, f);
}

/* The features exp(log-softmax), not the softmax itself, so that they are
 * exactly kx_vexp of code_apply_log's result. */
static int code_apply(const kx_fmap *f, size_t n, const double *x, double *phi) {
  return kx_dct_blocks_apply_finish(f->state, n, x, phi, NULL, softmax_batch, f);
}

const kx_fmap_type kx_fmap_wdcf_code = {
    .name = "wdcf-code",
    .description = "released-code DiJiang map: softmax_j(t_j (x C)_j), t_j signed normals",
    .init = code_init, .apply_log = code_apply_log, .apply = code_apply, .release = kx_fmap_wdcf_release,
};
