/* Kernel matrices in the log domain: the exact targets and their
 * estimates from log features.  Logs because exp(q.k) of real attention
 * logits spans hundreds of orders of magnitude across a matrix, while the
 * quantities we report (relative errors, attention rows) are ratios. */
#ifndef KX_KERNEL_H
#define KX_KERNEL_H

#include <stddef.h>

/* kx_kernel, kx_log_kernel_exact, kx_log_kernel_estimate: public */
#include "kapprox/kernel.h"
/* kx_log_kernel_estimate in the caller's workspace of
 * kx_log_kernel_work_size(nq, nk, m) doubles, so a grid of many estimates
 * touches its memory once. */
size_t kx_log_kernel_work_size(size_t nq, size_t nk, size_t m);
void kx_log_kernel_estimate_work(size_t nq, size_t nk, size_t m, const double *lq, const double *lk,
                                 double *logK, double *work);

#endif
