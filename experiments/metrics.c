#include "experiments/metrics.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "approx/attention.h"
#include "approx/kernel.h"
#include "core/kx_error.h"

const char *const kx_metric_names[KX_N_METRICS] = {
    "kernel_rel_fro", "kernel_rel_mse", "attn_kl", "attn_tv", "attn_max_abs", "out_rel_err",
};

int kx_metric_lookup(const char *name) {
  for (int i = 0; i < KX_N_METRICS; i++)
    if (!strcmp(kx_metric_names[i], name)) return i;
  return -1;
}

/* out (n x dv) = exp(logA) v */
static int weighted_values(size_t n, size_t dv, const double *logA, const double *v, double *out) {
  double *A = kx_malloc(n * n * sizeof *A);
  if (!A) return KX_ENOMEM;
  for (size_t i = 0; i < n * n; i++) A[i] = exp(logA[i]);
  cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)n, (int)dv, (int)n, 1.0, A, (int)n,
              v, (int)dv, 0.0, out, (int)dv);
  free(A);
  return 0;
}

static double mean_norm(size_t n, size_t d, const double *x) {
  double total = 0;
  for (size_t i = 0; i < n; i++) {
    double s = 0;
    for (size_t j = 0; j < d; j++) s += x[i * d + j] * x[i * d + j];
    total += sqrt(s);
  }
  return total / (double)n;
}

int kx_head_reference_init(kx_head_reference *r, size_t n, size_t d, size_t dv, const double *q,
                           const double *k, const double *v, int causal, kx_kernel kernel) {
  memset(r, 0, sizeof *r);
  if (n == 0 || d == 0 || !v || dv == 0)
    return kx_fail(KX_EINVAL, "a head needs tokens >= 1, d >= 1 and values v");
  if (!kx_all_finite(q, n * d, "q") || !kx_all_finite(k, n * d, "k") || !kx_all_finite(v, n * dv, "v"))
    return KX_EINVAL;
  r->n = n;
  r->d = d;
  r->dv = dv;
  r->causal = causal;
  r->kernel = kernel;
  r->q = q;
  r->k = k;
  r->v = v;
  r->logK = kx_malloc(n * n * sizeof *r->logK);
  r->logA = kx_malloc(n * n * sizeof *r->logA);
  r->AV = kx_malloc(n * dv * sizeof *r->AV);
  int rc = (!r->logK || !r->logA || !r->AV) ? KX_ENOMEM : 0;
  if (!rc) rc = kx_log_kernel_exact(kernel, n, n, d, q, k, r->logK);
  if (!rc) {
    memcpy(r->logA, r->logK, n * n * sizeof *r->logA);
    rc = kx_attention_log_weights(n, causal, r->logA);
  }
  if (!rc) rc = weighted_values(n, dv, r->logA, v, r->AV);
  if (rc) {
    kx_head_reference_free(r);
    return rc;
  }
  r->q_norm = mean_norm(n, d, q);
  r->k_norm = mean_norm(n, d, k);
  return 0;
}

void kx_head_reference_free(kx_head_reference *r) {
  free(r->logK);
  free(r->logA);
  free(r->AV);
  r->logK = r->logA = r->AV = NULL;
}

int kx_metric_defined(int k, int kernel_estimator) {
  return kernel_estimator || (k != KX_METRIC_KERNEL_REL_FRO && k != KX_METRIC_KERNEL_REL_MSE);
}

int kx_evaluate_log_kernel(const kx_head_reference *r, double *logK_hat, int kernel_estimator,
                           double metrics[KX_N_METRICS]) {
  const size_t n = r->n, dv = r->dv;
  for (int i = 0; i < KX_N_METRICS; i++) metrics[i] = NAN;
  if (kernel_estimator) {
    /* Both matrices are scaled by the same exp(-max logK) so nothing
     * overflows; the ratio is unchanged. */
    double L = -INFINITY;
    for (size_t i = 0; i < n * n; i++)
      if (r->logK[i] > L) L = r->logK[i];
    double num = 0, den = 0, mse = 0;
    for (size_t i = 0; i < n * n; i++) {
      double e = exp(r->logK[i] - L), a = exp(logK_hat[i] - L), rel = expm1(logK_hat[i] - r->logK[i]);
      num += (a - e) * (a - e);
      den += e * e;
      mse += rel * rel;
    }
    metrics[KX_METRIC_KERNEL_REL_FRO] = sqrt(num / den);
    metrics[KX_METRIC_KERNEL_REL_MSE] = mse / (double)(n * n);
  }
  int rc = kx_attention_log_weights(n, r->causal, logK_hat);
  if (rc) return rc;
  double kl = 0, tv = 0, max_abs = 0;
  for (size_t i = 0; i < n; i++) {
    size_t end = r->causal ? i + 1 : n;
    double kl_i = 0, tv_i = 0;
    for (size_t j = 0; j < end; j++) {
      double la = r->logA[i * n + j], lb = logK_hat[i * n + j];
      double a = exp(la), b = exp(lb);
      if (a > 0) kl_i += a * (la - lb);
      tv_i += fabs(a - b);
      if (fabs(a - b) > max_abs) max_abs = fabs(a - b);
    }
    /* KL of two distributions is >= 0; round-off can give -1e-17 */
    kl += kl_i > 0 ? kl_i : 0;
    tv += 0.5 * tv_i;
  }
  metrics[KX_METRIC_ATTN_KL] = kl / (double)n;
  metrics[KX_METRIC_ATTN_TV] = tv / (double)n;
  metrics[KX_METRIC_ATTN_MAX_ABS] = max_abs;
  double *out = kx_malloc(n * dv * sizeof *out);
  if (!out) return KX_ENOMEM;
  rc = weighted_values(n, dv, logK_hat, r->v, out);
  if (!rc) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n * dv; i++) {
      num += (out[i] - r->AV[i]) * (out[i] - r->AV[i]);
      den += r->AV[i] * r->AV[i];
    }
    metrics[KX_METRIC_OUT_REL_ERR] = den > 0 ? sqrt(num / den) : sqrt(num);
  }
  free(out);
  return rc;
}

int kx_evaluate_map(const kx_head_reference *r, const kx_fmap *f, double metrics[KX_N_METRICS]) {
  const size_t n = r->n, m = f->m;
  if (f->d != r->d)
    return kx_fail(KX_EINVAL, "feature map built for d = %zu applied to data with d = %zu", f->d, r->d);
  double *lq = kx_malloc(n * m * sizeof *lq), *lk = kx_malloc(n * m * sizeof *lk);
  double *logK_hat = kx_malloc(n * n * sizeof *logK_hat);
  int rc = (!lq || !lk || !logK_hat) ? KX_ENOMEM : 0;
  if (!rc) rc = kx_fmap_apply_log(f, n, r->q, lq);
  if (!rc) rc = kx_fmap_apply_log(f, n, r->k, lk);
  if (!rc) rc = kx_log_kernel_estimate(n, n, m, lq, lk, logK_hat);
  if (!rc) rc = kx_evaluate_log_kernel(r, logK_hat, f->type->kernel_estimator, metrics);
  free(lq);
  free(lk);
  free(logK_hat);
  return rc;
}
