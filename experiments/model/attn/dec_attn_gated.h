/* The body shared by the gated, decayed linear-attention kinds (RetNet, the
 * DiJiang paper form, the released DiJiang code):
 *
 *   q, k, v = heads of x Wqkv^T + b, rotary on q and k   (dec_heads.h)
 *   fq = phi_q(q), fk = phi_k(k)                           (the kind's map)
 *   o_i = sum_{j<=i} g_h^(i-j) (fq_i . fk_j) v_j  [/ (den_i + eps)]
 *   y   = proj( SiLU(x Wg^T) (.) GroupNorm(o) )            (dec_gate.h)
 *
 * the causal sum through dec_linear_causal.h (chunked, linear in T).  A
 * kind is a kx_gated_map, its extra tensors (kx_gated_declare: tensors 0..4
 * are qkv_w, qkv_b, proj_w, proj_b, gate_w, in this order; the map's own
 * follow) and an init; KX_GATED_KIND_HOOKS and KX_GATED_KIND_ENTRIES make
 * the rest of its kx_attn_kind from the functions below. */
#ifndef KX_DEC_ATTN_GATED_H
#define KX_DEC_ATTN_GATED_H

#include <stddef.h>

#include "experiments/model/dec_attn.h"
#include "experiments/model/dec_heads.h"
#include "experiments/model/dec_linear_causal.h"

/* The teacher's four (dec_heads.h), then the gate. */
enum {
  KX_GATED_QKV_W = KX_HEADS_QKV_W,
  KX_GATED_QKV_B = KX_HEADS_QKV_B,
  KX_GATED_PROJ_W = KX_HEADS_PROJ_W,
  KX_GATED_PROJ_B = KX_HEADS_PROJ_B,
  KX_GATED_GATE_W = KX_HEADS_TENSORS,
  KX_GATED_N
};

typedef struct {
  /* Decay g_h in (0, 1] of head h of H. */
  float (*decay)(size_t h, size_t H);
  int normalise;  /* 1: divide by den_i + eps */
  float eps;
  /* Folded into q before the map: 1, or the logit scale 1/sqrt(d) (RetNet),
   * which qkv_view then reports as folded in. */
  float q_scale;
  /* Features per head m; NULL: m = d. */
  size_t (*features)(const kx_dec_config *cfg);
  /* Floats the map saves per side (queries or keys) for its backward. */
  size_t (*aux_floats)(const kx_dec_config *cfg, size_t B, size_t T);
  /* x (B,H,T,d) -> f (B,H,T,m); is_query selects the side.  NULL (and
   * map_backward NULL): the identity map, fq = q, fk = k, nothing saved. */
  void (*map_forward)(const kx_attn_ctx *c, float *const *p, int is_query, const float *x, float *f,
                      float *aux);
  /* dx (B,H,T,d) OVERWRITTEN and the map's tensors' dp += from df (B,H,T,m);
   * scratch holds B H T m floats. */
  void (*map_backward)(const kx_attn_ctx *c, float *const *p, float *const *dp, int is_query, const float *x,
                       const float *f, const float *aux, const float *df, float *dx, float *scratch);
  /* Optional: the scratch floats the kind's attn_weights_backward needs for
   * T rows (the kind's one scratch serves it and backward). */
  size_t (*weights_scratch_floats)(const kx_dec_config *cfg, size_t T);
  /* Sliding-window hybrid (dec_window.h; normalised kinds only): the kind's
   * tensors (the window's follows them), and optionally lam (B,H,T) += the
   * log of the factor the map's stabiliser divided out of each row's
   * features, from the forward's aux. */
  size_t n_tensors;
  void (*log_scale)(const kx_attn_ctx *c, int is_query, const float *aux, float *lam);
  /* The GroupNorm: gn_groups groups of C / gn_groups channels (0: one a
   * head, H), with an affine part from the kind's tensors gn_affine (the
   * weights, C) and gn_affine + 1 (the biases, C), or none (gn_affine 0). */
  size_t gn_groups, gn_affine;
} kx_gated_map;

/* Why the kinds without a normaliser take no sliding window. */
#define KX_GATED_NO_WINDOW                                                                                    \
  "its linear attention has no normaliser (the per-head GroupNorm takes its place), so the window's "       \
  "softmax weights and its scores have no common denominator to share; use a normalised kind "               \
  "(performer, pff, cosformer, dijiang, hedgehog)"

/* The decays of the kinds:
 *   RetNet:              g_h = 1 - 2^(-5-h)
 *   released DiJiang:    g_h = 1 - exp( ln(1/32) + (ln(1/512) - ln(1/32)) h/(H-1) )
 *                        (torch.linspace of H points; H = 1 gives 1 - 1/32) */
float kx_gated_decay_retnet(size_t h, size_t H);
float kx_gated_decay_dijiang(size_t h, size_t H);

/* A tensor of the map, after the shared five: "layer<l>/<name>", rows x cols
 * (cols 0: a vector), KX_INIT_KIND, no weight decay; frozen ones keep a
 * zero gradient. */
typedef struct {
  const char *name;
  size_t rows, cols;
  int frozen;
} kx_gated_tensor;

/* Declares the five shared tensors of block `layer` (gate_w KX_INIT_KIND),
 * then the n_extra of `extra`, then with a sliding window its win_beta
 * (dec_window.h); *n counts them all (5 + n_extra [+ 1]). */
