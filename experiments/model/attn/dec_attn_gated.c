#include "experiments/model/attn/dec_attn_gated.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "experiments/model/dec_heads.h"
#include "experiments/model/attn/dec_attn_rows.h"
#include "experiments/model/attn/dec_gate.h"
#include "experiments/model/dec_layers.h"
#include "experiments/model/dec_linear_causal.h"
#include "experiments/model/dec_window.h"

float kx_gated_decay_retnet(size_t h, size_t H) {
  (void)H;
  return (float)(1.0 - ldexp(1.0, -5 - (int)h));
}

float kx_gated_decay_dijiang(size_t h, size_t H) {
  double a = log(1.0 / 32.0), b = log(1.0 / 512.0);
  double x = H > 1 ? a + (b - a) * (double)h / (double)(H - 1) : a;
  return (float)(1.0 - exp(x));
}

static kx_lin_causal head_kernel(const void *kind, const kx_dec_config *cfg, size_t T, size_t h) {
  return kx_gated_kernel(kind, cfg, T, h);
}

/* The sliding window's view of a block (dec_window.h); q as stored carries
 * q_scale, which the logit takes back out. */
static kx_win_heads window_heads(const kx_gated_map *g, const kx_attn_ctx *c) {
  float d = (float)(c->cfg->width / c->cfg->heads);
  kx_win_heads w = {.c = c, .kernel = head_kernel, .kind = g, .scale = 1.0f / (sqrtf(d) * g->q_scale)};
  return w;
}

int kx_gated_declare(const kx_dec_config *cfg, size_t layer, kx_param_table *tab, const kx_gated_tensor *extra,
                     size_t n_extra, size_t *n) {
  int rc = kx_heads_declare(cfg, layer, tab);
  if (rc) return rc;
  char name[48];
  snprintf(name, sizeof name, "layer%zu/gate_w", layer);
  if ((rc = kx_ptable_add(tab, name, cfg->width, cfg->width, 1, KX_INIT_KIND, NULL))) return rc;
  for (size_t i = 0; i < n_extra; i++) {
    size_t index;
    snprintf(name, sizeof name, "layer%zu/%s", layer, extra[i].name);
    if ((rc = kx_ptable_add(tab, name, extra[i].rows, extra[i].cols, 0, KX_INIT_KIND, &index))) return rc;
    if (extra[i].frozen) kx_ptable_freeze(tab, index);
  }
  *n = KX_GATED_N + n_extra;
  return kx_win_declare(cfg, layer, tab, n);
}

static size_t gn_groups(const kx_gated_map *g, const kx_dec_config *cfg) {
  return g->gn_groups ? g->gn_groups : cfg->heads;
}

static kx_gate_norm gate_norm(const kx_gated_map *g, const kx_dec_config *cfg, float *const *p) {
  kx_gate_norm n = {gn_groups(g, cfg), NULL, NULL};
  if (g->gn_affine) n.w = p[g->gn_affine], n.b = p[g->gn_affine + 1];
  return n;
}

static size_t features(const kx_gated_map *g, const kx_dec_config *cfg) {
  return g->features ? g->features(cfg) : cfg->width / cfg->heads;
}

kx_lin_causal kx_gated_kernel(const kx_gated_map *g, const kx_dec_config *cfg, size_t T, size_t h) {
  size_t d = cfg->width / cfg->heads, m = features(g, cfg);
  kx_lin_causal k = {.T = T, .m = m, .dv = d, .ld_f = m, .ld_v = d, .ld_o = cfg->width,
                     .decay = g->decay(h, cfg->heads), .normalise = g->normalise, .eps = g->eps};
  return k;
}

/* Per (b, h): what the kernel's forward needs (kept in acts, since forward
 * has no scratch) and what forward or backward needs. */
static size_t kernel_scratch(const kx_gated_map *g, const kx_dec_config *cfg, size_t T, int fwd_only) {
  kx_lin_causal k = kx_gated_kernel(g, cfg, T, 0);
  return fwd_only ? kx_lin_causal_forward_scratch_floats(&k) : kx_lin_causal_scratch_floats(&k);
}

