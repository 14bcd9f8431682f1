/* The attention block shared by the feature-map linear attention kinds
 * (performer, pff, cosformer, ...): the softmax teacher's block with the
 * softmax replaced by a feature map and the causal linear kernel.
 *
 *   qkv = x W_qkv^T + b_qkv            (tensors qkv_w (3C,C), qkv_b (3C): the
 *                                        teacher's names and layout, so a
 *                                        softmax checkpoint converts by name)
 *   q, k = rotary(q), rotary(k)        (as in the teacher, before the features)
 *   fq = phi_q(q), fk = phi_k(k)       (per head, m features each)
 *   o  = causal linear attention of (fq, fk, v) with the map's decay and
 *        normalisation (dec_linear_causal.h)
 *   y  = o W_proj^T + b_proj           (proj_w (C,C), proj_b (C))
 *
 * A feature map is a kx_lin_fmap: its extra tensors (declared after the
 * four shared ones, typically KX_INIT_KIND and frozen), their init, and the
 * feature forward/backward over all heads of a batch.  A kind file defines
 * one kx_lin_fmap and instantiates the kind with KX_LIN_ATTN_KIND, or with
 * KX_LIN_ATTN_KIND_TRANSFER when attention transfer trains the map's
 * tensors on the teacher's attention rows (the map's param_backward gives
 * their gradient, the rows' gradient comes from dec_attn_rows.h). */
#ifndef KX_DEC_LINEAR_ATTN_H
#define KX_DEC_LINEAR_ATTN_H

#include <stddef.h>
#include <stdint.h>

#include "experiments/model/dec_attn.h"
#include "experiments/model/dec_heads.h"

/* Index of the first tensor of the feature map in the kind's list. */
#define KX_LIN_ATTN_SHARED KX_HEADS_TENSORS

typedef enum { KX_LIN_QUERY = 0, KX_LIN_KEY = 1 } kx_lin_role;

typedef struct kx_lin_fmap kx_lin_fmap;
struct kx_lin_fmap {
  const void *data; /* the map's own constants (scheme, kernel, ...) */
  /* Features per head (m). */
  size_t (*features)(const kx_dec_config *cfg);
  int normalise; /* 1: o = num / (den + eps) */
  float eps;
  /* 1 if the features depend on the position through the context length
   * (cosFormer's M): recurrent decoding stops at ctx tokens. */
  int ctx_positions;
  /* Per-head decay g in (0,1]; NULL: no decay. */
  float (*decay)(const kx_dec_config *cfg, size_t head);
  /* Optional: extra tensors of block `layer` (names "layer<l>/..."), and
   * how many (the sliding window's tensor follows them). */
  size_t n_tensors;
  int (*declare)(const kx_lin_fmap *self, const kx_dec_config *cfg, size_t layer, kx_param_table *tab,
                 size_t *n);
  /* Optional: fills the extra tensors (KX_INIT_KIND) from `seed`. */
  int (*init)(const kx_lin_fmap *self, const kx_dec_config *cfg, size_t layer, float *const *p, uint64_t seed);
  /* Optional: kx_attn_kind.redraw for the extra tensors (NULL: fixed). */
  int (*redraw)(const kx_lin_fmap *self, const kx_dec_config *cfg, size_t layer, float *const *p, uint64_t seed,
                uint64_t step);
  /* Floats the map saves per role for its backward (0 if none). */
  size_t (*save_floats)(const kx_dec_config *cfg, size_t B, size_t T);
  /* f (B,H,T,m) overwritten = phi_role(x (B,H,T,d)), x after rotary;
   * p: the extra tensors. */
  void (*forward)(const kx_lin_fmap *self, const kx_attn_ctx *c, float *const *p, kx_lin_role role,
                  const float *x, float *f, float *save);
  /* Optional (sliding-window hybrid, dec_window.h): lam (B,H,T) += the
   * log of the factor the forward divided out of each row's `role`
   * features (its stabiliser), read from the forward's `save`.  NULL: the
   * features have no stabiliser. */
  void (*log_scale)(const kx_lin_fmap *self, const kx_attn_ctx *c, kx_lin_role role, const float *save, float *lam);
  /* dx (B,H,T,d) OVERWRITTEN from df (B,H,T,m), which the map may
   * overwrite (it is scratch); dp (the extra tensors' gradients)
   * accumulated (+=). */
  void (*backward)(const kx_lin_fmap *self, const kx_attn_ctx *c, float *const *p, float *const *dp,
                   kx_lin_role role, const float *x, const float *f, const float *save, float *df, float *dx);
  /* Optional (attention transfer on the rows): dp (the extra tensors'
   * gradients) += from df (T, m) of one sequence at head h, x (T, d) and
   * f (T, m) that sequence-head's rows of the forward pass; df may be
   * overwritten.  Tensors frozen for fine-tuning get their gradient here
   * (backward above leaves them at zero). */
  void (*param_backward)(const kx_lin_fmap *self, const kx_attn_ctx *c, float *const *p, float *const *dp,
                         kx_lin_role role, size_t h, const float *x, const float *f, float *df);
};

