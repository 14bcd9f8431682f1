/* Hedgehog attention (Zhang et al., ICLR 2024): a learnable feature map in
 * front of normalised causal linear attention, meant to be trained first
 * by attention transfer from a softmax teacher (dec_transfer.h).
 *
 * Tensors of block l (the first four as in softmax, so a converted model
 * reuses the teacher's):
 *   qkv_w (3C, C), qkv_b (3C), proj_w (C, C), proj_b (C);
 *   hh_qw (H*d, d), hh_qb (H*d): per head h, rows [h*d, (h+1)*d) are the
 *        map A_h (d, d) and bias b_h (d) of the queries, initialised to the
 *        identity and zero (the `init` hook); hh_kw, hh_kb the same for keys.
 * Per head, with q, k after rotary (as softmax sees them), u = A_h x + b_h:
 *   phi(x) = [softmax(u), softmax(-u)]      (2d features, each half a
 *            distribution over the feature index, hence bounded),
 *   o_i = sum_{j<=i} (phi(q_i).phi(k_j)) v_j / (sum_{j<=i} phi(q_i).phi(k_j) + eps),
 * through the chunked kernel of dec_linear_causal.h (linear in T).  The
 * maps get no weight decay: decay would pull them away from the identity
 * towards 0, which is not a "small" map here. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <cblas.h>

#include "experiments/model/dec_attn.h"
#include "experiments/model/attn/dec_attn_rows.h"
#include "experiments/model/dec_heads.h"
#include "experiments/model/dec_fastmath.h"
#include "experiments/model/dec_layers.h"
#include "experiments/model/dec_linear_causal.h"
#include "experiments/model/dec_window.h"

enum { QKV_W = KX_HEADS_QKV_W, QKV_B = KX_HEADS_QKV_B, PROJ_W = KX_HEADS_PROJ_W, PROJ_B = KX_HEADS_PROJ_B,
       QMAP_W = KX_HEADS_TENSORS, QMAP_B, KMAP_W, KMAP_B, N_TENSORS };

#define HH_EPS 1e-6f

/* The teacher's four tensors, then the maps (H*d, d) and biases (H*d). */
static int declare(const kx_dec_config *cfg, size_t layer, kx_param_table *tab, size_t *n) {
  int rc = kx_heads_declare(cfg, layer, tab);
  char name[48];
  static const char *names[4] = {"hh_qw", "hh_qb", "hh_kw", "hh_kb"};
  size_t d = cfg->width / cfg->heads;
  for (int i = 0; i < 4 && !rc; i++) {
    snprintf(name, sizeof name, "layer%zu/%s", layer, names[i]);
    rc = kx_ptable_add(tab, name, cfg->heads * d, i % 2 ? 0 : d, 0, i % 2 ? KX_INIT_ZERO : KX_INIT_KIND, NULL);
  }
  *n = N_TENSORS;
  return rc ? rc : kx_win_declare(cfg, layer, tab, n);
}

/* Each head's map starts as the identity: phi is then the plain
 * softmax/exp feature map of Hedgehog's initialisation. */
static int init(const kx_dec_config *cfg, size_t layer, float *const *p, uint64_t seed) {
  (void)layer, (void)seed;
  size_t H = cfg->heads, d = cfg->width / H;
  for (int w = QMAP_W; w <= KMAP_W; w += 2) {
    memset(p[w], 0, H * d * d * sizeof(float));
    for (size_t h = 0; h < H; h++)
      for (size_t i = 0; i < d; i++) p[w][(h * d + i) * d + i] = 1.0f;
  }
  return 0;
}

static kx_lin_causal kernel_params(const kx_attn_ctx *c) {
  size_t d = c->cfg->width / c->cfg->heads;
  kx_lin_causal k = {.T = c->T, .m = 2 * d, .dv = d, .ld_f = 2 * d, .ld_v = d, .ld_o = c->cfg->width,
                     .decay = 1.0f, .normalise = 1, .eps = HH_EPS, .chunk = 0};
  return k;
}