/* Saved: qkv (N,3C) | q, k, v (B,H,T,d) | fq, fk (B,H,T,m) and the map's
 * aux for q and k (only with a map) | den (B,H,T) (only normalised) |
 * o (N,C) | zg (N,C) | gn mean, rstd (N G) | gated (N,C), the input of proj
 * | with a window: lam (B,H,T) and its stats (B,H,T,KX_WIN_STATS) | kernel
 * (or window) scratch (B H). */
typedef struct {
  float *qkv, *q, *k, *v, *fq, *fk, *aux_q, *aux_k, *den, *o, *zg, *gn_mean, *gn_rstd, *gated, *lam, *stats,
      *kscratch;
  size_t total;
} acts_view;

/* acts == NULL: only .total is meaningful (no pointer arithmetic on NULL). */
static acts_view view(const kx_gated_map *g, const kx_dec_config *cfg, size_t B, size_t T, const float *acts) {
  size_t N = B * T, C = cfg->width, H = cfg->heads, m = features(g, cfg), G = gn_groups(g, cfg);
  size_t aux = g->map_forward && g->aux_floats ? g->aux_floats(cfg, B, T) : 0;
  size_t fsize = g->map_forward ? N * H * m : 0, dsize = g->normalise ? N * H : 0, win = cfg->window ? N * H : 0;
  kx_attn_ctx c = {cfg, B, T, NULL, NULL, 0, 0, NULL};
  kx_win_heads wh = window_heads(g, &c);
  size_t ks = cfg->window ? kx_win_heads_act_floats(&wh, B, T) : B * H * kernel_scratch(g, cfg, T, 1);
  float *base = (float *)acts;
  acts_view a;
  size_t sizes[] = {3 * N * C, N * C, N * C, N * C, fsize, fsize, aux, aux, dsize, N * C, N * C, N * G, N * G,
                    N * C, win, KX_WIN_STATS * win, ks};
  float **dst[] = {&a.qkv, &a.q, &a.k, &a.v, &a.fq, &a.fk, &a.aux_q, &a.aux_k, &a.den, &a.o, &a.zg,
                   &a.gn_mean, &a.gn_rstd, &a.gated, &a.lam, &a.stats, &a.kscratch};
  size_t off = 0;
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    *dst[i] = base ? base + off : NULL;
    off += sizes[i];
  }
  if (!g->map_forward) a.fq = a.q, a.fk = a.k;
  if (!g->normalise) a.den = NULL;
  a.total = off;
  return a;
}

size_t kx_gated_act_floats(const kx_gated_map *g, const kx_dec_config *cfg, size_t B, size_t T) {
  return view(g, cfg, B, T, NULL).total;
}

/* The window's view of the acts of the last forward, with the scratch it
 * works in. */
static kx_win_heads window_acts(const kx_gated_map *g, const kx_attn_ctx *c, float *const *p, const acts_view *a,
                                float *scratch) {
  kx_win_heads w = window_heads(g, c);
  w.q = a->q, w.k = a->k, w.v = a->v, w.fq = a->fq, w.fk = a->fk;
  w.lam = g->log_scale ? a->lam : NULL;
  w.beta = p[g->n_tensors];
  w.o = a->o, w.stats = a->stats, w.scratch = scratch;
  if (c->state) {
    size_t H = c->cfg->heads, m = features(g, c->cfg), d = c->cfg->width / H;
    w.state = c->state;
    w.win_state = c->state + H * (m * d + m);
  }
  return w;
}

/* Scratch: dgated, do, dzg (N,C) | dq, dk, dv (B,H,T,d) | dqkv (N,3C) |
 * dfq, dfk and the map's scratch (B,H,T,m) (only with a map) | kernel
 * scratch (B H). */
size_t kx_gated_scratch_floats(const kx_gated_map *g, const kx_dec_config *cfg, size_t B, size_t T) {
  size_t N = B * T, C = cfg->width, H = cfg->heads;
  size_t f = g->map_forward ? 3 * N * H * features(g, cfg) : 0;
  kx_attn_ctx c = {cfg, B, T, NULL, NULL, 0, 0, NULL};
  kx_win_heads wh = window_heads(g, &c);
  size_t kernel = cfg->window ? kx_win_heads_scratch_floats(&wh, B, T) : B * H * kernel_scratch(g, cfg, T, 0);
  size_t body = 9 * N * C + f + kernel;
  size_t weights = g->weights_scratch_floats ? g->weights_scratch_floats(cfg, T) : 0;
  return body > weights ? body : weights;
}