int kx_lin_attn_declare(const kx_lin_fmap *f, const kx_dec_config *cfg, size_t layer, kx_param_table *tab,
                        size_t *n);
size_t kx_lin_attn_act_floats(const kx_lin_fmap *f, const kx_dec_config *cfg, size_t B, size_t T);
size_t kx_lin_attn_scratch_floats(const kx_lin_fmap *f, const kx_dec_config *cfg, size_t B, size_t T);
void kx_lin_attn_forward(const kx_lin_fmap *f, const kx_attn_ctx *c, float *const *p, const float *x, float *y,
                         float *acts);
void kx_lin_attn_backward(const kx_lin_fmap *f, const kx_attn_ctx *c, float *const *p, float *const *dp,
                          const float *x, const float *dy, const float *acts, float *dx, float *scratch);
void kx_lin_attn_qkv_view(const kx_lin_fmap *f, const kx_attn_ctx *c, const float *acts, const float **q,
                          const float **k, const float **v, size_t *dqk, size_t *dv, int *scaled);
int kx_lin_attn_init(const kx_lin_fmap *f, const kx_dec_config *cfg, size_t layer, float *const *p,
                     uint64_t seed);
int kx_lin_attn_redraw(const kx_lin_fmap *f, const kx_dec_config *cfg, size_t layer, float *const *p,
                       uint64_t seed, uint64_t step);
void kx_lin_attn_weights(const kx_lin_fmap *f, const kx_attn_ctx *c, float *const *p, const float *acts,
                         size_t b, size_t h, float *A);
/* kx_attn_kind.attn_weights_backward through the map's param_backward. */
void kx_lin_attn_weights_backward(const kx_lin_fmap *f, const kx_attn_ctx *c, float *const *p, float *const *dp,
                                  const float *acts, size_t b, size_t h, const float *dA, float *scratch);
/* Recurrent decoding state of one block: H (m dv + m) floats for the
 * kernel, then H for the map (a per-sequence constant of head h that must
 * outlive the call, e.g. the positive features' key stabiliser), which
 * kx_lin_attn_map_state points at (NULL outside recurrent decoding), then
 * with a sliding window the window's (dec_window.h). */
size_t kx_lin_attn_state_floats(const kx_lin_fmap *f, const kx_dec_config *cfg);
float *kx_lin_attn_map_state(const kx_lin_fmap *f, const kx_attn_ctx *c);
/* Features fq, fk (B,H,T,m) of the last forward, for inspection. */
void kx_lin_attn_features(const kx_lin_fmap *f, const kx_attn_ctx *c, const float *acts, const float **fq,
                          const float **fk);

/* Defines `const kx_attn_kind ident` named `name` from the feature map
 * `fmap` (a kx_lin_fmap in the same file); the variadic tail: more
 * designated initialisers of the kind. */
