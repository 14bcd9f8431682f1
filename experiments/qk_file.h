/* Q/K tensors in HDF5: the exchange format between models (ours, or any
 * PyTorch model via h5py) and the kernel experiments.
 *
 * Layout (README "Q/K file schema"):
 *   /                    attributes: format = "kapprox-qk" (string),
 *                        scaled (int: 1 if q.k is already the attention
 *                        logit, i.e. 1/sqrt(d) is folded in; 0 if the logit
 *                        is q.k/sqrt(d)), causal (int 0/1)
 *   /layer<L>/q, /layer<L>/k   (heads, tokens, d), float32 or float64
 *   /layer<L>/v          optional, (heads, tokens, dv)
 * Layers are groups named "layer" + a decimal index, read in index order. */
#ifndef KX_QK_FILE_H
#define KX_QK_FILE_H

#include <stddef.h>

typedef struct {
  int index;                /* L of "layer<L>" */
  size_t heads, tokens, d;  /* q and k: heads x tokens x d, row-major */
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
void kx_qk_close(kx_qk_file *f);
void kx_qk_layer_free(kx_qk_layer *l);

/* Writes layers atomically (temporary file + rename); float32 when
 * `single` is non-zero. */
int kx_qk_write(const char *path, int scaled, int causal, size_t n_layers,
                const kx_qk_layer *layers, int single);

#endif
