/* Attention of a model against its softmax teacher, on the same text:
 * the KL divergence of each attention row and head-averaged attention maps
 * (the paper's Figure 3).  Both use the kinds' `attn_weights` hook, so
 * every kind is compared through the causal weights it actually applies. */
#ifndef KX_DEC_ATTN_EVAL_H
#define KX_DEC_ATTN_EVAL_H

#include <stddef.h>

#include "experiments/model/dec_model.h"

/* Floor on the student's weight inside the logarithm: a weight that
 * underflows to 0 where the teacher's is positive would make the KL
 * infinite; with the floor a row's KL is at most -log(1e-12) = 27.6 nats. */
#define KX_ATTN_KL_FLOOR 1e-12

/* Mean over layers, heads, query rows and `windows` evenly spaced windows
 * of the models' context in `stream` (n tokens) of
 *   KL(a_i || â_i) = sum_{j <= i} a_ij log(a_ij / max(â_ij, floor)),
 * a the teacher's rows, â the student's, each block through its own kind
 * (a layer hybrid's softmax blocks count too).  The two models must have
 * the same sizes; a block kind without attn_weights is an error. */
int kx_dec_attn_kl(kx_decoder *teacher, kx_decoder *student, const int *stream, size_t n, size_t windows,
                   double *kl);

/* map (T,T) = attention of block `layer` averaged over heads, for the T
 * tokens (T <= ctx); zero above the diagonal. */
int kx_dec_attn_map(kx_decoder *m, const int *tokens, size_t T, size_t layer, float *map);

#endif
