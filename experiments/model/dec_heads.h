/* The teacher's qkv layout, per head: splitting the fused projection
 * qkv (N, 3C) into one head's q, k (after rotary) and v, and putting that
 * head's gradients back.  Shared by every attention kind that keeps the
 * teacher's qkv_w (rows [0,C) q, [C,2C) k, [2C,3C) v; head h owns rows
 * [h d, (h+1) d) of each third). */
#ifndef KX_DEC_HEADS_H
#define KX_DEC_HEADS_H

#include <stddef.h>

#include "experiments/model/dec_attn.h"
#include "experiments/model/dec_params.h"

/* The four tensors of the teacher's attention, in this order (indices
 * KX_HEADS_QKV_W .. KX_HEADS_PROJ_B of the kind's list): qkv_w (3C, C),
 * qkv_b (3C), proj_w (C, C), proj_b (C), named "layer<l>/...", with the
 * teacher's initialisation. */
enum { KX_HEADS_QKV_W, KX_HEADS_QKV_B, KX_HEADS_PROJ_W, KX_HEADS_PROJ_B, KX_HEADS_TENSORS };
int kx_heads_declare(size_t C, size_t layer, kx_param_table *tab);

/* The first saved activations of a kind that keeps the teacher's qkv:
 * qkv (N,3C) | q, k, v (B,H,T,d) at the start of acts; returns the first
 * float after them. */
float *kx_heads_acts(float *acts, size_t N, size_t C, float **qkv, float **q, float **k, float **v);

/* q, k, v (T, d) of sequence b, head h, from qkv (B*T, 3C); rotary on the
 * first r dims of q and k (tables (ctx, r/2)). */
void kx_heads_split(const float *qkv, size_t b, size_t h, size_t T, size_t C, size_t d, const float *rope_cos,
                    const float *rope_sin, size_t r, float *q, float *k, float *v);

/* dqkv (B*T, 3C) rows of (b, h) OVERWRITTEN with dq, dk after the inverse
 * rotation (dq, dk are rotated back in place) and dv; dq, dk, dv (T, d). */
void kx_heads_merge(float *dqkv, size_t b, size_t h, size_t T, size_t C, size_t d, const float *rope_cos,
                    const float *rope_sin, size_t r, float *dq, float *dk, const float *dv);

/* Every (b, h) at once, for kinds that keep q, k, v as (B, H, T, d):
 * kx_heads_split of each head, then q multiplied by q_scale (1, or
 * 1/sqrt(d) to fold the logit scale into q). */
void kx_heads_split_all(const kx_attn_ctx *c, const float *qkv, float q_scale, float *q, float *k, float *v);
/* Its transpose: dqkv (B*T, 3C) OVERWRITTEN from dq, dk, dv (B, H, T, d);
 * dq and dk are modified (scaled and rotated back in place). */
void kx_heads_merge_all(const kx_attn_ctx *c, float *dq, float *dk, const float *dv, float q_scale, float *dqkv);

#endif
