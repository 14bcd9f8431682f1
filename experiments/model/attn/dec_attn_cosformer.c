/* cosFormer causal linear attention: ReLU features re-weighted by position,
 *   phi(x_i) = [ReLU(x_i) cos(pi i / (2M)), ReLU(x_i) sin(pi i / (2M))]
 * (2d features per head, i the position in the sequence, M = the model's
 * context length), so that phi(q_i).phi(k_j) = ReLU(q_i).ReLU(k_j)
 * cos(pi (i - j) / (2M)), a weight in (0, 1] for 0 <= i - j < M.  q and k
 * are taken after the teacher's rotary embedding.  Normalised, eps 1e-6.
 * No tensors beyond the teacher's: the map has nothing to train, so there
 * is no attention transfer for this kind (convert says so and converts
 * without it). */
#include <math.h>

#include "experiments/model/attn/dec_linear_attn.h"

static size_t features(const kx_dec_config *cfg) { return 2 * (cfg->width / cfg->heads); }

static void angle(const kx_dec_config *cfg, size_t t, float *cs, float *sn) {
  double a = M_PI * (double)t / (2.0 * (double)cfg->ctx);
  *cs = (float)cos(a);
  *sn = (float)sin(a);
}

/* f (B,H,T,2d) from x (B,H,T,d). */
static void forward(const kx_lin_fmap *self, const kx_attn_ctx *c, float *const *p, kx_lin_role role,
                    const float *x, float *f, float *save) {
  (void)self, (void)p, (void)role, (void)save;
  size_t d = c->cfg->width / c->cfg->heads, T = c->T, rows = c->B * c->cfg->heads * T;
#pragma omp parallel for schedule(static) if (rows * d >= 65536)
  for (size_t r = 0; r < rows; r++) {
    float cs, sn;
    angle(c->cfg, c->pos + r % T, &cs, &sn);
    const float *xr = x + r * d;
    float *fr = f + r * 2 * d;
    for (size_t k = 0; k < d; k++) {
      float relu = xr[k] > 0.0f ? xr[k] : 0.0f;
      fr[k] = relu * cs;
      fr[d + k] = relu * sn;
    }
  }
}

/* dx (B,H,T,d) = [x > 0] (df_cos cos + df_sin sin). */
static void backward(const kx_lin_fmap *self, const kx_attn_ctx *c, float *const *p, float *const *dp,
                     kx_lin_role role, const float *x, const float *f, const float *save, float *df, float *dx) {
  (void)self, (void)p, (void)dp, (void)role, (void)f, (void)save;
  size_t d = c->cfg->width / c->cfg->heads, T = c->T, rows = c->B * c->cfg->heads * T;
#pragma omp parallel for schedule(static) if (rows * d >= 65536)
  for (size_t r = 0; r < rows; r++) {
    float cs, sn;
    angle(c->cfg, c->pos + r % T, &cs, &sn);
    const float *xr = x + r * d, *dfr = df + r * 2 * d;
    float *dxr = dx + r * d;
    for (size_t k = 0; k < d; k++) dxr[k] = xr[k] > 0.0f ? dfr[k] * cs + dfr[d + k] * sn : 0.0f;
  }
}

static const kx_lin_fmap cosformer_map = {
    .features = features, .normalise = 1, .eps = 1e-6f, .ctx_positions = 1, .forward = forward, .backward = backward};

KX_LIN_ATTN_KIND(kx_attn_cosformer, "cosformer",
                 "cosFormer causal linear attention (ReLU features, cos re-weighting with M = context, 2d features)",
                 cosformer_map);
