/* In-context recall probe: can a model look back exactly?
 *
 * A random string s of n tokens, each drawn uniformly from the model's
 * vocabulary, is shown twice in a row (s s, 2n tokens), as in the
 * induction-head studies.  Within the first copy the next token is
 * unpredictable; in the second, token s_k (k >= 1) follows s_{k-1} exactly
 * as it did n positions earlier, so a model that can find that earlier
 * occurrence and copy its successor predicts it with certainty.  The probe
 * scores the predictions of s_1 .. s_{n-1} in both copies (the first token
 * of the second copy follows the last of the first, a pair never seen
 * before, and is left out of both):
 *   second copy: loss and accuracy of recall (0 nats and 1 for an exact
 *                copier);
 *   first copy:  the same predictions without anything to look back at,
 *                what a model that recalls nothing scores on the second
 *                copy too (log V nats for uniform logits).
 * Losses are cross-entropies in nats per predicted token, computed in
 * double from the logits; accuracy is arg-max (ties to the lowest id),
 * as kapprox eval.  Every string comes from the seed: string i, token k is
 * kx_seed_derive(kx_seed_derive(seed, i), k) mod V. */
#ifndef KX_DEC_RECALL_H
#define KX_DEC_RECALL_H

#include <stddef.h>
#include <stdint.h>

#include "experiments/model/dec_model.h"

#define KX_DEC_RECALL_STRINGS 64

typedef struct {
  size_t length;  /* n; 0: kx_dec_recall_default_length(ctx) */
  size_t strings; /* 0: KX_DEC_RECALL_STRINGS */
  uint64_t seed;
  size_t batch;   /* strings per forward pass; 0: 16 */
} kx_dec_recall_opts;

typedef struct {
  size_t length, strings;
  size_t predictions;   /* per copy: strings x (length - 1) */
  double loss, accuracy; /* second copy: recall */
  double first_loss, first_accuracy;
} kx_dec_recall_result;

/* Half the context minus one, so that both copies fit with room to spare,
 * but at least 2 and at most (ctx + 1) / 2 (the 2n - 1 input tokens fill
 * the context).  0 if the context is too short for any probe (ctx < 3). */
size_t kx_dec_recall_default_length(size_t ctx);

/* The n tokens of string `index`. */
void kx_dec_recall_string(size_t V, size_t n, uint64_t seed, size_t index, int *out);

/* Logits (B, T, V) of token sequences (B, T) into *logits (the scorer's
 * memory, valid until its next call). */
typedef int (*kx_dec_recall_scorer)(void *user, const int *tokens, size_t B, size_t T, const float **logits);

/* The probe with any scorer of vocabulary V and context ctx (a model, or a
 * mock in tests); refuses a length < 2 or one whose 2n - 1 input tokens do
 * not fit the context, and 0 strings after defaults. */
int kx_dec_recall_run(kx_dec_recall_scorer score, void *user, size_t V, size_t ctx, const kx_dec_recall_opts *o,
                      kx_dec_recall_result *r);

/* The probe on a decoder (its parallel forward). */
int kx_dec_recall(kx_decoder *m, const kx_dec_recall_opts *o, kx_dec_recall_result *r);

#endif
