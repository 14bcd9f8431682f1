/* PFF (paper Eq. 9) and WPFF (Eq. 10): w_i = r_i v_i with directions v_i
 * from a low-discrepancy (or Monte Carlo) sequence mapped to the sphere and
 * radii r_i = F^-1_chi_d(t_i) from one more coordinate.  With a randomised
 * sequence each w_i is marginally N(0, I), so PFF stays unbiased for every
 * seed while the points of one map cover the sphere more evenly than iid
 * draws.  WPFF adds weights D fitted on calibration pairs (weight_fit.c). */
#include <stdlib.h>

#include "approx/fmap.h"
#include "core/kx_error.h"
#include "core/kx_seed.h"
#include "samplers/transforms.h"

static int pff_init_from(kx_fmap *f, const char *sequence) {
  f->W = kx_malloc(f->m * f->d * sizeof *f->W);
  double *radii = kx_malloc(f->m * sizeof *radii);
  if (!f->W || !radii) {
    free(radii);
    return KX_ENOMEM;
  }
  int rc = kx_sphere_directions(sequence, f->d, f->m, kx_seed_derive(f->seed, 4), f->W, radii,
                                f->opt.radii);
  if (!rc)
    for (size_t i = 0; i < f->m; i++)
      for (size_t j = 0; j < f->d; j++) f->W[i * f->d + j] *= radii[i];
  free(radii);
  return rc;
}

static int pff_sobol_init(kx_fmap *f) { return pff_init_from(f, "sobol-lms"); }
static int pff_halton_init(kx_fmap *f) { return pff_init_from(f, "halton-perm"); }
static int pff_mc_init(kx_fmap *f) { return pff_init_from(f, "mc"); }

/* PFF is unbiased; WPFF, the same map with fitted weights D, is not. */
#define PFF_TYPE(name_, weighted, init_, description_)                                                    \
  {.name = name_, .unbiased = !(weighted), .fitted_weights = (weighted), .kernel_estimator = 1,           \
   .init = init_, .description = description_}

const kx_fmap_type kx_fmap_pff_sobol = PFF_TYPE("pff-sobol", 0, pff_sobol_init,
    "positive fixed features, scrambled Sobol' directions and radii (Eq. 9)");
const kx_fmap_type kx_fmap_pff_halton = PFF_TYPE("pff-halton", 0, pff_halton_init,
    "positive fixed features, scrambled Halton directions and radii (Eq. 9)");
const kx_fmap_type kx_fmap_pff_mc = PFF_TYPE("pff-mc", 0, pff_mc_init,
    "PFF construction with Monte Carlo points (control: same map, no QMC)");
const kx_fmap_type kx_fmap_wpff_sobol = PFF_TYPE("wpff-sobol", 1, pff_sobol_init,
    "weighted PFF (Eq. 10): pff-sobol with NNLS-fitted weights D");
const kx_fmap_type kx_fmap_wpff_halton = PFF_TYPE("wpff-halton", 1, pff_halton_init,
    "weighted PFF (Eq. 10): pff-halton with NNLS-fitted weights D");
