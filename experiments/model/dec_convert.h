/* Conversion of a softmax-pretrained decoder into another attention kind
 * (the paper's set-up: swap the attention, keep everything else, then
 * fine-tune).  Every tensor of the student whose name and shape the
 * teacher also has is copied; the rest (the kind's own tensors) gets the
 * table's initialisation and the kind's `init` hook, from an explicit
 * seed.  A layer hybrid converts only some layers and leaves the others
 * softmax. */
#ifndef KX_DEC_CONVERT_H
#define KX_DEC_CONVERT_H

#include <stdint.h>

#include "experiments/model/dec_model.h"

/* Builds *student (created here) with the teacher's sizes and attention
 * `kind` ("KIND", "KIND+wN", a sliding-window hybrid, or a DiJiang kind
 * with form switches, "dijiang+softmax+w16": kx_dec_config_set_attention).
 * Fails with a message when the teacher is not a softmax model or the kind
 * is unknown or cannot take the window. */
int kx_dec_convert(const kx_decoder *teacher, const char *kind, uint64_t seed, kx_decoder *student);
/* The same keeping softmax in the layers of `softmax_layers` (bit l = layer
 * l; kx_dec_config.softmax_layers): those blocks are the teacher's, tensor
 * for tensor, so they compute exactly what the teacher's compute on the
 * same input.  The mask must leave a layer to convert. */
int kx_dec_convert_hybrid(const kx_decoder *teacher, const char *kind, uint64_t softmax_layers, uint64_t seed,
                          kx_decoder *student);

/* Index of the teacher tensor that student tensor `t` was copied from, or
 * -1 if it is new (absent from the teacher or of another shape). */
long kx_dec_convert_source(const kx_decoder *teacher, const kx_tensor_info *t);

#endif
