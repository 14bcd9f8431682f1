/* Plain Monte Carlo: independent uniform points from GSL's mt19937, the
 * baseline every quasi-random scheme is compared against.  Coordinates come
 * from gsl_rng_uniform_pos, which excludes 0. */
#include <gsl/gsl_rng.h>

#include "core/kx_error.h"
#include "core/kx_rng.h"
#include "samplers/sequence_impl.h"

typedef struct {
  gsl_rng *rng;
} mc_state;

static size_t mc_state_size(size_t dim) {
  (void)dim;
  return sizeof(mc_state);
}

static int mc_init(void *vs, size_t dim, uint64_t seed) {
  (void)dim;
  mc_state *st = vs;
  st->rng = kx_rng_alloc(seed);
  return st->rng ? 0 : KX_ENOMEM;
}

static int mc_next(void *vs, size_t dim, double *x) {
  mc_state *st = vs;
  for (size_t j = 0; j < dim; j++) x[j] = gsl_rng_uniform_pos(st->rng);
  return 0;
}

static void mc_release(void *vs) {
  mc_state *st = vs;
  gsl_rng_free(st->rng);
  st->rng = NULL;
}

const kx_sequence_type kx_sequence_mc = {
    "mc", "pseudo-random (GSL mt19937), never exactly 0",
    (size_t)1 << 24, 1, mc_state_size, mc_init, mc_next, mc_release, NULL};
