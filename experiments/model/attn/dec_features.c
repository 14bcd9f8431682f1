/* No FMA contraction: exp_shift_scale's AVX2 and AVX-512 clones then
 * compute the bits of the baseline code. */
#pragma GCC optimize("fp-contract=off")

#include "experiments/model/attn/dec_features.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include <cblas.h>

#include "approx/fmap.h"
#include "core/kx_error.h"
#include "core/kx_seed.h"
#include "experiments/model/dec_fastmath.h"

int kx_posfeat_matrix(const char *scheme, size_t d, size_t m, uint64_t seed, float *W) {
  kx_fmap_options opt;
  kx_fmap_default_options(&opt);
  kx_fmap *f = kx_fmap_create(scheme, d, m, seed, &opt);
  if (!f) return kx_fail_context(KX_EINVAL, "feature matrix %s (d %zu, m %zu): ", scheme, d, m);
  if (!f->W) {
    kx_fmap_free(f);
    return kx_fail(KX_EINVAL, "feature scheme '%s' has no projection matrix", scheme);
  }
  for (size_t i = 0; i < m * d; i++) W[i] = (float)f->W[i];
  kx_fmap_free(f);
  return 0;
}

static int parallel_rows(size_t BH, size_t T, size_t m, size_t d) { return BH * T * m * d >= 262144; }

/* e[l] = exp(e[l] - c) scale, for AVX-512, AVX2 and baseline x86-64 (the
 * clone is picked at load time): the exponentials are most of the map's
 * time, and wider vectors run more of them per instruction.  No FMA
 * contraction, so every clone computes the same bits. */
__attribute__((target_clones("avx512f", "avx2", "default"))) static void
exp_shift_scale(float *restrict e, size_t m, float c, float scale) {
  for (size_t l = 0; l < m; l++) e[l] = kx_expf(e[l] - c) * scale;
}

/* max_l e[l] (-inf for m = 0) in MAX_LANES running maxima, which GCC
 * vectorises (one running maximum is a reduction it will not); the same
 * value as the plain loop, NaN entries skipped alike. */
#define MAX_LANES 8
static float row_max(const float *e, size_t m) {
  float lane[MAX_LANES];
  for (size_t j = 0; j < MAX_LANES; j++) lane[j] = -INFINITY;
  size_t l = 0;
  for (; l + MAX_LANES <= m; l += MAX_LANES)
    for (size_t j = 0; j < MAX_LANES; j++) lane[j] = e[l + j] > lane[j] ? e[l + j] : lane[j];
  float mx = -INFINITY;
  for (size_t j = 0; j < MAX_LANES; j++) mx = lane[j] > mx ? lane[j] : mx;
  for (; l < m; l++) mx = e[l] > mx ? e[l] : mx;
  return mx;
}

/* The keys' floor max_l |w_l|^2 / (4 alpha) - 60 of one matrix (see the header). */
static float key_floor(const float *W, size_t m, size_t d, float alpha) {
  float w2max = 0.0f;
  for (size_t l = 0; l < m; l++) {
    float w2 = 0.0f;
    for (size_t k = 0; k < d; k++) w2 += W[l * d + k] * W[l * d + k];
    w2max = w2 > w2max ? w2 : w2max;
  }
  return w2max / (4.0f * alpha) - 60.0f;
}

void kx_posfeat_forward(const float *W, size_t heads, size_t m, size_t d, float alpha, int is_query, size_t BH,
                        size_t T, const float *x, float *f, float *key_shift, int shift_known, float *row_shift) {
  float s = 1.0f / sqrtf(sqrtf((float)d)), inv_sqrt_m = 1.0f / sqrtf((float)m);
#pragma omp parallel for schedule(static) if (parallel_rows(BH, T, m, d))
  for (size_t bh = 0; bh < BH; bh++) {
    const float *xs = x + bh * T * d, *Wh = W + (bh % heads) * m * d;
    float *fs = f + bh * T * m;
    float floor = is_query ? 0.0f : key_floor(Wh, m, d, alpha);
    /* e = s X W^T - alpha s^2 |x|^2 */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)T, (int)m, (int)d, s, xs, (int)d, Wh, (int)d, 0.0f,
                fs, (int)m);
    float c = 0.0f;
    for (size_t t = 0; t < T; t++) {
      float n2 = 0.0f, *e = fs + t * m;
      for (size_t k = 0; k < d; k++) n2 += xs[t * d + k] * xs[t * d + k];
      const float sub = alpha * s * s * n2;
      for (size_t l = 0; l < m; l++) e[l] -= sub;
      float mx = row_max(e, m);
      if (is_query)
        c = mx;
      else if (t == 0) {
        c = key_shift && shift_known ? key_shift[bh] : mx > floor ? mx : floor;
        if (key_shift) key_shift[bh] = c;
      }
      if (row_shift) row_shift[bh * T + t] = c;
      exp_shift_scale(e, m, c, inv_sqrt_m);
    }
  }
}

void kx_posfeat_backward(const float *W, size_t heads, size_t m, size_t d, float alpha, size_t BH, size_t T,
                         const float *x, const float *f, float *df, float *dx) {
  float s = 1.0f / sqrtf(sqrtf((float)d));
#pragma omp parallel for schedule(static) if (parallel_rows(BH, T, m, d))
  for (size_t bh = 0; bh < BH; bh++) {
    const float *xs = x + bh * T * d, *fs = f + bh * T * m, *Wh = W + (bh % heads) * m * d;
    float *de = df + bh * T * m, *dxs = dx + bh * T * d;
    for (size_t i = 0; i < T * m; i++) de[i] *= fs[i];
    /* dx = s dE W - 2 alpha s^2 x sum_l de_l */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)T, (int)d, (int)m, s, de, (int)m, Wh, (int)d, 0.0f,
                dxs, (int)d);
    for (size_t t = 0; t < T; t++) {
      float sum = 0.0f;
      for (size_t l = 0; l < m; l++) sum += de[t * m + l];
      float g = 2.0f * alpha * s * s * sum;
      for (size_t k = 0; k < d; k++) dxs[t * d + k] -= g * xs[t * d + k];
    }
  }
}