static kx_lin_causal head_kernel(const void *kind, const kx_dec_config *cfg, size_t T, size_t h) {
  (void)kind, (void)h;
  kx_attn_ctx c = {cfg, 1, T, NULL, NULL, 0, 0, NULL};
  return kernel_params(&c);
}

/* The sliding window's view of a block (dec_window.h): no stabiliser. */
static kx_win_heads window_heads(const kx_attn_ctx *c) {
  kx_win_heads w = {.c = c, .kernel = head_kernel, .scale = 1.0f / sqrtf((float)(c->cfg->width / c->cfg->heads))};
  return w;
}

/* Saved activations: qkv (N,3C) | q, k, v (B,H,T,d) after rotary | fq, fk
 * (B,H,T,2d) features | att (N,C) heads concatenated | den (B,H,T) |
 * with a window its stats (B,H,T,KX_WIN_STATS) | kernel (or window)
 * scratch, one block per (b,h). */
typedef struct {
  float *qkv, *q, *k, *v, *fq, *fk, *att, *den, *stats, *kscratch;
  size_t kscratch_floats;
} acts_view;

static acts_view view(const kx_attn_ctx *c, const float *acts) {
  size_t B = c->B, N = B * c->T, C = c->cfg->width, H = c->cfg->heads;
  kx_lin_causal k = kernel_params(c);
  kx_win_heads wh = window_heads(c);
  acts_view a;
  a.fq = kx_heads_acts((float *)acts, N, C, &a.qkv, &a.q, &a.k, &a.v);
  a.fk = a.fq + 2 * N * C;
  a.att = a.fk + 2 * N * C;
  a.den = a.att + N * C;
  a.stats = a.den + N * H;
  a.kscratch = a.stats + (c->cfg->window ? KX_WIN_STATS * N * H : 0);
  a.kscratch_floats =
      c->cfg->window ? kx_win_heads_act_floats(&wh, B, c->T) / (B * H) : kx_lin_causal_scratch_floats(&k);
  return a;
}

static size_t act_floats(const kx_dec_config *cfg, size_t B, size_t T) {
  kx_attn_ctx c = {cfg, B, T, NULL, NULL, 0, 0, NULL};
  acts_view a = view(&c, NULL);
  return (size_t)(a.kscratch - a.qkv) + B * cfg->heads * a.kscratch_floats;
}

/* Scratch: datt (N,C) | dq, dk, dv (B,H,T,d) | duq, duk (B,H,T,d) | dfq, dfk
 * (B,H,T,2d) | dqkv (N,3C) | (attention-weights gradient) the rows' 2 T^2,
 * or with a window the window's backward scratch. */
static size_t scratch_floats(const kx_dec_config *cfg, size_t B, size_t T) {
  size_t N = B * T, C = cfg->width, rows = kx_attn_rows_scratch_floats(T);
  kx_attn_ctx c = {cfg, B, T, NULL, NULL, 0, 0, NULL};
  kx_win_heads wh = window_heads(&c);
  size_t win = cfg->window ? kx_win_heads_scratch_floats(&wh, B, T) : 0;
  return N * C + 3 * N * C + 2 * N * C + 4 * N * C + 3 * N * C + (win > rows ? win : rows);
}

/* The window's view of the acts of the last forward. */
static kx_win_heads window_acts(const kx_attn_ctx *c, float *const *p, const acts_view *a, float *scratch) {
  kx_win_heads w = window_heads(c);
  w.q = a->q, w.k = a->k, w.v = a->v, w.fq = a->fq, w.fk = a->fk;
  w.beta = p[N_TENSORS];
  w.o = a->att, w.stats = a->stats, w.scratch = scratch;
  if (c->state) {
    size_t d = c->cfg->width / c->cfg->heads;
    w.state = c->state;
    w.win_state = c->state + c->cfg->heads * (2 * d * d + 2 * d);
  }
  return w;
}

