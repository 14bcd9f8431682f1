/* Attention as a replaceable part of the decoder.
 *
 * An attention kind owns everything between the block's LN1 output and its
 * residual branch output: its own tensors (declared into the parameter
 * table, so init, weight decay, AdamW and checkpoints handle them without
 * further code), its saved activations and its backward scratch.  The
 * linear variants of the DiJiang paper (WDCF features with decay and gate,
 * Performer, cosFormer, RetNet, ...) are added by writing one file with a
 * kx_attn_kind and one line in the table in dec_attn.c; the model, the
 * optimizer, checkpoints and the commands do not change. */
#ifndef KX_DEC_ATTN_H
#define KX_DEC_ATTN_H

#include <stddef.h>
#include <stdint.h>

#include "experiments/model/dec_config.h"
#include "experiments/model/dec_params.h"

typedef struct {
  const kx_dec_config *cfg;
  size_t B, T;                     /* batch and sequence length of this call */
  const float *rope_cos, *rope_sin; /* (ctx, rotary_dims/2) tables; row 0 = position pos */
  /* Recurrent decoding (dec_infer.h); zero for training and evaluation.
   * With state != NULL (B = 1) the T tokens are positions pos .. pos+T-1 of
   * one sequence whose earlier tokens live in state (the kind's
   * state_floats(cfg, capacity) floats: a fixed-size recurrent state, or a
   * KV cache of `capacity` tokens), and forward updates the state. */
  size_t pos, capacity;
  float *state;
} kx_attn_ctx;

/* The most tensors one kind may declare per block: the model keeps
 * KX_ATTN_MAX_TENSORS pointer slots per layer (kx_decoder.attn_p, attn_dp;
 * layer l's tensors start at slot l * KX_ATTN_MAX_TENSORS). */
#define KX_ATTN_MAX_TENSORS 16

