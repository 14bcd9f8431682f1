#include "experiments/model/attn/dec_linear_attn.h"

#include <string.h>

#include "experiments/model/attn/dec_attn_rows.h"
#include "experiments/model/dec_layers.h"
#include "experiments/model/dec_linear_causal.h"

enum { QKV_W = KX_HEADS_QKV_W, QKV_B = KX_HEADS_QKV_B, PROJ_W = KX_HEADS_PROJ_W, PROJ_B = KX_HEADS_PROJ_B };

int kx_lin_attn_declare(const kx_lin_fmap *f, const kx_dec_config *cfg, size_t layer, kx_param_table *tab,
                        size_t *n) {
  int rc = kx_heads_declare(cfg->width, layer, tab);
  if (rc) return rc;
  size_t extra = 0;
  if (f->declare && (rc = f->declare(f, cfg, layer, tab, &extra))) return rc;
  *n = KX_LIN_ATTN_SHARED + extra;
  return 0;
}

int kx_lin_attn_init(const kx_lin_fmap *f, const kx_dec_config *cfg, size_t layer, float *const *p,
                     uint64_t seed) {
  return f->init ? f->init(f, cfg, layer, p + KX_LIN_ATTN_SHARED, seed) : 0;
}

int kx_lin_attn_redraw(const kx_lin_fmap *f, const kx_dec_config *cfg, size_t layer, float *const *p,
                       uint64_t seed, uint64_t step) {
  return f->redraw ? f->redraw(f, cfg, layer, p + KX_LIN_ATTN_SHARED, seed, step) : 0;
}

static kx_lin_causal kernel_params(const kx_lin_fmap *f, const kx_dec_config *cfg, size_t T, size_t h) {
  size_t C = cfg->width, d = C / cfg->heads;
  kx_lin_causal k = {T, f->features(cfg), d, f->features(cfg), d, C,
                     f->decay ? f->decay(cfg, h) : 1.0f, f->normalise, f->eps, 0, NULL};
  return k;
}

/* Saved activations: qkv (N,3C) | q, k (B,H,T,d) after rotary, v (B,H,T,d)
 * | fq, fk (B,H,T,m) | the map's saves for q and k | den (B,H,T) | att (N,C)
 * the kernel's output, input of proj | the kernel's forward scratch, one
 * per (b,h) so that heads run in parallel. */
typedef struct {
  float *qkv, *q, *k, *v, *fq, *fk, *save_q, *save_k, *den, *att, *ks;
  size_t ks_floats;
} acts_view;

static acts_view view(const kx_lin_fmap *f, const kx_dec_config *cfg, size_t B, size_t T, const float *acts) {
  size_t N = B * T, C = cfg->width, H = cfg->heads, m = f->features(cfg);
  size_t sv = f->save_floats ? f->save_floats(cfg, B, T) : 0;
  kx_lin_causal kp = kernel_params(f, cfg, T, 0);
  acts_view a;
  a.fq = kx_heads_acts((float *)acts, N, C, &a.qkv, &a.q, &a.k, &a.v);
  a.fk = a.fq + N * H * m;
  a.save_q = a.fk + N * H * m;
  a.save_k = a.save_q + sv;
  a.den = a.save_k + sv;
  a.att = a.den + N * H;
  a.ks = a.att + N * C;
  a.ks_floats = kx_lin_causal_forward_scratch_floats(&kp);
  return a;
}

size_t kx_lin_attn_act_floats(const kx_lin_fmap *f, const kx_dec_config *cfg, size_t B, size_t T) {
  acts_view a = view(f, cfg, B, T, NULL);
  return (size_t)(a.ks - a.qkv) + B * cfg->heads * a.ks_floats;
}

/* Scratch: datt (N,C) | dfq, dfk (B,H,T,m) | dq, dk, dv (B,H,T,d) | dqkv
 * (N,3C) | the kernel's scratch, one per (b,h).  With param_backward, at
 * least what the rows' gradient needs: the rows' (2 T^2) | dfq, dfk (T,m). */
