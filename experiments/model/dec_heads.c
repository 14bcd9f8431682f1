#include "experiments/model/dec_heads.h"

#include <stdio.h>
#include <string.h>

#include "experiments/model/dec_layers.h"

int kx_heads_declare(size_t C, size_t layer, kx_param_table *tab) {
  static const char *names[KX_HEADS_TENSORS] = {"qkv_w", "qkv_b", "proj_w", "proj_b"};
  size_t rows[KX_HEADS_TENSORS] = {3 * C, 3 * C, C, C}, cols[KX_HEADS_TENSORS] = {C, 0, C, 0};
  kx_init_kind init[KX_HEADS_TENSORS] = {KX_INIT_SMALL, KX_INIT_ZERO, KX_INIT_WANG, KX_INIT_ZERO};
  for (int i = 0; i < KX_HEADS_TENSORS; i++) {
    char name[48];
    snprintf(name, sizeof name, "layer%zu/%s", layer, names[i]);
    int rc = kx_ptable_add(tab, name, rows[i], cols[i], cols[i] != 0, init[i], NULL);
    if (rc) return rc;
  }
  return 0;
}

void kx_heads_split(const float *qkv, size_t b, size_t h, size_t T, size_t C, size_t d, const float *rope_cos,
                    const float *rope_sin, size_t r, float *q, float *k, float *v) {
  for (size_t t = 0; t < T; t++) {
    const float *src = qkv + (b * T + t) * 3 * C + h * d;
    memcpy(q + t * d, src, d * sizeof(float));
    memcpy(k + t * d, src + C, d * sizeof(float));
    memcpy(v + t * d, src + 2 * C, d * sizeof(float));
    kx_rope_forward(q + t * d, rope_cos, rope_sin, t, r);
    kx_rope_forward(k + t * d, rope_cos, rope_sin, t, r);
  }
}

void kx_heads_merge(float *dqkv, size_t b, size_t h, size_t T, size_t C, size_t d, const float *rope_cos,
                    const float *rope_sin, size_t r, float *dq, float *dk, const float *dv) {
  for (size_t t = 0; t < T; t++) {
    kx_rope_backward(dq + t * d, rope_cos, rope_sin, t, r);
    kx_rope_backward(dk + t * d, rope_cos, rope_sin, t, r);
    float *dst = dqkv + (b * T + t) * 3 * C + h * d;
    memcpy(dst, dq + t * d, d * sizeof(float));
    memcpy(dst + C, dk + t * d, d * sizeof(float));
    memcpy(dst + 2 * C, dv + t * d, d * sizeof(float));
  }
}

void kx_heads_split_all(const kx_attn_ctx *c, const float *qkv, float q_scale, float *q, float *k, float *v) {
  size_t B = c->B, T = c->T, C = c->cfg->width, H = c->cfg->heads, d = C / H, r = c->cfg->rotary_dims;
#pragma omp parallel for schedule(static) if (B * T * C >= 65536)
  for (size_t bh = 0; bh < B * H; bh++) {
    size_t off = bh * T * d;
    kx_heads_split(qkv, bh / H, bh % H, T, C, d, c->rope_cos, c->rope_sin, r, q + off, k + off, v + off);
    if (q_scale != 1.0f)
      for (size_t i = 0; i < T * d; i++) q[off + i] *= q_scale;
  }
}

void kx_heads_merge_all(const kx_attn_ctx *c, float *dq, float *dk, const float *dv, float q_scale, float *dqkv) {
  size_t B = c->B, T = c->T, C = c->cfg->width, H = c->cfg->heads, d = C / H, r = c->cfg->rotary_dims;
#pragma omp parallel for schedule(static) if (B * T * C >= 65536)
  for (size_t bh = 0; bh < B * H; bh++) {
    size_t off = bh * T * d;
    if (q_scale != 1.0f)
      for (size_t i = 0; i < T * d; i++) dq[off + i] *= q_scale;
    kx_heads_merge(dqkv, bh / H, bh % H, T, C, d, c->rope_cos, c->rope_sin, r, dq + off, dk + off, dv + off);
  }
}

float *kx_heads_acts(float *acts, size_t N, size_t C, float **qkv, float **q, float **k, float **v) {
  *qkv = acts;
  *q = *qkv + 3 * N * C;
  *k = *q + N * C;
  *v = *k + N * C;
  return *v + N * C;
}
