/* Text generation and Q/K extraction from a trained decoder (library side
 * of `kapprox sample` and `kapprox dump-qk`). */
#ifndef KX_DEC_SAMPLE_H
#define KX_DEC_SAMPLE_H

#include <stddef.h>
#include <stdint.h>

#include "experiments/model/dec_data.h"
#include "experiments/model/dec_model.h"
#include "experiments/qk/qk_file.h"

/* Draws the next token from logits (V): temperature 0 = argmax; else
 * softmax(logits / temperature) restricted to the top_k largest (0 = all),
 * with the uniform number u in [0, 1). */
int kx_dec_pick(const float *logits, size_t V, double temperature, size_t top_k, double u);

/* 0 if the V logits the i-th generated token is drawn from are finite;
 * else KX_ENUM with a message (the model's parameters are absurd). */
int kx_dec_logits_finite(const float *logits, size_t V, size_t i);

/* Continues `prompt` (token ids, n >= 1) by `length` tokens into out
 * (length ids).  Each step runs the model on the last ctx tokens; token i
 * uses the uniform kx_seed_derive(seed, i). */
int kx_dec_generate(kx_decoder *m, const int *prompt, size_t n, size_t length, double temperature, size_t top_k,
                    uint64_t seed, int *out);

/* Runs the model on tokens (T <= ctx) and fills one kx_qk_layer per block
 * (index = block, heads x T x d, q and k after rotary, v) from the
 * attention kind's view; *scaled as the kind reports it (a layer hybrid
 * whose kinds disagree: 1, with 1/sqrt(d) folded into the queries of the
 * unscaled layers).  layers must have
 * room for cfg.layers entries; free each with kx_qk_layer_free.  KX_ENUM
 * when an activation or a value of q, k or v is not finite. */
int kx_dec_extract_qk(kx_decoder *m, const int *tokens, size_t T, kx_qk_layer *layers, int *scaled);

#endif
