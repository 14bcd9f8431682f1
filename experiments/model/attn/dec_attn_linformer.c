/* Linformer (Wang et al. 2020) made causal, as an attention kind.
 *
 * The original projects the n keys and values of the whole sequence to S
 * slots with learned (S x n) matrices E, F and takes a softmax over the S
 * slots: every output sees the future.  The causal adaptation here
 * ("cumulative projections") lets query i project only the keys and values
 * it may see, as a mean over its prefix:
 *
 *   Kbar_i,s = 1/(i+1) sum_{j<=i} E_sj k_j        Vbar_i,s = 1/(i+1) sum_{j<=i} F_sj v_j
 *   a_i      = softmax_s( q_i . Kbar_i,s / sqrt(d) )
 *   o_i      = sum_s a_i,s Vbar_i,s = 1/(i+1) sum_{j<=i} (a_i . F_j) v_j
 *   y        = proj(o)
 *
 * Both prefix sums are causal linear attentions (dec_linear_causal.h, no
 * decay, no normaliser): q_i . sum_{j<=i} E_sj k_j is the kernel with
 * features q, k and "values" E^T (T x S), and o is the kernel with features
 * a, F^T and values v.  Cost O(T S d) per head: linear in T.  The 1/(i+1)
 * keeps the slots at the scale of one key/value whatever the position.
 *
 * E, F (S x ctx, S = KX_LINFORMER_SLOTS) are shared by the heads of a layer
 * (Linformer's "headwise sharing") and initialised to 1 + N(0, 1/S): at
 * conversion every slot is close to the prefix mean of the keys and values,
 * so the kind starts near causal uniform attention (which docs/decoder.md
 * shows beats the positive feature maps on the teacher's q, k), and the noise
 * breaks the symmetry between slots (with E = 1 exactly, every slot would
 * get the same gradient forever).  No weight decay on E, F (it would pull
 * them to 0, away from the mean).  q, k after the teacher's rotary.
 *
 * Tensors of block l: qkv_w, qkv_b, proj_w, proj_b as the softmax kind,
 *   lin_e (S, ctx), lin_f (S, ctx)  new (KX_INIT_KIND, the kind's seed).
 * attn_weights: row i is |a_i . F_j| / sum_j |a_i . F_j| (the 1/(i+1)
 * cancels), the weight o_i gives v_j up to sign. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>

#include "core/kx_error.h"
#include "core/kx_seed.h"
#include "experiments/model/dec_attn.h"
#include "experiments/model/dec_heads.h"
#include "experiments/model/dec_fastmath.h"
#include "experiments/model/dec_layers.h"
#include "experiments/model/dec_linear_causal.h"

#define KX_LINFORMER_SLOTS 32

enum { QKV_W = KX_HEADS_QKV_W, QKV_B = KX_HEADS_QKV_B, PROJ_W = KX_HEADS_PROJ_W, PROJ_B = KX_HEADS_PROJ_B };
enum { LIN_E = KX_HEADS_TENSORS, LIN_F, N_TENSORS };

/* The teacher's four tensors (dec_heads.h), then E and F: new, no weight
 * decay (it would pull them to 0, away from the prefix mean). */
static int declare(const kx_dec_config *cfg, size_t layer, kx_param_table *tab, size_t *n) {
  int rc = kx_heads_declare(cfg, layer, tab);
  static const char *names[2] = {"lin_e", "lin_f"};
  for (int i = 0; i < 2 && !rc; i++) {
    char name[48];
    snprintf(name, sizeof name, "layer%zu/%s", layer, names[i]);
    rc = kx_ptable_add(tab, name, KX_LINFORMER_SLOTS, cfg->ctx, 0, KX_INIT_KIND, NULL);
  }
  *n = N_TENSORS;
  return rc;
}

/* Kernel 1: features q, k (d), values E^T (S) -> raw scores (T, S).
 * Kernel 2: features a, F^T (S), values v (d) -> o (T, d) in (N, C). */
