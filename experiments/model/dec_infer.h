/* Recurrent (token-by-token) inference with a trained decoder.
 *
 * The prompt goes through the kinds' parallel forward a chunk at a time
 * (prefill); each chunk, and then each generated token, continues from the
 * per-block decoding state the attention kind keeps (kx_attn_kind
 * state_floats): a fixed-size state S = g S + phi(k)^T v, z = g z + phi(k)
 * per head for the linear kinds, a KV cache for softmax.  A token costs
 * O(1) in the length for the linear kinds and O(length) for softmax.  A
 * layer hybrid's blocks each keep the state of their own kind.
 *
 * The rotary rows are computed for each chunk's positions (the angles exist
 * for any position), so kinds with max_positions = SIZE_MAX decode beyond
 * the training context, in memory independent of the length for the linear
 * kinds; the others stop at ctx tokens. */
#ifndef KX_DEC_INFER_H
#define KX_DEC_INFER_H

#include <stddef.h>
#include <stdint.h>

#include "experiments/model/dec_model.h"

#define KX_DEC_INFER_CHUNK 512

typedef struct {
  kx_decoder *m;
  size_t capacity;        /* tokens the state can take (prompt + generated) */
  size_t pos;             /* tokens consumed so far */
  size_t chunk;           /* tokens per parallel call (prefill) */
  size_t state_floats;    /* all blocks */
  size_t *state_at;       /* (layers + 1): block l's state starts at state + state_at[l] */
  float *state;
  double *inv_freq;        /* (rotary_dims/2) rotary frequencies */
  /* Work buffers for `chunk` tokens: x, ln1, attn_y, ln2, mlp_y (T,C), fc,
   * gelu (T,4C), mean, rstd (T), logits (T,V), rotary rows (T, rotary_dims/2)
   * x 2, the kind's acts. */
  float *x, *ln1, *attn_y, *ln2, *mlp_y, *fc, *gelu, *mean, *rstd, *logits, *rope_cos, *rope_sin, *acts;
  const float *last_logits; /* V floats: the last fed token's */
} kx_dec_infer;

/* Bytes that kx_dec_infer_create allocates for `capacity` tokens, and the
 * part of them that is decoding state (KV cache or recurrent state). */
size_t kx_dec_infer_bytes(const kx_decoder *m, size_t capacity, size_t *state_bytes);

/* Positions every block's kind defines (the least of their
 * max_positions); 0 if a block has no recurrent decoding. */
size_t kx_dec_max_positions(const kx_decoder *m);

/* Checks that the kinds support recurrent decoding and `capacity`
 * positions, and that the memory is available (MemAvailable) for the state,
 * the work buffers and the caller's capacity token ids; message and
 * non-zero if not.  kx_dec_infer_create checks first, then allocates. */
int kx_dec_infer_check(const kx_decoder *m, size_t capacity);
int kx_dec_infer_create(kx_dec_infer *s, kx_decoder *m, size_t capacity);
void kx_dec_infer_free(kx_dec_infer *s);

/* Consumes tokens (n >= 1) after the s->pos already fed; s->last_logits is
 * then the next-token distribution's logits.  all_logits (n, V), may be
 * NULL: the logits of every fed token. */
int kx_dec_infer_feed(kx_dec_infer *s, const int *tokens, size_t n, float *all_logits);

/* kx_dec_generate through prefill + recurrent steps (same picks, same
 * seeds): continues prompt (n >= 1 ids) by length tokens into out. */
int kx_dec_infer_generate(kx_decoder *m, const int *prompt, size_t n, size_t length, double temperature,
                          size_t top_k, uint64_t seed, int *out);

/* Bytes of memory available now (MemAvailable of /proc/meminfo); 0 if unknown. */
size_t kx_dec_infer_available_bytes(void);

#endif
