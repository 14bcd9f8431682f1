/* libkapprox: point sequences in [0,1)^s behind one interface, in the manner
 * of gsl_qrng: a table of generator types, allocated for (name, dimension,
 * seed), then drawn from.
 *
 *   kx_sequence *q = kx_sequence_alloc("sobol-lms", s, seed);
 *   kx_sequence_fill(q, n, x);      // n x s, row-major
 *   kx_sequence_free(q);
 *
 * Names: "mc" (GSL mt19937), "sobol" (Joe-Kuo new-joe-kuo-6.21201 directions,
 * s <= 21201), "sobol-shift" (random digital shift), "sobol-lms" (random
 * linear matrix scramble + digital shift), "halton", "halton-perm" (random
 * digit permutations), "gsl-sobol", "gsl-niederreiter", "gsl-halton",
 * "gsl-reversehalton".  Unscrambled sequences ignore the seed; the native
 * ones and gsl-niederreiter start with the origin. */
#ifndef KAPPROX_SEQUENCE_H
#define KAPPROX_SEQUENCE_H

#include <stddef.h>
#include <stdint.h>

#include "status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct kx_sequence kx_sequence;
typedef struct kx_sequence_type kx_sequence_type;

/* NULL-terminated table of every generator type. */
KX_API extern const kx_sequence_type *const kx_sequence_types[];
/* The type of that name, or NULL. */
KX_API const kx_sequence_type *kx_sequence_lookup(const char *name);
KX_API const char *kx_sequence_type_name(const kx_sequence_type *t);
KX_API const char *kx_sequence_type_description(const kx_sequence_type *t);
/* The largest dimension s the generator supports. */
KX_API size_t kx_sequence_type_max_dim(const kx_sequence_type *t);
/* 1 if the seed changes the points. */
KX_API int kx_sequence_type_randomised(const kx_sequence_type *t);

/* NULL with a message for an unknown name, dim = 0, a dimension beyond the
 * generator's range, or no memory. */
KX_API kx_sequence *kx_sequence_alloc(const char *name, size_t dim, uint64_t seed);
/* The next point: dim coordinates in [0,1) into x. */
KX_API int kx_sequence_next(kx_sequence *q, double *x);
/* n points, row-major n x dim, into x. */
KX_API int kx_sequence_fill(kx_sequence *q, size_t n, double *x);
/* Moves past n points without returning them. */
KX_API int kx_sequence_skip(kx_sequence *q, size_t n);
KX_API size_t kx_sequence_dim(const kx_sequence *q);
KX_API const kx_sequence_type *kx_sequence_get_type(const kx_sequence *q);
KX_API void kx_sequence_free(kx_sequence *q);

/* m unit directions (rows of the m x d array dirs) g/|g|, g = Phi^-1(u),
 * and, if radii != NULL, m radii r_i = F^-1_chi_d(u_{d+1}) (inverse-CDF
 * radii of the chi distribution with d degrees of freedom), from m points
 * of a (d+1)-dimensional sequence `name` (d-dimensional when radii ==
 * NULL).  Unscrambled sequences skip their first point if it is the origin
 * and any point whose Gaussian image is 0.  radii_mode NULL or "sequence"
 * uses the extra coordinate; "stratified" uses t_i = (i + 1/2)/m in a
 * random order drawn from `seed`. */
KX_API int kx_sphere_directions(const char *name, size_t d, size_t m, uint64_t seed, double *dirs,
                                double *radii, const char *radii_mode);

#ifdef __cplusplus
}
#endif

#endif