typedef struct {
  const char *name;
  const char *summary;
  /* Appends the tensors of block `layer` to the table ("layer<l>/..."), at
   * most KX_ATTN_MAX_TENSORS; the model later hands their pointers to
   * forward/backward in this order. */
  int (*declare)(const kx_dec_config *cfg, size_t layer, kx_param_table *tab, size_t *n_tensors);
  /* Floats of saved activations and of backward scratch for one block. */
  size_t (*act_floats)(const kx_dec_config *cfg, size_t B, size_t T);
  size_t (*scratch_floats)(const kx_dec_config *cfg, size_t B, size_t T);
  /* y (B,T,C) = attention(x (B,T,C)); y and acts are overwritten. */
  void (*forward)(const kx_attn_ctx *c, float *const *p, const float *x, float *y, float *acts);
  /* dx (B,T,C) and dp (the tensors' gradients) += from dy (B,T,C). */
  void (*backward)(const kx_attn_ctx *c, float *const *p, float *const *dp, const float *x,
                   const float *dy, const float *acts, float *dx, float *scratch);
  /* Optional (NULL if the kind has no q/k): views of q, k (B,H,T,dqk) and v
   * (B,H,T,dv) as the kernel sees them (after rotary), from the last
   * forward's acts; *scaled = 1 if 1/sqrt(d) is folded into q. */
  void (*qkv_view)(const kx_attn_ctx *c, const float *acts, const float **q, const float **k,
                   const float **v, size_t *dqk, size_t *dv, int *scaled);
  /* Optional (NULL: nothing to do): fills the kind's tensors declared with
   * KX_INIT_KIND (decay tables, feature weights, fixed projections, ...) of
   * block `layer`, after the table's generic initialisation.  Used by a
   * fresh model and by `convert` for the tensors a teacher does not have.
   * Must draw only from `seed` so the result is reproducible. */
  int (*init)(const kx_dec_config *cfg, size_t layer, float *const *p, uint64_t seed);
  /* Optional: the effective causal attention weights A (T,T) of sequence b,
   * head h, from the last forward's acts: row i is the weight each j <= i
   * gets in output i (zero above the diagonal).  For forms without a
   * normaliser (RetNet, the released DiJiang code) the row is |s_ij| divided
   * by its sum, so that every kind yields a distribution to compare with
   * the teacher (attention KL, Figure 3). */
  void (*attn_weights)(const kx_attn_ctx *c, float *const *p, const float *acts, size_t b, size_t h,
                       float *A);
  /* Optional (attention transfer with the cross-entropy target): dp +=
   * the gradient of sum_ij dA_ij A_ij with respect to the transfer tensors,
   * A as attn_weights gives it for sequence b, head h of the last forward
   * (q, k held fixed), also for transfer tensors that the table freezes
   * for fine-tuning; `scratch` holds scratch_floats(cfg, B, T) floats.
   * Without it, attention transfer matches the attention outputs instead
   * (MSE, LoLCATs). */
  void (*attn_weights_backward)(const kx_attn_ctx *c, float *const *p, float *const *dp, const float *acts,
                                size_t b, size_t h, const float *dA, float *scratch);
  /* Optional: NULL-terminated names (after "layer<l>/") of the tensors that
   * attention transfer trains (the feature map); a name the model's form
   * does not declare (a DiJiang form without D) is skipped.  NULL: the kind
   * has nothing to train there, and `convert --transfer-steps` converts it
   * without transfer (saying so). */
  const char *const *transfer_tensors;
  /* Optional (NULL: no recurrent decoding): floats of one block's decoding
   * state for sequences of up to `capacity` tokens (linear kinds: H (m dv
   * + m), independent of capacity; softmax: the KV cache), and the number
   * of positions the kind defines (SIZE_MAX: any, rotary angles exist for
   * every position; ctx for kinds with per-position tensors or weights). */
  size_t (*state_floats)(const kx_dec_config *cfg, size_t capacity);
  size_t (*max_positions)(const kx_dec_config *cfg);
  /* Optional (NULL: the kind's random tensors are drawn once, by init):
   * called by the training loop before the forward pass of every step
   * (`step` = steps completed, 0-based) with a seed that descends from the
   * run's seed and the layer (the loop derives it).  A kind that redraws
   * its random features during training (performer-redraw) refills them
   * here at its redraw steps, as a pure function of (seed, step), so that
   * a resumed run redraws exactly as an uninterrupted one.  Everything
   * that is not a training step (evaluation, sampling, dump-qk, recurrent
   * inference, attention transfer) uses the tensors as stored in the
   * checkpoint: the draw of the last training step. */
  int (*redraw)(const kx_dec_config *cfg, size_t layer, float *const *p, uint64_t seed, uint64_t step);
  /* 1 if the kind implements the sliding-window hybrid (cfg->window > 0,
   * dec_window.h); otherwise no_window (may be NULL) says why it cannot,
   * for the message. */
  int window;
  const char *no_window;
} kx_attn_kind;

/* The entries of a kind file whose hooks are static functions named as the
 * fields: the five every kind has and the three most have. */
#define KX_ATTN_NAMED_HOOKS                                                                               \
  .declare = declare, .act_floats = act_floats, .scratch_floats = scratch_floats, .forward = forward,     \
  .backward = backward, .qkv_view = qkv_view, .attn_weights = attn_weights, .state_floats = state_floats

/* max_positions of the kinds without a position limit, and of those
 * limited to the training context. */
size_t kx_attn_any_position(const kx_dec_config *cfg);
size_t kx_attn_ctx_positions(const kx_dec_config *cfg);

/* NULL if unknown. */
const kx_attn_kind *kx_dec_attn_find(const char *name);
/* Comma-separated list of the known kinds, for messages and --help. */
const char *kx_dec_attn_names(void);
/* The same for the kinds with transfer tensors (attention transfer). */
const char *kx_dec_attn_transfer_names(void);

extern const kx_attn_kind kx_attn_softmax;
extern const kx_attn_kind kx_attn_hedgehog;

#endif
