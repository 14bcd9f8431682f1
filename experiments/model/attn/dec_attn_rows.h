/* The attention rows of a causal linear attention and their gradient with
 * respect to the features: the attn_weights_backward hook of the kinds that
 * attention transfer trains on the teacher's rows (dec_transfer.h).  For
 * one (sequence, head), with feature rows fq_i, fk_j (m floats), decay g in
 * (0, 1] and, normalised, eps > 0:
 *   s_ij = g^(i-j) fq_i . fk_j   (j <= i),
 *   normalised:      D_i = sum_{j<=i} s_ij + eps,   a_ij = s_ij / D_i
 *                    (o_i = sum_j a_ij v_j exactly);
 *   not normalised:  D_i = sum_{j<=i} |s_ij|,       a_ij = |s_ij| / D_i
 *                    (kx_attn_kind.attn_weights' convention),
 * what kx_lin_causal_weights gives, and for a loss with gradient
 * dA_ij = dL/da_ij:
 *   ds_ij = sigma_ij (dA_ij - sum_{j'<=i} dA_ij' a_ij') / D_i,
 *           sigma_ij = 1 normalised, sign(s_ij) otherwise (0 at s_ij = 0),
 *   dfq_i = sum_{j<=i} g^(i-j) ds_ij fk_j,   dfk_j = sum_{i>=j} g^(i-j) ds_ij fq_i.
 * A row with D_i = 0 (not normalised, every score 0) has no gradient.
 * This is the quadratic form (T x T): only attention transfer uses it, on
 * training windows of the context length, never the training step. */
#ifndef KX_DEC_ATTN_ROWS_H
#define KX_DEC_ATTN_ROWS_H

#include <stddef.h>

#include "experiments/model/dec_linear_causal.h"

/* Floats of scratch kx_attn_rows_backward needs for T rows. */
size_t kx_attn_rows_scratch_floats(size_t T);

/* dfq, dfk (T, kp->m, row stride kp->ld_f) OVERWRITTEN from dA (T, T) and
 * the forward's fq, fk. */
void kx_attn_rows_backward(const kx_lin_causal *kp, const float *fq, const float *fk, const float *dA, float *dfq,
                           float *dfk, float *scratch);

#endif
