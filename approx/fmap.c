/* The feature-map registry and the parts every map shares: validation,
 * the dense W x path, the -c(x) and weight terms, and fitted weights. */
#include "approx/fmap.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "approx/weight_fit.h"
#include "core/kx_error.h"

extern const kx_fmap_type kx_fmap_prf, kx_fmap_orf, kx_fmap_pff_mc, kx_fmap_pff_sobol,
    kx_fmap_pff_halton, kx_fmap_wpff_sobol, kx_fmap_wpff_halton;
extern const kx_fmap_type kx_fmap_wdcf, kx_fmap_wdcf_norm, kx_fmap_dcf, kx_fmap_dcf_signed,
    kx_fmap_wdcf_code;
extern const kx_fmap_type kx_fmap_uniform;

/* Order matters only for display: baselines first, then the paper's maps. */
const kx_fmap_type *const kx_fmap_types[] = {
    &kx_fmap_prf,
    &kx_fmap_orf,
    &kx_fmap_pff_mc,
    &kx_fmap_pff_sobol,
    &kx_fmap_pff_halton,
    &kx_fmap_wpff_sobol,
    &kx_fmap_wpff_halton,
    &kx_fmap_dcf,
    &kx_fmap_dcf_signed,
    &kx_fmap_wdcf,
    &kx_fmap_wdcf_norm,
    &kx_fmap_wdcf_code,
    &kx_fmap_uniform,
    NULL,
};

const kx_fmap_type *kx_fmap_lookup(const char *name) {
  for (size_t i = 0; kx_fmap_types[i]; i++)
    if (!strcmp(kx_fmap_types[i]->name, name)) return kx_fmap_types[i];
  return NULL;
}

const char *kx_fmap_names(void) {
  static char names[512];
  if (!names[0]) {
    size_t used = 0;
    for (size_t i = 0; kx_fmap_types[i] && used + 32 < sizeof names; i++)
      used += (size_t)snprintf(names + used, sizeof names - used, "%s%s", i ? "," : "",
                               kx_fmap_types[i]->name);
  }
  return names;
}

void kx_fmap_default_options(kx_fmap_options *opt) {
  memset(opt, 0, sizeof *opt);
  opt->kernel = KX_KERNEL_SOFTMAX;
  opt->radii = "sequence";
  opt->ridge = -1;
}

int kx_parse_kernel(const char *name, kx_kernel *out) {
  if (!strcmp(name, "softmax")) *out = KX_KERNEL_SOFTMAX;
  else if (!strcmp(name, "gauss")) *out = KX_KERNEL_GAUSS;
  else return kx_fail(KX_EINVAL, "--kernel must be softmax or gauss, got '%s'", name);
  return 0;
}

/* Feature maps hold m x d doubles; refuse sizes that cannot be meant. */
#define KX_FMAP_MAX_ELEMENTS ((size_t)1 << 31)

kx_fmap *kx_fmap_create(const char *scheme, size_t d, size_t m, uint64_t seed,
                        const kx_fmap_options *opt) {
  int status;
  return kx_fmap_create_status(scheme, d, m, seed, opt, &status);
}

