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

/* kx_qk_layer, kx_qk_file and the reader: public */
#include "kapprox/qk.h"

/* Writes layers atomically (temporary file + rename); float32 when
 * `single` is non-zero. */
int kx_qk_write(const char *path, int scaled, int causal, size_t n_layers,
                const kx_qk_layer *layers, int single);

#endif
