/* From uniform points to the random objects the feature maps need:
 * directions on the sphere (Gaussian transform of a sequence), chi radii,
 * Haar-distributed orthogonal blocks. */
#include "samplers/transforms.h"

#include <gsl/gsl_errno.h>
#include <gsl/gsl_linalg.h>
#include <gsl/gsl_matrix.h>
#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/kx_error.h"
#include "core/kx_rng.h"
#include "core/kx_seed.h"

/* Sub-streams of the user seed (see core/kx_seed.h). */
enum {
  STREAM_DIRECTION_POINTS = 0x7101,
  STREAM_RADII_ORDER = 0x7102,
  STREAM_ORTHOGONAL = 0x7103
};

/* A point whose Gaussian image is (numerically) the zero vector has no
 * direction: the unscrambled Sobol' point (1/2, ..., 1/2) maps to g = 0.
 * Such points are skipped; this many in a row means the sequence is broken. */
#define MAX_DEGENERATE_IN_A_ROW 1000

int kx_sphere_directions(const char *spec, size_t d, size_t m, uint64_t seed,
                         double *dirs, double *radii, const char *radii_mode) {
  if (d == 0) return kx_fail(KX_EINVAL, "sphere directions: dimension d must be at least 1");
  if (m == 0) return kx_fail(KX_EINVAL, "sphere directions: number of directions m must be at least 1");
  int radii_from_sequence = 0;
  if (radii) {
    if (!radii_mode || !strcmp(radii_mode, "sequence")) radii_from_sequence = 1;
    else if (strcmp(radii_mode, "stratified") != 0)
      return kx_fail(KX_EINVAL, "radii mode '%s' is neither 'sequence' nor 'stratified'", radii_mode);
  }
  size_t s = d + (size_t)radii_from_sequence;
  if (s < d) return kx_fail(KX_ERANGE, "sphere directions: dimension %zu too large", d);

  kx_sequence *q = kx_sequence_alloc(spec, s, kx_seed_derive(seed, STREAM_DIRECTION_POINTS));
  if (!q) return kx_fail_context(KX_EINVAL, "sphere directions: ");
  double *u = kx_malloc(s * sizeof *u);
  if (!u) {
    kx_sequence_free(q);
    return KX_ENOMEM;
  }
  int rc = 0;
  /* Most unscrambled sequences start at the origin, which would put every
   * coordinate at the clamped tail of Phi^-1: drop the first point if it is
   * the origin (GSL's Sobol' and Halton already start past it, and their
   * first point is kept). */
  int pending = 0;
  if (!kx_sequence_get_type(q)->randomised) {
    rc = kx_sequence_next(q, u);
    for (size_t k = 0; k < s && !rc; k++)
      if (u[k] != 0) pending = 1;
  }
  for (size_t i = 0; i < m && !rc; i++) {
    double *v = dirs + i * d;
    double norm2 = 0;
    for (size_t tries = 0;; tries++) {
      if (tries == MAX_DEGENERATE_IN_A_ROW) {
        rc = kx_fail(KX_ENUM, "sequence '%s' gave %d points in a row with no direction", spec,
                     MAX_DEGENERATE_IN_A_ROW);
        break;
      }
      if (pending) pending = 0; /* the first point, drawn above */
      else if ((rc = kx_sequence_next(q, u))) break;
      norm2 = 0;
      for (size_t k = 0; k < d; k++) {
        v[k] = kx_normal_inv(u[k]);
        norm2 += v[k] * v[k];
      }
      if (norm2 > 1e-200) break;
    }
    if (rc) break;
    double inv = 1.0 / sqrt(norm2);
    for (size_t k = 0; k < d; k++) v[k] *= inv;
    if (radii_from_sequence) radii[i] = kx_chi_inv(u[d], (double)d);
  }
  free(u);
  kx_sequence_free(q);
  if (rc) return rc;

  if (radii && !radii_from_sequence) {
    /* stratified radii: the quantiles (i + 1/2)/m in a random order, so the
     * radius assigned to a direction carries no information about it */
    gsl_rng *r = kx_rng_alloc(kx_seed_derive(seed, STREAM_RADII_ORDER));
    if (!r) return KX_ENOMEM;
    for (size_t i = 0; i < m; i++) radii[i] = ((double)i + 0.5) / (double)m;
    gsl_ran_shuffle(r, radii, m, sizeof *radii);
    gsl_rng_free(r);
    for (size_t i = 0; i < m; i++) radii[i] = kx_chi_inv(radii[i], (double)d);
  }
  if (!kx_all_finite(dirs, m * d, "sphere directions")) return KX_ENUM;
  if (radii && !kx_all_finite(radii, m, "chi radii")) return KX_ENUM;
  return 0;
}

int kx_orthogonal_blocks(size_t d, size_t m, uint64_t seed, double *rows) {
  if (d == 0 || m == 0) return kx_fail(KX_EINVAL, "orthogonal blocks: need d >= 1 and m >= 1, got d = %zu, m = %zu", d, m);
  gsl_rng *r = kx_rng_alloc(kx_seed_derive(seed, STREAM_ORTHOGONAL));
  gsl_matrix *a = gsl_matrix_alloc(d, d), *qm = gsl_matrix_alloc(d, d), *rm = gsl_matrix_alloc(d, d);
  gsl_vector *tau = gsl_vector_alloc(d);
  int rc = 0;
  if (!r || !a || !qm || !rm || !tau) rc = kx_fail(KX_ENOMEM, "orthogonal blocks: out of memory for d = %zu", d);
  for (size_t start = 0; start < m && !rc; start += d) {
    for (size_t i = 0; i < d; i++)
      for (size_t j = 0; j < d; j++) gsl_matrix_set(a, i, j, gsl_ran_gaussian(r, 1.0));
    int status = gsl_linalg_QR_decomp(a, tau);
    if (!status) status = gsl_linalg_QR_unpack(a, tau, qm, rm);
    if (status) {
      rc = kx_fail(KX_ENUM, "orthogonal blocks: QR failed: %s", gsl_strerror(status));
      break;
    }
    /* Householder QR fixes Q only up to column signs; multiplying column j
     * by sign(R_jj) makes A = QR unique with R_jj > 0, and then Q of a
     * Gaussian A is Haar distributed (Mezzadri 2007). */
    for (size_t j = 0; j < d; j++)
      if (gsl_matrix_get(rm, j, j) < 0) {
        gsl_vector_view col = gsl_matrix_column(qm, j);
        gsl_vector_scale(&col.vector, -1.0);
      }
    size_t take = m - start < d ? m - start : d;
    for (size_t i = 0; i < take; i++)
      for (size_t j = 0; j < d; j++) rows[(start + i) * d + j] = gsl_matrix_get(qm, i, j);
  }
  gsl_vector_free(tau);
  gsl_matrix_free(rm);
  gsl_matrix_free(qm);
  gsl_matrix_free(a);
  gsl_rng_free(r);
  return rc;
}