void kx_gated_forward(const kx_gated_map *g, const kx_attn_ctx *c, float *const *p, const float *x, float *y,
                      float *acts) {
  const kx_dec_config *cfg = c->cfg;
  size_t B = c->B, T = c->T, C = cfg->width, H = cfg->heads, d = C / H, N = B * T, m = features(g, cfg);
  acts_view a = view(g, cfg, B, T, acts);
  size_t ks = kernel_scratch(g, cfg, T, 1);
  kx_matmul_forward(a.qkv, x, p[KX_GATED_QKV_W], p[KX_GATED_QKV_B], N, C, kx_dec_qkv_rows(cfg));
  kx_heads_split_all(c, a.qkv, g->q_scale, a.q, a.k, a.v);
  if (g->map_forward) {
    g->map_forward(c, p, 1, a.q, a.fq, a.aux_q);
    g->map_forward(c, p, 0, a.k, a.fk, a.aux_k);
  }
  if (cfg->window) {
    if (g->log_scale) {
      memset(a.lam, 0, N * H * sizeof(float));
      g->log_scale(c, 1, a.aux_q, a.lam);
      g->log_scale(c, 0, a.aux_k, a.lam);
    }
    kx_win_heads w = window_acts(g, c, p, &a, a.kscratch);
    kx_win_heads_forward(&w);
  } else {
#pragma omp parallel for schedule(dynamic, 1) if (N * C * m >= 262144)
    for (size_t bh = 0; bh < B * H; bh++) {
      size_t b = bh / H, h = bh % H;
      kx_lin_causal k = kx_gated_kernel(g, cfg, T, h);
      k.state = c->state ? c->state + bh * (m * d + m) : NULL;
      kx_lin_causal_forward(&k, a.fq + bh * T * m, a.fk + bh * T * m, a.v + bh * T * d, a.o + b * T * C + h * d,
                            a.den ? a.den + bh * T : NULL, a.kscratch + bh * ks);
    }
  }
  kx_gate_norm gn = gate_norm(g, cfg, p);
  kx_gate_forward(a.gated, a.zg, a.gn_mean, a.gn_rstd, x, p[KX_GATED_GATE_W], a.o, N, C, &gn, (float)cfg->ln_eps);
  kx_matmul_forward(y, a.gated, p[KX_GATED_PROJ_W], p[KX_GATED_PROJ_B], N, C, C);
}

void kx_gated_backward(const kx_gated_map *g, const kx_attn_ctx *c, float *const *p, float *const *dp,
                       const float *x, const float *dy, const float *acts, float *dx, float *scratch) {
  const kx_dec_config *cfg = c->cfg;
  size_t B = c->B, T = c->T, C = cfg->width, H = cfg->heads, d = C / H, N = B * T, m = features(g, cfg);
  acts_view a = view(g, cfg, B, T, acts);
  size_t ks = kernel_scratch(g, cfg, T, 0);
  float *dgated = scratch, *d_o = dgated + N * C, *dzg = d_o + N * C, *dq = dzg + N * C;
  float *dk = dq + N * C, *dv = dk + N * C, *dqkv = dv + N * C, *dfq = dqkv + 3 * N * C;
  float *dfk = g->map_forward ? dfq + N * H * m : dk;
  float *map_scratch = dfk + N * H * m;
  float *kscratch = g->map_forward ? map_scratch + N * H * m : dfq;
  if (!g->map_forward) dfq = dq;
  memset(dgated, 0, N * C * sizeof(float));
  kx_matmul_backward(dgated, dp[KX_GATED_PROJ_W], dp[KX_GATED_PROJ_B], dy, a.gated, p[KX_GATED_PROJ_W], N, C, C);
  kx_gate_norm gn = gate_norm(g, cfg, p);
  kx_gate_backward(dx, dp[KX_GATED_GATE_W], g->gn_affine ? dp[g->gn_affine] : NULL,
                   g->gn_affine ? dp[g->gn_affine + 1] : NULL, d_o, dzg, dgated, x, p[KX_GATED_GATE_W], a.o, a.zg,
                   a.gn_mean, a.gn_rstd, N, C, &gn);
  kx_win_heads w = window_acts(g, c, p, &a, kscratch);
  if (cfg->window) {
    kx_win_heads_backward_linear(&w, d_o, dfq, dfk, dv);
  } else {
#pragma omp parallel for schedule(dynamic, 1) if (N * C * m >= 262144)
    for (size_t bh = 0; bh < B * H; bh++) {
      size_t b = bh / H, h = bh % H;
      kx_lin_causal k = kx_gated_kernel(g, cfg, T, h);
      kx_lin_causal_backward(&k, a.fq + bh * T * m, a.fk + bh * T * m, a.v + bh * T * d, a.o + b * T * C + h * d,
                             a.den ? a.den + bh * T : NULL, d_o + b * T * C + h * d, dfq + bh * T * m,
                             dfk + bh * T * m, dv + bh * T * d, kscratch + bh * ks);
    }
  }
  if (g->map_forward) {
    g->map_backward(c, p, dp, 1, a.q, a.fq, a.aux_q, dfq, dq, map_scratch);
    g->map_backward(c, p, dp, 0, a.k, a.fk, a.aux_k, dfk, dk, map_scratch);
  }
  if (cfg->window) kx_win_heads_backward_window(&w, d_o, dq, dk, dv, dp[g->n_tensors]);
  kx_heads_merge_all(c, dq, dk, dv, g->q_scale, dqkv);
  kx_matmul_backward(dx, dp[KX_GATED_QKV_W], dp[KX_GATED_QKV_B], dqkv, x, p[KX_GATED_QKV_W], N, C, kx_dec_qkv_rows(cfg));
}

