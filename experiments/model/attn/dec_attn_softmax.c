/* Multi-head causal softmax attention with partial rotary embedding
 * (GPT-NeoX / Pythia).  Tensors of block l:
 *   qkv_w (3C, C), qkv_b (3C): rows [0,C) give q, [C,2C) k, [2C,3C) v, and
 *                  within each, head h owns rows [h*d, (h+1)*d)
 *                  (note: HF GPT-NeoX interleaves per head instead);
 *   proj_w (C, C), proj_b (C).
 * Logit q.k/sqrt(d) with q, k after rotary; rotary on the first
 * cfg->rotary_dims dims of each head. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>

#include "core/kx_simd.h"
#include "experiments/model/dec_attn.h"
#include "experiments/model/dec_fastmath.h"
#include "experiments/model/dec_heads.h"
#include "experiments/model/dec_layers.h"

enum { QKV_W = KX_HEADS_QKV_W, QKV_B = KX_HEADS_QKV_B, PROJ_W = KX_HEADS_PROJ_W, PROJ_B = KX_HEADS_PROJ_B };

static int declare(const kx_dec_config *cfg, size_t layer, kx_param_table *tab, size_t *n) {
  *n = KX_HEADS_TENSORS;
  return kx_heads_declare(cfg, layer, tab);
}

/* Saved activations: qkv (N,3C) | q, k, v (B,H,T,d) after rotary | probs
 * (B,H,T,T) | att (N,C) heads concatenated, the input of proj. */
static size_t act_floats(const kx_dec_config *cfg, size_t B, size_t T) {
  size_t N = B * T, C = cfg->width;
  return 3 * N * C + 3 * N * C + B * cfg->heads * T * T + N * C;
}

/* Scratch: datt (N,C) | dq, dk, dv (B,H,T,d) | dqkv (N,3C) | dscores (B,H,T,T). */
static size_t scratch_floats(const kx_dec_config *cfg, size_t B, size_t T) {
  size_t N = B * T, C = cfg->width;
  return N * C + 3 * N * C + 3 * N * C + B * cfg->heads * T * T;
}

typedef struct {
  float *qkv, *q, *k, *v, *probs, *att;
} acts_view;

static acts_view view(const kx_attn_ctx *c, const float *acts) {
  size_t N = c->B * c->T, C = c->cfg->width;
  acts_view a;
  a.probs = kx_heads_acts((float *)acts, N, C, &a.qkv, &a.q, &a.k, &a.v);
  a.att = a.probs + c->B * c->cfg->heads * c->T * c->T;
  return a;
}

static void forward_cached(const kx_attn_ctx *c, float *const *p, const float *x, float *y, float *acts);
static void cache_store(const kx_attn_ctx *c, size_t h, size_t pos, const float *k, const float *v, size_t T);

/* x (B,T,C) -> y (B,T,C); per (b,h): S = q k^T / sqrt(d) masked to j <= i,
 * P = softmax_j(S), att = P v. */
