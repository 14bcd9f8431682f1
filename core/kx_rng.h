/* The toolkit's random generator: GSL's mt19937, seeded from a 64-bit seed
 * through kx_gsl_seed (core/kx_seed.h), so every stream of draws is a pure
 * function of the seed its caller derived. */
#ifndef KX_RNG_H
#define KX_RNG_H

#include <gsl/gsl_rng.h>
#include <stdint.h>

/* NULL with a message when out of memory.  Free with gsl_rng_free. */
gsl_rng *kx_rng_alloc(uint64_t seed);

#endif
