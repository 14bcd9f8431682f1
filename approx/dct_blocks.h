/* The matrix-free linear map shared by the DCT feature maps (wdcf,
 * wdcf-norm, dcf, wdcf-code): m features from stacked d x d orthonormal
 * DCTs,
 *
 *   z = L x,   L = [ T_0 P_0 C_0 S_0 ; T_1 P_1 C_1 S_1 ; ... ]   (m x d)
 *
 * block b: C_b the orthonormal DCT of type order[b mod n] (dct.h), S_b =
 * diag(sign_b) a random +-1 diagonal for the blocks after the first n (the
 * identity before, unless every block is signed), P_b keeps the first rows_b rows (all d except in the
 * last block), T_b = diag(t_b) the per-row multipliers the scheme chooses
 * (radii, signed normals).  Cost O((m/d + 1) d log d) per vector, no m x d
 * matrix.  Once filled, a block stack is read-only and may be applied from
 * many threads at once. */
#ifndef KX_DCT_BLOCKS_H
#define KX_DCT_BLOCKS_H

#include <stddef.h>
#include <stdint.h>

#include "approx/dct.h"

typedef struct {
  int type;      /* DCT type 1..4 */
  size_t offset; /* index of the block's first feature */
  size_t rows;   /* rows_b <= d */
  double *t;     /* rows_b multipliers, zero until the scheme fills them */
  double *sign;  /* d entries +-1, or NULL for S_b = I */
} kx_dct_block;

typedef struct {
  size_t d, m, n_blocks;
  kx_dct_block *blocks;
  kx_dct *plans[4]; /* plans[type - 1], shared by every block of that type */
} kx_dct_blocks;

/* order: n_order DCT types for the first blocks, repeated with sign flips
 * after (on every block when sign_all is set); types the length does not
 * allow (DCT-I at d = 1) are skipped.  Signs are drawn from `sign_seed`.
 * NULL with a message on failure. */
kx_dct_blocks *kx_dct_blocks_create(size_t d, size_t m, const int *order, size_t n_order,
                                    uint64_t sign_seed, int sign_all);
void kx_dct_blocks_free(kx_dct_blocks *B);

/* z (n x m, row-major) = L x for the n rows of x (n x d).  Rows are split
 * over OpenMP threads for large n; each row's result does not depend on the
 * thread count. */
int kx_dct_blocks_apply(const kx_dct_blocks *B, size_t n, const double *x, double *z);

/* What a caller does to each batch of rows of z (rows x m, with their
 * rows x d inputs x) right after L x is written, while they are still in
 * cache: the feature maps' -c(x), weights and exponentials.  Called for at
 * most KX_DCT_BATCH rows at a time, on the thread that computed them; the
 * same rows go to the same call whatever n and the thread count. */
typedef void (*kx_dct_blocks_finish)(const void *ctx, size_t rows, const double *x, double *z);
/* A shift added to each value as it is written, z_ri = (L x_r)_i +
 * (bias_i - c_r) with c_r = norm_coef |x_r|^2 (0 when norm_coef is 0):
 * the feature maps' log weights and norm term, the same operations as
 * kx_fmap_finish_log, so the same bits, without another pass over z. */
typedef struct {
  const double *bias; /* m values */
  double norm_coef;
} kx_dct_blocks_shift;

/* kx_dct_blocks_apply with the shift (NULL: none) and then finish(ctx, ...)
 * on every batch (NULL: none). */
int kx_dct_blocks_apply_finish(const kx_dct_blocks *B, size_t n, const double *x, double *z,
                               const kx_dct_blocks_shift *shift, kx_dct_blocks_finish finish, const void *ctx);

/* The equivalent dense m x d matrix L (row-major), built column by column
 * through the same transforms (L e_j). */
int kx_dct_blocks_dense(const kx_dct_blocks *B, double *W);

#endif
