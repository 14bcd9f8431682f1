/* Kernel matrices in the log domain: the exact targets and their
 * estimates from log features.  Logs because exp(q.k) of real attention
 * logits spans hundreds of orders of magnitude across a matrix, while the
 * quantities we report (relative errors, attention rows) are ratios. */
#ifndef KX_KERNEL_H
#define KX_KERNEL_H

#include <stddef.h>

typedef enum { KX_KERNEL_SOFTMAX = 0, KX_KERNEL_GAUSS = 1 } kx_kernel;

/* logK (nq x nk) = q_i.k_j (softmax kernel) or -|q_i - k_j|^2/2 (Gaussian). */
int kx_log_kernel_exact(kx_kernel kernel, size_t nq, size_t nk, size_t d, const double *q,
                        const double *k, double *logK);

/* logK_ij = log sum_f exp(lq_if + lk_jf) for log features lq (nq x m) and
 * lk (nk x m).  Uses one GEMM on max-shifted features; an entry whose
 * shifted sum underflows is recomputed exactly by log-sum-exp.  Features
 * may be -inf (zero weights); a row of all -inf gives -inf. */
int kx_log_kernel_estimate(size_t nq, size_t nk, size_t m, const double *lq, const double *lk,
                           double *logK);

#endif
