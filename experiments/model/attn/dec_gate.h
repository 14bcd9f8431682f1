/* The output gate of RetNet and of the released DiJiang code, as one layer:
 *
 *   y = SiLU(x Wg^T) (.) GroupNorm_G(o)
 *
 * x (N, C) is the block's LN1 output (the attention input), Wg (C, C) the
 * gate matrix (no bias), o (N, C) the attention output with the H heads
 * concatenated.  GroupNorm_G splits each token's C channels into G groups
 * of C/G consecutive channels and normalises each group to zero mean and
 * unit variance, (o - mean) / sqrt(var + eps); G = H is one group a head.
 * Without affine parameters (as torchscale's RetNet: the gate and the
 * output projection absorb any scale) that is all; with them (the released
 * DiJiang code's nn.GroupNorm(head_size, C): G = d groups) channel c is then
 * w_c n + b_c.  SiLU(z) = z sigmoid(z) ("swish"). */
#ifndef KX_DEC_GATE_H
#define KX_DEC_GATE_H

#include <stddef.h>
#include <stdint.h>

/* gn_w, gn_b (C): the affine part, or both NULL (none). */
typedef struct {
  size_t groups;
  const float *w, *b;
} kx_gate_norm;

/* y, zg = x Wg^T (kept for backward) (N, C); gn_mean, gn_rstd (N*G). */
void kx_gate_forward(float *y, float *zg, float *gn_mean, float *gn_rstd, const float *x, const float *Wg,
                     const float *o, size_t N, size_t C, const kx_gate_norm *gn, float eps);

/* From dy (N, C): dx (N, C), dWg (C, C) and with an affine part dgn_w,
 * dgn_b (C) += ; d_o (N, C) and dzg (N, C, scratch) OVERWRITTEN. */
void kx_gate_backward(float *dx, float *dWg, float *dgn_w, float *dgn_b, float *d_o, float *dzg, const float *dy,
                      const float *x, const float *Wg, const float *o, const float *zg, const float *gn_mean,
                      const float *gn_rstd, size_t N, size_t C, const kx_gate_norm *gn);

/* Wg (C, C) = N(0, 2/(5C)) entries (GPT-NeoX small_init, as the teacher's
 * qkv_w) from one mt19937 stream of `seed`.  0 or KX_ENOMEM. */
int kx_gate_init(float *Wg, size_t C, uint64_t seed);
/* Wg (C, C) uniform on (-a, a), a = gain sqrt(6 / (C + C)): PyTorch's
 * xavier_uniform_ (the released DiJiang code: gain 2^-2.5), from one
 * mt19937 stream of `seed`.  0 or KX_ENOMEM. */
int kx_gate_init_xavier(float *Wg, size_t C, double gain, uint64_t seed);

#endif
