/* Synthetic Q/K/V with controlled norms: the default input of the kernel
 * experiments, needing no download.  Directions are uniform on the sphere;
 * norms follow a spec, because the error of every positive feature map
 * grows like exp(|q+k|^2), so the norm is the variable that matters. */
#ifndef KX_SYNTHETIC_H
#define KX_SYNTHETIC_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
  double lo, hi; /* norms uniform on [lo, hi]; lo == hi for a fixed norm */
} kx_norm_spec;

/* "1.5" (every vector has norm 1.5) or "0.5:2" (uniform on [0.5, 2]);
 * messages name the value `what` (e.g. "--norm"). */
int kx_parse_norm_spec(const char *s, const char *what, kx_norm_spec *out);

/* q, k: n x d with norms from spec (q.k is the logit: "scaled" data);
 * v: n x dv standard normal (may be NULL).  Reproducible from seed. */
int kx_synthetic_qkv(size_t n, size_t d, size_t dv, kx_norm_spec spec, uint64_t seed, double *q,
                     double *k, double *v);

#endif
