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
                     const float *o, size_t N, size_t C, size_t H, float eps) {
  size_t d = C / H;
  kx_matmul_forward(zg, x, Wg, NULL, N, C, C);
#pragma omp parallel for schedule(static) if (N * C >= 65536)
  for (size_t g = 0; g < N * H; g++) {
    const float *og = o + g * d; /* (N, C) is (N*H, d): group g = token n, head h */
    float m = 0.0f, v = 0.0f;
    for (size_t i = 0; i < d; i++) m += og[i];
    m /= (float)d;
    for (size_t i = 0; i < d; i++) v += (og[i] - m) * (og[i] - m);
    v /= (float)d;
    float s = 1.0f / sqrtf(v + eps);
    gn_mean[g] = m;
    gn_rstd[g] = s;
    for (size_t i = 0; i < d; i++) {
      float z = zg[g * d + i];
      y[g * d + i] = z * sigmoid(z) * (og[i] - m) * s;
    }
  }
}

void kx_gate_backward(float *dx, float *dWg, float *d_o, float *dzg, const float *dy, const float *x,
                      const float *Wg, const float *o, const float *zg, const float *gn_mean,
                      const float *gn_rstd, size_t N, size_t C, size_t H) {
  size_t d = C / H;
#pragma omp parallel for schedule(static) if (N * C >= 65536)
  for (size_t g = 0; g < N * H; g++) {
    float m = gn_mean[g], s = gn_rstd[g];
    const float *og = o + g * d, *dyg = dy + g * d, *zgg = zg + g * d;
    float *dog = d_o + g * d, *dzgg = dzg + g * d;
    /* SiLU'(z) = sigmoid(z) (1 + z (1 - sigmoid(z))); dn = gradient of the
     * normalised value n = (o - m) s, whose backward is the LayerNorm one. */
    float mean_dn = 0.0f, mean_dn_n = 0.0f;
    for (size_t i = 0; i < d; i++) {
      float z = zgg[i], sg = sigmoid(z), n = (og[i] - m) * s;
      dzgg[i] = dyg[i] * n * sg * (1.0f + z * (1.0f - sg));
      float dn = dyg[i] * z * sg;
      dog[i] = dn;
      mean_dn += dn;
      mean_dn_n += dn * n;
    }
    mean_dn /= (float)d;
    mean_dn_n /= (float)d;
    for (size_t i = 0; i < d; i++) dog[i] = s * (dog[i] - mean_dn - (og[i] - m) * s * mean_dn_n);
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
