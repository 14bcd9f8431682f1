/* The teacher's qkv layout, per head: splitting the fused projection
 * qkv (N, R) into one head's q, k (after rotary) and v, and putting that
 * head's gradients back.  Shared by every attention kind that keeps the
 * teacher's qkv_w: R = kx_dec_qkv_rows(cfg) = C + 2 KV with KV = kv_heads
 * d; rows [0,C) q, [C,C+KV) k, [C+KV,R) v; query head h owns rows
 * [h d, (h+1) d) of q, and key/value head g = h / (heads / kv_heads) the
 * rows [g d, (g+1) d) of k and of v (R = 3C without grouped-query
 * attention).  Every kind sees H query heads, each with its own copy of
 * its group's k and v; their gradients are summed back over the group
 * (kx_heads_fold). */
#ifndef KX_DEC_HEADS_H
#define KX_DEC_HEADS_H

#include <stddef.h>

#include "experiments/model/dec_attn.h"
#include "experiments/model/dec_params.h"

/* The four tensors of the teacher's attention, in this order (indices
 * KX_HEADS_QKV_W .. KX_HEADS_PROJ_B of the kind's list): qkv_w (R, C),
 * qkv_b (R), proj_w (C, C), proj_b (C), named "layer<l>/...", with the
 * teacher's initialisation.  The llama architecture has no biases: qkv_b
 * and proj_b are then empty slots (size 0, a NULL pointer for the kind,
 * which the matmuls take as "no bias"; never in a checkpoint). */
enum { KX_HEADS_QKV_W, KX_HEADS_QKV_B, KX_HEADS_PROJ_W, KX_HEADS_PROJ_B, KX_HEADS_TENSORS };
int kx_heads_declare(const kx_dec_config *cfg, size_t layer, kx_param_table *tab);

/* The first saved activations of a kind that keeps the teacher's qkv:
 * qkv (N,3C; (N,R) used) | q, k, v (B,H,T,d) at the start of acts;
 * returns the first float after them. */
float *kx_heads_acts(float *acts, size_t N, size_t C, float **qkv, float **q, float **k, float **v);

/* q, k, v (T, d) of sequence b, query head h, from qkv (B*T, R); rotary
 * (the architecture's layout) on the first rotary_dims dims of q and k
 * (tables (ctx, rotary_dims/2)). */
void kx_heads_split(const kx_dec_config *cfg, const float *qkv, size_t b, size_t h, size_t T, const float *rope_cos,
                    const float *rope_sin, float *q, float *k, float *v);

/* dqkv (B*T, 3C), head-expanded layout (head h's dk, dv in the rows of key
 * head h, as without grouping): the rows of (b, h) OVERWRITTEN with dq, dk
 * after the inverse rotation (dq, dk are rotated back in place) and dv;
 * dq, dk, dv (T, d).  kx_heads_fold then makes it (B*T, R). */
void kx_heads_merge(const kx_dec_config *cfg, float *dqkv, size_t b, size_t h, size_t T, const float *rope_cos,
                    const float *rope_sin, float *dq, float *dk, const float *dv);
/* In place, N rows of the head-expanded (N, 3C) gradient to (N, R): each
 * key/value head's gradient the sum of its query heads' in head order.
 * Nothing to do without grouped-query attention. */
void kx_heads_fold(const kx_dec_config *cfg, float *dqkv, size_t N);

/* Every (b, h) at once, for kinds that keep q, k, v as (B, H, T, d):
 * kx_heads_split of each head, then q multiplied by q_scale (1, or
 * 1/sqrt(d) to fold the logit scale into q). */
void kx_heads_split_all(const kx_attn_ctx *c, const float *qkv, float q_scale, float *q, float *k, float *v);
/* Its transpose: dqkv (B*T, R) OVERWRITTEN from dq, dk, dv (B, H, T, d)
 * (3C floats of room);
 * dq and dk are modified (scaled and rotated back in place). */
void kx_heads_merge_all(const kx_attn_ctx *c, float *dq, float *dk, const float *dv, float q_scale, float *dqkv);

#endif
