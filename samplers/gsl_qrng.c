/* GSL's own quasi-random generators behind the kx_sequence interface, for
 * comparison with the native ones.  gsl_qrng_alloc does not check the
 * dimension against the size of its tables (it reads past them), so the
 * limits below are enforced by kx_sequence_alloc through max_dim:
 * sobol 40, niederreiter_2 12, halton and reversehalton 1229. */
#include <gsl/gsl_errno.h>
#include <gsl/gsl_qrng.h>

#include "core/kx_error.h"
#include "samplers/sequence_impl.h"

typedef struct {
  gsl_qrng *q;
} gslq_state;

static size_t gslq_state_size(size_t dim) {
  (void)dim;
  return sizeof(gslq_state);
}

static int gslq_init(gslq_state *st, const gsl_qrng_type *type, size_t dim) {
  st->q = gsl_qrng_alloc(type, (unsigned int)dim);
  if (!st->q) return kx_fail(KX_ENOMEM, "gsl_qrng_alloc(%s, %zu) failed", type->name, dim);
  return 0;
}

static int gslq_next(void *vs, size_t dim, double *x) {
  (void)dim;
  gslq_state *st = vs;
  int status = gsl_qrng_get(st->q, x);
  if (status) return kx_fail(KX_ERANGE, "gsl_qrng_get(%s): %s", gsl_qrng_name(st->q), gsl_strerror(status));
  return 0;
}

static void gslq_release(void *vs) {
  gslq_state *st = vs;
  gsl_qrng_free(st->q);
  st->q = NULL;
}

/* One generator: its init (GSL's type; the seed is unused, none of them is
 * randomised) and its type entry. */
#define GSL_QRNG_TYPE(ident, name, max_dim, gsl_type, description)                                      \
  static int ident##_init(void *st, size_t dim, uint64_t seed) {                                        \
    (void)seed;                                                                                         \
    return gslq_init(st, gsl_type, dim);                                                                \
  }                                                                                                     \
  const kx_sequence_type ident = {name,      description,  max_dim, 0, gslq_state_size, ident##_init,   \
                                  gslq_next, gslq_release, NULL}

GSL_QRNG_TYPE(kx_sequence_gsl_sobol, "gsl-sobol", 40, gsl_qrng_sobol, "GSL's Sobol' (gsl_qrng_sobol)");
GSL_QRNG_TYPE(kx_sequence_gsl_niederreiter, "gsl-niederreiter", 12, gsl_qrng_niederreiter_2,
              "GSL's base-2 Niederreiter (gsl_qrng_niederreiter_2)");
GSL_QRNG_TYPE(kx_sequence_gsl_halton, "gsl-halton", 1229, gsl_qrng_halton, "GSL's Halton (gsl_qrng_halton)");
GSL_QRNG_TYPE(kx_sequence_gsl_reversehalton, "gsl-reversehalton", 1229, gsl_qrng_reversehalton,
              "GSL's reverse-permuted Halton (gsl_qrng_reversehalton)");
