/* Validation metrics of a decoder: mean cross-entropy (nats per character,
 * or per token for a model of token ids) and next-character (token)
 * accuracy over consecutive context-length windows of a
 * token stream (the validation text), the same windows for every model. */
#ifndef KX_DEC_EVAL_H
#define KX_DEC_EVAL_H

#include <stddef.h>

#include "experiments/model/dec_model.h"

typedef struct {
  double loss;        /* nats per character (token) */
  double accuracy;    /* fraction of predictions whose arg-max logit is the next character */
  size_t predictions; /* characters scored */
} kx_dec_eval_result;

/* windows == 0: scores every prediction of stream (n tokens) in
 * consecutive windows of the model's context, a last shorter window
 * covering the rest.  windows > 0: scores that many context-length windows
 * at evenly spaced starts w (n - T - 1) / (windows - 1) (the positions of
 * kapprox train's validation estimate), a cheaper estimate spread over the
 * whole text.  A model of token ids (cfg.token_ids) reads stories
 * (dec_data.h, kx_dec_story_start): with windows == 0 each story is scored
 * alone from its BOS (a story longer than the context continues in the
 * next window), with windows > 0 each window starts at the BOS of the story
 * its evenly spaced start falls in.  `batch` windows per forward pass;
 * arg-max ties go to the lowest token id. */
int kx_dec_evaluate(kx_decoder *m, const int *stream, size_t n, size_t windows, size_t batch,
                    kx_dec_eval_result *r);

#endif