/* phi (T, 2d) from x (T, d): u = x A^T + b, then the two softmax halves. */
static void feature_forward(const float *x, const float *A, const float *bias, float *phi, size_t T, size_t d) {
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)T, (int)d, (int)d, 1.0f, x, (int)d, A, (int)d, 0.0f,
              phi, (int)(2 * d));
  for (size_t t = 0; t < T; t++) {
    float *f = phi + t * 2 * d, *g = f + d;
    float mx = -INFINITY, mn = INFINITY;
    for (size_t i = 0; i < d; i++) {
      f[i] += bias[i];
      mx = f[i] > mx ? f[i] : mx;
      mn = f[i] < mn ? f[i] : mn;
    }
    float s1 = 0.0f, s2 = 0.0f;
    for (size_t i = 0; i < d; i++) {
      g[i] = kx_expf(mn - f[i]); /* exp(-u_i) / exp(-min u) */
      f[i] = kx_expf(f[i] - mx);
      s1 += f[i];
      s2 += g[i];
    }
    float i1 = 1.0f / s1, i2 = 1.0f / s2;
    for (size_t i = 0; i < d; i++) f[i] *= i1, g[i] *= i2;
  }
}

/* du (T, d) = gradient of u from dphi (T, 2d), overwritten:
 * for s = softmax(u), du = s * (ds - s.ds); the second half enters as -u. */
static void feature_backward(const float *phi, const float *dphi, float *du, size_t T, size_t d) {
  for (size_t t = 0; t < T; t++) {
    const float *f = phi + t * 2 * d, *g = f + d, *df = dphi + t * 2 * d, *dg = df + d;
    float a = 0.0f, b = 0.0f;
    for (size_t i = 0; i < d; i++) a += f[i] * df[i], b += g[i] * dg[i];
    for (size_t i = 0; i < d; i++) du[t * d + i] = f[i] * (df[i] - a) - g[i] * (dg[i] - b);
  }
}

/* dA (d,d) += du^T x ; db (d) += column sums of du ; du, x (T, d). */
static void map_weight_backward(const float *du, const float *x, float *dA, float *db, size_t T, size_t d) {
  cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)d, (int)d, (int)T, 1.0f, du, (int)d, x, (int)d, 1.0f,
              dA, (int)d);
  for (size_t t = 0; t < T; t++)
    for (size_t i = 0; i < d; i++) db[i] += du[t * d + i];
}

/* x (B,T,C) -> y (B,T,C). */
static void forward(const kx_attn_ctx *c, float *const *p, const float *x, float *y, float *acts) {
  const kx_dec_config *cfg = c->cfg;
  size_t B = c->B, T = c->T, C = cfg->width, H = cfg->heads, d = C / H;
  size_t N = B * T;
  acts_view a = view(c, acts);
  kx_lin_causal kp = kernel_params(c);
  kx_matmul_forward(a.qkv, x, p[QKV_W], p[QKV_B], N, C, kx_dec_qkv_rows(cfg));
  kx_heads_split_all(c, a.qkv, 1.0f, a.q, a.k, a.v);
#pragma omp parallel for schedule(dynamic, 1) if (B * H * T * d >= 16384)
  for (size_t bh = 0; bh < B * H; bh++) {
    size_t b = bh / H, h = bh % H;
    float *q = a.q + bh * T * d, *k = a.k + bh * T * d, *v = a.v + bh * T * d;
    float *fq = a.fq + bh * T * 2 * d, *fk = a.fk + bh * T * 2 * d;
    feature_forward(q, p[QMAP_W] + h * d * d, p[QMAP_B] + h * d, fq, T, d);
    feature_forward(k, p[KMAP_W] + h * d * d, p[KMAP_B] + h * d, fk, T, d);
    if (cfg->window) continue; /* the hybrid runs below */
    kx_lin_causal kh = kp;
    kh.state = c->state ? c->state + bh * (2 * d * d + 2 * d) : NULL;
    kx_lin_causal_forward(&kh, fq, fk, v, a.att + b * T * C + h * d, a.den + bh * T,
                          a.kscratch + bh * a.kscratch_floats);
  }
  if (cfg->window) {
    kx_win_heads w = window_acts(c, p, &a, a.kscratch);
    kx_win_heads_forward(&w);
  }
  kx_matmul_forward(y, a.att, p[PROJ_W], p[PROJ_B], N, C, C);
}