int kx_gated_declare(const kx_dec_config *cfg, size_t layer, kx_param_table *tab, const kx_gated_tensor *extra,
                     size_t n_extra, size_t *n);

size_t kx_gated_act_floats(const kx_gated_map *g, const kx_dec_config *cfg, size_t B, size_t T);
size_t kx_gated_scratch_floats(const kx_gated_map *g, const kx_dec_config *cfg, size_t B, size_t T);
void kx_gated_forward(const kx_gated_map *g, const kx_attn_ctx *c, float *const *p, const float *x, float *y,
                      float *acts);
void kx_gated_backward(const kx_gated_map *g, const kx_attn_ctx *c, float *const *p, float *const *dp,
                       const float *x, const float *dy, const float *acts, float *dx, float *scratch);
/* kx_attn_kind.qkv_view: q, k as the map sees them (after rotary and
 * q_scale), v; dqk = dv = d. */
void kx_gated_qkv_view(const kx_gated_map *g, const kx_attn_ctx *c, const float *acts, const float **q,
                       const float **k, const float **v, size_t *dqk, size_t *dv, int *scaled);
/* The map's features fq, fk (B,H,T,m) and its saved aux for q and k, from
 * the last forward's acts (a kind with a map only). */
void kx_gated_features(const kx_gated_map *g, const kx_attn_ctx *c, const float *acts, const float **fq,
                       const float **fk, const float **aux_q, const float **aux_k);
/* The causal kernel's parameters of head h (decay, normalisation) for T rows. */
kx_lin_causal kx_gated_kernel(const kx_gated_map *g, const kx_dec_config *cfg, size_t T, size_t h);
/* The kernel's effective weights of (b, h) (kx_lin_causal_weights). */
void kx_gated_attn_weights(const kx_gated_map *g, const kx_attn_ctx *c, float *const *p, const float *acts, size_t b,
                           size_t h, float *A);

/* The rows' gradient of (b, h) with respect to the features, dfq, dfk
 * (T, m) OVERWRITTEN, for attention transfer on the rows: the kernel's rows
 * (dec_attn_rows.h), or with a sliding window the hybrid's (dec_window.h),
 * which also add win_beta's gradient to dp.  Scratch: the rows'
 * (kx_attn_rows_scratch_floats). */
void kx_gated_rows_backward(const kx_gated_map *g, const kx_attn_ctx *c, float *const *p, float *const *dp,
                            const float *acts, size_t b, size_t h, const float *dA, float *dfq, float *dfk,
                            float *scratch);

/* Recurrent decoding state of one block: H (m d + m) floats, then with a
 * sliding window the window's. */
size_t kx_gated_state_floats(const kx_gated_map *g, const kx_dec_config *cfg);

/* The kx_attn_kind hooks of a gated kind whose map is `MAP(cfg)` (a
 * function returning its kx_gated_map): defines static act_floats,
 * scratch_floats, forward, backward, qkv_view, attn_weights and
 * state_floats for its table entry. */
#define KX_GATED_KIND_HOOKS(MAP)                                                                     \
  static size_t act_floats(const kx_dec_config *cfg, size_t B, size_t T) {                           \
    kx_gated_map g = MAP(cfg);                                                                       \
    return kx_gated_act_floats(&g, cfg, B, T);                                                       \
  }                                                                                                  \
  static size_t scratch_floats(const kx_dec_config *cfg, size_t B, size_t T) {                       \
    kx_gated_map g = MAP(cfg);                                                                       \
    return kx_gated_scratch_floats(&g, cfg, B, T);                                                   \
  }                                                                                                  \
  static void forward(const kx_attn_ctx *c, float *const *p, const float *x, float *y, float *acts) { \
    kx_gated_map g = MAP(c->cfg);                                                                    \
    kx_gated_forward(&g, c, p, x, y, acts);                                                          \
  }                                                                                                  \
  static void backward(const kx_attn_ctx *c, float *const *p, float *const *dp, const float *x,      \
                       const float *dy, const float *acts, float *dx, float *scratch) {              \
    kx_gated_map g = MAP(c->cfg);                                                                    \
    kx_gated_backward(&g, c, p, dp, x, dy, acts, dx, scratch);                                       \
  }                                                                                                  \
  static void qkv_view(const kx_attn_ctx *c, const float *acts, const float **q, const float **k,    \
                       const float **v, size_t *dqk, size_t *dv, int *scaled) {                      \
    kx_gated_map g = MAP(c->cfg);                                                                    \
    kx_gated_qkv_view(&g, c, acts, q, k, v, dqk, dv, scaled);                                        \
  }                                                                                                  \
  static void attn_weights(const kx_attn_ctx *c, float *const *p, const float *acts, size_t b,       \
                           size_t h, float *A) {                                                     \
    kx_gated_map g = MAP(c->cfg);                                                                    \
    kx_gated_attn_weights(&g, c, p, acts, b, h, A);                                                  \
  }                                                                                                \
  static size_t state_floats(const kx_dec_config *cfg, size_t capacity) {                          \
    (void)capacity;                                                                                \
    kx_gated_map g = MAP(cfg);                                                                     \
    return kx_gated_state_floats(&g, cfg);                                                         \
  }

/* The kx_attn_kind entries every gated kind shares: KX_GATED_KIND_HOOKS'
 * functions, the kind's static declare and init, and no position limit. */
#define KX_GATED_KIND_ENTRIES KX_ATTN_NAMED_HOOKS, .init = init, .max_positions = kx_attn_any_position

#endif
