/* WDCF, the weighted discrete cosine features of the paper (Eq. 12):
 *
 *   phi_i(x) = D_i / sqrt(m) * exp(t_i (C x)_i - c(x)),
 *
 * C the orthonormal DCT-II (rows c_i, docs/methods.md#the-dct), t_i = F^-1_chi_d(u_i)
 * radial inverse-CDF values, D_i >= 0 fitted on calibration pairs
 * (weight_fit.c).  C x is a fast transform (dct.h picks the route per type
 * and length: batched SIMD kernels, FFTW, or a GEMM where FFTW is slow), so
 * a feature vector costs O(d log d) and no m x d matrix is ever stored.
 *
 * Entries of this file:
 *   "wdcf"       the paper's form: c(x) dropped ("since x is normalized"), D fitted
 *   "wdcf-norm"  the same keeping c(x) = |x|^2/2 (softmax) or |x|^2 (Gaussian), D fitted
 *   "dcf"        wdcf-norm with D = 1: the ablation of the weights
 *
 * Number of features (dct_blocks.h):
 *   m = d  one DCT-II block;
 *   m < d  the first m rows of the DCT-II, i.e. its m lowest frequencies;
 *   m > d  further d-row blocks of the other DCT types, the paper's "different
 *          boundary conditions", in the order II, IV, III, I (the last block
 *          keeps its lowest-index rows).  Beyond four blocks the types repeat
 *          on a seeded random sign flip of the input, C diag(+-1) x: a new
 *          orthonormal set of directions for another O(d log d).  At d = 1
 *          DCT-I does not exist and is skipped.
 * Every block has its own radii t_i = F^-1_chi_d(u_i), u_i in (0,1):
 *   radii = "sequence" (default): u_i = point i of a 1-D Sobol' sequence with
 *           Matousek's random linear scramble and digital shift ("sobol-lms",
 *           samplers/), feature i taking point i.  Each run of 2^k points
 *           starting at a multiple of 2^k hits every interval
 *           [j 2^-k, (j+1) 2^-k) once (a (0,k,1)-net, kept by the scramble),
 *           so for d a power of two the radii of every full block are
 *           stratified with a random point per stratum (and so are all m
 *           together when m is a power of two);
 *   radii = "stratified": the grid (i + 1/2)/rows_b of each block in a
 *           seeded random order (the order matters: it decides which
 *           frequency gets which radius).
 * Seed streams of f->seed: 1 signs, 2 radius order (stratified), 4 the
 * sequence's scramble. */
#include "approx/fmap_wdcf.h"

#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "approx/vexp.h"
#include "core/kx_error.h"
#include "core/kx_rng.h"
#include "core/kx_seed.h"
#include "samplers/sequence.h"
#include "samplers/transforms.h"

enum { STREAM_SIGNS = 1, STREAM_RADII = 2, STREAM_SEQUENCE = 4 };

/* radii = "sequence": t of feature i from point i of a scrambled 1-D Sobol'. */
static int sequence_radii(kx_fmap *f, kx_dct_blocks *B) {
  kx_sequence *q = kx_sequence_alloc("sobol-lms", 1, kx_seed_derive(f->seed, STREAM_SEQUENCE));
  if (!q) return KX_ENOMEM;
  int rc = 0;
  for (size_t b = 0; b < B->n_blocks && !rc; b++) {
    kx_dct_block *blk = &B->blocks[b];
    for (size_t i = 0; i < blk->rows && !rc; i++) {
      double u;
      if (!(rc = kx_sequence_next(q, &u))) blk->t[i] = kx_chi_inv(u, (double)f->d);
    }
  }
  kx_sequence_free(q);
  return rc;
}

/* radii = "stratified": each block's grid (i + 1/2)/rows_b, shuffled. */
static int stratified_radii(kx_fmap *f, kx_dct_blocks *B) {
  gsl_rng *rng = kx_rng_alloc(kx_seed_derive(f->seed, STREAM_RADII));
  size_t *perm = kx_malloc(B->d * sizeof *perm);
  if (!rng || !perm) {
    gsl_rng_free(rng);
    free(perm);
    return KX_ENOMEM;
  }
  for (size_t b = 0; b < B->n_blocks; b++) {
    kx_dct_block *blk = &B->blocks[b];
    for (size_t i = 0; i < blk->rows; i++) perm[i] = i;
    gsl_ran_shuffle(rng, perm, blk->rows, sizeof *perm);
    for (size_t i = 0; i < blk->rows; i++) {
      double u = ((double)perm[i] + 0.5) / (double)blk->rows;
      blk->t[i] = kx_chi_inv(u, (double)f->d);
    }
  }
  gsl_rng_free(rng);
  free(perm);
  return 0;
}