/* Map-weight gradients from duq, duk (B,H,T,d): summed over the batch one
 * head at a time, so no two threads write the same head's gradient. */
static void maps_backward(const kx_attn_ctx *c, float *const *dp, const acts_view *a, const float *duq,
                          const float *duk) {
  size_t B = c->B, T = c->T, H = c->cfg->heads, d = c->cfg->width / H;
#pragma omp parallel for schedule(static) if (B * T * d * d >= 65536)
  for (size_t h = 0; h < H; h++)
    for (size_t b = 0; b < B; b++) {
      size_t off = (b * H + h) * T * d;
      map_weight_backward(duq + off, a->q + off, dp[QMAP_W] + h * d * d, dp[QMAP_B] + h * d, T, d);
      map_weight_backward(duk + off, a->k + off, dp[KMAP_W] + h * d * d, dp[KMAP_B] + h * d, T, d);
    }
}

static void backward(const kx_attn_ctx *c, float *const *p, float *const *dp, const float *x, const float *dy,
                     const float *acts, float *dx, float *scratch) {
  const kx_dec_config *cfg = c->cfg;
  size_t B = c->B, T = c->T, C = cfg->width, H = cfg->heads, d = C / H;
  size_t N = B * T;
  acts_view a = view(c, acts);
  kx_lin_causal kp = kernel_params(c);
  float *datt = scratch, *dq = datt + N * C, *dk = dq + N * C, *dv = dk + N * C;
  float *duq = dv + N * C, *duk = duq + N * C, *dfq = duk + N * C, *dfk = dfq + 2 * N * C;
  float *dqkv = dfk + 2 * N * C, *wscratch = dqkv + 3 * N * C;
  memset(datt, 0, N * C * sizeof(float));
  kx_matmul_backward(datt, dp[PROJ_W], dp[PROJ_B], dy, a.att, p[PROJ_W], N, C, C);
  kx_win_heads w = window_acts(c, p, &a, wscratch);
  if (cfg->window) kx_win_heads_backward_linear(&w, datt, dfq, dfk, dv);
#pragma omp parallel for schedule(dynamic, 1) if (B * H * T * d >= 16384)
  for (size_t bh = 0; bh < B * H; bh++) {
    size_t b = bh / H, h = bh % H;
    size_t off = bh * T * d;
    float *fq = a.fq + 2 * off, *fk = a.fk + 2 * off;
    if (!cfg->window)
      kx_lin_causal_backward(&kp, fq, fk, a.v + off, a.att + b * T * C + h * d, a.den + bh * T,
                             datt + b * T * C + h * d, dfq + 2 * off, dfk + 2 * off, dv + off,
                             a.kscratch + bh * a.kscratch_floats);
    feature_backward(fq, dfq + 2 * off, duq + off, T, d);
    feature_backward(fk, dfk + 2 * off, duk + off, T, d);
    /* dq = du A (u = q A^T + b) */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)T, (int)d, (int)d, 1.0f, duq + off, (int)d,
                p[QMAP_W] + h * d * d, (int)d, 0.0f, dq + off, (int)d);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)T, (int)d, (int)d, 1.0f, duk + off, (int)d,
                p[KMAP_W] + h * d * d, (int)d, 0.0f, dk + off, (int)d);
  }
  maps_backward(c, dp, &a, duq, duk);
  if (cfg->window) kx_win_heads_backward_window(&w, datt, dq, dk, dv, dp[N_TENSORS]);
  kx_heads_merge_all(c, dq, dk, dv, 1.0f, dqkv);
  kx_matmul_backward(dx, dp[QKV_W], dp[QKV_B], dqkv, x, p[QKV_W], N, C, kx_dec_qkv_rows(cfg));
}

