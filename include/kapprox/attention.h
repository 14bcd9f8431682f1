/* libkapprox: attention forward passes for one head, exact softmax attention
 * and linear attention from log features, causal or not.
 *
 * Shapes: q, k: n x d;  v, out: n x dv;  lq, lk: n x m log features;
 * L: n x n.  All row-major doubles.  "causal": query i attends to keys
 * j <= i only. */
#ifndef KAPPROX_ATTENTION_H
#define KAPPROX_ATTENTION_H

#include <stddef.h>

#include "status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Row-normalises a log-kernel matrix into log attention weights in place
 * (-inf where masked).  Fails if a row has no finite entry. */
KX_API int kx_attention_log_weights(size_t n, int causal, double *L);

/* Exact softmax attention out = softmax(q k^T) v. */
KX_API int kx_softmax_attention(size_t n, size_t d, size_t dv, const double *q, const double *k,
                                const double *v, int causal, double *out);

/* Linear attention out_i = sum_j phi(q_i).phi(k_j) v_j / sum_j phi(q_i).phi(k_j)
 * in O(n m dv) from log features lq = log phi(q), lk = log phi(k). */
KX_API int kx_linear_attention(size_t n, size_t m, size_t dv, const double *lq, const double *lk,
                               const double *v, int causal, double *out);

#ifdef __cplusplus
}
#endif

#endif
