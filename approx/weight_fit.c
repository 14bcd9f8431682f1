#include "approx/weight_fit.h"

#include <cblas.h>
#include <gsl/gsl_rng.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/kx_error.h"
#include "core/kx_seed.h"

int kx_nnls_gram(size_t n, const double *G, const double *h, double *b, size_t max_sweeps,
                 double tol, size_t *sweeps_used) {
  double *grad = kx_malloc(n * sizeof *grad); /* G b - h, kept current */
  if (!grad) return KX_ENOMEM;
  for (size_t i = 0; i < n; i++) {
    if (!(G[i * n + i] > 0)) {
      free(grad);
      return kx_fail(KX_ENUM, "weight fit: the Gram matrix has a non-positive diagonal entry %zu", i);
    }
    double s = -h[i];
    for (size_t j = 0; j < n; j++) s += G[i * n + j] * b[j];
    grad[i] = s;
  }
  size_t sweep;
  int converged = 0;
  for (sweep = 0; sweep < max_sweeps && !converged; sweep++) {
    double max_step = 0, max_b = 0;
    for (size_t i = 0; i < n; i++) {
      double bi = b[i] - grad[i] / G[i * n + i];
      if (bi < 0) bi = 0;
      double delta = bi - b[i];
      if (delta != 0) {
        const double *col = G + i * n; /* symmetric: row i == column i */
        for (size_t j = 0; j < n; j++) grad[j] += col[j] * delta;
        b[i] = bi;
      }
      if (fabs(delta) > max_step) max_step = fabs(delta);
      if (bi > max_b) max_b = bi;
    }
    converged = max_step <= tol * (max_b > 1 ? max_b : 1);
  }
  free(grad);
  if (sweeps_used) *sweeps_used = sweep;
  for (size_t i = 0; i < n; i++)
    if (!isfinite(b[i])) return kx_fail(KX_ENUM, "weight fit: non-finite weight %zu", i);
  return 0;
}

static double log_kernel(kx_kernel kernel, size_t d, const double *q, const double *k) {
  double s = 0;
  if (kernel == KX_KERNEL_GAUSS) {
    for (size_t j = 0; j < d; j++) s += (q[j] - k[j]) * (q[j] - k[j]);
    return -0.5 * s;
  }
  for (size_t j = 0; j < d; j++) s += q[j] * k[j];
  return s;
}

int kx_fit_weights(kx_fmap *f) {
  const size_t m = f->m, d = f->d;
  const size_t nq = f->opt.n_calib_q, nk = f->opt.n_calib_k;
  size_t P = f->opt.n_calib_pairs ? f->opt.n_calib_pairs : (4 * m > 2048 ? 4 * m : 2048);
  int rc = 0;
  double *lq = kx_malloc(nq * m * sizeof *lq);
  double *lk = kx_malloc(nk * m * sizeof *lk);
  double *A = kx_malloc(P * m * sizeof *A);
  double *G = kx_malloc(m * m * sizeof *G);
  double *h = kx_malloc(m * sizeof *h);
  double *beta = kx_malloc(m * sizeof *beta);
  gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
  if (!lq || !lk || !A || !G || !h || !beta || !rng) {
    rc = KX_ENOMEM;
    goto done;
  }
  /* The maps' own log_weight is still the unweighted -log(m)/2 here. */
  if ((rc = kx_fmap_apply_log(f, nq, f->opt.calib_q, lq))) goto done;
  if ((rc = kx_fmap_apply_log(f, nk, f->opt.calib_k, lk))) goto done;
  gsl_rng_set(rng, kx_gsl_seed(kx_seed_derive(f->seed, 7)));
  for (size_t p = 0; p < P; p++) {
    size_t a = gsl_rng_uniform_int(rng, nq), b = gsl_rng_uniform_int(rng, nk);
    double lkappa = log_kernel(f->opt.kernel, d, f->opt.calib_q + a * d, f->opt.calib_k + b * d);
    for (size_t i = 0; i < m; i++) {
      double e = lq[a * m + i] + lk[b * m + i] - lkappa;
      /* A ratio beyond e^700 means the estimator is useless for this pair;
       * say so rather than fit to infinities. */
      if (e > 700) {
        rc = kx_fail(KX_ENUM,
                     "weight fit: feature products exceed the kernel by e^%.0f on a calibration "
                     "pair; the inputs' norms are too large for this map (scale them down)", e);
        goto done;
      }
      A[p * m + i] = exp(e);
    }
  }
  /* G = A'A/P + (ridge/m) I,  h = A'1/P + ridge/m. */
  cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, (int)m, (int)P, 1.0 / (double)P, A, (int)m,
              0.0, G, (int)m);
  for (size_t i = 0; i < m; i++)
    for (size_t j = 0; j < i; j++) G[i * m + j] = G[j * m + i];
  const double ridge = f->opt.ridge / (double)m;
  for (size_t i = 0; i < m; i++) {
    double s = 0;
    for (size_t p = 0; p < P; p++) s += A[p * m + i];
    h[i] = s / (double)P + ridge;
    G[i * m + i] += ridge;
    beta[i] = 1.0;
  }
  if ((rc = kx_nnls_gram(m, G, h, beta, 5000, 1e-10, NULL))) goto done;
  size_t positive = 0;
  for (size_t i = 0; i < m; i++) {
    positive += beta[i] > 0;
    f->log_weight[i] = (beta[i] > 0 ? log(beta[i]) : -INFINITY) - log((double)m);
    /* log phi carries log(D_i/sqrt m) = (log beta_i - log m)/2 */
    f->log_weight[i] *= 0.5;
  }
  if (!positive) rc = kx_fail(KX_ENUM, "weight fit: every weight came out zero");
done:
  free(lq);
  free(lk);
  free(A);
  free(G);
  free(h);
  free(beta);
  gsl_rng_free(rng);
  return rc;
}
