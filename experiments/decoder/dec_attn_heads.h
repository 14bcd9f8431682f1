/* The steps every attention kind shares around its kernel: the qkv
 * projection output (N, 3C) split into per-head q, k, v (B, H, T, d) with
 * the model's rotary embedding on q and k, and the reverse path of the
 * gradients.  The layout of qkv is the teacher's (dec_attn_softmax.c: rows
 * [0,C) q, [C,2C) k, [2C,3C) v, head h owning dims [h d, (h+1) d)), so a
 * kind that uses these keeps the teacher's tensors by name and meaning. */
#ifndef KX_DEC_ATTN_HEADS_H
#define KX_DEC_ATTN_HEADS_H

#include <stddef.h>

#include "experiments/decoder/dec_attn.h"

/* qkv (B*T, 3C) -> q, k, v (B, H, T, d): rotary (kx_rope_forward, the first
 * rotary_dims dims of each head) on q and k, then q multiplied by q_scale
 * (1 or 1/sqrt(d): folding the logit scale into q). */
void kx_heads_split(const kx_attn_ctx *c, const float *qkv, float q_scale, float *q, float *k, float *v);

/* The transpose of kx_heads_split: dq, dk, dv (B, H, T, d) -> dqkv (B*T, 3C)
 * OVERWRITTEN.  dq and dk are modified (rotated back in place). */
void kx_heads_merge_grad(const kx_attn_ctx *c, float *dq, float *dk, const float *dv, float q_scale,
                         float *dqkv);

#endif
