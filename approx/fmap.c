/* The feature-map registry and the parts every map shares: validation,
 * the dense W x path, the -c(x) and weight terms, and fitted weights. */
#include "approx/fmap.h"

#include <cblas.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "approx/project.h"
#include "approx/vexp.h"
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

int kx_parse_kernel(const char *name, const char *what, kx_kernel *out) {
  if (!strcmp(name, "softmax")) *out = KX_KERNEL_SOFTMAX;
  else if (!strcmp(name, "gauss")) *out = KX_KERNEL_GAUSS;
  else return kx_fail(KX_EINVAL, "%s must be softmax or gauss, got '%s'", what, name);
  return 0;
}

/* Feature maps hold m x d doubles; refuse sizes that cannot be meant. */
#define KX_FMAP_MAX_ELEMENTS ((size_t)1 << 31)

/* Fits D on the calibration pairs: the fit gets the map's features of the
 * calibration rows, computed while log_weight is still the unweighted
 * -log(m)/2, and writes the weights back. */
static int fit_weights(kx_fmap *f) {
  const kx_fmap_options *o = &f->opt;
  double *lq = kx_malloc(o->n_calib_q * f->m * sizeof *lq), *lk = kx_malloc(o->n_calib_k * f->m * sizeof *lk);
  int rc = lq && lk ? 0 : KX_ENOMEM;
  if (!rc) rc = kx_fmap_apply_log(f, o->n_calib_q, o->calib_q, lq);
  if (!rc) rc = kx_fmap_apply_log(f, o->n_calib_k, o->calib_k, lk);
  kx_weight_fit fit = {.m = f->m, .d = f->d, .kernel = o->kernel, .q = o->calib_q, .k = o->calib_k,
                       .nq = o->n_calib_q, .nk = o->n_calib_k, .log_phi_q = lq, .log_phi_k = lk,
                       .n_pairs = o->n_calib_pairs, .all_pairs = o->calib_all_pairs, .ridge = o->ridge,
                       .seed = f->seed};
  if (!rc) rc = kx_fit_weights(&fit, f->log_weight);
  free(lq);
  free(lk);
  return rc;
}

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
  if (!rc && f->W) {
    f->Wt = aligned_alloc(64, d * kx_project_width(m) * sizeof *f->Wt);
    if (f->Wt) kx_project_transpose(m, d, f->W, f->Wt);
    else rc = kx_fail(KX_ENOMEM, "out of memory for the transposed feature matrix");
  }
  if (!rc && type->fitted_weights) rc = fit_weights(f);
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

/* Rows per block: the linear part, the -c(x) and weight terms and (for
 * kx_fmap_apply) the exponentials run block by block, so each block of
 * W x is finished while it is still in cache.  Every block has this many
 * rows (the last is padded), so a row's features are computed by the same
 * calls whatever the batch size: results do not depend on n or on the
 * number of threads. */
#define KX_FMAP_BLOCK 64

/* Dense form of one block of rows <= KX_FMAP_BLOCK rows of x, through
 * the zero-padded buffers pad_x (KX_FMAP_BLOCK x d) and pad_out
 * (KX_FMAP_BLOCK x kx_project_width(m)); the copy out adds -c(x) and the
 * weights while the block is in cache (the sums of kx_fmap_finish_log). */
static void dense_block(const kx_fmap *f, size_t rows, const double *x, double *logphi,
                        double *pad_x, double *pad_out) {
  const size_t d = f->d, m = f->m, mp = kx_project_width(m);
  const size_t padded = (rows + KX_PROJECT_ROWS - 1) / KX_PROJECT_ROWS * KX_PROJECT_ROWS;
  memcpy(pad_x, x, rows * d * sizeof *x);
  memset(pad_x + rows * d, 0, (padded - rows) * d * sizeof *x);
  kx_project(padded, d, mp, pad_x, f->Wt, pad_out);
  for (size_t r = 0; r < rows; r++) {
    const double *xr = x + r * d;
    double c = 0;
    if (f->norm_coef != 0) {
      for (size_t j = 0; j < d; j++) c += xr[j] * xr[j];
      c *= f->norm_coef;
    }
    const double *src = pad_out + r * mp;
    double *row = logphi + r * m;
    for (size_t i = 0; i < m; i++) row[i] = src[i] + (f->log_weight[i] - c);
  }
}

/* Maps with their own apply_log (the DCT maps: batches of KX_DCT_BATCH
 * rows, padded, so a row's result does not depend on the call's size) take
 * this many rows per call: each call sets up workspaces and a parallel
 * region, which per 64 rows cost up to a fifth of the time (measured,
 * d = 128: malloc_consolidate after each 66 KB workspace).  Such a span
 * (8 MB of features at m = 1024) is out of cache by its end, so those
 * maps exponentiate inside, per batch, through their type's apply. */
#define KX_FMAP_OWN_SPAN 1024