kx_fmap *kx_fmap_create_status(const char *scheme, size_t d, size_t m, uint64_t seed,
                               const kx_fmap_options *opt, int *status) {
  *status = KX_EINVAL;
  const kx_fmap_type *type = scheme ? kx_fmap_lookup(scheme) : NULL;
  if (!type) {
    kx_fail(KX_EINVAL, "unknown feature-map scheme '%s' (known: %s)", scheme ? scheme : "(null)",
            kx_fmap_names());
    return NULL;
  }
  if (d == 0) {
    kx_fail(KX_EINVAL, "%s: the input dimension d must be at least 1", scheme);
    return NULL;
  }
  if (m == 0) {
    kx_fail(KX_EINVAL, "%s: the number of features m must be at least 1", scheme);
    return NULL;
  }
  if (m > KX_FMAP_MAX_ELEMENTS / d) {
    *status = kx_fail(KX_ERANGE, "%s: m x d = %zu x %zu is beyond the supported size", scheme, m, d);
    return NULL;
  }
  kx_fmap_options o;
  if (opt) o = *opt;
  else kx_fmap_default_options(&o);
  if (o.kernel != KX_KERNEL_SOFTMAX && o.kernel != KX_KERNEL_GAUSS) {
    kx_fail(KX_EINVAL, "%s: unknown kernel code %d", scheme, (int)o.kernel);
    return NULL;
  }
  if (!o.radii) o.radii = "sequence";
  if (strcmp(o.radii, "sequence") && strcmp(o.radii, "stratified")) {
    kx_fail(KX_EINVAL, "%s: radii must be 'sequence' or 'stratified', got '%s'", scheme, o.radii);
    return NULL;
  }
  if (o.ridge < 0) o.ridge = 1e-3;
  if (type->fitted_weights && (!o.calib_q || !o.calib_k || !o.n_calib_q || !o.n_calib_k)) {
    kx_fail(KX_EINVAL, "%s fits its weights D on calibration (q, k) pairs, but none were given", scheme);
    return NULL;
  }
  *status = KX_ENOMEM;
  kx_fmap *f = kx_calloc(1, sizeof *f);
  if (!f) return NULL;
  f->type = type;
  f->d = d;
  f->m = m;
  f->seed = seed;
  f->opt = o;
  f->norm_coef = o.kernel == KX_KERNEL_GAUSS ? 1.0 : 0.5;
  f->log_weight = kx_malloc(m * sizeof *f->log_weight);
  if (!f->log_weight) {
    free(f);
    return NULL;
  }
  for (size_t i = 0; i < m; i++) f->log_weight[i] = -0.5 * log((double)m);
  int rc = type->init(f);
  if (!rc && type->fitted_weights) rc = kx_fit_weights(f);
  /* The calibration data belongs to the caller; never keep a dangling pointer. */
  f->opt.calib_q = f->opt.calib_k = NULL;
  f->opt.n_calib_q = f->opt.n_calib_k = 0;
  if (rc) {
    *status = kx_fail_context(rc, "%s (d=%zu, m=%zu, seed=%llu): ", scheme, d, m, (unsigned long long)seed);
    kx_fmap_free(f);
    return NULL;
  }
  *status = 0;
  return f;
}

void kx_fmap_finish_log(const kx_fmap *f, size_t n, const double *x, double *logphi) {
  for (size_t r = 0; r < n; r++) {
    const double *xr = x + r * f->d;
    double c = 0;
    if (f->norm_coef != 0) {
      for (size_t j = 0; j < f->d; j++) c += xr[j] * xr[j];
      c *= f->norm_coef;
    }
    double *row = logphi + r * f->m;
    for (size_t i = 0; i < f->m; i++) row[i] += f->log_weight[i] - c;
  }
}

int kx_fmap_apply_log(const kx_fmap *f, size_t n, const double *x, double *logphi) {
  if (n == 0) return 0;
  if (!kx_all_finite(x, n * f->d, "feature-map input")) return KX_EINVAL;
  if (f->type->apply_log) return f->type->apply_log(f, n, x, logphi);
  cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, (int)f->m, (int)f->d, 1.0, x,
              (int)f->d, f->W, (int)f->d, 0.0, logphi, (int)f->m);
  kx_fmap_finish_log(f, n, x, logphi);
  return 0;
}

int kx_fmap_apply(const kx_fmap *f, size_t n, const double *x, double *phi) {
  int rc = kx_fmap_apply_log(f, n, x, phi);
  if (rc) return rc;
  for (size_t i = 0; i < n * f->m; i++) phi[i] = exp(phi[i]);
  return 0;
}

void kx_fmap_free(kx_fmap *f) {
  if (!f) return;
  if (f->type && f->type->release) f->type->release(f);
  free(f->W);
  free(f->log_weight);
  free(f);
}
