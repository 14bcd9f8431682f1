/* llama2.c checkpoints (docs/llama.md#importing-a-llama2c-checkpoint): the
 * legacy export (version 0: seven int32 dim, hidden_dim, n_layers,
 * n_heads, n_kv_heads, vocab_size, seq_len, then float32 tensors; a
 * negative vocab_size means a classifier of its own after the rotary
 * tables) and the version-1 export (magic "ak42", version 1, the seven
 * sizes, a shared-classifier byte, 256 bytes of header, then float32
 * tensors in another order).  The int8 export (version 2) is refused. */
#ifndef KX_DEC_LLAMA2C_H
#define KX_DEC_LLAMA2C_H

#include <stddef.h>

#include "experiments/model/dec_model.h"

/* Parses a whole file held in memory into a new llama decoder *m
 * (kx_dec_create'd here; free with kx_dec_free): every size checked
 * against the others and against len before any tensor is read, every
 * value finite.  ctx 0: the file's seq_len.  Messages name the problem;
 * nothing is allocated on failure. */
int kx_llama2c_parse(const unsigned char *buf, size_t len, size_t ctx, kx_decoder *m);

/* The same from a file (mapped read-only), messages naming it. */
int kx_llama2c_load(const char *path, size_t ctx, kx_decoder *m);

#endif
