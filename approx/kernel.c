#include "approx/kernel.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "approx/vexp.h"
#include "core/kx_error.h"

int kx_log_kernel_exact(kx_kernel kernel, size_t nq, size_t nk, size_t d, const double *q,
                        const double *k, double *logK) {
  if (nq == 0 || nk == 0) return 0;
  cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nq, (int)nk, (int)d, 1.0, q, (int)d, k,
              (int)d, 0.0, logK, (int)nk);
  if (kernel == KX_KERNEL_GAUSS) {
    /* -|q-k|^2/2 = q.k - |q|^2/2 - |k|^2/2 */
    double *kn = kx_malloc(nk * sizeof *kn);
    if (!kn) return KX_ENOMEM;
    for (size_t j = 0; j < nk; j++) {
      double s = 0;
      for (size_t t = 0; t < d; t++) s += k[j * d + t] * k[j * d + t];
      kn[j] = 0.5 * s;
    }
    for (size_t i = 0; i < nq; i++) {
      double s = 0;
      for (size_t t = 0; t < d; t++) s += q[i * d + t] * q[i * d + t];
      for (size_t j = 0; j < nk; j++) logK[i * nk + j] -= 0.5 * s + kn[j];
    }
    free(kn);
  }
  return 0;
}

/* Row maxima, and exp(x - max) in place of a copy; -inf rows keep max -inf. */
static void shift_rows(size_t n, size_t m, const double *l, double *shifted, double *rowmax) {
  for (size_t i = 0; i < n; i++) {
    const double *r = l + i * m;
    double mx = -INFINITY;
    for (size_t f = 0; f < m; f++)
      if (r[f] > mx) mx = r[f];
    rowmax[i] = mx;
    if (isfinite(mx)) kx_vexp_shift(m, r, mx, shifted + i * m);
    else memset(shifted + i * m, 0, m * sizeof *shifted);
  }
}

static double log_sum_exp_pair(size_t m, const double *a, const double *b) {
  double mx = -INFINITY;
  for (size_t f = 0; f < m; f++)
    if (a[f] + b[f] > mx) mx = a[f] + b[f];
  if (!isfinite(mx)) return mx;
  double s = 0;
  for (size_t f = 0; f < m; f++) s += exp(a[f] + b[f] - mx);
  return mx + log(s);
}

size_t kx_log_kernel_work_size(size_t nq, size_t nk, size_t m) { return (nq + nk) * (m + 1); }

void kx_log_kernel_estimate_work(size_t nq, size_t nk, size_t m, const double *lq, const double *lk,
                                 double *logK, double *work) {
  if (nq == 0 || nk == 0) return;
  double *sq = work, *sk = sq + nq * m, *aq = sk + nk * m, *ak = aq + nq;
  shift_rows(nq, m, lq, sq, aq);
  shift_rows(nk, m, lk, sk, ak);
  cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nq, (int)nk, (int)m, 1.0, sq, (int)m,
              sk, (int)m, 0.0, logK, (int)nk);
  for (size_t i = 0; i < nq; i++)
    for (size_t j = 0; j < nk; j++) {
      double g = logK[i * nk + j];
      if (!isfinite(aq[i]) || !isfinite(ak[j])) logK[i * nk + j] = -INFINITY;
      else if (g > 1e-290) logK[i * nk + j] = aq[i] + ak[j] + log(g);
      else logK[i * nk + j] = log_sum_exp_pair(m, lq + i * m, lk + j * m);
    }
}

int kx_log_kernel_estimate(size_t nq, size_t nk, size_t m, const double *lq, const double *lk,
                           double *logK) {
  if (nq == 0 || nk == 0) return 0;
  double *work = kx_malloc(kx_log_kernel_work_size(nq, nk, m) * sizeof *work);
  if (!work) return KX_ENOMEM;
  kx_log_kernel_estimate_work(nq, nk, m, lq, lk, logK, work);
  free(work);
  return 0;
}
