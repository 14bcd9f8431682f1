#include "experiments/eval/metrics.h"

#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "approx/attention.h"
#include "approx/kernel.h"
#include "core/kx_cli.h"
#include "core/kx_error.h"

/* A = exp(logA) and out (n x dv) = A v.  libm's exp, as every metric's
 * value has always been computed with: a vector exp rounds differently
 * and would change the published numbers. */
static void weighted_values(size_t n, size_t dv, const double *logA, const double *v, double *A, double *out) {
  for (size_t i = 0; i < n * n; i++) A[i] = exp(logA[i]);
  cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)n, (int)dv, (int)n, 1.0, A, (int)n,
              v, (int)dv, 0.0, out, (int)dv);
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
  r->K = kx_malloc(n * n * sizeof *r->K);
  r->A = kx_malloc(n * n * sizeof *r->A);
  r->AV = kx_malloc(n * dv * sizeof *r->AV);
  int rc = (!r->logK || !r->logA || !r->K || !r->A || !r->AV) ? KX_ENOMEM : 0;
  if (!rc) rc = kx_log_kernel_exact(kernel, n, n, d, q, k, r->logK);
  if (!rc) {
    memcpy(r->logA, r->logK, n * n * sizeof *r->logA);
    rc = kx_attention_log_weights(n, causal, r->logA);
  }
  if (!rc) {
    weighted_values(n, dv, r->logA, v, r->A, r->AV);
    /* Both kernel matrices are scaled by the same exp(-max logK) so
     * nothing overflows; the error's ratio is unchanged. */
    r->logK_max = -INFINITY;
    for (size_t i = 0; i < n * n; i++)
      if (r->logK[i] > r->logK_max) r->logK_max = r->logK[i];
    r->K_sq = 0;
    for (size_t i = 0; i < n * n; i++) {
      r->K[i] = exp(r->logK[i] - r->logK_max);
      r->K_sq += r->K[i] * r->K[i];
    }
  }
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
  free(r->K);
  free(r->A);
  r->logK = r->logA = r->AV = r->K = r->A = NULL;
}

/* ---- the metrics ---------------------------------------------------------- */

static double kernel_rel_fro(const kx_head_reference *r, const kx_estimate *e) {
  const size_t nn = r->n * r->n;
  const double L = r->logK_max;
  double num = 0;
  for (size_t i = 0; i < nn; i++) {
    double a = exp(e->logK[i] - L);
    num += (a - r->K[i]) * (a - r->K[i]);
  }
  return sqrt(num / r->K_sq);
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
      double a = r->A[i * n + j];
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
    for (size_t j = 0; j < row_end(r, i); j++) tv_i += fabs(r->A[i * n + j] - e->A[i * n + j]);
    tv += 0.5 * tv_i;
  }
  return tv / (double)n;
}