static kx_lin_causal kernel1(const kx_dec_config *cfg, size_t T) {
  size_t d = cfg->width / cfg->heads, S = KX_LINFORMER_SLOTS;
  kx_lin_causal k = {.T = T, .m = d, .dv = S, .ld_f = d, .ld_v = S, .ld_o = S, .decay = 1.0f};
  return k;
}

static kx_lin_causal kernel2(const kx_dec_config *cfg, size_t T) {
  size_t d = cfg->width / cfg->heads, S = KX_LINFORMER_SLOTS;
  kx_lin_causal k = {.T = T, .m = S, .dv = d, .ld_f = S, .ld_v = d, .ld_o = cfg->width, .decay = 1.0f};
  return k;
}

/* Per (b, h): forward only (kept in acts) or forward and backward. */
static size_t kernel_scratch(const kx_dec_config *cfg, size_t T, int fwd_only) {
  kx_lin_causal k1 = kernel1(cfg, T), k2 = kernel2(cfg, T);
  size_t s1 = fwd_only ? kx_lin_causal_forward_scratch_floats(&k1) : kx_lin_causal_scratch_floats(&k1);
  size_t s2 = fwd_only ? kx_lin_causal_forward_scratch_floats(&k2) : kx_lin_causal_scratch_floats(&k2);
  return s1 > s2 ? s1 : s2;
}

/* Saved: qkv (N,3C) | q, k, v (B,H,T,d) | Et, Ft (T,S) | a (B,H,T,S) |
 * o (N,C), the input of proj | kernel scratch (B H). */
typedef struct {
  float *qkv, *q, *k, *v, *Et, *Ft, *a, *o, *kscratch;
  size_t total;
} acts_view;

/* acts == NULL: only .total is meaningful (no pointer arithmetic on NULL). */
static acts_view view(const kx_dec_config *cfg, size_t B, size_t T, const float *acts) {
  size_t N = B * T, C = cfg->width, S = KX_LINFORMER_SLOTS, BH = B * cfg->heads;
  float *base = (float *)acts;
  acts_view a;
  size_t sizes[] = {3 * N * C, N * C, N * C, N * C, T * S, T * S, BH * T * S, N * C, BH * kernel_scratch(cfg, T, 1)};
  float **dst[] = {&a.qkv, &a.q, &a.k, &a.v, &a.Et, &a.Ft, &a.a, &a.o, &a.kscratch};
  size_t off = 0;
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    *dst[i] = base ? base + off : NULL;
    off += sizes[i];
  }
  a.total = off;
  return a;
}

static size_t act_floats(const kx_dec_config *cfg, size_t B, size_t T) { return view(cfg, B, T, NULL).total; }

/* Scratch: do, dout2 (N,C) | dq, dk, dv (B,H,T,d) | dqkv (N,3C) | da, dEt,
 * dFt (B,H,T,S) | kernel scratch (B H). */
static size_t scratch_floats(const kx_dec_config *cfg, size_t B, size_t T) {
  size_t N = B * T, C = cfg->width, BH = B * cfg->heads;
  return 8 * N * C + 3 * BH * T * KX_LINFORMER_SLOTS + BH * kernel_scratch(cfg, T, 0);
}

