/* RetNet's multi-scale retention (Sun et al. 2023) as an attention kind:
 *
 *   o_n = sum_{m<=n} g_h^(n-m) (q_n . k_m / sqrt(d)) v_m,   g_h = 1 - 2^(-5-h),
 *   y   = proj( SiLU(x Wg^T) (.) GroupNorm_H(o) )
 *
 * (dec_attn_gated.h with the identity feature map, normaliser off).
 * q, k, v come from the teacher's qkv projection with the teacher's rotary
 * embedding (GPT-NeoX rotate_half on the first rotary_dims dims of each
 * head; RetNet's own xPos rotates all dims, but keeping the teacher's makes
 * a converted model start from the same q.k geometry).  1/sqrt(d) is folded
 * into q (RetNet scales k by it; the product is the same).  The decay is a
 * constant per head, as in RetNet (no tensor).  No denominator: the
 * per-head GroupNorm takes its place.  attn_weights: row i is |s_ij| / sum_j
 * |s_ij| with s_ij = g_h^(i-j) q_i . k_j / sqrt(d).  No attention transfer:
 * the map is the identity (nothing to train), and the |s| rows would be a
 * poor target anyway, since s_ij takes both signs and the output mixes the
 * values with the signed s_ij, which the rows do not show.
 *
 * Tensors of block l: qkv_w, qkv_b, proj_w, proj_b exactly as the softmax
 * kind (a softmax checkpoint converts by name) and the new
 *   gate_w (C, C)  N(0, 2/(5C)) from the kind's seed (kx_gate_init). */
#include <math.h>

#include "experiments/model/dec_attn.h"
#include "experiments/model/attn/dec_attn_gated.h"
#include "experiments/model/attn/dec_gate.h"

static kx_gated_map map(const kx_dec_config *cfg) {
  kx_gated_map g = {.decay = kx_gated_decay_retnet, .q_scale = 1.0f / sqrtf((float)(cfg->width / cfg->heads))};
  return g;
}

KX_GATED_KIND_HOOKS(map)

static int declare(const kx_dec_config *cfg, size_t layer, kx_param_table *tab, size_t *n) {
  return kx_gated_declare(cfg, layer, tab, NULL, 0, n);
}

static int init(const kx_dec_config *cfg, size_t layer, float *const *p, uint64_t seed) {
  (void)layer;
  return kx_gate_init(p[KX_GATED_GATE_W], cfg->width, seed);
}

const kx_attn_kind kx_attn_retnet = {
    .name = "retnet",
    .summary = "retention: per-head decay 1-2^(-5-h), rotary, per-head GroupNorm, swish gate",
    KX_GATED_KIND_ENTRIES,
    .no_window = KX_GATED_NO_WINDOW,
};
