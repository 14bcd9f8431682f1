#include "experiments/model/attn/dec_linear_attn.h"

#include <math.h>
#include <string.h>

#include "experiments/model/attn/dec_attn_rows.h"
#include "experiments/model/dec_layers.h"
#include "experiments/model/dec_linear_causal.h"
#include "experiments/model/dec_window.h"

enum { QKV_W = KX_HEADS_QKV_W, QKV_B = KX_HEADS_QKV_B, PROJ_W = KX_HEADS_PROJ_W, PROJ_B = KX_HEADS_PROJ_B };

int kx_lin_attn_declare(const kx_lin_fmap *f, const kx_dec_config *cfg, size_t layer, kx_param_table *tab,
                        size_t *n) {
  int rc = kx_heads_declare(cfg, layer, tab);
  if (rc) return rc;
  size_t extra = 0;
  if (f->declare && (rc = f->declare(f, cfg, layer, tab, &extra))) return rc;
  *n = KX_LIN_ATTN_SHARED + extra;
  return kx_win_declare(cfg, layer, tab, n);
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

static kx_lin_causal head_kernel(const void *kind, const kx_dec_config *cfg, size_t T, size_t h) {
  return kernel_params(kind, cfg, T, h);
}

/* The sliding window's view of a block (dec_window.h). */
static kx_win_heads window_heads(const kx_lin_fmap *f, const kx_attn_ctx *c) {
  kx_win_heads w = {.c = c, .kernel = head_kernel, .kind = f,
                    .scale = 1.0f / sqrtf((float)(c->cfg->width / c->cfg->heads))};
  return w;
}

/* Saved activations: qkv (N,3C) | q, k (B,H,T,d) after rotary, v (B,H,T,d)
 * | fq, fk (B,H,T,m) | the map's saves for q and k | den (B,H,T) | att (N,C)
 * the kernel's output, input of proj | with a window: lam (B,H,T) and the
 * window's stats (B,H,T,KX_WIN_STATS) | the kernel's (or the window's)
 * forward scratch, one per (b,h) so that heads run in parallel. */
typedef struct {
  float *qkv, *q, *k, *v, *fq, *fk, *save_q, *save_k, *den, *att, *lam, *stats, *ks;
  size_t ks_floats;
} acts_view;

static acts_view view(const kx_lin_fmap *f, const kx_dec_config *cfg, size_t B, size_t T, const float *acts) {
  size_t N = B * T, C = cfg->width, H = cfg->heads, m = f->features(cfg);
  size_t sv = f->save_floats ? f->save_floats(cfg, B, T) : 0, win = cfg->window ? N * H : 0;
  kx_lin_causal kp = kernel_params(f, cfg, T, 0);
  kx_attn_ctx c = {cfg, B, T, NULL, NULL, 0, 0, NULL};
  kx_win_heads wh = window_heads(f, &c);
  acts_view a;
  a.fq = kx_heads_acts((float *)acts, N, C, &a.qkv, &a.q, &a.k, &a.v);
  a.fk = a.fq + N * H * m;
  a.save_q = a.fk + N * H * m;
  a.save_k = a.save_q + sv;
  a.den = a.save_k + sv;
  a.att = a.den + N * H;
  a.lam = a.att + N * C;
  a.stats = a.lam + win;
  a.ks = a.stats + KX_WIN_STATS * win;
  a.ks_floats = cfg->window ? kx_win_heads_act_floats(&wh, B, T) / (B * H) : kx_lin_causal_forward_scratch_floats(&kp);
  return a;
}

/* The window's view of the acts of the last forward, with the output and
 * scratch it works in. */
static kx_win_heads window_acts(const kx_lin_fmap *f, const kx_attn_ctx *c, float *const *p, const acts_view *a,
                                float *scratch) {
  kx_win_heads w = window_heads(f, c);
  w.q = a->q, w.k = a->k, w.v = a->v, w.fq = a->fq, w.fk = a->fk;
  w.lam = f->log_scale ? a->lam : NULL;
  w.beta = p[KX_LIN_ATTN_SHARED + f->n_tensors];
  w.o = a->att, w.stats = a->stats, w.scratch = scratch;
  if (c->state) {
    size_t H = c->cfg->heads, m = f->features(c->cfg), d = c->cfg->width / H;
    w.state = c->state;
    w.win_state = c->state + H * (m * d + m) + H;
  }
  return w;
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
  kx_attn_ctx c = {cfg, B, T, NULL, NULL, 0, 0, NULL};
  kx_win_heads wh = window_heads(f, &c);
  size_t kernel = cfg->window ? kx_win_heads_scratch_floats(&wh, B, T) : B * H * kx_lin_causal_scratch_floats(&kp);
  size_t s = N * C + 2 * N * H * m + 3 * N * C + 3 * N * C + kernel;
  size_t rows = f->param_backward ? kx_attn_rows_scratch_floats(T) + 2 * T * m : 0;
  return s > rows ? s : rows;
}

/* Work per (b,h) large enough to be worth a thread. */
static int parallel_heads(size_t B, size_t H, size_t T, size_t d) { return B * H * T * d >= 16384; }

void kx_lin_attn_forward(const kx_lin_fmap *f, const kx_attn_ctx *c, float *const *p, const float *x, float *y,
                         float *acts) {
  const kx_dec_config *cfg = c->cfg;
  size_t B = c->B, T = c->T, C = cfg->width, H = cfg->heads, d = C / H, N = B * T;
  size_t m = f->features(cfg);
  acts_view a = view(f, cfg, B, T, acts);
  kx_matmul_forward(a.qkv, x, p[QKV_W], p[QKV_B], N, C, kx_dec_qkv_rows(cfg));
#pragma omp parallel for schedule(static) if (parallel_heads(B, H, T, d))
  for (size_t bh = 0; bh < B * H; bh++) {
    size_t b = bh / H, h = bh % H;
    kx_heads_split(cfg, a.qkv, b, h, T, c->rope_cos, c->rope_sin, a.q + bh * T * d, a.k + bh * T * d,
                   a.v + bh * T * d);
  }
  float *const *pf = p + KX_LIN_ATTN_SHARED;
  f->forward(f, c, pf, KX_LIN_QUERY, a.q, a.fq, a.save_q);
  f->forward(f, c, pf, KX_LIN_KEY, a.k, a.fk, a.save_k);
  if (cfg->window) {
    if (f->log_scale) {
      memset(a.lam, 0, N * H * sizeof(float));
      f->log_scale(f, c, KX_LIN_QUERY, a.save_q, a.lam);
      f->log_scale(f, c, KX_LIN_KEY, a.save_k, a.lam);
    }
    kx_win_heads w = window_acts(f, c, p, &a, a.ks);
    kx_win_heads_forward(&w);
    kx_matmul_forward(y, a.att, p[PROJ_W], p[PROJ_B], N, C, C);
    return;
  }
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
  size_t B = c->B, T = c->T, C = cfg->width, H = cfg->heads, d = C / H, N = B * T;
  size_t m = f->features(cfg);
  acts_view a = view(f, cfg, B, T, acts);
  kx_lin_causal kp0 = kernel_params(f, cfg, T, 0);
  size_t ks = kx_lin_causal_scratch_floats(&kp0);
  float *datt = scratch, *dfq = datt + N * C, *dfk = dfq + N * H * m, *dq = dfk + N * H * m, *dk = dq + N * C;
  float *dv = dk + N * C, *dqkv = dv + N * C, *kscr = dqkv + 3 * N * C;
  /* datt accumulates the proj backward; everything else is overwritten. */
  memset(datt, 0, N * C * sizeof(float));
  kx_matmul_backward(datt, dp[PROJ_W], dp[PROJ_B], dy, a.att, p[PROJ_W], N, C, C);
  kx_win_heads w = window_acts(f, c, p, &a, kscr);
  if (cfg->window) {
    kx_win_heads_backward_linear(&w, datt, dfq, dfk, dv);
  } else {
#pragma omp parallel for schedule(dynamic, 1) if (parallel_heads(B, H, T, d))
    for (size_t bh = 0; bh < B * H; bh++) {
      size_t b = bh / H, h = bh % H;
      kx_lin_causal kp = kernel_params(f, cfg, T, h);
      size_t o = bh * T * m;
      kx_lin_causal_backward(&kp, a.fq + o, a.fk + o, a.v + bh * T * d, a.att + b * T * C + h * d, a.den + bh * T,
                             datt + b * T * C + h * d, dfq + o, dfk + o, dv + bh * T * d, kscr + bh * ks);
    }
  }
  float *const *pf = p + KX_LIN_ATTN_SHARED, *const *dpf = dp + KX_LIN_ATTN_SHARED;
  f->backward(f, c, pf, dpf, KX_LIN_QUERY, a.q, a.fq, a.save_q, dfq, dq);
  f->backward(f, c, pf, dpf, KX_LIN_KEY, a.k, a.fk, a.save_k, dfk, dk);
  if (cfg->window) kx_win_heads_backward_window(&w, datt, dq, dk, dv, dp[KX_LIN_ATTN_SHARED + f->n_tensors]);
#pragma omp parallel for schedule(static) if (parallel_heads(B, H, T, d))
  for (size_t bh = 0; bh < B * H; bh++) {
    size_t b = bh / H, h = bh % H;
    kx_heads_merge(cfg, dqkv, b, h, T, c->rope_cos, c->rope_sin, dq + bh * T * d, dk + bh * T * d,
                   dv + bh * T * d);
  }
  kx_heads_fold(cfg, dqkv, N);
  kx_matmul_backward(dx, dp[QKV_W], dp[QKV_B], dqkv, x, p[QKV_W], N, C, kx_dec_qkv_rows(cfg));
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
  acts_view a = view(f, c->cfg, c->B, c->T, acts);
  if (c->cfg->window) {
    kx_win_heads w = window_acts(f, c, p, &a, NULL);
    kx_win_heads_weights(&w, b, h, A);
    return;
  }
  size_t off = (b * c->cfg->heads + h) * c->T * f->features(c->cfg);
  kx_lin_causal kp = kernel_params(f, c->cfg, c->T, h);
  kx_lin_causal_weights(&kp, a.fq + off, a.fk + off, A);
}

/* The rows' gradient with respect to the features (dec_attn_rows.h, or
 * with a window the hybrid's rows, dec_window.h, which also give win_beta
 * its gradient), then the map's tensors' through param_backward (q and k
 * are the teacher's in transfer, not trained).  Scratch: the rows' | dfq,
 * dfk (T, m). */
void kx_lin_attn_weights_backward(const kx_lin_fmap *f, const kx_attn_ctx *c, float *const *p, float *const *dp,
                                  const float *acts, size_t b, size_t h, const float *dA, float *scratch) {
  acts_view a = view(f, c->cfg, c->B, c->T, acts);
  size_t T = c->T, m = f->features(c->cfg), d = c->cfg->width / c->cfg->heads, bh = b * c->cfg->heads + h;
  kx_lin_causal kp = kernel_params(f, c->cfg, T, h);
  float *dfq = scratch + kx_attn_rows_scratch_floats(T), *dfk = dfq + T * m;
  const float *fq = a.fq + bh * T * m, *fk = a.fk + bh * T * m;
  if (c->cfg->window) {
    kx_win_heads w = window_acts(f, c, p, &a, NULL);
    kx_win_heads_rows_backward(&w, b, h, dA, dfq, dfk, dp[KX_LIN_ATTN_SHARED + f->n_tensors] + h, scratch);
  } else {
    kx_attn_rows_backward(&kp, fq, fk, dA, dfq, dfk, scratch);
  }
  float *const *pf = p + KX_LIN_ATTN_SHARED, *const *dpf = dp + KX_LIN_ATTN_SHARED;
  f->param_backward(f, c, pf, dpf, KX_LIN_QUERY, h, a.q + bh * T * d, fq, dfq);
  f->param_backward(f, c, pf, dpf, KX_LIN_KEY, h, a.k + bh * T * d, fk, dfk);
}

size_t kx_lin_attn_state_floats(const kx_lin_fmap *f, const kx_dec_config *cfg) {
  size_t m = f->features(cfg), d = cfg->width / cfg->heads;
  return cfg->heads * (m * d + m) + cfg->heads + (cfg->window ? kx_win_state_floats(cfg, m) : 0);
}

float *kx_lin_attn_map_state(const kx_lin_fmap *f, const kx_attn_ctx *c) {
  size_t m = f->features(c->cfg), d = c->cfg->width / c->cfg->heads;
  return c->state ? c->state + c->cfg->heads * (m * d + m) : NULL;
}
