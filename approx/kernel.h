/* Kernel matrices in the log domain: the exact targets and their
 * estimates from log features.  Logs because exp(q.k) of real attention
 * logits spans hundreds of orders of magnitude across a matrix, while the
 * quantities we report (relative errors, attention rows) are ratios. */
#ifndef KX_KERNEL_H
#define KX_KERNEL_H

#include <stddef.h>

/* kx_kernel, kx_log_kernel_exact, kx_log_kernel_estimate: public */
#include "kapprox/kernel.h"

#endif