static double attn_max_abs(const kx_head_reference *r, const kx_estimate *e) {
  const size_t n = r->n;
  double max_abs = 0;
  for (size_t i = 0; i < n; i++)
    for (size_t j = 0; j < row_end(r, i); j++) {
      double d = fabs(r->A[i * n + j] - e->A[i * n + j]);
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

struct kx_eval_workspace {
  size_t n, max_m;
  double *lq, *lk;         /* n x max_m log features */
  double *logK, *logA, *A; /* n x n estimates */
  double *AV;              /* n x dv */
  double *kernel_work;     /* kx_log_kernel_estimate_work's */
  double *pad;             /* kx_fmap_apply_log_pad's */
};

void kx_eval_workspace_free(kx_eval_workspace *w) {
  if (!w) return;
  free(w->lq);
  free(w->lk);
  free(w->logK);
  free(w->logA);
  free(w->A);
  free(w->AV);
  free(w->kernel_work);
  free(w->pad);
  free(w);
}

kx_eval_workspace *kx_eval_workspace_new(const kx_head_reference *r, size_t max_m) {
  const size_t n = r->n, nn = n * n;
  kx_eval_workspace *w = kx_calloc(1, sizeof *w);
  if (!w) return NULL;
  w->n = n;
  w->max_m = max_m;
  const size_t mm = max_m ? max_m : 1;
  const size_t pad_bytes = (kx_fmap_pad_size(r->d, mm) * sizeof *w->pad + 63) / 64 * 64;
  w->lq = kx_malloc(n * mm * sizeof *w->lq);
  w->lk = kx_malloc(n * mm * sizeof *w->lk);
  w->logK = kx_malloc(nn * sizeof *w->logK);
  w->logA = kx_malloc(nn * sizeof *w->logA);
  w->A = kx_malloc(nn * sizeof *w->A);
  w->AV = kx_malloc(n * r->dv * sizeof *w->AV);
  w->kernel_work = kx_malloc(kx_log_kernel_work_size(n, n, mm) * sizeof *w->kernel_work);
  w->pad = aligned_alloc(64, pad_bytes);
  if (!w->lq || !w->lk || !w->logK || !w->logA || !w->A || !w->AV || !w->kernel_work || !w->pad) {
    kx_eval_workspace_free(w);
    kx_fail(KX_ENOMEM, "out of memory for the evaluation buffers (%zu tokens, m = %zu)", n, max_m);
    return NULL;
  }
  return w;
}

unsigned kx_metric_attention_mask(void) {
  unsigned bits = 0;
  for (int k = 0; k < KX_N_METRICS; k++)
    if (!kx_metrics[k].needs_kernel) bits |= 1u << k;
  return bits;
}

/* The metrics of the estimate in w->logK. */
static int evaluate_estimate(const kx_head_reference *r, kx_eval_workspace *w, int kernel_estimator, unsigned mask,
                             kx_eval_times *times, double metrics[KX_N_METRICS]) {
  const size_t n = r->n;
  if (!mask) mask = ~0u;
  double t0 = times ? kx_thread_cpu_seconds() : 0;
  int rc;
  if (mask & kx_metric_attention_mask()) {
    memcpy(w->logA, w->logK, n * n * sizeof *w->logA);
    rc = kx_attention_log_weights(n, r->causal, w->logA);
    if (!rc) weighted_values(n, r->dv, w->logA, r->v, w->A, w->AV);
  } else {
    rc = kx_attention_rows_check(n, r->causal, w->logK);
  }
  double t1 = times ? kx_thread_cpu_seconds() : 0;
  kx_estimate e = {w->logK, w->logA, w->A, w->AV};
  for (int k = 0; k < KX_N_METRICS; k++)
    metrics[k] = rc || !kx_metric_defined(k, kernel_estimator) || !(mask & (1u << k)) ? NAN
                                                                                      : kx_metrics[k].value(r, &e);
  if (times) {
    times->attention += t1 - t0;
    times->metrics += kx_thread_cpu_seconds() - t1;
  }
  return rc;
}

int kx_evaluate_log_kernel(const kx_head_reference *r, const double *logK_hat, int kernel_estimator,
                           double metrics[KX_N_METRICS]) {
  kx_eval_workspace *w = kx_eval_workspace_new(r, 0);
  if (!w) return KX_ENOMEM;
  memcpy(w->logK, logK_hat, r->n * r->n * sizeof *w->logK);
  int rc = evaluate_estimate(r, w, kernel_estimator, 0, NULL, metrics);
  kx_eval_workspace_free(w);
  return rc;
}

int kx_evaluate_map_work(const kx_head_reference *r, const kx_fmap *f, unsigned mask, kx_eval_workspace *w,
                         kx_eval_times *times, double metrics[KX_N_METRICS]) {
  const size_t n = r->n, m = f->m;
  for (int k = 0; k < KX_N_METRICS; k++) metrics[k] = NAN;
  if (f->d != r->d)
    return kx_fail(KX_EINVAL, "feature map built for d = %zu applied to data with d = %zu", f->d, r->d);
  if (w->n != n || m > w->max_m)
    return kx_fail(KX_EINVAL, "evaluation buffers for %zu tokens and m <= %zu used for %zu tokens and m = %zu",
                   w->n, w->max_m, n, m);
  double t0 = times ? kx_thread_cpu_seconds() : 0;
  int rc = kx_fmap_apply_log_pad(f, n, r->q, w->lq, w->pad);
  if (!rc) rc = kx_fmap_apply_log_pad(f, n, r->k, w->lk, w->pad);
  double t1 = times ? kx_thread_cpu_seconds() : 0;
  if (!rc) kx_log_kernel_estimate_work(n, n, m, w->lq, w->lk, w->logK, w->kernel_work);
  if (times) {
    double t2 = kx_thread_cpu_seconds();
    times->features += t1 - t0;
    times->kernel += t2 - t1;
  }
  if (!rc) rc = evaluate_estimate(r, w, f->type->kernel_estimator, mask, times, metrics);
  return rc;
}

int kx_evaluate_map(const kx_head_reference *r, const kx_fmap *f, double metrics[KX_N_METRICS]) {
  kx_eval_workspace *w = kx_eval_workspace_new(r, f->m);
  if (!w) return KX_ENOMEM;
  int rc = kx_evaluate_map_work(r, f, 0, w, NULL, metrics);
  kx_eval_workspace_free(w);
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
