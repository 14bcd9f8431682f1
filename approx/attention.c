#include "approx/attention.h"

#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "approx/vexp.h"
#include "core/kx_error.h"

static double row_max_until(const double *row, size_t end) {
  double mx = -INFINITY;
  for (size_t j = 0; j < end; j++)
    if (row[j] > mx) mx = row[j];
  return mx;
}

static int dead_row(size_t i) { return kx_fail(KX_ENUM, "attention row %zu has no finite logit", i); }

int kx_attention_rows_check(size_t n, int causal, const double *L) {
  for (size_t i = 0; i < n; i++)
    if (!isfinite(row_max_until(L + i * n, causal ? i + 1 : n))) return dead_row(i);
  return 0;
}

int kx_attention_log_weights(size_t n, int causal, double *L) {
  for (size_t i = 0; i < n; i++) {
    double *row = L + i * n;
    size_t end = causal ? i + 1 : n;
    double mx = row_max_until(row, end);
    if (!isfinite(mx)) return dead_row(i);
    double s = 0;
    for (size_t j = 0; j < end; j++) s += exp(row[j] - mx);
    double lse = mx + log(s);
    for (size_t j = 0; j < end; j++) row[j] -= lse;
    for (size_t j = end; j < n; j++) row[j] = -INFINITY;
  }
  return 0;
}

/* Rows go in blocks so the two products are GEMMs (the n^2 d work runs at
 * BLAS speed) while memory stays O(block x n) per thread, never n x n.
 * Blocks run in parallel under OpenMP, each through single-threaded BLAS:
 * a block's result is then the same whichever thread computes it, and no
 * BLAS worker threads are left spinning to compete with the OpenMP work
 * that follows (with two-thread OpenBLAS here, the feature map timed right
 * after this on two cores ran 5x slower). */
#define KX_ATTN_BLOCK 64

/* One block of rows [i0, i0 + rows); w holds rows x n.  Returns the first
 * row whose logits are all non-finite, or SIZE_MAX. */
static size_t softmax_block(size_t i0, size_t rows, size_t n, size_t d, size_t dv, const double *q,
                            const double *k, const double *v, int causal, double *w, double *out) {
  size_t keys = causal ? i0 + rows : n; /* keys any row of this block may see */
  cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)rows, (int)keys, (int)d, 1.0, q + i0 * d, (int)d, k,
              (int)d, 0.0, w, (int)keys);
  for (size_t r = 0; r < rows; r++) {
    double *row = w + r * keys;
    size_t end = causal ? i0 + r + 1 : n;
    double mx = -INFINITY;
    for (size_t j = 0; j < end; j++)
      if (row[j] > mx) mx = row[j];
    if (!isfinite(mx)) return i0 + r;
    double z = 0;
    kx_vexp_shift(end, row, mx, row);
    for (size_t j = 0; j < end; j++) z += row[j];
    for (size_t j = 0; j < end; j++) row[j] /= z;
    for (size_t j = end; j < keys; j++) row[j] = 0;
  }
  cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)rows, (int)dv, (int)keys, 1.0, w, (int)keys, v,
              (int)dv, 0.0, out + i0 * dv, (int)dv);
  return SIZE_MAX;
}

