/* How far a feature map's kernel and attention are from the exact ones,
 * for one head.  The exact side (kernel matrix, attention weights, AV) is
 * computed once per head and reused for every (scheme, m, seed). */
#ifndef KX_METRICS_H
#define KX_METRICS_H

#include <stddef.h>

#include "approx/fmap.h"

typedef enum {
  KX_METRIC_KERNEL_REL_FRO, /* |K^ - K|_F / |K|_F over all pairs */
  KX_METRIC_KERNEL_REL_MSE, /* mean over pairs of (K^_ij / K_ij - 1)^2 */
  KX_METRIC_ATTN_KL,        /* mean over rows of KL(a_i || a^_i) */
  KX_METRIC_ATTN_TV,        /* mean over rows of total variation 1/2 |a_i - a^_i|_1 */
  KX_METRIC_ATTN_MAX_ABS,   /* max over entries |a_ij - a^_ij| */
  KX_METRIC_OUT_REL_ERR,    /* |AV - A^V|_F / |AV|_F */
  KX_N_METRICS
} kx_metric;

extern const char *const kx_metric_names[KX_N_METRICS];
/* Index of a metric name, or -1. */
int kx_metric_lookup(const char *name);
/* Whether metric k has a value for a map (kernel metrics need a kernel estimator). */
int kx_metric_defined(int k, int kernel_estimator);

typedef struct {
  size_t n, d, dv;
  int causal;
  kx_kernel kernel;
  const double *q, *k, *v; /* borrowed: n x d, n x d, n x dv */
  double *logK;            /* n x n exact log kernel */
  double *logA;            /* n x n exact log attention weights (-inf where masked) */
  double *AV;              /* n x dv exact outputs */
  double q_norm, k_norm;   /* mean Euclidean norms, reported with every result */
} kx_head_reference;

int kx_head_reference_init(kx_head_reference *r, size_t n, size_t d, size_t dv, const double *q,
                           const double *k, const double *v, int causal, kx_kernel kernel);
void kx_head_reference_free(kx_head_reference *r);

/* All metrics of one feature map on one head; kernel metrics are NaN for
 * maps that do not estimate the kernel (wdcf-code). */
int kx_evaluate_map(const kx_head_reference *r, const kx_fmap *f, double metrics[KX_N_METRICS]);

/* Same from precomputed estimated log kernel (n x n); consumed (overwritten). */
int kx_evaluate_log_kernel(const kx_head_reference *r, double *logK_hat, int kernel_estimator,
                           double metrics[KX_N_METRICS]);

#endif
