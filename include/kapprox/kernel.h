/* libkapprox: kernel matrices in the log domain, exact and estimated from
 * log features.  Logs because exp(q.k) of real attention logits spans
 * hundreds of orders of magnitude across a matrix. */
#ifndef KAPPROX_KERNEL_H
#define KAPPROX_KERNEL_H

#include <stddef.h>

#include "status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The softmax kernel exp(q.k) or the Gaussian kernel exp(-|q-k|^2/2). */
typedef enum { KX_KERNEL_SOFTMAX = 0, KX_KERNEL_GAUSS = 1 } kx_kernel;

/* logK (nq x nk) = q_i.k_j (softmax kernel) or -|q_i - k_j|^2/2 (Gaussian). */
KX_API int kx_log_kernel_exact(kx_kernel kernel, size_t nq, size_t nk, size_t d, const double *q,
                               const double *k, double *logK);

/* logK_ij = log sum_f exp(lq_if + lk_jf) for log features lq (nq x m) and
 * lk (nk x m); features may be -inf (zero weights). */
KX_API int kx_log_kernel_estimate(size_t nq, size_t nk, size_t m, const double *lq, const double *lk,
                                  double *logK);

#ifdef __cplusplus
}
#endif

#endif
