/* libkapprox: feature maps phi: R^d -> R^m_+ whose inner products estimate
 * a kernel, planned once and applied to many batches (the FFTW pattern):
 *
 *   kx_fmap *f = kx_fmap_create("pff-sobol", d, m, seed, NULL);
 *   kx_fmap_apply(f, n, x, phi);    // x: n x d, phi: n x m; any n, any number of times
 *   kx_fmap_free(f);
 *
 * kx_fmap_apply_log gives log phi, which never overflows.  The schemes are
 * listed by kx_fmap_names(); the form of each is in the project's
 * docs/methods.md ("Feature maps").  Schemes with fitted weights (wpff-*,
 * wdcf*) need calibration rows in the options. */
#ifndef KAPPROX_FMAP_H
#define KAPPROX_FMAP_H

#include <stddef.h>
#include <stdint.h>

#include "kernel.h"
#include "status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
  kx_kernel kernel;
  const char *radii;      /* "sequence" (default) or "stratified" for PFF-like maps */
  /* Calibration inputs for schemes with fitted weights (rows, n x d, in the
   * same scaling as the data); borrowed during kx_fmap_create only. */
  const double *calib_q, *calib_k;
  size_t n_calib_q, n_calib_k;
  size_t n_calib_pairs;   /* 0: default max(4m, 2048) */
  int calib_all_pairs;    /* use every (q_a, k_b) pair once instead of random pairs */
  double ridge;           /* pull of fitted weights toward D = 1; <0: default 1e-3 */
} kx_fmap_options;

typedef struct kx_fmap kx_fmap;

/* Comma-separated list of every scheme's name (static storage). */
KX_API const char *kx_fmap_names(void);
/* The defaults: softmax kernel, sequence radii, no calibration data. */
KX_API void kx_fmap_default_options(kx_fmap_options *opt);

/* NULL with a message on an unknown scheme, d = 0, m = 0, a dimension beyond
 * a generator's range, or missing calibration data.  opt NULL: defaults. */
KX_API kx_fmap *kx_fmap_create(const char *scheme, size_t d, size_t m, uint64_t seed,
                               const kx_fmap_options *opt);
/* The same, with the kx_status of a failure in *status (KX_ENUM for a weight
 * fit that did not converge). */
KX_API kx_fmap *kx_fmap_create_status(const char *scheme, size_t d, size_t m, uint64_t seed,
                                      const kx_fmap_options *opt, int *status);
KX_API size_t kx_fmap_input_dim(const kx_fmap *f);
KX_API size_t kx_fmap_feature_count(const kx_fmap *f);
/* 0 if phi.phi does not estimate the kernel at all (wdcf-code). */
KX_API int kx_fmap_estimates_kernel(const kx_fmap *f);

/* x: n x d (row-major), logphi: n x m.  Thread-safe: one map may be applied
 * from many threads at once. */
KX_API int kx_fmap_apply_log(const kx_fmap *f, size_t n, const double *x, double *logphi);
/* phi itself (exp of the above); overflows to inf for very large inputs. */
KX_API int kx_fmap_apply(const kx_fmap *f, size_t n, const double *x, double *phi);
KX_API void kx_fmap_free(kx_fmap *f);

#ifdef __cplusplus
}
#endif

#endif
