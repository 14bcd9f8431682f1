/* The decoder: parameter table + three flat buffers (parameters, gradients,
 * activations) + the forward and backward passes over whole batches. */
#ifndef KX_DEC_MODEL_H
#define KX_DEC_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "experiments/model/dec_attn.h"
#include "experiments/model/dec_config.h"
#include "experiments/model/dec_params.h"

typedef struct {
  size_t ln1_w, ln1_b, ln2_w, ln2_b, fc_w, fc_b, fcproj_w, fcproj_b; /* table indices */
  size_t fc3_w; /* llama: W3 of the SwiGLU (fc_w is W1, fcproj_w W2); the
                   biases and ln*_b are SIZE_MAX there (no such tensor) */
  const kx_attn_kind *attn;  /* this block's kind (softmax in a hybrid's kept layers) */
  size_t attn_first, attn_n; /* its tensors */
} kx_dec_layer_index;

/* Activations of one block (pointers into the activation buffer). */
typedef struct {
  float *x;               /* (N,C) block input (residual stream) */
  float *ln1, *ln1_mean, *ln1_rstd; /* (N,C), (N), (N) */
  float *attn_acts;       /* attention kind's own */
  float *attn_y;          /* (N,C) attention branch output */
  float *ln2, *ln2_mean, *ln2_rstd;
  float *fc;              /* (N,F) pre-GELU (llama: W1 x) */
  float *gelu;            /* (N,F) (llama: silu(W1 x) * W3 x) */
  float *mlp_y;           /* (N,C) MLP branch output */
  float *fc3, *xmid;      /* llama only: (N,F) W3 x, (N,C) x + attention */
} kx_dec_block_acts;

typedef struct {
  kx_dec_config cfg;
  const kx_attn_kind *attn; /* cfg.attn_kind; a block's own kind is li[l].attn */
  kx_param_table tab;
  kx_dec_layer_index *li;
  size_t embed, lnf_w, lnf_b, unembed; /* table indices (llama: lnf_b SIZE_MAX;
                                          a tied classifier: unembed = embed) */
  float *params, *grads;               /* tab.total floats each */
  float **attn_p, **attn_dp; /* KX_ATTN_MAX_TENSORS slots per layer: pointers to the kind's tensors */
  float *rope_cos, *rope_sin;          /* (ctx, rotary_dims/2) */

  /* Laid out for the current (B,T) in buffers sized for the largest layout
   * seen (capacities in elements): a forward of another batch size, an
   * evaluation between data-parallel training leaves, reuses them instead
   * of touching fresh memory. */
  size_t cap_acts, cap_tokens, cap_scratch, B, T;
  float *acts;
  kx_dec_block_acts *blk;
  float *x_final, *lnf, *lnf_mean, *lnf_rstd, *logits, *probs, *losses; /* x_final (N,C) */
  int *tokens, *targets;
  float *scratch; /* backward: dx (N,C), dln (N,C), dfc (N,4C) or (N,3F), dlogits (N,V), attention scratch */
  size_t scratch_floats;
  double loss;
  int have_targets;
} kx_decoder;

/* Builds the table and allocates parameters/gradients (parameters zero). */
int kx_dec_create(kx_decoder *m, const kx_dec_config *cfg);
void kx_dec_free(kx_decoder *m);
int kx_dec_init_params(kx_decoder *m, uint64_t seed);

static inline float *kx_dec_param(const kx_decoder *m, size_t i) { return m->params + m->tab.t[i].offset; }
static inline float *kx_dec_grad(const kx_decoder *m, size_t i) { return m->grads + m->tab.t[i].offset; }
/* The attention kind's tensors of layer l and their gradients, in the
 * order the kind declared them (its forward/backward's p and dp). */
static inline float *const *kx_dec_attn_p(const kx_decoder *m, size_t l) {
  return m->attn_p + l * KX_ATTN_MAX_TENSORS;
}
static inline float *const *kx_dec_attn_dp(const kx_decoder *m, size_t l) {
  return m->attn_dp + l * KX_ATTN_MAX_TENSORS;
}

/* Forward over tokens (B,T), T <= ctx.  With targets (B,T) the mean
 * cross-entropy goes to *loss (may be NULL) and m->probs; without, only
 * logits (B,T,V) are computed. */
int kx_dec_forward(kx_decoder *m, const int *tokens, const int *targets, size_t B, size_t T, double *loss);
/* Gradients of the mean loss of the last forward (which had targets) into
 * m->grads (overwritten). */
int kx_dec_backward(kx_decoder *m);

/* The first block kind without optional hook `hook` (a member of
 * kx_attn_kind: attn_weights, qkv_view, state_floats, ...), NULL if every
 * block has it; a layer hybrid has two kinds to ask. */
const kx_attn_kind *kx_dec_kind_lacking(const kx_decoder *m, size_t hook_offset);
#define KX_DEC_KIND_LACKING(m, hook) kx_dec_kind_lacking((m), offsetof(kx_attn_kind, hook))

/* After a forward: 0 when every activation of it (each block's input,
 * LayerNorm, attention, MLP and residual outputs, the final LayerNorm) and
 * every logit is finite and no LayerNorm's variance overflowed; else
 * KX_ENUM with a message naming the first value that is not (parameters
 * beyond what float32 arithmetic carries). */
int kx_dec_check_finite(const kx_decoder *m);

/* The part of kx_dec_check_finite that costs O(positions): no LayerNorm's
 * variance overflowed (which leaves the outputs finite but blind to the
 * input); training checks it at every step. */
int kx_dec_check_norms(const kx_decoder *m);

/* The tensor holding the parameter of largest magnitude, and that
 * magnitude (for messages about absurd parameters). */
const char *kx_dec_largest_param(const kx_decoder *m, double *magnitude);

/* Logits of the last forward at (b, t): V floats. */
static inline const float *kx_dec_logits(const kx_decoder *m, size_t b, size_t t) {
  return m->logits + (b * m->T + t) * m->cfg.vocab;
}

#endif
