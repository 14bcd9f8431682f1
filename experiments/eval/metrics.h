/* How far a feature map's kernel and attention are from the exact ones,
 * for one head.  The exact side (kernel matrix, attention weights, AV) is
 * computed once per head and reused for every (scheme, m, seed). */
#ifndef KX_METRICS_H
#define KX_METRICS_H

#include <stddef.h>

#include "approx/fmap.h"

/* kx_metric, kx_metric_name, kx_metric_lookup, kx_fmap_metrics: public */
#include "kapprox/metrics.h"

typedef struct {
  size_t n, d, dv;
  int causal;
  kx_kernel kernel;
  const double *q, *k, *v; /* borrowed: n x d, n x d, n x dv */
  double *logK;            /* n x n exact log kernel */
  double *logA;            /* n x n exact log attention weights (-inf where masked) */
  double *AV;              /* n x dv exact outputs */
  double q_norm, k_norm;   /* mean Euclidean norms, reported with every result */
  /* What every point's metrics would otherwise recompute from the above:
   * logK_max = max logK, K = exp(logK - logK_max), K_sq = sum of K^2 (the
   * kernel error's denominator), A = exp(logA). */
  double logK_max, K_sq;
  double *K, *A; /* n x n */
} kx_head_reference;

int kx_head_reference_init(kx_head_reference *r, size_t n, size_t d, size_t dv, const double *q,
                           const double *k, const double *v, int causal, kx_kernel kernel);
void kx_head_reference_free(kx_head_reference *r);

/* What a feature map estimates on a head, against which every metric is
 * evaluated: the log kernel, the log attention weights (rows normalised,
 * -inf where masked) and the outputs. */
typedef struct {
  const double *logK; /* n x n estimated log kernel */
  const double *logA; /* n x n estimated log attention weights */
  const double *A;    /* n x n exp(logA) */
  const double *AV;   /* n x dv estimated outputs */
} kx_estimate;

/* The metric table: one entry per metric, in kx_metric order (CSV column
 * `metric`, the sweep journal's value order, help texts, plot labels).  A
 * new metric is an enum value above, a function and one entry. */
typedef struct {
  const char *name;  /* CSV and command-line name */
  const char *label; /* axis label of figures */
  int needs_kernel;  /* defined only for maps whose phi.phi estimates the kernel */
  double (*value)(const kx_head_reference *r, const kx_estimate *e);
} kx_metric_def;

extern const kx_metric_def kx_metrics[KX_N_METRICS];
/* The names, comma-separated ("kernel_rel_fro, kernel_rel_mse, ..."; static storage). */
const char *kx_metric_list(void);
/* The metrics defined without a kernel estimator (the attention metrics), as mask bits. */
unsigned kx_metric_attention_mask(void);
/* Whether metric k has a value for a map (kernel metrics need a kernel estimator). */
int kx_metric_defined(int k, int kernel_estimator);

/* All metrics of one feature map on one head; kernel metrics are NaN for
 * maps that do not estimate the kernel (wdcf-code). */
int kx_evaluate_map(const kx_head_reference *r, const kx_fmap *f, double metrics[KX_N_METRICS]);

/* A worker's buffers for evaluating maps of up to max_m features on one
 * head: allocated once and reused by every point the worker takes, so a
 * grid touches fresh memory once per worker rather than once per point.
 * NULL with a message when out of memory. */
typedef struct kx_eval_workspace kx_eval_workspace;
kx_eval_workspace *kx_eval_workspace_new(const kx_head_reference *r, size_t max_m);
void kx_eval_workspace_free(kx_eval_workspace *w);

/* Where a worker's time went (its CPU seconds, summed over its points). */
typedef struct {
  double map_build;  /* creating the maps, weight fits included */
  double features;   /* log features of q and k */
  double kernel;     /* estimated log kernel: shift, GEMM, log */
  double attention;  /* estimated attention rows and outputs */
  double metrics;    /* the metrics against the exact side */
} kx_eval_times;

/* kx_evaluate_map with a workspace (made for this head and m <= its max_m)
 * and only the metrics of `mask` (bit k: metric k; 0: all); the others are
 * NaN.  Without an attention metric the attention rows are only checked
 * for a finite logit (the failure kx_evaluate_map reports), not computed.
 * The metrics it computes have the same bits as kx_evaluate_map's.  `times`
 * may be NULL. */
int kx_evaluate_map_work(const kx_head_reference *r, const kx_fmap *f, unsigned mask, kx_eval_workspace *w,
                         kx_eval_times *times, double metrics[KX_N_METRICS]);

/* Same from a precomputed estimated log kernel (n x n). */
int kx_evaluate_log_kernel(const kx_head_reference *r, const double *logK_hat, int kernel_estimator,
                           double metrics[KX_N_METRICS]);

#endif