int kx_softmax_attention(size_t n, size_t d, size_t dv, const double *q, const double *k,
                         const double *v, int causal, double *out) {
  if (n == 0) return 0;
  const size_t B = n < KX_ATTN_BLOCK ? n : KX_ATTN_BLOCK, blocks = (n + B - 1) / B;
  const int blas_threads = openblas_get_num_threads();
  if (blas_threads != 1) openblas_set_num_threads(1);
  size_t bad_row = SIZE_MAX;
  int no_memory = 0;
#pragma omp parallel if (blocks >= 2)
  {
    double *w = malloc(B * n * sizeof *w);
    if (!w) {
#pragma omp atomic write
      no_memory = 1;
    }
    /* Causal blocks grow with their index: the largest go first. */
#pragma omp for schedule(dynamic, 1)
    for (size_t b = 0; b < blocks; b++) {
      const size_t i0 = (causal ? blocks - 1 - b : b) * B, rows = n - i0 < B ? n - i0 : B;
      size_t bad = w ? softmax_block(i0, rows, n, d, dv, q, k, v, causal, w, out) : SIZE_MAX;
      if (bad != SIZE_MAX) {
#pragma omp critical(kx_softmax_bad_row)
        if (bad < bad_row) bad_row = bad;
      }
    }
    free(w);
  }
  if (blas_threads != 1) openblas_set_num_threads(blas_threads);
  if (no_memory) return kx_fail(KX_ENOMEM, "softmax attention: out of memory for %zu x %zu weights", B, n);
  if (bad_row != SIZE_MAX) return kx_fail(KX_ENUM, "softmax attention: non-finite logit in row %zu", bad_row);
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

/* Linear attention goes in chunks of C rows.  Keys of earlier chunks are
 * summarised by the m x (dv+1) state [S | z] (V gets a column of ones, so
 * one product yields numerators and denominators); a chunk's queries take
 *   [N | den] = [diag(e) phi(Q_c) | W] [S|z ; V_c|1],
 * W the masked in-chunk weights phi(Q_c) phi(K_c)^T, as one GEMM, and its
 * keys join the state through another: BLAS-3 on C rows instead of one
 * rank-1 update and one matrix-vector product per token.  The chunks run in
 * order with single-threaded BLAS (at these sizes OpenBLAS's threads cost
 * more than they save); on two threads the causal pass is cut in two parts
 * (causal_parts), computing the same bits, so results do not depend on the
 * thread count.
 *
 * Stabilisation: key j enters as exp(lk_j - rmax_j) (its own maximum) times
 * exp(rmax_j - R_i), R_i the largest rmax over the keys query i may see
 * (all keys if not causal); the state is kept at the shift R of the last
 * key it holds and rescaled when R grows.  R_i depends on keys <= i only,
 * so no future key influences an output, not even through a rounding. */
#define KX_LIN_CHUNK 32

typedef struct {
  size_t m, dv, C, ld; /* ld = m + C: row length of cat */
  double *pq;    /* C x m     exp(lq_i - max lq_i) */
  double *pk;    /* C x m     exp(lk_j - rmax_j), zero rows where rmax_j = -inf */
  double *rmax;  /* C */
  double *reach; /* C         R_i */
  double *cat;   /* C x ld    [diag(e) pq | W] */
  double *stack; /* (m + C) x (dv+1)  [S|z ; V_c|1] */
  double *vs;    /* C x (dv+1)  [V_c|1] scaled for the state */
  double *num;   /* C x (dv+1) */
  double *shift; /* C */
  double P;      /* shift of the state; -inf while it holds no finite key */
} lin_work;

static void lin_work_free(lin_work *w) {
  free(w->pq), free(w->pk), free(w->rmax), free(w->reach), free(w->cat), free(w->stack);
  free(w->vs), free(w->num), free(w->shift);
}

static int lin_work_init(lin_work *w, size_t n, size_t m, size_t dv) {
  const size_t C = n < KX_LIN_CHUNK ? n : KX_LIN_CHUNK, dx = dv + 1;
  *w = (lin_work){.m = m, .dv = dv, .C = C, .ld = m + C, .P = -INFINITY};
  w->pq = kx_malloc(C * m * sizeof(double));
  w->pk = kx_malloc(C * m * sizeof(double));
  w->rmax = kx_malloc(C * sizeof(double));
  w->reach = kx_malloc(C * sizeof(double));
  w->cat = kx_malloc(C * w->ld * sizeof(double));
  w->stack = kx_calloc((m + C) * dx, sizeof(double));
  w->vs = kx_malloc(C * dx * sizeof(double));
  w->num = kx_malloc(C * dx * sizeof(double));
  w->shift = kx_malloc(C * sizeof(double));
  if (w->pq && w->pk && w->rmax && w->reach && w->cat && w->stack && w->vs && w->num && w->shift)
    return 0;
  lin_work_free(w);
  return KX_ENOMEM;
}

/* exp(l_r - max l_r) for each row (the maxima into mx if wanted); a row
 * without a finite entry becomes zeros. */
static void exp_rows_own_max(size_t rows, size_t m, const double *l, double *p, double *mx) {
  for (size_t r = 0; r < rows; r++) {
    const double a = row_max(m, l + r * m);
    if (mx) mx[r] = a;
    if (isfinite(a)) kx_vexp_shift(m, l + r * m, a, p + r * m);
    else memset(p + r * m, 0, m * sizeof *p);
  }
}

/* [V_c|1] below the state in the stack. */
static void lin_load_values(lin_work *w, size_t rows, const double *v) {
  const size_t dx = w->dv + 1;
  double *vx = w->stack + w->m * dx;
  for (size_t r = 0; r < rows; r++) {
    memcpy(vx + r * dx, v + r * w->dv, w->dv * sizeof *v);
    vx[r * dx + w->dv] = 1.0;
  }
}

/* num for the chunk's queries (w->pq, w->reach set; keys of the chunk in
 * w->pk, w->rmax and the stack if causal). */
static void lin_queries(lin_work *w, size_t rows, int causal) {
  const size_t m = w->m, dx = w->dv + 1, ld = w->ld;
  for (size_t i = 0; i < rows; i++) {
    double *c = w->cat + i * ld;
    const double e = isfinite(w->P) ? (w->reach[i] == w->P ? 1.0 : exp(w->P - w->reach[i])) : 0.0;
    for (size_t f = 0; f < m; f++) c[f] = e * w->pq[i * m + f];
  }
  size_t K = m;
  if (causal) {
    K = m + rows;
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)rows, (int)rows, (int)m, 1.0, w->pq,
                (int)m, w->pk, (int)m, 0.0, w->cat + m, (int)ld);
    for (size_t i = 0; i < rows; i++) {
      double *row = w->cat + i * ld + m;
      if (isfinite(w->reach[i])) {
        for (size_t j = 0; j <= i; j++) w->shift[j] = w->rmax[j] - w->reach[i];
        kx_vexp(i + 1, w->shift, w->shift); /* exp(-inf) = 0: keys without features */
        for (size_t j = 0; j <= i; j++) row[j] *= w->shift[j];
      } else {
        memset(row, 0, (i + 1) * sizeof *row);
      }
      memset(row + i + 1, 0, (rows - i - 1) * sizeof *row);
    }
  }
  cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)rows, (int)dx, (int)K, 1.0, w->cat,
              (int)ld, w->stack, (int)dx, 0.0, w->num, (int)dx);
}

