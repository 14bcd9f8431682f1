/* Positive random features for the decoder's linear attention kinds, in
 * float32 with forward and backward passes (Performer's PRF/ORF, the
 * paper's PFF):
 *   x~ = x / d^(1/4)             (targets exp(q.k / sqrt d),
 *                                 docs/methods.md#notation-and-scaling)
 *   e_l = w_l . x~ - alpha |x~|^2  (alpha 1/2: softmax kernel, 1: Gaussian)
 *   phi_l(x) = exp(e_l - c) / sqrt(m)
 * with the stabiliser c (docs/methods.md#performer-kinds-and-the-stabiliser),
 * a constant in backward (no gradient flows through it):
 *   queries: c_i = max_l e_il, the row's own maximum (a per-query factor,
 *            which cancels between numerator and denominator up to eps);
 *   keys:    one constant per (sequence, head) that no future token can
 *            change: c = max(max_l e_0l, max_l |w_l|^2 / (4 alpha) - 60),
 *            the first key's maximum, floored so that no key overflows:
 *            e_jl <= |w_l|^2 / (4 alpha) for every x (complete the square),
 *            so every key feature is <= e^60 / sqrt(m) and sums over 10^5
 *            positions stay far below FLT_MAX.
 * W (m, d) is drawn by approx/fmap.c's schemes ("orf", "prf", "pff-sobol",
 * ...): either one matrix per layer shared by its heads, drawn once (init)
 * and then fixed, or (FAVOR+'s feature redrawing) one matrix per head,
 * drawn at init and redrawn every `redraw_every` training steps
 * (kx_posfeat_redraw).  Draw r of layer l, head h uses the seed
 * kx_seed_derive(S, h), with S the kind's init seed of the layer for r = 0
 * and kx_seed_derive(S_l, r) for r >= 1, S_l the layer's redraw seed from
 * the training run (dec_train.c: run seed -> redraw stream -> layer). */
#ifndef KX_DEC_FEATURES_H
#define KX_DEC_FEATURES_H

#include <stddef.h>
#include <stdint.h>

#include "experiments/model/attn/dec_linear_attn.h"

/* W (m, d) of scheme `scheme` (approx/fmap.h names) from `seed`, in float. */
int kx_posfeat_matrix(const char *scheme, size_t d, size_t m, uint64_t seed, float *W);

/* f (BH, T, m) = phi(x (BH, T, d)) for BH independent sequences (each one
 * (batch, head), head fastest); W holds `heads` matrices (m, d), sequence bh
 * uses matrix bh % heads (1: one shared); is_query selects the stabiliser.  key_shift (BH), keys
 * only, may be NULL: receives each sequence's key constant, or with
 * shift_known supplies it (recurrent decoding, where x continues a
 * sequence whose first key came in an earlier call).  row_shift (BH, T),
 * may be NULL: receives the stabiliser c of every row. */
void kx_posfeat_forward(const float *W, size_t heads, size_t m, size_t d, float alpha, int is_query, size_t BH,
                        size_t T, const float *x, float *f, float *key_shift, int shift_known, float *row_shift);

/* dx (BH, T, d) overwritten from df (BH, T, m), which is overwritten with
 * df * f (the gradient of the exponents); x and f from the forward pass. */
void kx_posfeat_backward(const float *W, size_t heads, size_t m, size_t d, float alpha, size_t BH, size_t T,
                         const float *x, const float *f, float *df, float *dx);

/* As a feature map of the linear attention block (dec_linear_attn.h):
 * m = d features per head, normalised, eps 1e-6; one extra tensor per
 * layer, "layer<l>/feat_w", frozen (fixed in fine-tuning; attention transfer
 * may train it, kx_posfeat_param_backward), filled by init from the scheme
 * with the kind's seed: (d, d) shared by the heads, or (H d, d) with head h in rows
 * [h d, (h+1) d) when redrawn.  `data` points to a kx_posfeat_spec. */
typedef struct {
  const char *scheme;    /* approx/fmap.h name of the projection rows */
  float alpha;           /* 0.5: softmax kernel; 1: Gaussian kernel (Eq. 9) */
  uint64_t redraw_every; /* 0: fixed; N: per-head matrices redrawn before
                            training steps N, 2N, ... */
} kx_posfeat_spec;

size_t kx_posfeat_features(const kx_dec_config *cfg);
int kx_posfeat_declare(const kx_lin_fmap *self, const kx_dec_config *cfg, size_t layer, kx_param_table *tab,
                       size_t *n);
int kx_posfeat_init(const kx_lin_fmap *self, const kx_dec_config *cfg, size_t layer, float *const *p,
                    uint64_t seed);
/* The kx_lin_fmap.redraw hook: redraw r = step / redraw_every of every
 * head when step is a positive multiple of redraw_every; otherwise nothing. */
int kx_posfeat_redraw(const kx_lin_fmap *self, const kx_dec_config *cfg, size_t layer, float *const *p,
                      uint64_t seed, uint64_t step);
/* The map saves each row's stabiliser c (B H T floats per role); the
 * sliding-window hybrid adds them to its lam (kx_lin_fmap.log_scale). */
size_t kx_posfeat_save_floats(const kx_dec_config *cfg, size_t B, size_t T);
void kx_posfeat_log_scale(const kx_lin_fmap *self, const kx_attn_ctx *c, kx_lin_role role, const float *save,
                          float *lam);
void kx_posfeat_fmap_forward(const kx_lin_fmap *self, const kx_attn_ctx *c, float *const *p, kx_lin_role role,
                             const float *x, float *f, float *save);
void kx_posfeat_fmap_backward(const kx_lin_fmap *self, const kx_attn_ctx *c, float *const *p, float *const *dp,
                              kx_lin_role role, const float *x, const float *f, const float *save, float *df,
                              float *dx);

/* The kx_lin_fmap.param_backward hook: feat_w's gradient of one
 * (sequence, head), dW_l += s sum_t (df_tl f_tl) x_t with x~ = s x, the
 * stabiliser c held constant (it cancels from the attention rows up to
 * eps: a per-query factor, and one constant for all keys of a sequence). */
void kx_posfeat_param_backward(const kx_lin_fmap *self, const kx_attn_ctx *c, float *const *p, float *const *dp,
                               kx_lin_role role, size_t h, const float *x, const float *f, float *df);

#define KX_POSFEAT_FMAP(spec)                                                                                   \
  {                                                                                                            \
    .data = (spec), .features = kx_posfeat_features, .normalise = 1, .eps = 1e-6f, .n_tensors = 1,            \
    .declare = kx_posfeat_declare, .init = kx_posfeat_init, .save_floats = kx_posfeat_save_floats,             \
    .forward = kx_posfeat_fmap_forward, .log_scale = kx_posfeat_log_scale,                                      \
    .backward = kx_posfeat_fmap_backward, .redraw = kx_posfeat_redraw,                                          \
    .param_backward = kx_posfeat_param_backward                                                                \
  }

#endif
