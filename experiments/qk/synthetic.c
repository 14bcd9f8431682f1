#include "experiments/qk/synthetic.h"

#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/kx_cli.h"
#include "core/kx_error.h"
#include "core/kx_seed.h"

int kx_parse_norm_spec(const char *s, const char *what, kx_norm_spec *out) {
  char buf[128];
  if (!s || strlen(s) >= sizeof buf) return kx_fail(KX_EINVAL, "%s: empty or too long", what);
  strcpy(buf, s);
  char *colon = strchr(buf, ':');
  if (colon) *colon = '\0';
  if (kx_parse_double(buf, what, &out->lo)) return KX_EINVAL;
  out->hi = out->lo;
  if (colon && kx_parse_double(colon + 1, what, &out->hi)) return KX_EINVAL;
  if (out->lo < 0 || out->hi < out->lo)
    return kx_fail(KX_EINVAL, "%s '%s': need 0 <= lo <= hi", what, s);
  if (out->hi > 30)
    return kx_fail(KX_EINVAL, "%s '%s': norms above 30 give logits beyond e^900, which no "
                   "double can hold", what, s);
  return 0;
}

static void fill_vectors(gsl_rng *rng, size_t n, size_t d, kx_norm_spec spec, double *x) {
  for (size_t i = 0; i < n; i++) {
    double *r = x + i * d, s;
    do {
      s = 0;
      for (size_t j = 0; j < d; j++) {
        r[j] = gsl_ran_gaussian_ziggurat(rng, 1.0);
        s += r[j] * r[j];
      }
    } while (s == 0);
    double norm = spec.lo + (spec.hi - spec.lo) * gsl_rng_uniform(rng);
    double scale = norm / sqrt(s);
    for (size_t j = 0; j < d; j++) r[j] *= scale;
  }
}

int kx_synthetic_qkv(size_t n, size_t d, size_t dv, kx_norm_spec spec, uint64_t seed, double *q,
                     double *k, double *v) {
  if (n == 0 || d == 0) return kx_fail(KX_EINVAL, "synthetic data needs tokens >= 1 and d >= 1");
  gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
  if (!rng) return KX_ENOMEM;
  /* separate streams so asking for v (or not) never changes q and k */
  gsl_rng_set(rng, kx_gsl_seed(kx_seed_derive(seed, 101)));
  fill_vectors(rng, n, d, spec, q);
  gsl_rng_set(rng, kx_gsl_seed(kx_seed_derive(seed, 102)));
  fill_vectors(rng, n, d, spec, k);
  if (v) {
    gsl_rng_set(rng, kx_gsl_seed(kx_seed_derive(seed, 103)));
    for (size_t i = 0; i < n * dv; i++) v[i] = gsl_ran_gaussian_ziggurat(rng, 1.0);
  }
  gsl_rng_free(rng);
  return 0;
}
