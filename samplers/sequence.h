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

typedef struct kx_sequence kx_sequence;

typedef struct kx_sequence_type {
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
} kx_sequence_type;

/* NULL-terminated table of every generator. */
extern const kx_sequence_type *const kx_sequence_types[];

const kx_sequence_type *kx_sequence_lookup(const char *name);

/* Returns NULL with a message (unknown name, dim = 0, dim beyond the
 * generator's range, out of memory). */
kx_sequence *kx_sequence_alloc(const char *spec, size_t dim, uint64_t seed);
int kx_sequence_next(kx_sequence *q, double *x);
/* Skips n points (e.g. the origin of an unscrambled sequence). */
int kx_sequence_skip(kx_sequence *q, size_t n);
size_t kx_sequence_dim(const kx_sequence *q);
const kx_sequence_type *kx_sequence_get_type(const kx_sequence *q);
void kx_sequence_free(kx_sequence *q);

/* Writes n points (row-major n x dim) in one call. */
int kx_sequence_fill(kx_sequence *q, size_t n, double *x);

#endif