static int blocks_init(kx_fmap *f, int sign_all) {
  static const int order[] = {2, 4, 3, 1};
  kx_dct_blocks *B = kx_dct_blocks_create(f->d, f->m, order, 4,
                                          kx_seed_derive(f->seed, STREAM_SIGNS), sign_all);
  /* d and m were validated by kx_fmap_create, so what is left to fail is
   * memory (or FFTW's planner, whose message is kept either way). */
  if (!B) return KX_ENOMEM;
  f->state = B;
  /* kx_fmap_create accepts only these two values */
  return strcmp(f->opt.radii, "stratified") ? sequence_radii(f, B) : stratified_radii(f, B);
}

static int wdcf_init(kx_fmap *f) {
  f->norm_coef = 0; /* the paper drops |x|^2 */
  return blocks_init(f, 0);
}

/* wdcf-norm and dcf keep the norm_coef kx_fmap_create set from the kernel. */
static int wdcf_norm_init(kx_fmap *f) { return blocks_init(f, 0); }

/* The ablation of fixed directions: every block sees a seeded sign flip of
 * x, so the directions t_i (C_b S_b)_i change sign at random from seed to
 * seed and the first-order error term averages out over seeds. */
static int dcf_signed_init(kx_fmap *f) { return blocks_init(f, 1); }

/* The -c(x) and weight terms go in as each value is written (the shift
 * of dct_blocks.h); the features' exponentials follow on each batch while
 * it is in cache: per row the same operations as over the whole call, so
 * the same bits. */
static void exp_batch(const void *ctx, size_t rows, const double *x, double *z) {
  const kx_fmap *f = ctx;
  (void)x;
  kx_vexp(rows * f->m, z, z);
}

static int wdcf_apply_log(const kx_fmap *f, size_t n, const double *x, double *logphi) {
  const kx_dct_blocks_shift shift = {f->log_weight, f->norm_coef};
  return kx_dct_blocks_apply_finish(f->state, n, x, logphi, &shift, NULL, NULL);
}

static int wdcf_apply(const kx_fmap *f, size_t n, const double *x, double *phi) {
  const kx_dct_blocks_shift shift = {f->log_weight, f->norm_coef};
  return kx_dct_blocks_apply_finish(f->state, n, x, phi, &shift, exp_batch, f);
}

void kx_fmap_wdcf_release(kx_fmap *f) {
  kx_dct_blocks_free(f->state);
  f->state = NULL;
}

/* The DCT maps share the blocks' apply and release; they differ in the
 * norm term and signs (init) and in whether D is fitted. */
#define DCT_MAP_FIELDS                                                                                   \
  .kernel_estimator = 1, .apply_log = wdcf_apply_log, .apply = wdcf_apply, .release = kx_fmap_wdcf_release

const kx_fmap_type kx_fmap_wdcf = {
    DCT_MAP_FIELDS, .name = "wdcf", .fitted_weights = 1, .init = wdcf_init,
    .description = "WDCF (paper Eq. 12): chi radii times DCT rows via FFTW, |x|^2 dropped, D fitted"};
const kx_fmap_type kx_fmap_wdcf_norm = {
    DCT_MAP_FIELDS, .name = "wdcf-norm", .fitted_weights = 1, .init = wdcf_norm_init,
    .description = "WDCF keeping the -c(x) norm term of Eq. 9, D fitted"};
const kx_fmap_type kx_fmap_dcf = {
    DCT_MAP_FIELDS, .name = "dcf", .init = wdcf_norm_init,
    .description = "DCT features with the norm term and D = 1 (WDCF without weights)"};
const kx_fmap_type kx_fmap_dcf_signed = {
    DCT_MAP_FIELDS, .name = "dcf-signed", .init = dcf_signed_init,
    .description = "dcf with a random sign flip of x on every block (ablation: random, not fixed, DCT directions)"};

int kx_fmap_is_wdcf(const kx_fmap *f) {
  return f && (f->type == &kx_fmap_wdcf || f->type == &kx_fmap_wdcf_norm ||
               f->type == &kx_fmap_dcf || f->type == &kx_fmap_dcf_signed ||
               f->type == &kx_fmap_wdcf_code);
}

const kx_dct_blocks *kx_fmap_wdcf_blocks(const kx_fmap *f) {
  return kx_fmap_is_wdcf(f) ? f->state : NULL;
}

int kx_fmap_wdcf_dense(const kx_fmap *f, double *W) {
  if (!kx_fmap_is_wdcf(f))
    return kx_fail(KX_EINVAL, "the dense DCT matrix exists only for the DCT feature maps (got %s)",
                   f && f->type ? f->type->name : "(null)");
  return kx_dct_blocks_dense(f->state, W);
}