static void forward(const kx_attn_ctx *c, float *const *p, const float *x, float *y, float *acts) {
  if (c->state && (c->pos > 0 || c->T == 1)) {
    forward_cached(c, p, x, y, acts);
    return;
  }
  const kx_dec_config *cfg = c->cfg;
  size_t B = c->B, T = c->T, C = cfg->width, H = cfg->heads, d = C / H;
  size_t N = B * T;
  acts_view a = view(c, acts);
  kx_matmul_forward(a.qkv, x, p[QKV_W], p[QKV_B], N, C, kx_dec_qkv_rows(cfg));
  float scale = 1.0f / sqrtf((float)d);
#pragma omp parallel for schedule(dynamic, 1) if (B * H * T * T * d >= 262144)
  for (size_t bh = 0; bh < B * H; bh++) {
    size_t b = bh / H, h = bh % H;
    float *q = a.q + bh * T * d, *k = a.k + bh * T * d, *v = a.v + bh * T * d;
    kx_heads_split(cfg, a.qkv, b, h, T, c->rope_cos, c->rope_sin, q, k, v);
    /* Per head, S = q k^T and att = P v as single-threaded BLAS calls
     * (T x T x d): the full square is computed and the upper triangle
     * masked, which costs 2x the causal flops but runs far faster than
     * scalar loops over the triangle. */
    float *P = a.probs + bh * T * T;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)T, (int)T, (int)d, scale, q, (int)d, k, (int)d,
                0.0f, P, (int)T);
    for (size_t i = 0; i < T; i++) {
      float *Pi = P + i * T;
      float mx = Pi[0];
      for (size_t j = 1; j <= i; j++) mx = Pi[j] > mx ? Pi[j] : mx;
      float sum = 0.0f;
      for (size_t j = 0; j <= i; j++) {
        Pi[j] = kx_expf(Pi[j] - mx);
        sum += Pi[j];
      }
      float inv = 1.0f / sum;
      for (size_t j = 0; j <= i; j++) Pi[j] *= inv;
      for (size_t j = i + 1; j < T; j++) Pi[j] = 0.0f;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)T, (int)d, (int)T, 1.0f, P, (int)T, v, (int)d,
                0.0f, a.att + b * T * C + h * d, (int)C);
  }
  kx_matmul_forward(y, a.att, p[PROJ_W], p[PROJ_B], N, C, C);
  if (c->state) /* prefill: the KV cache starts with this forward's k, v */
    for (size_t h = 0; h < H; h++) cache_store(c, h, 0, a.k + h * T * d, a.v + h * T * d, T);
}

/* The KV cache of one block: per head, k and v after rotary, each stored
 * transposed, (d, capacity): dimension i of the keys of every position is
 * one contiguous row, so one query's scores q.k_j and its output
 * sum_j p_j v_j are loops over contiguous positions that vectorise (with
 * rows of d floats they would be sums of d = 8 or so products each); then
 * one row of capacity scores per head. */
static size_t state_floats(const kx_dec_config *cfg, size_t capacity) {
  return 2 * capacity * cfg->width + cfg->heads * capacity;
}

/* Head h's keys and values in the cache, (d, capacity) each. */
static float *cache_k(const kx_attn_ctx *c, size_t h) {
  return c->state + h * c->capacity * (c->cfg->width / c->cfg->heads);
}
static float *cache_v(const kx_attn_ctx *c, size_t h) {
  return cache_k(c, c->cfg->heads + h);
}

/* Head h's k, v (T, d) of positions pos .. pos+T-1 into the cache. */
static void cache_store(const kx_attn_ctx *c, size_t h, size_t pos, const float *k, const float *v, size_t T) {
  size_t d = c->cfg->width / c->cfg->heads, cap = c->capacity;
  float *kt = cache_k(c, h) + pos, *vt = cache_v(c, h) + pos;
  for (size_t t = 0; t < T; t++)
    for (size_t i = 0; i < d; i++) {
      kt[i * cap + t] = k[t * d + i];
      vt[i * cap + t] = v[t * d + i];
    }
}

/* Causal softmax over the first n of the row's scores, in place.  The
 * exponentials in a loop of their own, which vectorises; the sum after
 * them, in order. */
static inline void softmax_row(float *S, size_t n) {
  float mx = S[0], sum = 0.0f;
  for (size_t j = 1; j < n; j++) mx = S[j] > mx ? S[j] : mx;
  for (size_t j = 0; j < n; j++) S[j] = kx_expf(S[j] - mx);
  for (size_t j = 0; j < n; j++) sum += S[j];
  float inv = 1.0f / sum;
  for (size_t j = 0; j < n; j++) S[j] *= inv;
}

/* One query q (d) against the n cached positions of a head (kt, vt: (d,
 * cap) transposed), scores in S (n), output (d).  Plain loops: with one
 * query, BLAS-3 would pack the whole cache into panels for d multiply-adds
 * per position.  The scores accumulate over i in order, as q.k_j would. */