/* log features (exp_too = 0) or features (1) of n rows, block by block
 * on OpenMP threads. */
static int apply_blocks(const kx_fmap *f, size_t n, const double *x, double *out, int exp_too) {
  const size_t span = f->type->apply_log ? KX_FMAP_OWN_SPAN : KX_FMAP_BLOCK;
  const size_t d = f->d, m = f->m, n_blocks = (n + span - 1) / span;
  int rc = 0;
  /* The blocks run on OpenMP threads; BLAS calls inside them (the DCT maps'
   * dense DCT-I) must not wake OpenBLAS's own thread pool as well, whose
   * workers would compete with ours for the cores.  Touched only when
   * needed, as in kx_linear_attention. */
  const int blas_threads = openblas_get_num_threads();
  if (blas_threads != 1) openblas_set_num_threads(1);
  /* The input check runs on the threads too, each on the blocks it will
   * map (the same static schedule), and all of it before any output is
   * written. */
  size_t first_bad = SIZE_MAX;
#pragma omp parallel if (n_blocks >= 4 || (span > KX_FMAP_BLOCK && n_blocks >= 2))
  {
#pragma omp for schedule(static) reduction(min : first_bad)
    for (size_t b = 0; b < n_blocks; b++) {
      const size_t r0 = b * span, rows = n - r0 < span ? n - r0 : span;
      if (!kx_all_finite_quiet(x + r0 * d, rows * d)) first_bad = b;
    }
    double *pad_x = NULL, *pad_out = NULL;
    int brc = first_bad != SIZE_MAX ? KX_EINVAL : 0;
    if (!f->type->apply_log) {
      pad_x = aligned_alloc(64, KX_FMAP_BLOCK * d * sizeof *pad_x);
      pad_out = aligned_alloc(64, KX_FMAP_BLOCK * kx_project_width(m) * sizeof *pad_out);
      if (!pad_x || !pad_out) brc = KX_ENOMEM;
    }
#pragma omp for schedule(static)
    for (size_t b = 0; b < n_blocks; b++) {
      const size_t r0 = b * span, rows = n - r0 < span ? n - r0 : span;
      if (brc) continue;
      const double *xb = x + r0 * d;
      double *ob = out + r0 * m;
      if (exp_too && f->type->apply) {
        brc = f->type->apply(f, rows, xb, ob);
      } else {
        if (f->type->apply_log) brc = f->type->apply_log(f, rows, xb, ob);
        else dense_block(f, rows, xb, ob, pad_x, pad_out);
        if (!brc && exp_too) kx_vexp(rows * m, ob, ob);
      }
    }
    if (brc) {
#pragma omp atomic write
      rc = brc;
    }
    free(pad_x);
    free(pad_out);
  }
  if (blas_threads != 1) openblas_set_num_threads(blas_threads);
  /* Messages are thread-local: made here, on the caller's thread. */
  if (first_bad != SIZE_MAX) {
    kx_all_finite(x, n * d, "feature-map input");
    return KX_EINVAL;
  }
  if (rc) return kx_fail(rc, "%s: out of memory applying the feature map", f->type->name);
  return 0;
}

int kx_fmap_apply_log(const kx_fmap *f, size_t n, const double *x, double *logphi) {
  if (n == 0) return 0;
  return apply_blocks(f, n, x, logphi, 0);
}

size_t kx_fmap_pad_size(size_t d, size_t m) { return KX_FMAP_BLOCK * (d + kx_project_width(m)); }

int kx_fmap_apply_log_pad(const kx_fmap *f, size_t n, const double *x, double *logphi, double *pad) {
  if (!pad || f->type->apply_log) return kx_fmap_apply_log(f, n, x, logphi);
  if (n == 0) return 0;
  if (!kx_all_finite(x, n * f->d, "feature-map input")) return KX_EINVAL;
  for (size_t r0 = 0; r0 < n; r0 += KX_FMAP_BLOCK)
    dense_block(f, n - r0 < KX_FMAP_BLOCK ? n - r0 : KX_FMAP_BLOCK, x + r0 * f->d, logphi + r0 * f->m, pad,
                pad + KX_FMAP_BLOCK * f->d);
  return 0;
}

int kx_fmap_apply(const kx_fmap *f, size_t n, const double *x, double *phi) {
  if (n == 0) return 0;
  return apply_blocks(f, n, x, phi, 1);
}

size_t kx_fmap_input_dim(const kx_fmap *f) { return f->d; }
size_t kx_fmap_feature_count(const kx_fmap *f) { return f->m; }
int kx_fmap_estimates_kernel(const kx_fmap *f) { return f->type->kernel_estimator; }

void kx_fmap_free(kx_fmap *f) {
  if (!f) return;
  if (f->type && f->type->release) f->type->release(f);
  free(f->W);
  free(f->Wt);
  free(f->log_weight);
  free(f);
}
