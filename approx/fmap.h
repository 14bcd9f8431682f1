/* Feature maps phi: R^d -> R^m_+ whose inner products estimate a kernel,
 * planned once and applied to many batches (the FFTW pattern):
 *
 *   kx_fmap *f = kx_fmap_create("pff-sobol", d, m, seed, &opt);
 *   kx_fmap_apply_log(f, n, x, logphi);   // any number of times, any n
 *   kx_fmap_free(f);
 *
 * Every map is returned in the log domain, log phi_i(x), because the
 * features of large inputs overflow a double long before their ratios do;
 * attention and metrics stabilise with max-subtraction.  The common form
 * (docs/methods.md#feature-maps) is  phi_i(x) = D_i / sqrt(m) * exp(w_i . x - c(x)),
 * c(x) = |x|^2/2 for the softmax kernel exp(q.k), |x|^2 for the Gaussian
 * kernel exp(-|q-k|^2/2).
 *
 * Schemes are entries of a type table (kx_fmap_types); a new scheme is one
 * file with its init function plus one line in the table in fmap.c. */
#ifndef KX_FMAP_H
#define KX_FMAP_H

#include <stddef.h>
#include <stdint.h>

#include "approx/kernel.h"
/* the options, the opaque kx_fmap and create/apply/free: public */
#include "kapprox/fmap.h"

typedef struct kx_fmap_type {
  const char *name;
  const char *description;
  int unbiased;         /* E_seed[phi(q).phi(k)] equals the kernel exactly */
  int fitted_weights;   /* D is fitted by NNLS on calibration pairs after init */
  int kernel_estimator; /* 0 if phi.phi does not target the kernel at all (wdcf-code) */
  /* Fills f->W (m x d) and/or f->state; may set f->norm_coef and f->log_weight. */
  int (*init)(kx_fmap *f);
  /* Matrix-free maps set this; NULL means logphi = W x - c(x) + log_weight. */
  int (*apply_log)(const kx_fmap *f, size_t n, const double *x, double *logphi);
  /* Optional, for maps with their own apply_log: the features, exactly
   * kx_vexp of apply_log's result, exponentiated while the rows are still
   * in cache.  NULL: apply_log, then kx_vexp over the call's rows. */
  int (*apply)(const kx_fmap *f, size_t n, const double *x, double *phi);
  void (*release)(kx_fmap *f);
} kx_fmap_type;

struct kx_fmap {
  const kx_fmap_type *type;
  size_t d, m;
  uint64_t seed;
  kx_fmap_options opt;
  double norm_coef;     /* c(x) = norm_coef |x|^2 (0.5 softmax, 1 Gauss, 0 dropped) */
  double *W;            /* m x d rows w_i, or NULL for matrix-free maps */
  double *Wt;           /* W transposed and padded for kx_project (project.h), made by kx_fmap_create */
  double *log_weight;   /* m entries: log D_i - log(m)/2 */
  void *state;          /* scheme-specific */
};

extern const kx_fmap_type *const kx_fmap_types[];
const kx_fmap_type *kx_fmap_lookup(const char *name);

/* "softmax" or "gauss" (the names used on every command line); messages
 * name the value `what` (e.g. "--kernel"). */
int kx_parse_kernel(const char *name, const char *what, kx_kernel *out);

/* kx_fmap_apply_log on the calling thread, with the dense maps' block
 * buffers in the caller's `pad` of kx_fmap_pad_size(d, m) doubles, 64-byte
 * aligned (NULL: kx_fmap_apply_log): a worker evaluating many maps
 * allocates them once.  Same bits as kx_fmap_apply_log. */
size_t kx_fmap_pad_size(size_t d, size_t m);
int kx_fmap_apply_log_pad(const kx_fmap *f, size_t n, const double *x, double *logphi, double *pad);

/* Helper for maps: adds -c(x) and log_weight to rows already holding W x. */
void kx_fmap_finish_log(const kx_fmap *f, size_t n, const double *x, double *logphi);

#endif