KX_SIMD_CLONES
static void attend_one(const float *restrict q, const float *restrict kt, const float *restrict vt, size_t cap,
                       size_t n, size_t d, float scale, float *restrict S, float *restrict out) {
  for (size_t j = 0; j < n; j++) S[j] = 0.0f;
  for (size_t i = 0; i < d; i++) {
    const float *k = kt + i * cap;
    float qi = q[i];
    for (size_t j = 0; j < n; j++) S[j] += qi * k[j];
  }
  for (size_t j = 0; j < n; j++) S[j] *= scale;
  softmax_row(S, n);
  for (size_t i = 0; i < d; i++) {
    const float *v = vt + i * cap;
    float o = 0.0f;
#pragma omp simd reduction(+ : o)
    for (size_t j = 0; j < n; j++) o += S[j] * v[j];
    out[i] = o;
  }
}

/* Head h of forward_cached. */
static void cached_head(const kx_attn_ctx *c, const acts_view *a, size_t h) {
  const kx_dec_config *cfg = c->cfg;
  size_t T = c->T, C = cfg->width, H = cfg->heads, d = C / H, cap = c->capacity;
  float scale = 1.0f / sqrtf((float)d);
  float *kt = cache_k(c, h), *vt = cache_v(c, h), *sc = c->state + 2 * cap * C + h * cap;
  float *q = a->q + h * T * d, *k = a->k + h * T * d, *v = a->v + h * T * d;
  kx_heads_split(cfg, a->qkv, 0, h, T, c->rope_cos, c->rope_sin, q, k, v);
  cache_store(c, h, c->pos, k, v, T);
  /* Several rows (a prefill chunk): blocks of rows through BLAS-3, the
   * scores of a block in a temporary buffer; one row (a decoding step), or
   * no memory for the block: one row at a time. */
  enum { ROWS = 32 };
  float *blk = T > 1 ? malloc(ROWS * (c->pos + T) * sizeof(float)) : NULL;
  if (!blk) {
    for (size_t i = 0; i < T; i++)
      attend_one(q + i * d, kt, vt, cap, c->pos + i + 1, d, scale, sc, a->att + i * C + h * d);
    return;
  }
  for (size_t i0 = 0; i0 < T; i0 += ROWS) {
    size_t nb = T - i0 < ROWS ? T - i0 : ROWS, n_all = c->pos + i0 + nb;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)nb, (int)n_all, (int)d, scale, q + i0 * d, (int)d,
                kt, (int)cap, 0.0f, blk, (int)n_all);
    for (size_t i = 0; i < nb; i++) {
      float *Si = blk + i * n_all;
      size_t n = c->pos + i0 + i + 1;
      softmax_row(Si, n);
      for (size_t j = n; j < n_all; j++) Si[j] = 0.0f;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nb, (int)d, (int)n_all, 1.0f, blk, (int)n_all, vt,
                (int)cap, 0.0f, a->att + i0 * C + h * d, (int)C);
  }
  free(blk);
}

/* x (T,C) -> y (T,C) for positions pos .. pos+T-1 against the cache of the
 * pos tokens before (decoding: T = 1): the new k, v are appended, then row
 * i attends to the pos + i + 1 cached keys, as one row of forward. */
static void forward_cached(const kx_attn_ctx *c, float *const *p, const float *x, float *y, float *acts) {
  const kx_dec_config *cfg = c->cfg;
  size_t T = c->T, C = cfg->width, H = cfg->heads, d = C / H;
  acts_view a = view(c, acts);
  kx_matmul_forward(a.qkv, x, p[QKV_W], p[QKV_B], T, C, kx_dec_qkv_rows(cfg));
  /* A parallel region only where it pays: even on one thread one allocates
   * and frees its team, as much as a short step's attention costs. */
  if (H * (c->pos + T) * T * d >= 262144) {
#pragma omp parallel for schedule(static)
    for (size_t h = 0; h < H; h++) cached_head(c, &a, h);
  } else {
    for (size_t h = 0; h < H; h++) cached_head(c, &a, h);
  }
  kx_matmul_forward(y, a.att, p[PROJ_W], p[PROJ_B], T, C, C);
}

