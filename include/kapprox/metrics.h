/* libkapprox: how far a feature map's kernel and attention are from the
 * exact ones on one head (the values `kapprox kernel-error`,
 * `attn-fidelity` and `compare` write). */
#ifndef KAPPROX_METRICS_H
#define KAPPROX_METRICS_H

#include <stddef.h>

#include "fmap.h"
#include "status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
  KX_METRIC_KERNEL_REL_FRO, /* |K^ - K|_F / |K|_F over all pairs */
  KX_METRIC_KERNEL_REL_MSE, /* mean over pairs of (K^_ij / K_ij - 1)^2 */
  KX_METRIC_ATTN_KL,        /* mean over rows of KL(a_i || a^_i) */
  KX_METRIC_ATTN_TV,        /* mean over rows of total variation 1/2 |a_i - a^_i|_1 */
  KX_METRIC_ATTN_MAX_ABS,   /* max over entries |a_ij - a^_ij| */
  KX_METRIC_OUT_REL_ERR,    /* |AV - A^V|_F / |AV|_F */
  KX_N_METRICS
} kx_metric;

/* The metric's name as in the commands' CSV ("kernel_rel_fro", ...), or NULL. */
KX_API const char *kx_metric_name(int metric);
/* Index of a metric name, or -1. */
KX_API int kx_metric_lookup(const char *name);

/* Every metric of map f on one head: q, k (n x d, d the map's input
 * dimension), v (n x dv), the map's kernel; exact and estimated kernel,
 * attention weights and outputs compared.  Kernel metrics are NaN for a map
 * that does not estimate the kernel.  Memory O(n^2). */
KX_API int kx_fmap_metrics(const kx_fmap *f, size_t n, size_t dv, const double *q, const double *k,
                           const double *v, int causal, double metrics[KX_N_METRICS]);

#ifdef __cplusplus
}
#endif

#endif
