/* ORF, FAVOR+'s orthogonal random features: blocks of d orthonormal rows
 * (QR of a Gaussian matrix), each row scaled by an independent chi_d
 * radius so every row is marginally N(0, I) (unbiased) while rows of a
 * block are exactly orthogonal (lower variance than PRF). */
#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>
#include <math.h>

#include "approx/fmap.h"
#include "core/kx_error.h"
#include "core/kx_rng.h"
#include "core/kx_seed.h"
#include "samplers/transforms.h"

static int orf_init(kx_fmap *f) {
  f->W = kx_malloc(f->m * f->d * sizeof *f->W);
  if (!f->W) return KX_ENOMEM;
  int rc = kx_orthogonal_blocks(f->d, f->m, kx_seed_derive(f->seed, 2), f->W);
  if (rc) return rc;
  gsl_rng *rng = kx_rng_alloc(kx_seed_derive(f->seed, 3));
  if (!rng) return KX_ENOMEM;
  for (size_t i = 0; i < f->m; i++) {
    double r = sqrt(gsl_ran_chisq(rng, (double)f->d));
    for (size_t j = 0; j < f->d; j++) f->W[i * f->d + j] *= r;
  }
  gsl_rng_free(rng);
  return 0;
}

const kx_fmap_type kx_fmap_orf = {
    .name = "orf",
    .description = "FAVOR+ orthogonal random features (orthonormal blocks, chi_d radii)",
    .unbiased = 1, .kernel_estimator = 1, .init = orf_init,
};
