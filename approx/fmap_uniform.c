/* The trivial baseline: phi(x) = 1/sqrt(m) for every input, so every query
 * attends uniformly to the keys it may see.  Not a kernel estimator; it
 * is listed so that every attention-fidelity table shows what "no
 * information at all" scores on the same data (near-uniform attention,
 * as random high-dimensional Q/K give, is easy to approximate). */
#include <math.h>
#include <stddef.h>

#include "approx/fmap.h"

static int uniform_init(kx_fmap *f) {
  f->norm_coef = 0;
  return 0;
}

static int uniform_apply_log(const kx_fmap *f, size_t n, const double *x, double *logphi) {
  (void)x;
  const double value = -0.5 * log((double)f->m); /* log may set errno: GCC will not hoist it */
  for (size_t i = 0; i < n * f->m; i++) logphi[i] = value;
  return 0;
}

const kx_fmap_type kx_fmap_uniform = {
    .name = "uniform",
    .description = "baseline: constant features, uniform attention (not a kernel estimator)",
    .init = uniform_init, .apply_log = uniform_apply_log,
};
