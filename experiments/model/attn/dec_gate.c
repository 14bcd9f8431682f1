#include "experiments/model/attn/dec_gate.h"

#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>
#include <math.h>

#include "core/kx_error.h"
#include "core/kx_rng.h"

#include "experiments/model/dec_fastmath.h"
#include "experiments/model/dec_layers.h"

static inline float sigmoid(float z) { return 1.0f / (1.0f + kx_expf(-z)); }

void kx_gate_forward(float *y, float *zg, float *gn_mean, float *gn_rstd, const float *x, const float *Wg,
                     const float *o, size_t N, size_t C, const kx_gate_norm *gn, float eps) {
  size_t G = gn->groups, gs = C / G;
  kx_matmul_forward(zg, x, Wg, NULL, N, C, C);
#pragma omp parallel for schedule(static) if (N * C >= 65536)
  for (size_t g = 0; g < N * G; g++) {
    const float *og = o + g * gs; /* (N, C) is (N*G, gs): group g = token g / G, group g % G */
    const float *w = gn->w ? gn->w + (g % G) * gs : NULL, *b = gn->b ? gn->b + (g % G) * gs : NULL;
    float m = 0.0f, v = 0.0f;
    for (size_t i = 0; i < gs; i++) m += og[i];
    m /= (float)gs;
    for (size_t i = 0; i < gs; i++) v += (og[i] - m) * (og[i] - m);
    v /= (float)gs;
    float s = 1.0f / sqrtf(v + eps);
    gn_mean[g] = m;
    gn_rstd[g] = s;
    for (size_t i = 0; i < gs; i++) {
      float z = zg[g * gs + i];
      y[g * gs + i] = w ? z * sigmoid(z) * ((og[i] - m) * s * w[i] + b[i]) : z * sigmoid(z) * (og[i] - m) * s;
    }
  }
}

void kx_gate_backward(float *dx, float *dWg, float *dgn_w, float *dgn_b, float *d_o, float *dzg, const float *dy,
                      const float *x, const float *Wg, const float *o, const float *zg, const float *gn_mean,
                      const float *gn_rstd, size_t N, size_t C, const kx_gate_norm *gn) {
  size_t G = gn->groups, gs = C / G;
#pragma omp parallel for schedule(static) if (N * C >= 65536)
  for (size_t g = 0; g < N * G; g++) {
    float m = gn_mean[g], s = gn_rstd[g];
    const float *og = o + g * gs, *dyg = dy + g * gs, *zgg = zg + g * gs;
    const float *w = gn->w ? gn->w + (g % G) * gs : NULL, *b = gn->b ? gn->b + (g % G) * gs : NULL;
    float *dog = d_o + g * gs, *dzgg = dzg + g * gs;
    /* SiLU'(z) = sigmoid(z) (1 + z (1 - sigmoid(z))); dn = gradient of the
     * normalised value n = (o - m) s, whose backward is the LayerNorm one;
     * with the affine part the gate multiplies a = w n + b. */
    float mean_dn = 0.0f, mean_dn_n = 0.0f;
    for (size_t i = 0; i < gs; i++) {
      float z = zgg[i], sg = sigmoid(z), n = (og[i] - m) * s;
      float a = w ? n * w[i] + b[i] : n;
      dzgg[i] = dyg[i] * a * sg * (1.0f + z * (1.0f - sg));
      float dn = w ? dyg[i] * z * sg * w[i] : dyg[i] * z * sg;
      dog[i] = dn;
      mean_dn += dn;
      mean_dn_n += dn * n;
    }
    mean_dn /= (float)gs;
    mean_dn_n /= (float)gs;
    for (size_t i = 0; i < gs; i++) dog[i] = s * (dog[i] - mean_dn - (og[i] - m) * s * mean_dn_n);
  }
  if (gn->w) {
    /* per channel, the tokens in order: the sums do not depend on threads */
#pragma omp parallel for schedule(static) if (N * C >= 65536)
    for (size_t c = 0; c < C; c++) {
      float dw = 0.0f, db = 0.0f;
      for (size_t n = 0; n < N; n++) {
        size_t g = n * G + c / gs, k = n * C + c;
        float z = zg[k], da = dy[k] * z * sigmoid(z);
        dw += da * (o[k] - gn_mean[g]) * gn_rstd[g];
        db += da;
      }
      dgn_w[c] += dw;
      dgn_b[c] += db;
    }
  }
  kx_matmul_backward(dx, dWg, NULL, dzg, x, Wg, N, C, C);
}

int kx_gate_init(float *Wg, size_t C, uint64_t seed) {
  gsl_rng *r = kx_rng_alloc(seed);
  if (!r) return KX_ENOMEM;
  double sd = sqrt(2.0 / (5.0 * (double)C));
  for (size_t i = 0; i < C * C; i++) Wg[i] = (float)gsl_ran_gaussian_ziggurat(r, sd);
  gsl_rng_free(r);
  return 0;
}

int kx_gate_init_xavier(float *Wg, size_t C, double gain, uint64_t seed) {
  gsl_rng *r = kx_rng_alloc(seed);
  if (!r) return KX_ENOMEM;
  double a = gain * sqrt(6.0 / (2.0 * (double)C));
  for (size_t i = 0; i < C * C; i++) Wg[i] = (float)(a * (2.0 * gsl_rng_uniform(r) - 1.0));
  gsl_rng_free(r);
  return 0;
}