/* The chunk's keys (w->pk, w->rmax, values in the stack) join the state,
 * which moves to shift R: S = S exp(P - R) + pk^T diag(exp(rmax - R)) [V|1]. */
static void lin_absorb(lin_work *w, size_t rows, double R) {
  const size_t m = w->m, dx = w->dv + 1;
  if (!isfinite(R)) return; /* no finite key yet: the state stays zero */
  if (isfinite(w->P) && R != w->P) {
    const double e = exp(w->P - R);
    for (size_t t = 0; t < m * dx; t++) w->stack[t] *= e;
  }
  w->P = R;
  const double *vx = w->stack + m * dx;
  for (size_t r = 0; r < rows; r++) {
    const double e = isfinite(w->rmax[r]) ? exp(w->rmax[r] - R) : 0.0;
    for (size_t t = 0; t < dx; t++) w->vs[r * dx + t] = e * vx[r * dx + t];
  }
  cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)m, (int)dx, (int)rows, 1.0, w->pk, (int)m,
              w->vs, (int)dx, 1.0, w->stack, (int)dx);
}

/* out rows from num; rows whose denominator underflowed go the exact way. */
static int lin_emit(const lin_work *w, size_t i0, size_t rows, size_t n, const double *lq,
                    const double *lk, const double *v, int causal, double *out) {
  const size_t dx = w->dv + 1, dv = w->dv;
  for (size_t r = 0; r < rows; r++) {
    const double den = w->num[r * dx + dv];
    if (den > 1e-290 && isfinite(den)) {
      const double inv = 1.0 / den;
      for (size_t t = 0; t < dv; t++) out[(i0 + r) * dv + t] = w->num[r * dx + t] * inv;
    } else {
      int rc = exact_row(i0 + r, n, w->m, dv, lq, lk, v, causal, out);
      if (rc) return rc;
    }
  }
  return 0;
}

/* The causal pass for the queries of chunks [c0, c1), continuing from the
 * state after chunks [0, c0), which it first rebuilds by absorbing those
 * chunks' keys alone: the same operations in the same order as a pass over
 * them makes (the shifts R depend on keys only), so the state, and every
 * output, has the same bits whichever part computes it. */
static int causal_part(lin_work *w, size_t n, size_t c0, size_t c1, const double *lq, const double *lk,
                       const double *v, double *out) {
  const size_t m = w->m, dv = w->dv, C = w->C;
  int rc = 0;
  for (size_t c = 0; c < c1 && !rc; c++) {
    const size_t i0 = c * C, rows = n - i0 < C ? n - i0 : C;
    exp_rows_own_max(rows, m, lk + i0 * m, w->pk, w->rmax);
    lin_load_values(w, rows, v + i0 * dv);
    double R = w->P;
    for (size_t r = 0; r < rows; r++) w->reach[r] = R = fmax(R, w->rmax[r]);
    if (c >= c0) {
      exp_rows_own_max(rows, m, lq + i0 * m, w->pq, NULL);
      lin_queries(w, rows, 1);
      rc = lin_emit(w, i0, rows, n, lq, lk, v, 1, out);
    }
    if (!rc) lin_absorb(w, rows, R);
  }
  return rc;
}

