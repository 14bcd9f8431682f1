/* From uniform points to the random objects the feature maps need:
 * directions on S^{d-1}, chi_d radii, orthogonal blocks. */
#ifndef KX_TRANSFORMS_H
#define KX_TRANSFORMS_H

#include <stddef.h>
#include <stdint.h>

#include "samplers/sequence.h"

/* Maps u to the open interval (0,1) so no inverse CDF ever sees exactly 0
 * or 1: values at or beyond the ends move to 2^-60 / 1 - 2^-53. */
double kx_open_unit(double u);

/* Standard normal inverse CDF, accurate in both tails. */
double kx_normal_inv(double u);

/* Inverse CDF of the chi distribution with d degrees of freedom:
 * sqrt(gsl_cdf_chisq_Pinv(t, d)) for t <= 1/2, sqrt(Qinv(1 - t, d)) above. */
double kx_chi_inv(double t, double d);

/* kx_sphere_directions (directions and chi radii) is public: kapprox/sequence.h */

/* m x d matrix of blocks of d orthonormal rows (QR of a Gaussian matrix;
 * last block truncated), drawn from `seed`.  Rows have unit norm. */
int kx_orthogonal_blocks(size_t d, size_t m, uint64_t seed, double *rows);

#endif
