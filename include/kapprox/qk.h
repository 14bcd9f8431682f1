/* libkapprox: reading Q/K files, the HDF5 exchange format between models and
 * the kernel experiments (the project's docs/file-formats.md, "Q/K file"):
 * root attributes format = "kapprox-qk", scaled, causal; groups layer<L>
 * with datasets q, k (heads, tokens, d) and optionally v (heads, tokens, dv).
 *
 * libhdf5 runs in a child process while reading, so a malformed file gives
 * KX_EIO and a message instead of a crash; declared sizes are checked
 * against the file's storage before anything is allocated. */
#ifndef KAPPROX_QK_H
#define KAPPROX_QK_H

#include <stddef.h>

#include "status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
  int index;                /* L of "layer<L>" */
  size_t heads, tokens, d;  /* q and k: heads x tokens x d, row-major */
  size_t head_first;        /* the file's head number of row 0 (partial reads) */
  size_t dv;                /* 0 when the file has no v */
  double *q, *k, *v;        /* owned (kx_qk_layer_free); v may be NULL */
} kx_qk_layer;

typedef struct kx_qk_file kx_qk_file;

/* Opens the file, checks its root attributes and lists its layers; NULL
 * with a message on a missing, truncated or foreign file. */
KX_API kx_qk_file *kx_qk_open(const char *path);
KX_API size_t kx_qk_n_layers(const kx_qk_file *f);
/* L of the i-th layer (layers in index order). */
KX_API int kx_qk_layer_index(const kx_qk_file *f, size_t i);
/* 1 if q.k is already the attention logit (1/sqrt(d) folded in). */
KX_API int kx_qk_scaled(const kx_qk_file *f);
KX_API int kx_qk_causal(const kx_qk_file *f);
/* Reads the i-th layer whole, checking shapes and that every value is finite. */
KX_API int kx_qk_read_layer(kx_qk_file *f, size_t i, kx_qk_layer *out);
/* Reads heads [head_first, head_first + head_count) and the first
 * max_tokens tokens (0: all) of the i-th layer. */
KX_API int kx_qk_read_heads(kx_qk_file *f, size_t i, size_t head_first, size_t head_count,
                            size_t max_tokens, kx_qk_layer *out);
/* The stored shape of the i-th layer (q, k, v stay NULL). */
KX_API int kx_qk_layer_shape(kx_qk_file *f, size_t i, kx_qk_layer *shape);
KX_API void kx_qk_close(kx_qk_file *f);
KX_API void kx_qk_layer_free(kx_qk_layer *l);

#ifdef __cplusplus
}
#endif

#endif
