#include "approx/attention.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "approx/vexp.h"
#include "core/kx_error.h"

int kx_attention_log_weights(size_t n, int causal, double *L) {
  for (size_t i = 0; i < n; i++) {
    double *row = L + i * n;
    size_t end = causal ? i + 1 : n;
    double mx = -INFINITY;
    for (size_t j = 0; j < end; j++)
      if (row[j] > mx) mx = row[j];
    if (!isfinite(mx)) return kx_fail(KX_ENUM, "attention row %zu has no finite logit", i);
    double s = 0;
    for (size_t j = 0; j < end; j++) s += exp(row[j] - mx);
    double lse = mx + log(s);
    for (size_t j = 0; j < end; j++) row[j] -= lse;
    for (size_t j = end; j < n; j++) row[j] = -INFINITY;
  }
  return 0;
}

/* Rows go in blocks so the two products are GEMMs (the n^2 d work runs at
 * BLAS speed) while memory stays O(block x n), never n x n. */
#define KX_ATTN_BLOCK 64

int kx_softmax_attention(size_t n, size_t d, size_t dv, const double *q, const double *k,
                         const double *v, int causal, double *out) {
  if (n == 0) return 0;
  size_t B = n < KX_ATTN_BLOCK ? n : KX_ATTN_BLOCK;
  double *w = kx_malloc(B * n * sizeof *w);
  if (!w) return KX_ENOMEM;
  for (size_t i0 = 0; i0 < n; i0 += B) {
    size_t rows = n - i0 < B ? n - i0 : B;
    size_t keys = causal ? i0 + rows : n; /* keys any row of this block may see */
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)rows, (int)keys, (int)d, 1.0,
                q + i0 * d, (int)d, k, (int)d, 0.0, w, (int)keys);
    for (size_t r = 0; r < rows; r++) {
      double *row = w + r * keys;
      size_t end = causal ? i0 + r + 1 : n;
      double mx = -INFINITY;
      for (size_t j = 0; j < end; j++)
        if (row[j] > mx) mx = row[j];
      if (!isfinite(mx)) {
        free(w);
        return kx_fail(KX_ENUM, "softmax attention: non-finite logit in row %zu", i0 + r);
      }
      double z = 0;
      kx_vexp_shift(end, row, mx, row);
      for (size_t j = 0; j < end; j++) z += row[j];
      for (size_t j = 0; j < end; j++) row[j] /= z;
      for (size_t j = end; j < keys; j++) row[j] = 0;
    }
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)rows, (int)dv, (int)keys, 1.0, w,
                (int)keys, v, (int)dv, 0.0, out + i0 * dv, (int)dv);
  }
  free(w);
  return 0;
}

static double row_max(size_t m, const double *r) {
  double mx = -INFINITY;
  for (size_t f = 0; f < m; f++)
    if (r[f] > mx) mx = r[f];
  return mx;
}

/* out_i from first principles in the log domain: used only for rows whose
 * fast-path denominator underflowed. */
static int exact_row(size_t i, size_t n, size_t m, size_t dv, const double *lq, const double *lk,
                     const double *v, int causal, double *out) {
  size_t end = causal ? i + 1 : n;
  double *lw = kx_malloc(end * sizeof *lw);
  if (!lw) return KX_ENOMEM;
  double mx = -INFINITY;
  for (size_t j = 0; j < end; j++) {
    double a = -INFINITY;
    for (size_t f = 0; f < m; f++)
      if (lq[i * m + f] + lk[j * m + f] > a) a = lq[i * m + f] + lk[j * m + f];
    double s = 0;
    if (isfinite(a))
      for (size_t f = 0; f < m; f++) s += exp(lq[i * m + f] + lk[j * m + f] - a);
    lw[j] = isfinite(a) ? a + log(s) : -INFINITY;
    if (lw[j] > mx) mx = lw[j];
  }
  if (!isfinite(mx)) {
    free(lw);
    return kx_fail(KX_ENUM, "linear attention: query %zu has zero estimated weight on every key", i);
  }
  double z = 0;
  for (size_t j = 0; j < end; j++) z += (lw[j] = exp(lw[j] - mx));
  double *o = out + i * dv;
  memset(o, 0, dv * sizeof *o);
  for (size_t j = 0; j < end; j++)
    for (size_t t = 0; t < dv; t++) o[t] += lw[j] / z * v[j * dv + t];
  free(lw);
  return 0;
}

int kx_linear_attention(size_t n, size_t m, size_t dv, const double *lq, const double *lk,
                        const double *v, int causal, double *out) {
  if (n == 0) return 0;
  double *S = kx_calloc(m * dv, sizeof *S); /* sum_j phi(k_j)^T v_j, scaled by exp(-kmax) */
  double *z = kx_calloc(m, sizeof *z);      /* sum_j phi(k_j), same scale */
  double *pq = kx_malloc(m * sizeof *pq), *pk = kx_malloc(m * sizeof *pk);
  int rc = 0;
  if (!S || !z || !pq || !pk) {
    rc = KX_ENOMEM;
    goto done;
  }
  double kmax = -INFINITY; /* the scale of S and z */
  if (!causal) {
    for (size_t j = 0; j < n; j++) {
      double r = row_max(m, lk + j * m);
      if (r > kmax) kmax = r;
    }
  }
  size_t next_key = 0;
  for (size_t i = 0; i < n; i++) {
    size_t keys_needed = causal ? i + 1 : n;
    for (; next_key < keys_needed; next_key++) {
      const double *l = lk + next_key * m;
      double r = row_max(m, l);
      if (causal && r > kmax) {
        /* a larger key arrived: rescale what we have to the new maximum */
        double scale = isfinite(kmax) ? exp(kmax - r) : 0.0;
        for (size_t t = 0; t < m * dv; t++) S[t] *= scale;
        for (size_t f = 0; f < m; f++) z[f] *= scale;
        kmax = r;
      }
      if (isfinite(kmax)) kx_vexp_shift(m, l, kmax, pk);
      else memset(pk, 0, m * sizeof *pk);
      cblas_dger(CblasRowMajor, (int)m, (int)dv, 1.0, pk, 1, v + next_key * dv, 1, S, (int)dv);
      for (size_t f = 0; f < m; f++) z[f] += pk[f];
    }
    const double *l = lq + i * m;
    double a = row_max(m, l);
    if (isfinite(a)) kx_vexp_shift(m, l, a, pq);
    else memset(pq, 0, m * sizeof *pq);
    double den = 0;
    for (size_t f = 0; f < m; f++) den += pq[f] * z[f];
    if (den > 1e-290 && isfinite(den)) {
      cblas_dgemv(CblasRowMajor, CblasTrans, (int)m, (int)dv, 1.0 / den, S, (int)dv, pq, 1, 0.0,
                  out + i * dv, 1);
    } else if ((rc = exact_row(i, n, m, dv, lq, lk, v, causal, out))) {
      goto done;
    }
  }
done:
  free(S);
  free(z);
  free(pq);
  free(pk);
  return rc;
}
