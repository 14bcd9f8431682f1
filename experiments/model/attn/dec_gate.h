/* The output gate of RetNet and of the released DiJiang code, as one layer:
 *
 *   y = SiLU(x Wg^T) (.) GroupNorm_H(o)
 *
 * x (N, C) is the block's LN1 output (the attention input), Wg (C, C) the
 * gate matrix (no bias), o (N, C) the attention output with the H heads
 * concatenated.  GroupNorm_H normalises each token's head h (its d = C/H
 * dims) to zero mean and unit variance, (o - mean) / sqrt(var + eps), with
 * no affine part (as torchscale's RetNet: the gate and the output projection
 * absorb any scale).  SiLU(z) = z sigmoid(z) ("swish"). */
#ifndef KX_DEC_GATE_H
#define KX_DEC_GATE_H

#include <stddef.h>
#include <stdint.h>

/* y, zg = x Wg^T (kept for backward) (N, C); gn_mean, gn_rstd (N*H). */
void kx_gate_forward(float *y, float *zg, float *gn_mean, float *gn_rstd, const float *x, const float *Wg,
                     const float *o, size_t N, size_t C, size_t H, float eps);

/* From dy (N, C): dx (N, C) and dWg (C, C) += ; d_o (N, C) and dzg (N, C,
 * scratch) OVERWRITTEN. */
void kx_gate_backward(float *dx, float *dWg, float *d_o, float *dzg, const float *dy, const float *x,
                      const float *Wg, const float *o, const float *zg, const float *gn_mean,
                      const float *gn_rstd, size_t N, size_t C, size_t H);

/* Wg (C, C) = N(0, 2/(5C)) entries (GPT-NeoX small_init, as the teacher's
 * qkv_w) from one mt19937 stream of `seed`.  0 or KX_ENOMEM. */
int kx_gate_init(float *Wg, size_t C, uint64_t seed);

#endif
