#include "experiments/model/dec_heads.h"

#include <stdio.h>
#include <string.h>

#include "experiments/model/dec_layers.h"

int kx_heads_declare(const kx_dec_config *cfg, size_t layer, kx_param_table *tab) {
  static const char *names[KX_HEADS_TENSORS] = {"qkv_w", "qkv_b", "proj_w", "proj_b"};
  size_t C = cfg->width, R = kx_dec_qkv_rows(cfg), bias = kx_dec_llama(cfg) ? 0 : 1;
  size_t rows[KX_HEADS_TENSORS] = {R, bias * R, C, bias * C}, cols[KX_HEADS_TENSORS] = {C, 0, C, 0};
  kx_init_kind init[KX_HEADS_TENSORS] = {KX_INIT_SMALL, KX_INIT_ZERO, KX_INIT_WANG, KX_INIT_ZERO};
  for (int i = 0; i < KX_HEADS_TENSORS; i++) {
    char name[48];
    snprintf(name, sizeof name, "layer%zu/%s", layer, names[i]);
    int rc = kx_ptable_add(tab, name, rows[i], cols[i], cols[i] != 0, init[i], NULL);
    if (rc) return rc;
  }
  return 0;
}

static void rotate(const kx_dec_config *cfg, float *x, const float *cos_t, const float *sin_t, size_t t) {
  if (kx_dec_llama(cfg)) kx_rope_pairs_forward(x, cos_t, sin_t, t, cfg->rotary_dims);
  else kx_rope_forward(x, cos_t, sin_t, t, cfg->rotary_dims);
}

static void rotate_back(const kx_dec_config *cfg, float *x, const float *cos_t, const float *sin_t, size_t t) {
  if (kx_dec_llama(cfg)) kx_rope_pairs_backward(x, cos_t, sin_t, t, cfg->rotary_dims);
  else kx_rope_backward(x, cos_t, sin_t, t, cfg->rotary_dims);
}

void kx_heads_split(const kx_dec_config *cfg, const float *qkv, size_t b, size_t h, size_t T, const float *rope_cos,
                    const float *rope_sin, float *q, float *k, float *v) {
  size_t C = cfg->width, d = C / cfg->heads, R = kx_dec_qkv_rows(cfg), KV = kx_dec_kv_heads(cfg) * d;
  size_t g = h / (cfg->heads / kx_dec_kv_heads(cfg));
  for (size_t t = 0; t < T; t++) {
    const float *src = qkv + (b * T + t) * R;
    memcpy(q + t * d, src + h * d, d * sizeof(float));
    memcpy(k + t * d, src + C + g * d, d * sizeof(float));
    memcpy(v + t * d, src + C + KV + g * d, d * sizeof(float));
    rotate(cfg, q + t * d, rope_cos, rope_sin, t);
    rotate(cfg, k + t * d, rope_cos, rope_sin, t);
  }
}

void kx_heads_merge(const kx_dec_config *cfg, float *dqkv, size_t b, size_t h, size_t T, const float *rope_cos,
                    const float *rope_sin, float *dq, float *dk, const float *dv) {
  size_t C = cfg->width, d = C / cfg->heads;
  for (size_t t = 0; t < T; t++) {
    rotate_back(cfg, dq + t * d, rope_cos, rope_sin, t);
    rotate_back(cfg, dk + t * d, rope_cos, rope_sin, t);
    float *dst = dqkv + (b * T + t) * 3 * C + h * d;
    memcpy(dst, dq + t * d, d * sizeof(float));
    memcpy(dst + C, dk + t * d, d * sizeof(float));
    memcpy(dst + 2 * C, dv + t * d, d * sizeof(float));
  }
}

void kx_heads_fold(const kx_dec_config *cfg, float *dqkv, size_t N) {
  size_t C = cfg->width, H = cfg->heads, d = C / H, G = H / kx_dec_kv_heads(cfg), KV = C / G, R = C + 2 * KV;
  if (G == 1) return;
  /* Row n moves from n 3C to n R <= n 3C: a row's sums are taken before
   * they are written, and what they overwrite is this row's or an earlier
   * row's, already read. */
  float sum[16384]; /* 2 KV <= C <= 16384 when G >= 2 */
  for (size_t n = 0; n < N; n++) {
    const float *src = dqkv + n * 3 * C;
    for (size_t part = 0; part < 2; part++)
      for (size_t g = 0; g < KV / d; g++)
        for (size_t i = 0; i < d; i++) {
          float s = 0.0f;
          for (size_t j = 0; j < G; j++) s += src[(1 + part) * C + (g * G + j) * d + i];
          sum[part * KV + g * d + i] = s;
        }
    memmove(dqkv + n * R, src, C * sizeof(float));
    memcpy(dqkv + n * R + C, sum, 2 * KV * sizeof(float));
  }
}

void kx_heads_split_all(const kx_attn_ctx *c, const float *qkv, float q_scale, float *q, float *k, float *v) {
  size_t B = c->B, T = c->T, C = c->cfg->width, H = c->cfg->heads, d = C / H;
#pragma omp parallel for schedule(static) if (B * T * C >= 65536)
  for (size_t bh = 0; bh < B * H; bh++) {
    size_t off = bh * T * d;
    kx_heads_split(c->cfg, qkv, bh / H, bh % H, T, c->rope_cos, c->rope_sin, q + off, k + off, v + off);
    if (q_scale != 1.0f)
      for (size_t i = 0; i < T * d; i++) q[off + i] *= q_scale;
  }
}

void kx_heads_merge_all(const kx_attn_ctx *c, float *dq, float *dk, const float *dv, float q_scale, float *dqkv) {
  size_t B = c->B, T = c->T, C = c->cfg->width, H = c->cfg->heads, d = C / H;
#pragma omp parallel for schedule(static) if (B * T * C >= 65536)
  for (size_t bh = 0; bh < B * H; bh++) {
    size_t off = bh * T * d;
    if (q_scale != 1.0f)
      for (size_t i = 0; i < T * d; i++) dq[off + i] *= q_scale;
    kx_heads_merge(c->cfg, dqkv, bh / H, bh % H, T, c->rope_cos, c->rope_sin, dq + off, dk + off, dv + off);
  }
  kx_heads_fold(c->cfg, dqkv, B * T);
}

float *kx_heads_acts(float *acts, size_t N, size_t C, float **qkv, float **q, float **k, float **v) {
  *qkv = acts;
  *q = *qkv + 3 * N * C;
  *k = *q + N * C;
  *v = *k + N * C;
  return *v + N * C;
}
