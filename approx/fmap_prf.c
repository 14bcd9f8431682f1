/* PRF, the positive random features of Performer (paper Eq. 5):
 * w_i iid N(0, I_d).  Unbiased for exp(q.k) with relative MSE
 * (exp(|q+k|^2) - 1)/m, the baseline every other scheme must beat. */
#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>

#include "approx/fmap.h"
#include "core/kx_error.h"
#include "core/kx_seed.h"

static int prf_init(kx_fmap *f) {
  f->W = kx_malloc(f->m * f->d * sizeof *f->W);
  gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
  if (!f->W || !rng) {
    gsl_rng_free(rng);
    return kx_fail(KX_ENOMEM, "out of memory for the PRF matrix");
  }
  gsl_rng_set(rng, kx_gsl_seed(kx_seed_derive(f->seed, 1)));
  for (size_t i = 0; i < f->m * f->d; i++) f->W[i] = gsl_ran_gaussian_ziggurat(rng, 1.0);
  gsl_rng_free(rng);
  return 0;
}

const kx_fmap_type kx_fmap_prf = {
    .name = "prf",
    .description = "Performer positive random features, w ~ N(0, I) iid",
    .unbiased = 1,
    .fitted_weights = 0,
    .kernel_estimator = 1,
    .init = prf_init,
};
