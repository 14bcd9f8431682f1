/* Q/K tensors in HDF5: the exchange format between models (ours, or any
 * PyTorch model via h5py) and the kernel experiments.
 *
 * Layout (docs/file-formats.md, "Q/K file"):
 *   /                    attributes: format = "kapprox-qk" (string),
 *                        scaled (int: 1 if q.k is already the attention
 *                        logit, i.e. 1/sqrt(d) is folded in; 0 if the logit
 *                        is q.k/sqrt(d)), causal (int 0/1)
 *   /layer<L>/q, /layer<L>/k   (heads, tokens, d), float32 or float64
 *   /layer<L>/v          optional, (heads, tokens, dv)
 * Layers are groups named "layer" + a decimal index (0 .. INT_MAX, no
 * leading zeros), read in index order.
 *
 * Reading runs libhdf5 in a child process (core/kx_sandbox.h): a file that
 * crashes the library gives KX_EIO and "malformed HDF5 file 'PATH': ...".
 * Declared sizes are checked against the file's real storage and the
 * machine's memory before anything is allocated, and only the requested
 * heads and tokens are read. */
#ifndef KX_QK_FILE_H
#define KX_QK_FILE_H

#include <stddef.h>

typedef struct {
  int index;                /* L of "layer<L>" */
  size_t heads, tokens, d;  /* q and k: heads x tokens x d, row-major */
  size_t head_first;        /* the file's head number of row 0 (partial reads) */
  size_t dv;                /* 0 when the file has no v */
  double *q, *k, *v;        /* owned; v may be NULL */
} kx_qk_layer;

typedef struct kx_qk_file kx_qk_file;

/* Opens and validates the file's root attributes and lists its layers;
 * NULL with a message on a missing, truncated or foreign file. */
kx_qk_file *kx_qk_open(const char *path);
size_t kx_qk_n_layers(const kx_qk_file *f);
int kx_qk_layer_index(const kx_qk_file *f, size_t i);
int kx_qk_scaled(const kx_qk_file *f);
int kx_qk_causal(const kx_qk_file *f);
/* Reads layer i (0-based position, not index), checking ranks, shapes,
 * matching d between q and k, and that every value is finite. */
int kx_qk_read_layer(kx_qk_file *f, size_t i, kx_qk_layer *out);
/* Reads heads [head_first, head_first + head_count) and the first
 * max_tokens tokens (0: all) of layer i: out->heads = head_count,
 * out->tokens = min(max_tokens, stored tokens), out->head_first set. */
int kx_qk_read_heads(kx_qk_file *f, size_t i, size_t head_first, size_t head_count, size_t max_tokens,
                     kx_qk_layer *out);
/* The stored shape of layer i (heads, tokens, d, dv; q, k, v stay NULL),
 * with the same checks as a read but no values loaded. */
int kx_qk_layer_shape(kx_qk_file *f, size_t i, kx_qk_layer *shape);
void kx_qk_close(kx_qk_file *f);
void kx_qk_layer_free(kx_qk_layer *l);

/* Writes layers atomically (temporary file + rename); float32 when
 * `single` is non-zero. */
int kx_qk_write(const char *path, int scaled, int causal, size_t n_layers,
                const kx_qk_layer *layers, int single);

#endif