size_t kx_lin_attn_scratch_floats(const kx_lin_fmap *f, const kx_dec_config *cfg, size_t B, size_t T) {
  size_t N = B * T, C = cfg->width, H = cfg->heads, m = f->features(cfg);
  kx_lin_causal kp = kernel_params(f, cfg, T, 0);
  size_t s = N * C + 2 * N * H * m + 3 * N * C + 3 * N * C + B * H * kx_lin_causal_scratch_floats(&kp);
  size_t rows = f->param_backward ? kx_attn_rows_scratch_floats(T) + 2 * T * m : 0;
  return s > rows ? s : rows;
}

/* Work per (b,h) large enough to be worth a thread. */
static int parallel_heads(size_t B, size_t H, size_t T, size_t d) { return B * H * T * d >= 16384; }

void kx_lin_attn_forward(const kx_lin_fmap *f, const kx_attn_ctx *c, float *const *p, const float *x, float *y,
                         float *acts) {
  const kx_dec_config *cfg = c->cfg;
  size_t B = c->B, T = c->T, C = cfg->width, H = cfg->heads, d = C / H, r = cfg->rotary_dims, N = B * T;
  size_t m = f->features(cfg);
  acts_view a = view(f, cfg, B, T, acts);
  kx_matmul_forward(a.qkv, x, p[QKV_W], p[QKV_B], N, C, 3 * C);
#pragma omp parallel for schedule(static) if (parallel_heads(B, H, T, d))
  for (size_t bh = 0; bh < B * H; bh++) {
    size_t b = bh / H, h = bh % H;
    kx_heads_split(a.qkv, b, h, T, C, d, c->rope_cos, c->rope_sin, r, a.q + bh * T * d, a.k + bh * T * d,
                   a.v + bh * T * d);
  }
  float *const *pf = p + KX_LIN_ATTN_SHARED;
  f->forward(f, c, pf, KX_LIN_QUERY, a.q, a.fq, a.save_q);
  f->forward(f, c, pf, KX_LIN_KEY, a.k, a.fk, a.save_k);
#pragma omp parallel for schedule(dynamic, 1) if (parallel_heads(B, H, T, d))
  for (size_t bh = 0; bh < B * H; bh++) {
    size_t b = bh / H, h = bh % H;
    kx_lin_causal kp = kernel_params(f, cfg, T, h);
    kp.state = c->state ? c->state + bh * (m * d + m) : NULL;
    kx_lin_causal_forward(&kp, a.fq + bh * T * m, a.fk + bh * T * m, a.v + bh * T * d, a.att + b * T * C + h * d,
                          a.den + bh * T, a.ks + bh * a.ks_floats);
  }
  kx_matmul_forward(y, a.att, p[PROJ_W], p[PROJ_B], N, C, C);
}

void kx_lin_attn_backward(const kx_lin_fmap *f, const kx_attn_ctx *c, float *const *p, float *const *dp,
                          const float *x, const float *dy, const float *acts, float *dx, float *scratch) {
  const kx_dec_config *cfg = c->cfg;
  size_t B = c->B, T = c->T, C = cfg->width, H = cfg->heads, d = C / H, r = cfg->rotary_dims, N = B * T;
  size_t m = f->features(cfg);
  acts_view a = view(f, cfg, B, T, acts);
  kx_lin_causal kp0 = kernel_params(f, cfg, T, 0);
  size_t ks = kx_lin_causal_scratch_floats(&kp0);
  float *datt = scratch, *dfq = datt + N * C, *dfk = dfq + N * H * m, *dq = dfk + N * H * m, *dk = dq + N * C;
  float *dv = dk + N * C, *dqkv = dv + N * C, *kscr = dqkv + 3 * N * C;
  /* datt accumulates the proj backward; everything else is overwritten. */
  memset(datt, 0, N * C * sizeof(float));
  kx_matmul_backward(datt, dp[PROJ_W], dp[PROJ_B], dy, a.att, p[PROJ_W], N, C, C);
#pragma omp parallel for schedule(dynamic, 1) if (parallel_heads(B, H, T, d))
  for (size_t bh = 0; bh < B * H; bh++) {
    size_t b = bh / H, h = bh % H;
    kx_lin_causal kp = kernel_params(f, cfg, T, h);
    size_t o = bh * T * m;
    kx_lin_causal_backward(&kp, a.fq + o, a.fk + o, a.v + bh * T * d, a.att + b * T * C + h * d, a.den + bh * T,
                           datt + b * T * C + h * d, dfq + o, dfk + o, dv + bh * T * d, kscr + bh * ks);
  }
  float *const *pf = p + KX_LIN_ATTN_SHARED, *const *dpf = dp + KX_LIN_ATTN_SHARED;
  f->backward(f, c, pf, dpf, KX_LIN_QUERY, a.q, a.fq, a.save_q, dfq, dq);
  f->backward(f, c, pf, dpf, KX_LIN_KEY, a.k, a.fk, a.save_k, dfk, dk);
#pragma omp parallel for schedule(static) if (parallel_heads(B, H, T, d))
  for (size_t bh = 0; bh < B * H; bh++) {
    size_t b = bh / H, h = bh % H;
    kx_heads_merge(dqkv, b, h, T, C, d, c->rope_cos, c->rope_sin, r, dq + bh * T * d, dk + bh * T * d,
                   dv + bh * T * d);
  }
  kx_matmul_backward(dx, dp[QKV_W], dp[QKV_B], dqkv, x, p[QKV_W], N, C, 3 * C);
}