static void forward(const kx_attn_ctx *c, float *const *p, const float *x, float *y, float *acts) {
  const kx_dec_config *cfg = c->cfg;
  size_t B = c->B, T = c->T, C = cfg->width, H = cfg->heads, d = C / H, N = B * T, S = KX_LINFORMER_SLOTS;
  acts_view a = view(cfg, B, T, acts);
  size_t ks = kernel_scratch(cfg, T, 1);
  kx_matmul_forward(a.qkv, x, p[QKV_W], p[QKV_B], N, C, kx_dec_qkv_rows(cfg));
  kx_heads_split_all(c, a.qkv, 1.0f / sqrtf((float)d), a.q, a.k, a.v);
  /* Recurrent decoding (c->pos > 0) takes the columns of its positions;
   * there are ctx of them (max_positions). */
  for (size_t j = 0; j < T; j++)
    for (size_t s = 0; s < S; s++) {
      a.Et[j * S + s] = p[LIN_E][s * cfg->ctx + c->pos + j];
      a.Ft[j * S + s] = p[LIN_F][s * cfg->ctx + c->pos + j];
    }
  kx_lin_causal k1 = kernel1(cfg, T), k2 = kernel2(cfg, T);
#pragma omp parallel for schedule(dynamic, 1) if (N * C * S >= 262144)
  for (size_t bh = 0; bh < B * H; bh++) {
    size_t b = bh / H, h = bh % H;
    float *ah = a.a + bh * T * S, *o = a.o + b * T * C + h * d;
    /* The two prefix sums' recurrent states, per head: (d S + d) then (S d + S). */
    float *st = c->state ? c->state + bh * (2 * d * S + d + S) : NULL;
    kx_lin_causal k1h = k1, k2h = k2;
    k1h.state = st;
    k2h.state = st ? st + d * S + d : NULL;
    kx_lin_causal_forward(&k1h, a.q + bh * T * d, a.k + bh * T * d, a.Et, ah, NULL, a.kscratch + bh * ks);
    for (size_t i = 0; i < T; i++) {
      float *ai = ah + i * S, inv = 1.0f / (float)(c->pos + i + 1), mx = -INFINITY, sum = 0.0f;
      for (size_t s = 0; s < S; s++) {
        ai[s] *= inv;
        mx = ai[s] > mx ? ai[s] : mx;
      }
      for (size_t s = 0; s < S; s++) sum += ai[s] = kx_expf(ai[s] - mx);
      for (size_t s = 0; s < S; s++) ai[s] /= sum;
    }
    kx_lin_causal_forward(&k2h, ah, a.Ft, a.v + bh * T * d, o, NULL, a.kscratch + bh * ks);
    for (size_t i = 0; i < T; i++)
      for (size_t e = 0; e < d; e++) o[i * C + e] /= (float)(c->pos + i + 1);
  }
  kx_matmul_forward(y, a.o, p[PROJ_W], p[PROJ_B], N, C, C);
}

static void backward(const kx_attn_ctx *c, float *const *p, float *const *dp, const float *x,
                     const float *dy, const float *acts, float *dx, float *scratch) {
  const kx_dec_config *cfg = c->cfg;
  size_t B = c->B, T = c->T, C = cfg->width, H = cfg->heads, d = C / H, N = B * T, S = KX_LINFORMER_SLOTS;
  size_t BH = B * H;
  acts_view a = view(cfg, B, T, acts);
  size_t ks = kernel_scratch(cfg, T, 0);
  float *d_o = scratch, *dout2 = d_o + N * C, *dq = dout2 + N * C, *dk = dq + N * C, *dv = dk + N * C;
  float *dqkv = dv + N * C, *da = dqkv + 3 * N * C, *dEt = da + BH * T * S, *dFt = dEt + BH * T * S;
  float *kscratch = dFt + BH * T * S;
  memset(d_o, 0, N * C * sizeof(float));
  kx_matmul_backward(d_o, dp[PROJ_W], dp[PROJ_B], dy, a.o, p[PROJ_W], N, C, C);
  kx_lin_causal k1 = kernel1(cfg, T), k2 = kernel2(cfg, T);
#pragma omp parallel for schedule(dynamic, 1) if (N * C * S >= 262144)
  for (size_t bh = 0; bh < BH; bh++) {
    size_t b = bh / H, h = bh % H;
    const float *ah = a.a + bh * T * S;
    float *g2 = dout2 + bh * T * d, *dah = da + bh * T * S;
    for (size_t i = 0; i < T; i++)
      for (size_t e = 0; e < d; e++) g2[i * d + e] = d_o[(b * T + i) * C + h * d + e] / (float)(i + 1);
    kx_lin_causal k2h = k2;
    k2h.ld_o = d; /* dout2 is (T, d) contiguous */
    kx_lin_causal_backward(&k2h, ah, a.Ft, a.v + bh * T * d, NULL, NULL, g2, dah, dFt + bh * T * S,
                           dv + bh * T * d, kscratch + bh * ks);
    /* softmax backward, then the 1/(i+1) of the scores */
    for (size_t i = 0; i < T; i++) {
      const float *ai = ah + i * S;
      float *gi = dah + i * S, dot = 0.0f;
      for (size_t s = 0; s < S; s++) dot += ai[s] * gi[s];
      for (size_t s = 0; s < S; s++) gi[s] = ai[s] * (gi[s] - dot) / (float)(i + 1);
    }
    kx_lin_causal_backward(&k1, a.q + bh * T * d, a.k + bh * T * d, a.Et, NULL, NULL, dah, dq + bh * T * d,
                           dk + bh * T * d, dEt + bh * T * S, kscratch + bh * ks);
  }
  /* E and F gradients: the (b, h) contributions summed in a fixed order. */
  for (size_t bh = 0; bh < BH; bh++)
    for (size_t j = 0; j < T; j++)
      for (size_t s = 0; s < S; s++) {
        dp[LIN_E][s * cfg->ctx + j] += dEt[(bh * T + j) * S + s];
        dp[LIN_F][s * cfg->ctx + j] += dFt[(bh * T + j) * S + s];
      }
  kx_heads_merge_all(c, dq, dk, dv, 1.0f / sqrtf((float)d), dqkv);
  kx_matmul_backward(dx, dp[QKV_W], dp[QKV_B], dqkv, x, p[QKV_W], N, C, kx_dec_qkv_rows(cfg));
}

