#include "experiments/model/attn/dec_attn_rows.h"

#include <math.h>

#include <cblas.h>

size_t kx_attn_rows_scratch_floats(size_t T) { return 2 * T * T; }

void kx_attn_rows_backward(const kx_lin_causal *kp, const float *fq, const float *fk, const float *dA, float *dfq,
                           float *dfk, float *scratch) {
  size_t T = kp->T;
  if (!T) return;
  float *S = scratch, *G = S + T * T; /* G_ij = g^(i-j) ds_ij */
  kx_lin_causal_scores(kp, fq, fk, S);
  for (size_t i = 0; i < T; i++) {
    const float *Si = S + i * T, *dAi = dA + i * T;
    double D = kp->normalise ? kp->eps : 0.0, dot = 0.0;
    for (size_t j = 0; j <= i; j++) D += kp->normalise ? Si[j] : fabsf(Si[j]);
    if (D > 0)
      for (size_t j = 0; j <= i; j++) dot += dAi[j] * (kp->normalise ? Si[j] : fabsf(Si[j])) / D;
    double w = 1.0; /* g^(i-j), built as kx_lin_causal_scores builds it */
    for (size_t j = i + 1; j-- > 0;) {
      double sigma = kp->normalise ? 1.0 : (Si[j] > 0) - (Si[j] < 0);
      G[i * T + j] = D > 0 ? (float)(sigma * w * (dAi[j] - dot) / D) : 0.0f;
      w *= kp->decay;
    }
    for (size_t j = i + 1; j < T; j++) G[i * T + j] = 0.0f;
  }
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)T, (int)kp->m, (int)T, 1.0f, G, (int)T, fk,
              (int)kp->ld_f, 0.0f, dfq, (int)kp->ld_f);
  cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)T, (int)kp->m, (int)T, 1.0f, G, (int)T, fq,
              (int)kp->ld_f, 0.0f, dfk, (int)kp->ld_f);
}
