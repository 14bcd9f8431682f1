/* Attention maps of one head, for looking at them (paper Fig. 3): the
 * exact softmax weights and each scheme's approximation as n x n matrices
 * (row i: query i's weights over the keys; 0 where the causal mask hides a
 * key), plus writers for gnuplot's matrix text and HDF5.  The head comes
 * from a spec's head iterator (inputs.h). */
#ifndef KX_ATTN_MAPS_H
#define KX_ATTN_MAPS_H

#include <stddef.h>
#include <stdint.h>

#include "approx/fmap.h"
#include "experiments/eval/metrics.h"
#include "experiments/eval/spec.h"

/* kx_spec_defaults for the maps of one head: synthetic, 64 tokens, d = 16,
 * |q| = |k| = 2, causal (maps of causal attention show the mask, like the
 * paper's figure); one layer, head, m (64) and seed. */
void kx_attention_map_spec_defaults(kx_spec *s);

/* A (n x n) = exact attention weights. */
int kx_attention_map_exact(const kx_head_reference *ref, double *A);
/* A (n x n) = attention weights from the map (scheme, m, seed), fitted
 * weights calibrated on the head itself (as in the sweep). */
int kx_attention_map_approx(const kx_head_reference *ref, const kx_fmap_options *base,
                            const char *scheme, size_t m, uint64_t seed, double *A);

/* Whitespace-separated rows, gnuplot's "matrix" format; atomic. */
int kx_matrix_write_text(const char *path, size_t rows, size_t cols, const double *A);

/* HDF5: /exact (n x n), /approx/<scheme> and /diff/<scheme> (approx -
 * exact), root attributes m, seed, causal; atomic. */
int kx_attention_maps_write_h5(const char *path, size_t n, const double *exact, size_t n_schemes,
                               char *const *schemes, const double *const *approx, size_t m,
                               uint64_t seed, int causal);

#endif