size_t kx_posfeat_features(const kx_dec_config *cfg) { return cfg->width / cfg->heads; }

/* Matrices per layer: one shared by the heads, or one per head when redrawn. */
static size_t matrices(const kx_posfeat_spec *sp, const kx_dec_config *cfg) {
  return sp->redraw_every ? cfg->heads : 1;
}

int kx_posfeat_declare(const kx_lin_fmap *self, const kx_dec_config *cfg, size_t layer, kx_param_table *tab,
                       size_t *n) {
  char name[48];
  size_t d = cfg->width / cfg->heads, idx;
  snprintf(name, sizeof name, "layer%zu/feat_w", layer);
  int rc = kx_ptable_add(tab, name, matrices(self->data, cfg) * d, d, 0, KX_INIT_KIND, &idx);
  if (rc) return rc;
  kx_ptable_freeze(tab, idx);
  *n = 1;
  return 0;
}

/* Head h's matrix of a per-head map from kx_seed_derive(seed, h). */
static int draw_heads(const kx_posfeat_spec *sp, const kx_dec_config *cfg, uint64_t seed, float *W) {
  size_t d = cfg->width / cfg->heads;
  int rc = 0;
  for (size_t h = 0; h < cfg->heads && !rc; h++)
    rc = kx_posfeat_matrix(sp->scheme, d, d, kx_seed_derive(seed, h), W + h * d * d);
  return rc;
}

int kx_posfeat_init(const kx_lin_fmap *self, const kx_dec_config *cfg, size_t layer, float *const *p,
                    uint64_t seed) {
  (void)layer;
  const kx_posfeat_spec *sp = self->data;
  size_t d = cfg->width / cfg->heads;
  return sp->redraw_every ? draw_heads(sp, cfg, seed, p[0]) : kx_posfeat_matrix(sp->scheme, d, d, seed, p[0]);
}

int kx_posfeat_redraw(const kx_lin_fmap *self, const kx_dec_config *cfg, size_t layer, float *const *p,
                      uint64_t seed, uint64_t step) {
  (void)layer;
  const kx_posfeat_spec *sp = self->data;
  if (!sp->redraw_every || step == 0 || step % sp->redraw_every) return 0;
  return draw_heads(sp, cfg, kx_seed_derive(seed, step / sp->redraw_every), p[0]);
}

size_t kx_posfeat_save_floats(const kx_dec_config *cfg, size_t B, size_t T) { return B * cfg->heads * T; }

void kx_posfeat_fmap_forward(const kx_lin_fmap *self, const kx_attn_ctx *c, float *const *p, kx_lin_role role,
                             const float *x, float *f, float *save) {
  const kx_posfeat_spec *sp = self->data;
  size_t d = c->cfg->width / c->cfg->heads;
  /* Recurrent decoding: the keys' constant is the sequence's first key's. */
  float *shift = role == KX_LIN_KEY ? kx_lin_attn_map_state(self, c) : NULL;
  kx_posfeat_forward(p[0], matrices(sp, c->cfg), d, d, sp->alpha, role == KX_LIN_QUERY, c->B * c->cfg->heads,
                     c->T, x, f, shift, c->pos > 0, save);
}

void kx_posfeat_log_scale(const kx_lin_fmap *self, const kx_attn_ctx *c, kx_lin_role role, const float *save,
                          float *lam) {
  (void)self, (void)role;
  size_t n = c->B * c->cfg->heads * c->T;
  for (size_t i = 0; i < n; i++) lam[i] += save[i];
}

void kx_posfeat_fmap_backward(const kx_lin_fmap *self, const kx_attn_ctx *c, float *const *p, float *const *dp,
                              kx_lin_role role, const float *x, const float *f, const float *save, float *df,
                              float *dx) {
  (void)dp, (void)role, (void)save; /* feat_w is frozen: no gradient */
  const kx_posfeat_spec *sp = self->data;
  size_t d = c->cfg->width / c->cfg->heads;
  kx_posfeat_backward(p[0], matrices(sp, c->cfg), d, d, sp->alpha, c->B * c->cfg->heads, c->T, x, f, df, dx);
}

void kx_posfeat_param_backward(const kx_lin_fmap *self, const kx_attn_ctx *c, float *const *p, float *const *dp,
                               kx_lin_role role, size_t h, const float *x, const float *f, float *df) {
  (void)p, (void)role;
  size_t d = c->cfg->width / c->cfg->heads, m = d, T = c->T;
  float s = 1.0f / sqrtf(sqrtf((float)d));
  float *dW = dp[0] + (matrices(self->data, c->cfg) > 1 ? h : 0) * m * d;
  for (size_t i = 0; i < T * m; i++) df[i] *= f[i];
  /* dW (m, d) += s dE^T X : e_l = s w_l . x - alpha s^2 |x|^2, the stabiliser a constant */
  cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)m, (int)d, (int)T, s, df, (int)m, x, (int)d, 1.0f, dW,
              (int)d);
}
