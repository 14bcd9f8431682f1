/* Attention forward passes for one head: exact softmax attention and
 * linear attention from (log) features, causal or not.
 *
 * Shapes: q, k: n x d;  v, out: n x dv;  lq, lk: n x m log features;
 * weights: n x n.  All row-major doubles.  "causal" lets query i attend to
 * keys j <= i only. */
#ifndef KX_ATTENTION_H
#define KX_ATTENTION_H

#include <stddef.h>

/* every function here is public: kapprox/attention.h */
#include "kapprox/attention.h"
/* The failure kx_attention_log_weights would report for L, without
 * computing the weights. */
int kx_attention_rows_check(size_t n, int causal, const double *L);

#endif