/* Chunks below this run as one part: the second part's replay of the
 * first part's keys would cost more than the second thread saves. */
#define KX_LIN_PARALLEL_CHUNKS 8

/* The causal pass on up to two threads: the first takes the first
 * KX_LIN_SPLIT_NUM/KX_LIN_SPLIT_DEN of the chunks, the second replays their
 * keys (about 0.4 of the cost of a whole chunk, measured at m = d_v = 64)
 * and takes the rest, so both finish about together.  Not inside another
 * parallel region: callers that run heads on threads already use them. */
#define KX_LIN_SPLIT_NUM 5
#define KX_LIN_SPLIT_DEN 8
static int causal_parts(lin_work *w, size_t n, const double *lq, const double *lk, const double *v,
                        double *out) {
  const size_t chunks = (n + w->C - 1) / w->C;
  if (omp_in_parallel() || omp_get_max_threads() < 2 || chunks < KX_LIN_PARALLEL_CHUNKS)
    return causal_part(w, n, 0, chunks, lq, lk, v, out);
  lin_work w2;
  if (lin_work_init(&w2, n, w->m, w->dv)) return causal_part(w, n, 0, chunks, lq, lk, v, out);
  const size_t split = chunks * KX_LIN_SPLIT_NUM / KX_LIN_SPLIT_DEN;
  int rc[2] = {0, 0};
  char message[2][512] = {"", ""};
  /* A loop, not one part per thread id: should the runtime grant one
   * thread, it makes both parts. */
#pragma omp parallel for num_threads(2) schedule(static, 1)
  for (int id = 0; id < 2; id++) {
    rc[id] = id ? causal_part(&w2, n, split, chunks, lq, lk, v, out) : causal_part(w, n, 0, split, lq, lk, v, out);
    /* Messages are thread-local: carry them out of the region. */
    if (rc[id]) snprintf(message[id], sizeof message[id], "%s", kx_error_message());
  }
  lin_work_free(&w2);
  for (int id = 0; id < 2; id++) /* the earliest failing row's part first, as one pass would */
    if (rc[id]) return kx_fail(rc[id], "%s", message[id]);
  return 0;
}

int kx_linear_attention(size_t n, size_t m, size_t dv, const double *lq, const double *lk,
                        const double *v, int causal, double *out) {
  if (n == 0) return 0;
  if (m == 0) return kx_fail(KX_EINVAL, "linear attention needs at least one feature (m = 0)");
  lin_work w;
  int rc = lin_work_init(&w, n, m, dv);
  if (rc) return rc;
  const size_t C = w.C;
  /* Touched only when needed: callers that run heads on several threads
   * have set OpenBLAS to one thread already, and then nothing global
   * changes under them. */
  const int blas_threads = openblas_get_num_threads();
  if (blas_threads != 1) openblas_set_num_threads(1);
  if (!causal) {
    double R = -INFINITY; /* every query sees every key: one shift */
    for (size_t j = 0; j < n; j++) R = fmax(R, row_max(m, lk + j * m));
    for (size_t j0 = 0; j0 < n; j0 += C) {
      const size_t rows = n - j0 < C ? n - j0 : C;
      exp_rows_own_max(rows, m, lk + j0 * m, w.pk, w.rmax);
      lin_load_values(&w, rows, v + j0 * dv);
      lin_absorb(&w, rows, R);
    }
    for (size_t i0 = 0; i0 < n && !rc; i0 += C) {
      const size_t rows = n - i0 < C ? n - i0 : C;
      exp_rows_own_max(rows, m, lq + i0 * m, w.pq, NULL);
      for (size_t r = 0; r < rows; r++) w.reach[r] = R;
      lin_queries(&w, rows, 0);
      rc = lin_emit(&w, i0, rows, n, lq, lk, v, 0, out);
    }
  } else {
    rc = causal_parts(&w, n, lq, lk, v, out);
  }
  if (blas_threads != 1) openblas_set_num_threads(blas_threads);
  lin_work_free(&w);
  return rc;
}