static void backward(const kx_attn_ctx *c, float *const *p, float *const *dp, const float *x,
                     const float *dy, const float *acts, float *dx, float *scratch) {
  const kx_dec_config *cfg = c->cfg;
  size_t B = c->B, T = c->T, C = cfg->width, H = cfg->heads, d = C / H;
  size_t N = B * T;
  acts_view a = view(c, acts);
  float *datt = scratch, *dq = datt + N * C, *dk = dq + N * C, *dv = dk + N * C;
  float *dqkv = dv + N * C, *dS = dqkv + 3 * N * C;
  /* datt is accumulated into by the proj backward; dq, dk, dv and dqkv
   * are fully overwritten below. */
  memset(datt, 0, N * C * sizeof(float));
  kx_matmul_backward(datt, dp[PROJ_W], dp[PROJ_B], dy, a.att, p[PROJ_W], N, C, C);
  float scale = 1.0f / sqrtf((float)d);
#pragma omp parallel for schedule(dynamic, 1) if (B * H * T * T * d >= 262144)
  for (size_t bh = 0; bh < B * H; bh++) {
    size_t b = bh / H, h = bh % H;
    const float *q = a.q + bh * T * d, *k = a.k + bh * T * d, *v = a.v + bh * T * d;
    const float *P = a.probs + bh * T * T;
    float *dqh = dq + bh * T * d, *dkh = dk + bh * T * d, *dvh = dv + bh * T * d;
    float *dSh = dS + bh * T * T;
    const float *go = datt + b * T * C + h * d; /* (T, d), row stride C */
    /* dP = go v^T ; dv = P^T go ; dS = P (dP - rowsum(P dP)) / sqrt(d) ;
     * dq = dS k ; dk = dS^T q.  P is zero above the diagonal, so dS is too. */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)T, (int)T, (int)d, 1.0f, go, (int)C, v, (int)d,
                0.0f, dSh, (int)T);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)T, (int)d, (int)T, 1.0f, P, (int)T, go, (int)C,
                0.0f, dvh, (int)d);
    for (size_t i = 0; i < T; i++) {
      const float *Pi = P + i * T;
      float *dSi = dSh + i * T;
      float dot = 0.0f;
      for (size_t j = 0; j <= i; j++) dot += Pi[j] * dSi[j];
      for (size_t j = 0; j <= i; j++) dSi[j] = Pi[j] * (dSi[j] - dot) * scale;
      for (size_t j = i + 1; j < T; j++) dSi[j] = 0.0f;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)T, (int)d, (int)T, 1.0f, dSh, (int)T, k, (int)d,
                0.0f, dqh, (int)d);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)T, (int)d, (int)T, 1.0f, dSh, (int)T, q, (int)d,
                0.0f, dkh, (int)d);
    kx_heads_merge(cfg, dqkv, b, h, T, c->rope_cos, c->rope_sin, dqh, dkh, dvh);
  }
  kx_heads_fold(cfg, dqkv, N);
  kx_matmul_backward(dx, dp[QKV_W], dp[QKV_B], dqkv, x, p[QKV_W], N, C, kx_dec_qkv_rows(cfg));
}

static void qkv_view(const kx_attn_ctx *c, const float *acts, const float **q, const float **k,
                     const float **v, size_t *dqk, size_t *dv, int *scaled) {
  acts_view a = view(c, acts);
  *q = a.q;
  *k = a.k;
  *v = a.v;
  *dqk = *dv = c->cfg->width / c->cfg->heads;
  *scaled = 0;
}

static void attn_weights(const kx_attn_ctx *c, float *const *p, const float *acts, size_t b, size_t h,
                         float *A) {
  (void)p;
  acts_view a = view(c, acts);
  memcpy(A, a.probs + (b * c->cfg->heads + h) * c->T * c->T, c->T * c->T * sizeof(float));
}

const kx_attn_kind kx_attn_softmax = {
    .name = "softmax",
    .summary = "causal softmax attention, partial rotary (Pythia)",
    KX_ATTN_NAMED_HOOKS,
    .max_positions = kx_attn_any_position,
    .no_window = "it is exact softmax attention over the whole context already; a window makes a linear "
                 "kind a hybrid (e.g. --attention dijiang --window 16)",
};