void kx_gated_qkv_view(const kx_gated_map *g, const kx_attn_ctx *c, const float *acts, const float **q,
                       const float **k, const float **v, size_t *dqk, size_t *dv, int *scaled) {
  acts_view a = view(g, c->cfg, c->B, c->T, acts);
  *q = a.q;
  *k = a.k;
  *v = a.v;
  *dqk = *dv = c->cfg->width / c->cfg->heads;
  *scaled = g->q_scale != 1.0f;
}

void kx_gated_features(const kx_gated_map *g, const kx_attn_ctx *c, const float *acts, const float **fq,
                       const float **fk, const float **aux_q, const float **aux_k) {
  acts_view a = view(g, c->cfg, c->B, c->T, acts);
  *fq = a.fq;
  *fk = a.fk;
  *aux_q = a.aux_q;
  *aux_k = a.aux_k;
}

void kx_gated_attn_weights(const kx_gated_map *g, const kx_attn_ctx *c, float *const *p, const float *acts, size_t b,
                           size_t h, float *A) {
  acts_view a = view(g, c->cfg, c->B, c->T, acts);
  if (c->cfg->window) {
    kx_win_heads w = window_acts(g, c, p, &a, NULL);
    kx_win_heads_weights(&w, b, h, A);
    return;
  }
  size_t m = features(g, c->cfg), off = (b * c->cfg->heads + h) * c->T * m;
  kx_lin_causal k = kx_gated_kernel(g, c->cfg, c->T, h);
  kx_lin_causal_weights(&k, a.fq + off, a.fk + off, A);
}

void kx_gated_rows_backward(const kx_gated_map *g, const kx_attn_ctx *c, float *const *p, float *const *dp,
                            const float *acts, size_t b, size_t h, const float *dA, float *dfq, float *dfk,
                            float *scratch) {
  acts_view a = view(g, c->cfg, c->B, c->T, acts);
  if (c->cfg->window) {
    kx_win_heads w = window_acts(g, c, p, &a, NULL);
    kx_win_heads_rows_backward(&w, b, h, dA, dfq, dfk, dp[g->n_tensors] + h, scratch);
    return;
  }
  size_t m = features(g, c->cfg), off = (b * c->cfg->heads + h) * c->T * m;
  kx_lin_causal k = kx_gated_kernel(g, c->cfg, c->T, h);
  kx_attn_rows_backward(&k, a.fq + off, a.fk + off, dA, dfq, dfk, scratch);
}

size_t kx_gated_state_floats(const kx_gated_map *g, const kx_dec_config *cfg) {
  size_t m = features(g, cfg), d = cfg->width / cfg->heads;
  return cfg->heads * (m * d + m) + (cfg->window ? kx_win_state_floats(cfg, m) : 0);
}
