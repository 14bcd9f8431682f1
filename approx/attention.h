/* Attention forward passes for one head: exact softmax attention and
 * linear attention from (log) features, causal or not.
 *
 * Shapes: q, k: n x d;  v, out: n x dv;  lq, lk: n x m log features;
 * weights: n x n.  All row-major doubles.  "causal" lets query i attend to
 * keys j <= i only. */
#ifndef KX_ATTENTION_H
#define KX_ATTENTION_H

#include <stddef.h>

/* Row-normalises a log-kernel matrix into log attention weights in place:
 * L_ij - logsumexp_j' L_ij' over allowed j, -inf where masked.  Stable for
 * any finite logits (max-subtraction).  Fails if a row has no finite entry. */
int kx_attention_log_weights(size_t n, int causal, double *L);

/* Exact softmax attention out = softmax(q k^T) v, O(n^2) time, O(n) extra
 * memory per row. */
int kx_softmax_attention(size_t n, size_t d, size_t dv, const double *q, const double *k,
                         const double *v, int causal, double *out);

/* Linear attention out_i = sum_j phi(q_i).phi(k_j) v_j / sum_j phi(q_i).phi(k_j)
 * in O(n m dv): non-causal through S = sum_j phi(k_j)^T v_j, causal in
 * chunks of rows (a masked GEMM inside a chunk, the state S of earlier keys
 * across chunks) with a running maximum that rescales S (so no future key
 * ever influences an output, even through the stabiliser).  Per-query
 * shifts cancel; a row whose shifted denominator underflows is recomputed
 * exactly in the log domain.  Runs on the calling thread with OpenBLAS set
 * to one thread for the call (restored after), so the result does not
 * depend on the thread count. */
int kx_linear_attention(size_t n, size_t m, size_t dv, const double *lq, const double *lk,
                        const double *v, int causal, double *out);

#endif