static void qkv_view(const kx_attn_ctx *c, const float *acts, const float **q, const float **k,
                     const float **v, size_t *dqk, size_t *dv, int *scaled) {
  acts_view a = view(c->cfg, c->B, c->T, acts);
  *q = a.q;
  *k = a.k;
  *v = a.v;
  *dqk = *dv = c->cfg->width / c->cfg->heads;
  *scaled = 1;
}

static int init(const kx_dec_config *cfg, size_t layer, float *const *p, uint64_t seed) {
  (void)layer;
  gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
  if (!r) return kx_fail(KX_ENOMEM, "cannot allocate a random number generator for Linformer's projections");
  double sd = 1.0 / sqrt((double)KX_LINFORMER_SLOTS);
  for (int t = LIN_E; t <= LIN_F; t++) {
    gsl_rng_set(r, kx_gsl_seed(kx_seed_derive(seed, (uint64_t)t)));
    for (size_t i = 0; i < KX_LINFORMER_SLOTS * cfg->ctx; i++)
      p[t][i] = (float)(1.0 + gsl_ran_gaussian_ziggurat(r, sd));
  }
  gsl_rng_free(r);
  return 0;
}

static void attn_weights(const kx_attn_ctx *c, float *const *p, const float *acts, size_t b, size_t h,
                         float *A) {
  (void)p;
  acts_view a = view(c->cfg, c->B, c->T, acts);
  kx_lin_causal k2 = kernel2(c->cfg, c->T);
  kx_lin_causal_weights(&k2, a.a + (b * c->cfg->heads + h) * c->T * KX_LINFORMER_SLOTS, a.Ft, A);
}

static size_t state_floats(const kx_dec_config *cfg, size_t capacity) {
  (void)capacity;
  size_t d = cfg->width / cfg->heads, S = KX_LINFORMER_SLOTS;
  return cfg->heads * (2 * d * S + d + S);
}

const kx_attn_kind kx_attn_linformer = {
    .name = "linformer",
    .summary = "causal Linformer: softmax over 32 learned projections of the prefix's keys and values",
    KX_ATTN_NAMED_HOOKS,
    .init = init,
    .max_positions = kx_attn_ctx_positions,
    .no_window = "its scores are a softmax over slots that project the whole prefix, not a product of query "
                 "and key features, so a token leaving the window cannot be folded into a linear state",
};
