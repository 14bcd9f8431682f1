/* PRF, the positive random features of Performer (paper Eq. 5):
 * w_i iid N(0, I_d).  Unbiased for exp(q.k) with relative MSE
 * (exp(|q+k|^2) - 1)/m, the baseline every other scheme must beat. */
#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>

#include "approx/fmap.h"
#include "core/kx_error.h"
#include "core/kx_rng.h"
#include "core/kx_seed.h"

static int prf_init(kx_fmap *f) {
  f->W = kx_malloc(f->m * f->d * sizeof *f->W);
  if (!f->W) return KX_ENOMEM;
  gsl_rng *rng = kx_rng_alloc(kx_seed_derive(f->seed, 1));
  if (!rng) return KX_ENOMEM;
  for (size_t i = 0; i < f->m * f->d; i++) f->W[i] = gsl_ran_gaussian_ziggurat(rng, 1.0);
  gsl_rng_free(rng);
  return 0;
}

const kx_fmap_type kx_fmap_prf = {
    .name = "prf",
    .description = "Performer positive random features, w ~ N(0, I) iid",
    .unbiased = 1, .kernel_estimator = 1, .init = prf_init,
};
