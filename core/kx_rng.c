#include "core/kx_rng.h"

#include "core/kx_error.h"
#include "core/kx_seed.h"

gsl_rng *kx_rng_alloc(uint64_t seed) {
  gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
  if (!r) {
    kx_fail(KX_ENOMEM, "out of memory allocating the mt19937 generator");
    return NULL;
  }
  gsl_rng_set(r, kx_gsl_seed(seed));
  return r;
}