#define KX_LIN_ATTN_KIND_WITH(ident, name_, summary_, fmap, ...)                                              \
  static int ident##_declare(const kx_dec_config *cfg, size_t l, kx_param_table *t, size_t *n) {              \
    return kx_lin_attn_declare(&(fmap), cfg, l, t, n);                                                         \
  }                                                                                                            \
  static size_t ident##_acts(const kx_dec_config *cfg, size_t B, size_t T) {                                   \
    return kx_lin_attn_act_floats(&(fmap), cfg, B, T);                                                         \
  }                                                                                                            \
  static size_t ident##_scratch(const kx_dec_config *cfg, size_t B, size_t T) {                                \
    return kx_lin_attn_scratch_floats(&(fmap), cfg, B, T);                                                     \
  }                                                                                                            \
  static void ident##_forward(const kx_attn_ctx *c, float *const *p, const float *x, float *y, float *a) {     \
    kx_lin_attn_forward(&(fmap), c, p, x, y, a);                                                               \
  }                                                                                                            \
  static void ident##_backward(const kx_attn_ctx *c, float *const *p, float *const *dp, const float *x,         \
                               const float *dy, const float *a, float *dx, float *s) {                         \
    kx_lin_attn_backward(&(fmap), c, p, dp, x, dy, a, dx, s);                                                  \
  }                                                                                                            \
  static void ident##_qkv(const kx_attn_ctx *c, const float *a, const float **q, const float **k,              \
                          const float **v, size_t *dqk, size_t *dv, int *sc) {                                 \
    kx_lin_attn_qkv_view(&(fmap), c, a, q, k, v, dqk, dv, sc);                                                 \
  }                                                                                                            \
  static int ident##_init(const kx_dec_config *cfg, size_t l, float *const *p, uint64_t seed) {                \
    return kx_lin_attn_init(&(fmap), cfg, l, p, seed);                                                         \
  }                                                                                                            \
  static int ident##_redraw_features(const kx_dec_config *cfg, size_t l, float *const *p, uint64_t seed,       \
                                     uint64_t step) {                                                          \
    return kx_lin_attn_redraw(&(fmap), cfg, l, p, seed, step);                                                 \
  }                                                                                                            \
  static void ident##_weights(const kx_attn_ctx *c, float *const *p, const float *a, size_t b, size_t h,       \
                              float *A) {                                                                      \
    kx_lin_attn_weights(&(fmap), c, p, a, b, h, A);                                                            \
  }                                                                                                            \
  static size_t ident##_state(const kx_dec_config *cfg, size_t capacity) {                                     \
    (void)capacity;                                                                                            \
    return kx_lin_attn_state_floats(&(fmap), cfg);                                                             \
  }                                                                                                            \
  static size_t ident##_positions(const kx_dec_config *cfg) {                                                  \
    return (fmap).ctx_positions ? kx_attn_ctx_positions(cfg) : kx_attn_any_position(cfg);                      \
  }                                                                                                            \
  const kx_attn_kind ident = {.name = name_,                                                                   \
                              .summary = summary_,                                                             \
                              .declare = ident##_declare,                                                      \
                              .act_floats = ident##_acts,                                                      \
                              .scratch_floats = ident##_scratch,                                               \
                              .forward = ident##_forward,                                                      \
                              .backward = ident##_backward,                                                    \
                              .qkv_view = ident##_qkv,                                                         \
                              .init = ident##_init,                                                            \
                              .attn_weights = ident##_weights,                                                 \
                              .state_floats = ident##_state,                                                   \
                              .max_positions = ident##_positions,                                              \
                              .redraw = ident##_redraw_features,                                               \
                              .window = 1, __VA_ARGS__}

/* A kind without attention transfer (nothing in its map to train). */
#define KX_LIN_ATTN_KIND(ident, name_, summary_, fmap)                                                        \
  KX_LIN_ATTN_KIND_WITH(ident, name_, summary_, fmap, .transfer_tensors = NULL)

/* A kind whose map tensors `tensors` (a NULL-terminated list of names
 * after "layer<l>/") attention transfer trains on the teacher's rows;
 * fmap.param_backward must be set. */
#define KX_LIN_ATTN_KIND_TRANSFER(ident, name_, summary_, fmap, tensors)                                       \
  static void ident##_weights_backward(const kx_attn_ctx *c, float *const *p, float *const *dp, const float *a, \
                                       size_t b, size_t h, const float *dA, float *s) {                       \
    kx_lin_attn_weights_backward(&(fmap), c, p, dp, a, b, h, dA, s);                                           \
  }                                                                                                            \
  KX_LIN_ATTN_KIND_WITH(ident, name_, summary_, fmap, .attn_weights_backward = ident##_weights_backward,        \
                        .transfer_tensors = (tensors))

#endif
