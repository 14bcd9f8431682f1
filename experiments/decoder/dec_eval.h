/* Validation metrics of a decoder: mean cross-entropy (nats per character)
 * and next-character accuracy over consecutive context-length windows of a
 * token stream (the validation text), the same windows for every model. */
#ifndef KX_DEC_EVAL_H
#define KX_DEC_EVAL_H

#include <stddef.h>

#include "experiments/decoder/dec_model.h"

typedef struct {
  double loss;        /* nats per character */
  double accuracy;    /* fraction of predictions whose arg-max logit is the next character */
  size_t predictions; /* characters scored */
} kx_dec_eval_result;

/* Scores the first `max_chars` characters of stream (n tokens; 0 or more
 * than n - 1: all n - 1 predictions) in windows of the model's context,
 * `batch` windows per forward pass; a last, shorter window covers the
 * rest.  Ties of the arg-max go to the lowest token id. */
int kx_dec_evaluate(kx_decoder *m, const int *stream, size_t n, size_t max_chars, size_t batch,
                    kx_dec_eval_result *r);

#endif