static void qkv_view(const kx_attn_ctx *c, const float *acts, const float **q, const float **k, const float **v,
                     size_t *dqk, size_t *dv, int *scaled) {
  acts_view a = view(c, acts);
  *q = a.q;
  *k = a.k;
  *v = a.v;
  *dqk = *dv = c->cfg->width / c->cfg->heads;
  *scaled = 0;
}

static void attn_weights(const kx_attn_ctx *c, float *const *p, const float *acts, size_t b, size_t h, float *A) {
  acts_view a = view(c, acts);
  if (c->cfg->window) {
    kx_win_heads w = window_acts(c, p, &a, NULL);
    kx_win_heads_weights(&w, b, h, A);
    return;
  }
  kx_lin_causal kp = kernel_params(c);
  size_t off = (b * c->cfg->heads + h) * c->T * 2 * kp.dv;
  kx_lin_causal_weights(&kp, a.fq + off, a.fk + off, A);
}

/* The rows' gradient with respect to the features (dec_attn_rows.h, or
 * with a window the hybrid's rows and win_beta's gradient, dec_window.h),
 * then through the feature maps to A_h and b_h (q and k themselves are not
 * trained here).  Scratch: the rows' (2 T^2) | dfq, dfk (T,2d) | duq, duk (T,d). */
static void attn_weights_backward(const kx_attn_ctx *c, float *const *p, float *const *dp, const float *acts,
                                  size_t b, size_t h, const float *dA, float *scratch) {
  acts_view a = view(c, acts);
  kx_lin_causal kp = kernel_params(c);
  size_t T = c->T, d = kp.dv, m = 2 * d, off = (b * c->cfg->heads + h) * T * d;
  const float *fq = a.fq + 2 * off, *fk = a.fk + 2 * off;
  float *dfq = scratch + kx_attn_rows_scratch_floats(T), *dfk = dfq + T * m, *duq = dfk + T * m, *duk = duq + T * d;
  if (c->cfg->window) {
    kx_win_heads w = window_acts(c, p, &a, NULL);
    kx_win_heads_rows_backward(&w, b, h, dA, dfq, dfk, dp[N_TENSORS] + h, scratch);
  } else {
    kx_attn_rows_backward(&kp, fq, fk, dA, dfq, dfk, scratch);
  }
  feature_backward(fq, dfq, duq, T, d);
  feature_backward(fk, dfk, duk, T, d);
  map_weight_backward(duq, a.q + off, dp[QMAP_W] + h * d * d, dp[QMAP_B] + h * d, T, d);
  map_weight_backward(duk, a.k + off, dp[KMAP_W] + h * d * d, dp[KMAP_B] + h * d, T, d);
}

static const char *const transfer_tensors[] = {"hh_qw", "hh_qb", "hh_kw", "hh_kb", NULL};

/* Recurrent state: per head S (2d, d) and z (2d), then with a window the
 * window's. */
static size_t state_floats(const kx_dec_config *cfg, size_t capacity) {
  (void)capacity;
  size_t d = cfg->width / cfg->heads;
  return cfg->heads * (2 * d * d + 2 * d) + (cfg->window ? kx_win_state_floats(cfg, 2 * d) : 0);
}

const kx_attn_kind kx_attn_hedgehog = {
    .name = "hedgehog",
    .summary = "learnable softmax/exp feature map per head, normalised linear attention (Hedgehog)",
    KX_ATTN_NAMED_HOOKS,
    .init = init,
    .attn_weights_backward = attn_weights_backward,
    .transfer_tensors = transfer_tensors,
    .max_positions = kx_attn_any_position,
    .window = 1,
};
