#include "approx/weight_fit.h"

#include <cblas.h>
#include <gsl/gsl_rng.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/kx_error.h"
#include "core/kx_seed.h"

/* LAPACK (from OpenBLAS): Cholesky solve of a symmetric positive definite system. */
extern void dposv_(const char *uplo, const int *n, const int *nrhs, double *a, const int *lda,
                   double *b, const int *ldb, int *info);

/* Largest violation of the KKT conditions: the projected gradient. */
static double kkt_violation(size_t n, const double *b, const double *grad) {
  double worst = 0;
  for (size_t i = 0; i < n; i++) {
    double pg = b[i] > 0 ? fabs(grad[i]) : (grad[i] < 0 ? -grad[i] : 0);
    if (pg > worst) worst = pg;
  }
  return worst;
}

static void gradient(size_t n, const double *G, const double *h, const double *b, double *grad) {
  for (size_t i = 0; i < n; i++) grad[i] = -h[i];
  cblas_dsymv(CblasRowMajor, CblasUpper, (int)n, 1.0, G, (int)n, b, 1, 1.0, grad, 1);
}

/* Warm start: solve the equality-constrained problem on a guessed free set
 * by Cholesky, drop coordinates that come out negative, re-admit bound ones
 * whose gradient says they should be free, a few rounds.  Usually this hits
 * the exact optimum; coordinate descent then only polishes. */
static int active_set_start(size_t n, const double *G, const double *h, double *b, double *grad,
                            double tol) {
  unsigned char *is_free = kx_malloc(n);
  size_t *idx = kx_malloc(n * sizeof *idx);
  double *Gf = kx_malloc(n * n * sizeof *Gf), *x = kx_malloc(n * sizeof *x);
  int rc = (!is_free || !idx || !Gf || !x) ? KX_ENOMEM : 0;
  if (!rc) memset(is_free, 1, n);
  for (int round = 0; !rc && round < 20; round++) {
    size_t nf = 0;
    for (size_t i = 0; i < n; i++)
      if (is_free[i]) idx[nf++] = i;
    if (nf == 0) break;
    for (size_t a = 0; a < nf; a++) {
      x[a] = h[idx[a]];
      for (size_t c = 0; c < nf; c++) Gf[a * nf + c] = G[idx[a] * n + idx[c]];
    }
    int nn = (int)nf, one = 1, info = 0;
    dposv_("U", &nn, &one, Gf, &nn, x, &nn, &info);
    if (info != 0) break; /* not positive definite numerically: leave it to descent */
    int changed = 0;
    memset(b, 0, n * sizeof *b);
    for (size_t a = 0; a < nf; a++) {
      if (x[a] > 0) b[idx[a]] = x[a];
      else {
        is_free[idx[a]] = 0;
        changed = 1;
      }
    }
    gradient(n, G, h, b, grad);
    if (!changed)
      for (size_t i = 0; i < n; i++)
        if (!is_free[i] && grad[i] < -tol) {
          is_free[i] = 1;
          changed = 1;
        }
    if (!changed) break;
  }
  free(is_free);
  free(idx);
  free(Gf);
  free(x);
  return rc;
}

int kx_nnls_gram(size_t n, const double *G, const double *h, double *b, size_t max_sweeps,
                 double tol, size_t *sweeps_used) {
  double *grad = kx_malloc(n * sizeof *grad); /* G b - h, kept current */
  if (!grad) return KX_ENOMEM;
  double scale = 0;
  for (size_t i = 0; i < n; i++) {
    if (!(G[i * n + i] > 0)) {
      free(grad);
      return kx_fail(KX_ENUM, "weight fit: the Gram matrix has a non-positive diagonal entry %zu", i);
    }
    if (fabs(h[i]) > scale) scale = fabs(h[i]);
  }
  const double threshold = tol * (scale > 0 ? scale : 1);
  int rc = active_set_start(n, G, h, b, grad, threshold);
  if (rc) {
    free(grad);
    return rc;
  }
  gradient(n, G, h, b, grad);
  size_t sweep = 0;
  while (sweep < max_sweeps && kkt_violation(n, b, grad) > threshold) {
    for (size_t i = 0; i < n; i++) {
      double bi = b[i] - grad[i] / G[i * n + i];
      if (bi < 0) bi = 0;
      double delta = bi - b[i];
      if (delta != 0) {
        const double *col = G + i * n; /* symmetric: row i == column i */
        for (size_t j = 0; j < n; j++) grad[j] += col[j] * delta;
        b[i] = bi;
      }
    }
    sweep++;
  }
  double violation = kkt_violation(n, b, grad);
  free(grad);
  if (sweeps_used) *sweeps_used = sweep;
  for (size_t i = 0; i < n; i++)
    if (!isfinite(b[i])) return kx_fail(KX_ENUM, "weight fit: non-finite weight %zu", i);
  if (violation > threshold * 1e3)
    return kx_fail(KX_ENUM, "weight fit did not converge in %zu sweeps (KKT violation %g)", sweep,
                   violation);
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
  if (f->opt.calib_all_pairs) {
    if (nk && nq > ((size_t)1 << 26) / nk / m)
      return kx_fail(KX_ERANGE, "weight fit: %zu x %zu calibration pairs x %zu features is too many; "
                     "use random pairs", nq, nk, m);
    P = nq * nk;
  }
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
    size_t a, b;
    if (f->opt.calib_all_pairs) a = p / nk, b = p % nk;
    else a = gsl_rng_uniform_int(rng, nq), b = gsl_rng_uniform_int(rng, nk);
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
  if ((rc = kx_nnls_gram(m, G, h, beta, 2000, 1e-9, NULL))) goto done;
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
