/* AdamW (decoupled weight decay, PyTorch's formulation), the learning-rate
 * schedule and global-norm gradient clipping. */
#ifndef KX_DEC_ADAMW_H
#define KX_DEC_ADAMW_H

#include <stddef.h>
#include <stdint.h>

#include "experiments/model/dec_params.h"

typedef struct {
  double beta1, beta2, eps, weight_decay;
  uint64_t t;   /* updates done so far (bias correction uses t after increment) */
  float *m, *v; /* first/second moments, same layout as the parameters */
  size_t n;
} kx_adamw;

int kx_adamw_create(kx_adamw *o, size_t n, double beta1, double beta2, double eps, double weight_decay);
void kx_adamw_free(kx_adamw *o);

/* One update with learning rate lr; weight decay only on tensors with
 * decay = 1 (matrices and embeddings; never biases or LayerNorm):
 *   p <- p (1 - lr wd);  m <- b1 m + (1-b1) g;  v <- b2 v + (1-b2) g^2;
 *   p <- p - lr (m / (1-b1^t)) / (sqrt(v / (1-b2^t)) + eps). */
void kx_adamw_step(kx_adamw *o, const kx_param_table *tab, float *params, const float *grads, double lr);

/* Euclidean norm of all gradients, summed in double in a fixed order
 * (deterministic whatever the thread count). */
double kx_grad_norm(const float *g, size_t n);
/* Multiplies g by max_norm / norm when norm > max_norm; returns the norm
 * before clipping. */
double kx_grad_clip(float *g, size_t n, double max_norm);

/* Linear warm-up over `warmup` steps to lr_max, then cosine decay to
 * lr_min at step `steps`; `step` is 0-based. */
double kx_lr_schedule(uint64_t step, uint64_t steps, uint64_t warmup, double lr_max, double lr_min);

#endif
