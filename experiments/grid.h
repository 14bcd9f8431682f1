/* The grid every kernel experiment walks: heads of an input (synthetic or
 * a Q/K file) x schemes x m values x seeds, each point one feature map
 * evaluated by every metric.  kernel-error, attn-fidelity and compare are
 * this grid with different defaults and printed metrics. */
#ifndef KX_GRID_H
#define KX_GRID_H

#include <stddef.h>
#include <stdint.h>

#include "approx/fmap.h"
#include "experiments/metrics.h"
#include "experiments/qk_file.h"
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

/* --schemes: a comma-separated list of registered schemes, or "all" for
 * every registered one; unknown and repeated names are refused.  Free with
 * kx_free_strings. */
int kx_grid_parse_schemes(const char *list, char ***items, size_t *n);

/* One grid point on its own: builds the map (scheme, m, seed) with the
 * options `base`, calibrating fitted weights on the head itself, and
 * evaluates every metric.  Thread-safe; the sweep calls it per point. */
int kx_grid_eval_point(const kx_fmap_options *base, const kx_head_reference *ref,
                       const char *scheme, size_t m, uint64_t seed, double metrics[KX_N_METRICS]);

/* Whether an error of kx_grid_eval_point sinks only its own point (a
 * numerical failure such as a weight fit that does not converge, recorded
 * as a failed point with NaN values) rather than the whole run (memory,
 * files, bad parameters). */
int kx_grid_point_failure(int status);

/* Exit status of a run that finished every point it could but recorded
 * failed points (0 success, 1 runtime error, 2 usage error). */
#define KX_EXIT_SOME_FAILED 3

/* Copies head `head` of layer L (first max_tokens tokens, 0 = all) into q, k
 * (n x d, scaled so q.k is the logit) and v (n x dv; random from data_seed
 * when the file has no v).  q, k, v need room for L->tokens rows. */
int kx_grid_head_from_layer(const kx_qk_layer *L, size_t head, size_t max_tokens, int scaled,
                            uint64_t data_seed, double *q, double *k, double *v, size_t *n,
                            size_t *dv);

/* Runs the grid, appending one row per (head, scheme, m, seed, metric); a
 * failed point (kx_grid_point_failure) gives rows with value NaN and the
 * reason in `failure`, and the other points still run. */
int kx_grid_run(const kx_grid *g, kx_results *out);

#endif
