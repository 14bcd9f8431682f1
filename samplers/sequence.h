/* Point sequences in [0,1)^s behind one small interface, in the manner of
 * gsl_qrng: a type table entry per generator (name, maximum dimension,
 * init/next/free), allocated for (type, dimension, seed), then drawn from.
 *
 * Names accepted by kx_sequence_alloc (`spec`):
 *   "mc"            pseudo-random, GSL mt19937 seeded from `seed`
 *   "sobol"         Sobol', Joe–Kuo new-joe-kuo-6.21201 directions, s <= 21201
 *   "sobol-shift"   Sobol' + random digital shift
 *   "sobol-lms"     Sobol' + random linear matrix scramble + digital shift
 *   "halton"        Halton (radical inverse in the first s primes)
 *   "halton-perm"   Halton with independent random digit permutations
 *   "gsl-sobol", "gsl-niederreiter", "gsl-halton", "gsl-reversehalton"
 *                   GSL's generators, refused beyond their real limits
 *                   (40, 12, 1229, 1229)
 * Unscrambled sequences are deterministic (seed ignored); the native ones
 * and gsl-niederreiter start with the origin (GSL's Sobol' and Halton start
 * past it).  Scrambled ones are uniform on (0,1)^s marginally for every seed
 * and never exactly 0. */
#ifndef KX_SEQUENCE_H
#define KX_SEQUENCE_H

#include <stddef.h>
#include <stdint.h>

/* the public half: the opaque types, the table, alloc/next/fill/skip/free */
#include "kapprox/sequence.h"

struct kx_sequence_type {
  const char *name;
  const char *description;
  size_t max_dim;       /* largest supported s */
  int randomised;       /* 1 if the seed changes the points */
  size_t (*state_size)(size_t dim);
  int (*init)(void *state, size_t dim, uint64_t seed);
  /* Writes the next point (dim coordinates in [0,1)) into x. */
  int (*next)(void *state, size_t dim, double *x);
  void (*release)(void *state); /* frees what init allocated inside state; may be NULL */
  /* Optional: moves past n points without drawing them (NULL: draw and
   * discard).  Sobol' and Halton jump directly to the index. */
  int (*skip)(void *state, size_t dim, uint64_t n);
};

#endif
