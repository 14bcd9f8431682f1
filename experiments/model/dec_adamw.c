/* No FP traps and no errno from sqrtf: lets GCC vectorise the update. */
#pragma GCC optimize("no-trapping-math", "no-math-errno")

#include "experiments/model/dec_adamw.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/kx_error.h"

int kx_adamw_create(kx_adamw *o, size_t n, double beta1, double beta2, double eps, double weight_decay) {
  memset(o, 0, sizeof *o);
  o->m = kx_calloc(n, sizeof(float));
  o->v = kx_calloc(n, sizeof(float));
  if (!o->m || !o->v) {
    kx_adamw_free(o);
    return KX_ENOMEM;
  }
  o->n = n;
  o->beta1 = beta1;
  o->beta2 = beta2;
  o->eps = eps;
  o->weight_decay = weight_decay;
  return 0;
}

void kx_adamw_free(kx_adamw *o) {
  free(o->m);
  free(o->v);
  o->m = o->v = NULL;
}

void kx_adamw_step(kx_adamw *o, const kx_param_table *tab, float *params, const float *grads, double lr) {
  o->t++;
  float b1 = (float)o->beta1, b2 = (float)o->beta2, eps = (float)o->eps;
  float c1 = (float)(1.0 - pow(o->beta1, (double)o->t)), c2 = (float)(1.0 - pow(o->beta2, (double)o->t));
  float flr = (float)lr;
  /* One parallel region for all tensors (not one per tensor): the small
   * ones would otherwise pay a fork/join each. */
#pragma omp parallel if (tab->total >= 65536)
  for (size_t k = 0; k < tab->n; k++) {
    const kx_tensor_info *t = &tab->t[k];
    if (t->frozen) continue;
    float keep = t->decay ? (float)(1.0 - lr * o->weight_decay) : 1.0f;
    float *restrict p = params + t->offset, *restrict m = o->m + t->offset, *restrict v = o->v + t->offset;
    const float *restrict g = grads + t->offset;
#pragma omp for simd schedule(static) nowait
    for (size_t i = 0; i < t->size; i++) {
      m[i] = b1 * m[i] + (1.0f - b1) * g[i];
      v[i] = b2 * v[i] + (1.0f - b2) * g[i] * g[i];
      float mh = m[i] / c1, vh = v[i] / c2;
      p[i] = p[i] * keep - flr * mh / (sqrtf(vh) + eps);
    }
  }
}

#define NORM_CHUNK 4096

double kx_grad_norm(const float *g, size_t n) {
  size_t chunks = (n + NORM_CHUNK - 1) / NORM_CHUNK;
  double *part = calloc(chunks ? chunks : 1, sizeof *part);
  double total = 0.0;
  if (!part) { /* fall back to a serial sum rather than fail a training step */
    for (size_t i = 0; i < n; i++) total += (double)g[i] * g[i];
    return sqrt(total);
  }
#pragma omp parallel for schedule(static) if (chunks >= 8)
  for (size_t c = 0; c < chunks; c++) {
    size_t lo = c * NORM_CHUNK, hi = lo + NORM_CHUNK < n ? lo + NORM_CHUNK : n;
    double s = 0.0;
    for (size_t i = lo; i < hi; i++) s += (double)g[i] * g[i];
    part[c] = s;
  }
  for (size_t c = 0; c < chunks; c++) total += part[c];
  free(part);
  return sqrt(total);
}

double kx_grad_clip(float *g, size_t n, double max_norm) {
  double norm = kx_grad_norm(g, n);
  if (max_norm > 0 && norm > max_norm) {
    float s = (float)(max_norm / norm);
#pragma omp parallel for schedule(static) if (n >= 32768)
    for (size_t i = 0; i < n; i++) g[i] *= s;
  }
  return norm;
}

double kx_lr_schedule(uint64_t step, uint64_t steps, uint64_t warmup, double lr_max, double lr_min) {
  if (step < warmup) return lr_max * (double)(step + 1) / (double)warmup;
  if (steps <= warmup) return lr_max;
  double progress = (double)(step - warmup) / (double)(steps - warmup);
  if (progress > 1.0) progress = 1.0;
  return lr_min + 0.5 * (lr_max - lr_min) * (1.0 + cos(M_PI * progress));
}
