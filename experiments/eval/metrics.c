#include "experiments/eval/metrics.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "approx/attention.h"
#include "approx/kernel.h"
#include "core/kx_error.h"

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

/* ---- the metrics ---------------------------------------------------------- */

/* Both kernel matrices are scaled by the same exp(-max logK) so nothing
 * overflows; the ratio is unchanged. */
static double kernel_rel_fro(const kx_head_reference *r, const kx_estimate *e) {
  const size_t nn = r->n * r->n;
  double L = -INFINITY;
  for (size_t i = 0; i < nn; i++)
    if (r->logK[i] > L) L = r->logK[i];
  double num = 0, den = 0;
  for (size_t i = 0; i < nn; i++) {
    double x = exp(r->logK[i] - L), a = exp(e->logK[i] - L);
    num += (a - x) * (a - x);
    den += x * x;
  }
  return sqrt(num / den);
}

static double kernel_rel_mse(const kx_head_reference *r, const kx_estimate *e) {
  const size_t nn = r->n * r->n;
  double mse = 0;
  for (size_t i = 0; i < nn; i++) {
    double rel = expm1(e->logK[i] - r->logK[i]);
    mse += rel * rel;
  }
  return mse / (double)nn;
}

/* Row i's visible keys: j <= i under the causal mask. */
static size_t row_end(const kx_head_reference *r, size_t i) { return r->causal ? i + 1 : r->n; }

static double attn_kl(const kx_head_reference *r, const kx_estimate *e) {
  const size_t n = r->n;
  double kl = 0;
  for (size_t i = 0; i < n; i++) {
    double kl_i = 0;
    for (size_t j = 0; j < row_end(r, i); j++) {
      double la = r->logA[i * n + j], lb = e->logA[i * n + j];
      double a = exp(la);
      if (a > 0) kl_i += a * (la - lb);
    }
    /* KL of two distributions is >= 0; round-off can give -1e-17 */
    kl += kl_i > 0 ? kl_i : 0;
  }
  return kl / (double)n;
}

static double attn_tv(const kx_head_reference *r, const kx_estimate *e) {
  const size_t n = r->n;
  double tv = 0;
  for (size_t i = 0; i < n; i++) {
    double tv_i = 0;
    for (size_t j = 0; j < row_end(r, i); j++) tv_i += fabs(exp(r->logA[i * n + j]) - exp(e->logA[i * n + j]));
    tv += 0.5 * tv_i;
  }
  return tv / (double)n;
}

static double attn_max_abs(const kx_head_reference *r, const kx_estimate *e) {
  const size_t n = r->n;
  double max_abs = 0;
  for (size_t i = 0; i < n; i++)
    for (size_t j = 0; j < row_end(r, i); j++) {
      double d = fabs(exp(r->logA[i * n + j]) - exp(e->logA[i * n + j]));
      if (d > max_abs) max_abs = d;
    }
  return max_abs;
}

static double out_rel_err(const kx_head_reference *r, const kx_estimate *e) {
  double num = 0, den = 0;
  for (size_t i = 0; i < r->n * r->dv; i++) {
    num += (e->AV[i] - r->AV[i]) * (e->AV[i] - r->AV[i]);
    den += r->AV[i] * r->AV[i];
  }
  return den > 0 ? sqrt(num / den) : sqrt(num);
}

const kx_metric_def kx_metrics[KX_N_METRICS] = {
    [KX_METRIC_KERNEL_REL_FRO] = {"kernel_rel_fro", "relative kernel error ||K^ - K||_F / ||K||_F", 1, kernel_rel_fro},
    [KX_METRIC_KERNEL_REL_MSE] = {"kernel_rel_mse", "mean squared relative kernel error (K^/K - 1)^2", 1, kernel_rel_mse},
    [KX_METRIC_ATTN_KL] = {"attn_kl", "mean KL(a || a^) per query (nats)", 0, attn_kl},
    [KX_METRIC_ATTN_TV] = {"attn_tv", "mean total variation per query", 0, attn_tv},
    [KX_METRIC_ATTN_MAX_ABS] = {"attn_max_abs", "max |a - a^| over entries", 0, attn_max_abs},
    [KX_METRIC_OUT_REL_ERR] = {"out_rel_err", "relative output error ||A^V - AV||_F / ||AV||_F", 0, out_rel_err},
};

const char *kx_metric_name(int metric) {
  return metric >= 0 && metric < KX_N_METRICS ? kx_metrics[metric].name : NULL;
}

int kx_metric_lookup(const char *name) {
  for (int i = 0; i < KX_N_METRICS; i++)
    if (!strcmp(kx_metrics[i].name, name)) return i;
  return -1;
}

const char *kx_metric_list(void) {
  static char list[256];
  if (!list[0])
    for (int i = 0; i < KX_N_METRICS; i++)
      snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? ", " : "", kx_metrics[i].name);
  return list;
}

int kx_metric_defined(int k, int kernel_estimator) { return kernel_estimator || !kx_metrics[k].needs_kernel; }

int kx_evaluate_log_kernel(const kx_head_reference *r, const double *logK_hat, int kernel_estimator,
                           double metrics[KX_N_METRICS]) {
  const size_t n = r->n;
  double *logA = kx_malloc(n * n * sizeof *logA), *out = kx_malloc(n * r->dv * sizeof *out);
  int rc = logA && out ? 0 : KX_ENOMEM;
  if (!rc) {
    memcpy(logA, logK_hat, n * n * sizeof *logA);
    rc = kx_attention_log_weights(n, r->causal, logA);
  }
  if (!rc) rc = weighted_values(n, r->dv, logA, r->v, out);
  kx_estimate e = {logK_hat, logA, out};
  for (int k = 0; k < KX_N_METRICS; k++)
    metrics[k] = rc || !kx_metric_defined(k, kernel_estimator) ? NAN : kx_metrics[k].value(r, &e);
  free(logA);
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

int kx_fmap_metrics(const kx_fmap *f, size_t n, size_t dv, const double *q, const double *k,
                    const double *v, int causal, double metrics[KX_N_METRICS]) {
  if (!f || !q || !k || !v || !metrics) return kx_fail(KX_EINVAL, "kx_fmap_metrics: a NULL argument");
  kx_head_reference r;
  int rc = kx_head_reference_init(&r, n, f->d, dv, q, k, v, causal, f->opt.kernel);
  if (rc) return rc;
  rc = kx_evaluate_map(&r, f, metrics);
  kx_head_reference_free(&r);
  return rc;
}
