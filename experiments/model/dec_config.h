/* Configuration of the small Pythia-like decoder.
 *
 * Architecture (fixed choices, mirrored by tests/torch_reference.py):
 *   - character-level token embedding (V x C), no position embedding;
 *   - L pre-LayerNorm blocks with Pythia's *parallel* residual
 *       x <- x + Attn(LN1(x)) + MLP(LN2(x));
 *   - attention is a replaceable part (dec_attn.h, `attn_kind`); the default
 *     "softmax" is multi-head causal softmax attention with GPT-NeoX rotary
 *     embedding on the first `rotary_dims` dimensions of each head;
 *   - MLP: C -> 4C, exact (erf) GELU, 4C -> C, all linear layers with bias;
 *   - final LayerNorm and an *untied* unembedding (V x C, no bias);
 *   - mean cross-entropy over all B*T next-token predictions. */
#ifndef KX_DEC_CONFIG_H
#define KX_DEC_CONFIG_H

#include <stddef.h>

#define KX_DEC_NAME_MAX 32

typedef struct {
  size_t vocab;        /* V */
  size_t ctx;          /* maximum sequence length T */
  size_t layers;       /* L */
  size_t heads;        /* H */
  size_t width;        /* C; head dimension d = C / H */
  size_t rotary_dims;  /* per head, even, <= d (Pythia: d / 4) */
  double rope_base;    /* 10000 */
  double ln_eps;       /* 1e-5 */
  char attn_kind[KX_DEC_NAME_MAX]; /* name in the attention table */
} kx_dec_config;

/* Defaults of `kapprox train`: 4 layers, 4 heads, width 256 (d = 64),
 * context 128, rotary on 25% of each head; vocab left 0 (set from data). */
void kx_dec_config_default(kx_dec_config *cfg);

/* Checks ranges and divisibility; message names the offending option. */
int kx_dec_config_check(const kx_dec_config *cfg);


#endif
