#include "approx/weight_fit.h"

#include <cblas.h>
#include <gsl/gsl_rng.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/kx_error.h"
#include "core/kx_rng.h"
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

/* Solves G_FF x = h_F on the free coordinates idx[0..nf) by Cholesky
 * (LAPACK dposv); returns its info (> 0: the leading minor of that order
 * is not positive definite). */
static int solve_free_set(size_t n, const double *G, const double *h, const size_t *idx, size_t nf,
                          double *Gf, double *x) {
  for (size_t a = 0; a < nf; a++) {
    x[a] = h[idx[a]];
    for (size_t c = 0; c < nf; c++) Gf[a * nf + c] = G[idx[a] * n + idx[c]];
  }
  int nn = (int)nf, one = 1, info = 0;
  dposv_("U", &nn, &one, Gf, &nn, x, &nn, &info);
  return info;
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
  size_t dependent_drops = 0;
  for (int round = 0; !rc && round < 20; round++) {
    size_t nf = 0;
    for (size_t i = 0; i < n; i++)
      if (is_free[i]) idx[nf++] = i;
    if (nf == 0) break;
    int info = solve_free_set(n, G, h, idx, nf, Gf, x);
    if (info > 0 && dependent_drops < n) {
      /* the leading minor of order info is singular to working precision:
       * feature idx[info-1] is (numerically) a combination of the ones
       * before it and adds nothing to the fit, so hold it at 0 */
      is_free[idx[info - 1]] = 0;
      dependent_drops++;
      round--;
      continue;
    }
    if (info != 0) break; /* leave it to descent */
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

/* Lawson-Hanson steps from a feasible b: solve on the free set, step as
 * far towards that solution as b >= 0 allows, free the most violating bound
 * coordinate when the free solution is feasible.  Every step lowers the
 * objective, so unlike the round-based start it cannot cycle; it is the
 * fallback for degenerate problems (nearly collinear features at large
 * input norms), where free sets are small. */
static int monotone_active_set(size_t n, const double *G, const double *h, double *b, double *grad,
                               double tol, size_t max_steps) {
  unsigned char *is_free = kx_calloc(n, 1);
  size_t *idx = kx_malloc(n * sizeof *idx);
  double *Gf = kx_malloc(n * n * sizeof *Gf), *z = kx_malloc(n * sizeof *z);
  int rc = (!is_free || !idx || !Gf || !z) ? KX_ENOMEM : 0;
  for (size_t i = 0; !rc && i < n; i++) is_free[i] = b[i] > 0;
  for (size_t step = 0; !rc && step < max_steps; step++) {
    size_t nf = 0;
    for (size_t i = 0; i < n; i++)
      if (is_free[i]) idx[nf++] = i;
    int info = nf ? solve_free_set(n, G, h, idx, nf, Gf, z) : 0;
    if (info > 0) { /* dependent on the free features before it: hold at 0 */
      b[idx[info - 1]] = 0;
      is_free[idx[info - 1]] = 0;
      continue;
    }
    if (info < 0) break;
    double alpha = 1;
    size_t blocking = n;
    for (size_t a = 0; a < nf; a++)
      if (z[a] <= 0) {
        double t = b[idx[a]] / (b[idx[a]] - z[a]);
        if (t < alpha) alpha = t, blocking = idx[a];
      }
    for (size_t a = 0; a < nf; a++) b[idx[a]] += alpha * (z[a] - b[idx[a]]);
    if (blocking < n) {
      for (size_t a = 0; a < nf; a++)
        if (b[idx[a]] <= 0 || idx[a] == blocking) b[idx[a]] = 0, is_free[idx[a]] = 0;
      continue;
    }
    gradient(n, G, h, b, grad);
    size_t worst = n;
    double most = -tol;
    for (size_t i = 0; i < n; i++)
      if (!is_free[i] && grad[i] < most) most = grad[i], worst = i;
    if (worst == n) break; /* KKT conditions hold */
    is_free[worst] = 1;
  }
  free(is_free);
  free(idx);
  free(Gf);
  free(z);
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
  if (violation > threshold) {
    rc = monotone_active_set(n, G, h, b, grad, threshold, 4 * n + 100);
    if (rc) {
      free(grad);
      return rc;
    }
    gradient(n, G, h, b, grad);
    violation = kkt_violation(n, b, grad);
  }
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

/* log(exp(a) + exp(b)) without overflow. */
static double log_add(double a, double b) {
  if (a < b) {
    double t = a;
    a = b;
    b = t;
  }
  if (b == -INFINITY) return a;
  return a + log1p(exp(b - a));
}

/* The fit in the log domain.  With E_pi = log A_pi the normal equations are
 *   G_ij = (1/P) sum_p A_pi A_pj + r [i = j],   h_i = (1/P) sum_p A_pi + r,
 * r = ridge/m.  At large input norms A_pi reaches e^700 and G overflows
 * (and at very small ratios it underflows to a singular matrix), so the
 * problem is solved in the variables g_i = c_i beta_i with c_i = sqrt(G_ii)
 * (Jacobi scaling, computed as a log-sum-exp):
 *   G~_ij = (1/P) sum_p S_pi S_pj + (r / c_i^2) [i = j],  h~_i = (1/P) sum_p S_pi + r / c_i,
 *   S_pi = exp(E_pi - log c_i) <= sqrt(P),
 * which has unit diagonal, the same minimiser (beta_i = g_i / c_i, kept as
 * log g_i - log c_i) and no overflow whatever the norms. */
int kx_fit_weights(const kx_weight_fit *fit, double *log_weight) {
  const size_t m = fit->m, d = fit->d;
  const size_t nq = fit->nq, nk = fit->nk;
  size_t P = fit->n_pairs ? fit->n_pairs : (4 * m > 2048 ? 4 * m : 2048);
  if (fit->all_pairs) {
    if (nk && nq > ((size_t)1 << 26) / nk / m)
      return kx_fail(KX_ERANGE, "weight fit: %zu x %zu calibration pairs x %zu features is too many; "
                     "use random pairs", nq, nk, m);
    P = nq * nk;
  }
  /* the P x m design matrix is held in memory: refuse (as a failure of this
   * point, not the run) rather than ask for more than a GiB */
  if (P > ((size_t)1 << 27) / m)
    return kx_fail(KX_ERANGE, "weight fit: %zu calibration pairs x %zu features exceed the 2^27 values "
                   "the fit holds in memory; fit on fewer calibration pairs", P, m);
  int rc = 0;
  const double *lq = fit->log_phi_q, *lk = fit->log_phi_k;
  double *A = kx_malloc(P * m * sizeof *A);
  double *G = kx_malloc(m * m * sizeof *G);
  double *h = kx_malloc(m * sizeof *h);
  double *beta = kx_malloc(m * sizeof *beta);
  double *log_c = kx_malloc(m * sizeof *log_c), *col_sum = kx_malloc(m * sizeof *col_sum);
  gsl_rng *rng = kx_rng_alloc(kx_seed_derive(fit->seed, 7));
  if (!A || !G || !h || !beta || !log_c || !col_sum || !rng) {
    rc = KX_ENOMEM;
    goto done;
  }
  for (size_t p = 0; p < P; p++) {
    size_t a, b;
    if (fit->all_pairs) a = p / nk, b = p % nk;
    else a = gsl_rng_uniform_int(rng, nq), b = gsl_rng_uniform_int(rng, nk);
    double lkappa = log_kernel(fit->kernel, d, fit->q + a * d, fit->k + b * d);
    for (size_t i = 0; i < m; i++) A[p * m + i] = lq[a * m + i] + lk[b * m + i] - lkappa; /* E_pi */
  }
  const double ridge = fit->ridge / (double)m;
  const double log_ridge = ridge > 0 ? log(ridge) : -INFINITY, log_P = log((double)P);
  /* log c_i = (1/2) log((1/P) sum_p exp(2 E_pi) + r), from one pass of
   * exp(E_pi - max_p E_pi) <= 1; then S_pi = that times exp(max - log c_i) */
  for (size_t i = 0; i < m; i++) log_c[i] = -INFINITY; /* column maxima first */
  for (size_t p = 0; p < P; p++)
    for (size_t i = 0; i < m; i++)
      if (A[p * m + i] > log_c[i]) log_c[i] = A[p * m + i];
  for (size_t i = 0; i < m; i++) h[i] = col_sum[i] = 0; /* h: sum of squares, scratch */
  for (size_t p = 0; p < P; p++)
    for (size_t i = 0; i < m; i++) {
      double e = log_c[i] > -INFINITY ? exp(A[p * m + i] - log_c[i]) : 0;
      A[p * m + i] = e;
      h[i] += e * e;
      col_sum[i] += e;
    }
  for (size_t i = 0; i < m; i++) {
    double top = log_c[i];
    double log_g = top > -INFINITY ? 2 * top + log(h[i]) - log_P : -INFINITY;
    log_c[i] = 0.5 * log_add(log_g, log_ridge);
    if (!isfinite(log_c[i])) {
      rc = kx_fail(KX_ENUM, "weight fit: feature %zu is zero on every calibration pair and the "
                   "ridge is 0, so its weight is undefined (a positive ridge keeps it defined)", i);
      goto done;
    }
    beta[i] = top > -INFINITY ? exp(top - log_c[i]) : 0; /* column factor, scratch */
  }
  /* S = A diag(factor): scale the m x m products, not the P x m matrix */
  cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, (int)m, (int)P, 1.0 / (double)P, A, (int)m,
              0.0, G, (int)m);
  for (size_t i = 0; i < m; i++)
    for (size_t j = i; j < m; j++) G[i * m + j] *= beta[i] * beta[j];
  for (size_t i = 0; i < m; i++)
    for (size_t j = 0; j < i; j++) G[i * m + j] = G[j * m + i];
  for (size_t i = 0; i < m; i++) {
    h[i] = beta[i] * col_sum[i] / (double)P + exp(log_ridge - log_c[i]);
    G[i * m + i] += exp(log_ridge - 2 * log_c[i]);
    beta[i] = exp(-log_c[i]); /* start at the unweighted map, beta = 1 */
    if (!isfinite(beta[i])) beta[i] = 1;
  }
  if ((rc = kx_nnls_gram(m, G, h, beta, 2000, 1e-9, NULL))) goto done;
  size_t positive = 0;
  for (size_t i = 0; i < m; i++) {
    positive += beta[i] > 0;
    /* log phi carries log(D_i/sqrt m) = (log beta_i - log m)/2 */
    log_weight[i] = 0.5 * ((beta[i] > 0 ? log(beta[i]) - log_c[i] : -INFINITY) - log((double)m));
  }
  if (!positive) rc = kx_fail(KX_ENUM, "weight fit: every weight came out zero");
done:
  free(A);
  free(G);
  free(h);
  free(beta);
  free(log_c);
  free(col_sum);
  gsl_rng_free(rng);
  return rc;
}
