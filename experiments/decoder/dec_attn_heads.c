#include "experiments/decoder/dec_attn_heads.h"

#include <string.h>

#include "experiments/decoder/dec_layers.h"

void kx_heads_split(const kx_attn_ctx *c, const float *qkv, float q_scale, float *q, float *k, float *v) {
  size_t B = c->B, T = c->T, C = c->cfg->width, H = c->cfg->heads, d = C / H, r = c->cfg->rotary_dims;
#pragma omp parallel for schedule(static) if (B * T * C >= 65536)
  for (size_t bh = 0; bh < B * H; bh++) {
    size_t b = bh / H, h = bh % H;
    for (size_t t = 0; t < T; t++) {
      const float *src = qkv + (b * T + t) * 3 * C + h * d;
      float *qt = q + (bh * T + t) * d, *kt = k + (bh * T + t) * d;
      memcpy(qt, src, d * sizeof(float));
      memcpy(kt, src + C, d * sizeof(float));
      memcpy(v + (bh * T + t) * d, src + 2 * C, d * sizeof(float));
      kx_rope_forward(qt, c->rope_cos, c->rope_sin, t, r);
      kx_rope_forward(kt, c->rope_cos, c->rope_sin, t, r);
      if (q_scale != 1.0f)
        for (size_t i = 0; i < d; i++) qt[i] *= q_scale;
    }
  }
}

void kx_heads_merge_grad(const kx_attn_ctx *c, float *dq, float *dk, const float *dv, float q_scale,
                         float *dqkv) {
  size_t B = c->B, T = c->T, C = c->cfg->width, H = c->cfg->heads, d = C / H, r = c->cfg->rotary_dims;
#pragma omp parallel for schedule(static) if (B * T * C >= 65536)
  for (size_t bh = 0; bh < B * H; bh++) {
    size_t b = bh / H, h = bh % H;
    for (size_t t = 0; t < T; t++) {
      float *dqt = dq + (bh * T + t) * d, *dkt = dk + (bh * T + t) * d;
      if (q_scale != 1.0f)
        for (size_t i = 0; i < d; i++) dqt[i] *= q_scale;
      kx_rope_backward(dqt, c->rope_cos, c->rope_sin, t, r);
      kx_rope_backward(dkt, c->rope_cos, c->rope_sin, t, r);
      float *dst = dqkv + (b * T + t) * 3 * C + h * d;
      memcpy(dst, dqt, d * sizeof(float));
      memcpy(dst + C, dkt, d * sizeof(float));
      memcpy(dst + 2 * C, dv + (bh * T + t) * d, d * sizeof(float));
    }
  }
}