void kx_lin_attn_qkv_view(const kx_lin_fmap *f, const kx_attn_ctx *c, const float *acts, const float **q,
                          const float **k, const float **v, size_t *dqk, size_t *dv, int *scaled) {
  acts_view a = view(f, c->cfg, c->B, c->T, acts);
  *q = a.q;
  *k = a.k;
  *v = a.v;
  *dqk = *dv = c->cfg->width / c->cfg->heads;
  *scaled = 0;
}

void kx_lin_attn_features(const kx_lin_fmap *f, const kx_attn_ctx *c, const float *acts, const float **fq,
                          const float **fk) {
  acts_view a = view(f, c->cfg, c->B, c->T, acts);
  *fq = a.fq;
  *fk = a.fk;
}

void kx_lin_attn_weights(const kx_lin_fmap *f, const kx_attn_ctx *c, float *const *p, const float *acts,
                         size_t b, size_t h, float *A) {
  (void)p;
  acts_view a = view(f, c->cfg, c->B, c->T, acts);
  size_t off = (b * c->cfg->heads + h) * c->T * f->features(c->cfg);
  kx_lin_causal kp = kernel_params(f, c->cfg, c->T, h);
  kx_lin_causal_weights(&kp, a.fq + off, a.fk + off, A);
}

/* The rows' gradient with respect to the features (dec_attn_rows.h), then
 * the map's tensors' through param_backward (q and k are the teacher's in
 * transfer, not trained).  Scratch: the rows' | dfq, dfk (T, m). */
void kx_lin_attn_weights_backward(const kx_lin_fmap *f, const kx_attn_ctx *c, float *const *p, float *const *dp,
                                  const float *acts, size_t b, size_t h, const float *dA, float *scratch) {
  acts_view a = view(f, c->cfg, c->B, c->T, acts);
  size_t T = c->T, m = f->features(c->cfg), d = c->cfg->width / c->cfg->heads, bh = b * c->cfg->heads + h;
  kx_lin_causal kp = kernel_params(f, c->cfg, T, h);
  float *dfq = scratch + kx_attn_rows_scratch_floats(T), *dfk = dfq + T * m;
  const float *fq = a.fq + bh * T * m, *fk = a.fk + bh * T * m;
  kx_attn_rows_backward(&kp, fq, fk, dA, dfq, dfk, scratch);
  float *const *pf = p + KX_LIN_ATTN_SHARED, *const *dpf = dp + KX_LIN_ATTN_SHARED;
  f->param_backward(f, c, pf, dpf, KX_LIN_QUERY, h, a.q + bh * T * d, fq, dfq);
  f->param_backward(f, c, pf, dpf, KX_LIN_KEY, h, a.k + bh * T * d, fk, dfk);
}

size_t kx_lin_attn_state_floats(const kx_lin_fmap *f, const kx_dec_config *cfg) {
  size_t m = f->features(cfg), d = cfg->width / cfg->heads;
  return cfg->heads * (m * d + m) + cfg->heads;
}

float *kx_lin_attn_map_state(const kx_lin_fmap *f, const kx_attn_ctx *c) {
  size_t m = f->features(c->cfg), d = c->cfg->width / c->cfg->heads;
  return c->state ? c->state + c->cfg->heads * (m * d + m) : NULL;
}
