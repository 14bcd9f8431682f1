/* The grid every kernel experiment walks: heads of an input (synthetic or
 * a Q/K file) x schemes x m values x seeds, each point one feature map
 * evaluated by every metric.  kernel-error, attn-fidelity and compare are
 * this grid with different defaults and printed metrics. */
#ifndef KX_GRID_H
#define KX_GRID_H

#include <stddef.h>
#include <stdint.h>

#include "approx/fmap.h"
#include "experiments/results.h"
#include "experiments/synthetic.h"

#define KX_GRID_MAX 256

typedef struct {
  /* what to evaluate */
  char **schemes;
  size_t n_schemes;
  size_t m[KX_GRID_MAX];
  size_t n_m;
  uint64_t seeds[KX_GRID_MAX];
  size_t n_seeds;
  kx_fmap_options fmap;   /* kernel, radii, calibration controls */
  /* input: a Q/K file, or synthetic when qk_path == NULL */
  const char *qk_path;
  int layers[KX_GRID_MAX], heads[KX_GRID_MAX]; /* selections; counts 0 = all */
  size_t n_layers, n_heads;
  size_t max_tokens;      /* 0 = all tokens of a file */
  int causal;             /* -1: from the file (synthetic: 0) */
  size_t tokens, d;       /* synthetic shape */
  kx_norm_spec norm;
  uint64_t data_seed;     /* synthetic Q/K/V, and V for files without v */
  int progress;           /* draw progress on stderr */
  unsigned metric_mask;   /* bit i set: record metric i (0 = all) */
} kx_grid;

void kx_grid_defaults(kx_grid *g);

/* Runs the grid, appending one row per (head, scheme, m, seed, metric). */
int kx_grid_run(const kx_grid *g, kx_results *out);

#endif
