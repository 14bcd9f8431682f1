/* The causal linear-attention kernel (dec_linear_causal) and the linear
 * attention kinds built on it.
 *
 * Kernel: the chunked float32 computation against a float64 quadratic
 * (masked T x T) reference written here from the formulas of
 * dec_linear_causal.h, for several T not multiples of the chunk, with and
 * without decay, normalised or not; causality (bit-exact: future rows enter
 * only through exact zeros of the mask and never the running state); and
 * the backward pass against central differences of the float64 reference;
 * heads run in parallel on 1 and 2 threads give bit-identical results.
 *
 * Kinds (the loss and every gradient are compared with an independent
 * PyTorch implementation in tests/torch_reference.py): in the whole model,
 * changing future tokens leaves every earlier logit bit-identical (the key
 * stabiliser must not see the future); the attention-weights hook
 * reproduces the attention output; init is reproducible and the fixed
 * projections are frozen.
 *
 * Tolerances.  One float32 operation has relative error u = 2^-24; an
 * output that is a sum of K rounded terms carries about sqrt(K) u times the
 * sum of the terms' magnitudes (uncorrelated rounding errors, random walk);
 * a factor 10 covers the tail of that walk.  For the forward pass the
 * magnitudes are computed exactly in float64 (sum_j |s_ij| |v_jk|, and the
 * same for den), so the bound is per element; the same for the gradients
 * (grad_magnitudes), where the normalised form cancels strongly
 * (dnum_i . v_j + dden_i is proportional to v_j - o_i).  K counts
 * the dependent sums: a dot product of m features, the sum over at most T
 * positions (inside the chunk and through the state), and for gradients the
 * forward's sums followed by the backward's (dv + 1 + T + m). */
#include <check.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/kx_error.h"
#include "core/kx_seed.h"
#include "experiments/model/dec_attn.h"
#include "experiments/model/dec_convert.h"
#include "experiments/model/dec_layers.h"
#include "experiments/model/dec_linear_causal.h"
#include "experiments/model/dec_model.h"
#include "experiments/model/dec_window.h"
#include "tests/test_support.h"

static const double U = 5.96e-8; /* 2^-24 */

/* Every test buffer is tracked (test_support.h) and freed after each test. */
static double *dvec(size_t n) { return kx_test_track(calloc(n ? n : 1, sizeof(double))); }

/* A kernel problem with strided rows; positive features when normalised
 * (as every normalised kind has), signed ones otherwise. */
typedef struct {
  kx_lin_causal p;
  float *fq, *fk, *v, *o, *den, *scratch, *fscratch; /* fscratch: forward only, its exact size */
} problem;

static problem make(size_t T, size_t m, size_t dv, float decay, int normalise, size_t chunk) {
  problem q;
  kx_lin_causal p = {T, m, dv, m + 2, dv + 3, dv + 5, decay, normalise, 1e-6f, chunk, NULL};
  q.p = p;
  q.fq = kx_test_zeros(T * p.ld_f), q.fk = kx_test_zeros(T * p.ld_f), q.v = kx_test_zeros(T * p.ld_v);
  q.o = kx_test_zeros(T * p.ld_o), q.den = kx_test_zeros(T), q.scratch = kx_test_zeros(kx_lin_causal_scratch_floats(&p));
  q.fscratch = kx_test_zeros(kx_lin_causal_forward_scratch_floats(&p));
  for (size_t t = 0; t < T; t++) {
    for (size_t k = 0; k < m; k++) {
      double a = kx_test_nrand(), b = kx_test_nrand();
      q.fq[t * p.ld_f + k] = (float)(normalise ? exp(0.5 * a) : a);
      q.fk[t * p.ld_f + k] = (float)(normalise ? exp(0.5 * b) : b);
    }
    for (size_t k = 0; k < dv; k++) q.v[t * p.ld_v + k] = (float)kx_test_nrand();
  }
  return q;
}

/* float64 quadratic reference: o (T, dv) contiguous; with magnitudes
 * mag (T, dv) of the error bound when mag != NULL.  Inputs as float or
 * double arrays through the accessor below. */
typedef struct {
  const kx_lin_causal *p;
  const double *fq, *fk, *v; /* contiguous (T,m), (T,m), (T,dv) */
} ref_in;

static void reference(const ref_in *r, double *o, double *mag) {
  const kx_lin_causal *p = r->p;
  size_t T = p->T, m = p->m, dv = p->dv;
  for (size_t i = 0; i < T; i++) {
    double den = 0, den_abs = 0;
    double *oi = o + i * dv;
    for (size_t k = 0; k < dv; k++) oi[k] = 0;
    if (mag)
      for (size_t k = 0; k < dv; k++) mag[i * dv + k] = 0;
    for (size_t j = 0; j <= i; j++) {
      double s = 0, s_abs = 0, w = pow(p->decay, (double)(i - j));
      for (size_t l = 0; l < m; l++) {
        s += r->fq[i * m + l] * r->fk[j * m + l];
        s_abs += fabs(r->fq[i * m + l] * r->fk[j * m + l]);
      }
      s *= w, s_abs *= w;
      den += s, den_abs += s_abs;
      for (size_t k = 0; k < dv; k++) {
        oi[k] += s * r->v[j * dv + k];
        if (mag) mag[i * dv + k] += s_abs * fabs(r->v[j * dv + k]);
      }
    }
    if (p->normalise) {
      double inv = 1.0 / (den + p->eps);
      for (size_t k = 0; k < dv; k++) {
        oi[k] *= inv;
        if (mag) mag[i * dv + k] = mag[i * dv + k] * fabs(inv) + fabs(oi[k]) * den_abs * fabs(inv);
      }
    }
  }
}

static void to_double(const problem *q, double *fq, double *fk, double *v) {
  const kx_lin_causal *p = &q->p;
  for (size_t t = 0; t < p->T; t++) {
    for (size_t k = 0; k < p->m; k++) fq[t * p->m + k] = q->fq[t * p->ld_f + k], fk[t * p->m + k] = q->fk[t * p->ld_f + k];
    for (size_t k = 0; k < p->dv; k++) v[t * p->dv + k] = q->v[t * p->ld_v + k];
  }
}

/* Chunked == quadratic to round-off; returns the number of violations. */
static int check_forward(size_t T, size_t m, size_t dv, float decay, int normalise, size_t chunk) {
  problem q = make(T, m, dv, decay, normalise, chunk);
  const kx_lin_causal *p = &q.p;
  kx_lin_causal_forward(p, q.fq, q.fk, q.v, q.o, normalise ? q.den : NULL, q.fscratch);
  double *fq = dvec(T * m), *fk = dvec(T * m), *v = dvec(T * dv), *o = dvec(T * dv), *mag = dvec(T * dv);
  to_double(&q, fq, fk, v);
  ref_in r = {p, fq, fk, v};
  reference(&r, o, mag);
  double K = (double)(m + T + 2);
  int bad = 0;
  for (size_t i = 0; i < T; i++)
    for (size_t k = 0; k < dv; k++) {
      double got = q.o[i * p->ld_o + k], want = o[i * dv + k], tol = 10 * sqrt(K) * U * mag[i * dv + k];
      if (!(fabs(got - want) <= tol)) {
        if (bad++ < 5)
          fprintf(stderr, "T %zu g %g norm %d chunk %zu: o[%zu][%zu] = %.9g, reference %.9g, tol %.3g\n", T,
                  decay, normalise, chunk, i, k, got, want, tol);
      }
    }
  /* The quadratic C form (attention-weights hook) against the reference. */
  float *A = kx_test_zeros(T * T);
  kx_lin_causal_weights(p, q.fq, q.fk, A);
  for (size_t i = 0; i < T; i++)
    for (size_t k = 0; k < dv; k++) {
      double s = 0, s_abs = 0;
      for (size_t j = 0; j <= i; j++) s += A[i * T + j] * v[j * dv + k], s_abs += fabs(A[i * T + j] * v[j * dv + k]);
      if (!normalise) continue; /* rows |s| / sum |s|: their sums are checked below */
      if (!(fabs(s - o[i * dv + k]) <= 10 * sqrt(K) * U * mag[i * dv + k] + 10 * sqrt(K) * U * s_abs))
        if (bad++ < 5) fprintf(stderr, "weights row %zu: A v = %.9g, reference %.9g\n", i, s, o[i * dv + k]);
    }
  for (size_t i = 0; i < T; i++) {
    double sum = 0;
    for (size_t j = 0; j <= i; j++) sum += A[i * T + j];
    if (!normalise && !(fabs(sum - 1) <= 10 * sqrt((double)T) * U)) bad++;
    for (size_t j = i + 1; j < T; j++) bad += A[i * T + j] != 0.0f;
  }
  return bad;
}

START_TEST(test_chunked_equals_quadratic) {
  static const size_t Ts[] = {1, 5, 16, 37, 100};
  int bad = 0;
  for (size_t a = 0; a < sizeof Ts / sizeof *Ts; a++)
    for (int norm = 0; norm <= 1; norm++)
      for (int dec = 0; dec <= 1; dec++) bad += check_forward(Ts[a], 7, 6, dec ? 0.9f : 1.0f, norm, 16);
  /* default chunk, T past two chunks, head-sized features */
  bad += check_forward(150, 32, 32, 0.97f, 1, 0);
  bad += check_forward(150, 32, 32, 1.0f, 0, 0);
  ck_assert_int_eq(bad, 0);
}
END_TEST

/* Changing rows t >= t0 of fq, fk, v leaves rows t < t0 of o and den
 * bit-identical. */
START_TEST(test_causality) {
  for (int norm = 0; norm <= 1; norm++) {
    size_t T = 45, m = 5, dv = 4;
    problem q = make(T, m, dv, norm ? 1.0f : 0.8f, norm, 16);
    const kx_lin_causal *p = &q.p;
    float *o0 = kx_test_zeros(T * p->ld_o), *den0 = kx_test_zeros(T);
    size_t t0s[] = {1, 20, 32, 44};
    for (size_t a = 0; a < 4; a++) {
      size_t t0 = t0s[a];
      kx_lin_causal_forward(p, q.fq, q.fk, q.v, o0, q.den, q.fscratch);
      memcpy(den0, q.den, T * sizeof(float));
      for (size_t t = t0; t < T; t++) {
        for (size_t k = 0; k < m; k++) q.fq[t * p->ld_f + k] *= 7.0f, q.fk[t * p->ld_f + k] *= 3.0f;
        for (size_t k = 0; k < dv; k++) q.v[t * p->ld_v + k] += 100.0f;
      }
      kx_lin_causal_forward(p, q.fq, q.fk, q.v, q.o, q.den, q.fscratch);
      for (size_t t = 0; t < t0; t++) {
        ck_assert_int_eq(memcmp(q.o + t * p->ld_o, o0 + t * p->ld_o, dv * sizeof(float)), 0);
        if (norm) ck_assert_float_eq(q.den[t], den0[t]);
      }
      ck_assert(memcmp(q.o + t0 * p->ld_o, o0 + t0 * p->ld_o, dv * sizeof(float)) != 0);
    }
  }
}
END_TEST

/* The scratch holds nothing between calls: one filled with NaN and inf
 * (what a freed buffer of an earlier model may leave) gives the same bits
 * as a zeroed one, forward and backward, over several chunks. */
START_TEST(test_scratch_contents_do_not_matter) {
  for (int norm = 0; norm <= 1; norm++)
    for (int dec = 0; dec <= 1; dec++) {
      problem q = make(70, 6, 5, dec ? 0.9f : 1.0f, norm, 16);
      const kx_lin_causal *p = &q.p;
      size_t nf = kx_lin_causal_forward_scratch_floats(p), nb = kx_lin_causal_scratch_floats(p);
      float *o0 = kx_test_zeros(70 * p->ld_o), *den0 = kx_test_zeros(70);
      float *g = kx_test_zeros(70 * p->ld_o), *dfq0 = kx_test_zeros(70 * p->ld_f), *dfk0 = kx_test_zeros(70 * p->ld_f);
      float *dv0 = kx_test_zeros(70 * p->ld_v), *dfq = kx_test_zeros(70 * p->ld_f), *dfk = kx_test_zeros(70 * p->ld_f);
      float *dv = kx_test_zeros(70 * p->ld_v);
      for (size_t i = 0; i < 70 * p->ld_o; i++) g[i] = (float)kx_test_nrand();
      kx_lin_causal_forward(p, q.fq, q.fk, q.v, o0, norm ? den0 : NULL, q.fscratch);
      kx_lin_causal_backward(p, q.fq, q.fk, q.v, o0, den0, g, dfq0, dfk0, dv0, q.scratch);
      for (size_t i = 0; i < nf; i++) q.fscratch[i] = i % 3 == 0 ? NAN : i % 3 == 1 ? INFINITY : -INFINITY;
      for (size_t i = 0; i < nb; i++) q.scratch[i] = i % 2 ? NAN : INFINITY;
      kx_lin_causal_forward(p, q.fq, q.fk, q.v, q.o, norm ? q.den : NULL, q.fscratch);
      ck_assert_int_eq(memcmp(q.o, o0, 70 * p->ld_o * sizeof(float)), 0);
      if (norm) ck_assert_int_eq(memcmp(q.den, den0, 70 * sizeof(float)), 0);
      kx_lin_causal_backward(p, q.fq, q.fk, q.v, o0, den0, g, dfq, dfk, dv, q.scratch);
      ck_assert_int_eq(memcmp(dfq, dfq0, 70 * p->ld_f * sizeof(float)), 0);
      ck_assert_int_eq(memcmp(dfk, dfk0, 70 * p->ld_f * sizeof(float)), 0);
      ck_assert_int_eq(memcmp(dv, dv0, 70 * p->ld_v * sizeof(float)), 0);
    }
}
END_TEST

/* Heads in parallel, as the attention kinds run them: the kernel's
 * forward and backward give bit-identical results on 1 and 2 OpenMP
 * threads (each head's chunks, BLAS calls and sums are the same whichever
 * thread runs it), with and without decay and normalisation. */
START_TEST(test_thread_count_independence) {
  enum { HEADS = 5 };
  for (int norm = 0; norm <= 1; norm++) {
    problem q[HEADS];
    float *out[2][HEADS][5];
    for (size_t h = 0; h < HEADS; h++) q[h] = make(150 + 9 * h, 16, 12, norm ? 1.0f : 0.9f, norm, 0);
    for (int threads = 1; threads <= 2; threads++) {
      for (size_t h = 0; h < HEADS; h++) {
        const kx_lin_causal *p = &q[h].p;
        out[threads - 1][h][0] = kx_test_zeros(p->T * p->ld_o), out[threads - 1][h][1] = kx_test_zeros(p->T);
        out[threads - 1][h][2] = kx_test_zeros(p->T * p->ld_f), out[threads - 1][h][3] = kx_test_zeros(p->T * p->ld_f);
        out[threads - 1][h][4] = kx_test_zeros(p->T * p->ld_v);
      }
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads)
      for (size_t h = 0; h < HEADS; h++) {
        const kx_lin_causal *p = &q[h].p;
        float **r = out[threads - 1][h], *dout = q[h].o; /* any fixed rows serve as dout */
        kx_lin_causal_forward(p, q[h].fq, q[h].fk, q[h].v, r[0], norm ? r[1] : NULL, q[h].scratch);
        kx_lin_causal_backward(p, q[h].fq, q[h].fk, q[h].v, r[0], r[1], dout, r[2], r[3], r[4], q[h].scratch);
      }
    }
    for (size_t h = 0; h < HEADS; h++) {
      const kx_lin_causal *p = &q[h].p;
      const size_t sizes[5] = {p->T * p->ld_o, p->T, p->T * p->ld_f, p->T * p->ld_f, p->T * p->ld_v};
      for (int k = 0; k < 5; k++)
        ck_assert_msg(memcmp(out[0][h][k], out[1][h][k], sizes[k] * sizeof(float)) == 0,
                      "head %zu, output %d (o, den, dfq, dfk, dv) differs between 1 and 2 threads", h, k);
    }
  }
}
END_TEST

/* f = sum_ik R_ik o_ik in float64 from double inputs. */
static double ref_loss(const ref_in *r, const double *R, double *o) {
  reference(r, o, NULL);
  double f = 0;
  for (size_t i = 0; i < r->p->T * r->p->dv; i++) f += R[i] * o[i];
  return f;
}

/* Counts entries of one gradient (float C gradient gc, row stride ldc,
 * width w) that differ from central differences of the float64 reference
 * by more than 10 sqrt(K) u mag (the step, 1e-5 relative, leaves
 * truncation ~1e-10 and round-off ~1e-11, far below float32 round-off). */
static int grad_check(ref_in *r, double *x, size_t rows, size_t w, const float *gc, size_t ldc, const double *mag,
                      double K, const double *R, double *o, const char *what) {
  int bad = 0;
  for (size_t t = 0; t < rows; t++)
    for (size_t k = 0; k < w; k++) {
      double *xi = &x[t * w + k], x0 = *xi, h = 1e-5 * (fabs(x0) + 1e-3);
      *xi = x0 + h;
      double fp = ref_loss(r, R, o);
      *xi = x0 - h;
      double fm = ref_loss(r, R, o);
      *xi = x0;
      double fd = (fp - fm) / (2 * h), an = gc[t * ldc + k], tol = 10 * sqrt(K) * U * mag[t * w + k];
      if (!(fabs(fd - an) <= tol) && bad++ < 3)
        fprintf(stderr, "T %zu g %g norm %d: %s[%zu][%zu] backward %.9g, finite difference %.9g, tol %.3g\n",
                r->p->T, r->p->decay, r->p->normalise, what, t, k, an, fd, tol);
    }
  return bad;
}

/* Error magnitudes of the three gradients: every product in the backward
 * sums taken in absolute value (dfq_i = sum_j g^(i-j) (gn_i . vx_j) fk_j
 * with gn_i = [dout_i, -(dout_i . o_i)] / (den_i + eps), vx_j = [v_j, 1] when
 * normalised; gn = dout, vx = v otherwise; the same for dfk and dv). */
static void grad_magnitudes(const ref_in *r, const double *R, const double *o, double *mq, double *mk,
                            double *mv) {
  const kx_lin_causal *p = r->p;
  size_t T = p->T, m = p->m, dv = p->dv;
  memset(mq, 0, T * m * sizeof *mq), memset(mk, 0, T * m * sizeof *mk), memset(mv, 0, T * dv * sizeof *mv);
  for (size_t i = 0; i < T; i++) {
    double den = 0;
    for (size_t j = 0; j <= i; j++) {
      double s = 0;
      for (size_t l = 0; l < m; l++) s += r->fq[i * m + l] * r->fk[j * m + l];
      den += pow(p->decay, (double)(i - j)) * s;
    }
    double inv = p->normalise ? 1.0 / fabs(den + p->eps) : 1.0, dden = 0;
    if (p->normalise)
      for (size_t k = 0; k < dv; k++) dden += fabs(R[i * dv + k] * o[i * dv + k]) * inv;
    for (size_t j = 0; j <= i; j++) {
      double w = pow(p->decay, (double)(i - j)), gv = dden, sa = 0;
      for (size_t k = 0; k < dv; k++) gv += fabs(R[i * dv + k] * r->v[j * dv + k]) * inv;
      for (size_t l = 0; l < m; l++) {
        mq[i * m + l] += w * gv * fabs(r->fk[j * m + l]);
        mk[j * m + l] += w * gv * fabs(r->fq[i * m + l]);
        sa += fabs(r->fq[i * m + l] * r->fk[j * m + l]);
      }
      for (size_t k = 0; k < dv; k++) mv[j * dv + k] += w * sa * fabs(R[i * dv + k]) * inv;
    }
  }
}

static int check_backward(size_t T, size_t m, size_t dv, float decay, int normalise, size_t chunk) {
  problem q = make(T, m, dv, decay, normalise, chunk);
  const kx_lin_causal *p = &q.p;
  kx_lin_causal_forward(p, q.fq, q.fk, q.v, q.o, q.den, q.fscratch);
  float *dout = kx_test_zeros(T * p->ld_o), *dfq = kx_test_zeros(T * p->ld_f), *dfk = kx_test_zeros(T * p->ld_f), *dv_ = kx_test_zeros(T * p->ld_v);
  double *R = dvec(T * dv);
  for (size_t t = 0; t < T; t++)
    for (size_t k = 0; k < dv; k++) dout[t * p->ld_o + k] = (float)(R[t * dv + k] = kx_test_nrand());
  kx_lin_causal_backward(p, q.fq, q.fk, q.v, q.o, q.den, dout, dfq, dfk, dv_, q.scratch);
  double *fq = dvec(T * m), *fk = dvec(T * m), *v = dvec(T * dv), *o = dvec(T * dv);
  double *mq = dvec(T * m), *mk = dvec(T * m), *mv = dvec(T * dv);
  to_double(&q, fq, fk, v);
  ref_in r = {p, fq, fk, v};
  reference(&r, o, NULL);
  grad_magnitudes(&r, R, o, mq, mk, mv);
  double K = 2.0 * (double)(m + T) + (double)dv + 1;
  return grad_check(&r, fq, T, m, dfq, p->ld_f, mq, K, R, o, "dfq") +
         grad_check(&r, fk, T, m, dfk, p->ld_f, mk, K, R, o, "dfk") +
         grad_check(&r, v, T, dv, dv_, p->ld_v, mv, K, R, o, "dv");
}

START_TEST(test_backward) {
  int bad = 0;
  static const size_t Ts[] = {1, 13, 40};
  for (size_t a = 0; a < 3; a++)
    for (int norm = 0; norm <= 1; norm++)
      for (int dec = 0; dec <= 1; dec++) bad += check_backward(Ts[a], 5, 4, dec ? 0.85f : 1.0f, norm, 8);
  ck_assert_int_eq(bad, 0);
}
END_TEST

/* ---- the sliding-window hybrid (dec_window.h) ----
 *
 * The chunked, banded, shifted float32 form against a float64 quadratic
 * reference written here from the formula (unshifted exponentials), for
 * windows below, across and beyond the 32-row blocks and the kernel's
 * chunks, with and without decay, with lam spread over +-20 (so the shift
 * M_i is set by either part); w >= T against plain softmax attention; w = 0
 * against the linear kernel itself; the backward pass (every input and
 * beta) against central differences of the reference.
 *
 * Tolerance.  As for the kernel (10 sqrt(K) u times the magnitude of the
 * terms, K the dependent sums: features m, logits dqk, T positions), plus
 * the exponentials: each exponent x = a - M_i is formed in float from an
 * argument a (a logit, with absolute error about u scale sum |q k|, or
 * beta + lam_i) and the row's shift M_i (whose own error is common to the
 * row and cancels between numerator and denominator), so exp(x) carries a
 * relative error up to u (|a| + |M_i|); A is the largest such |a| + |M_i|
 * of the problem (from the reference), and the bound per element is
 *   10 u (sqrt(K) + A) mag,
 * mag the sum of the magnitudes of the terms (float64). */
typedef struct {
  kx_win_causal p;
  float *q, *k, *fq, *fk, *v, *lam, *o, *stats, *scratch;
  float beta;
} wproblem;

enum { W_DQK = 6 };

static wproblem wmake(size_t T, size_t w, size_t m, size_t dv, float decay, double lam_spread, size_t chunk) {
  wproblem a;
  kx_win_causal p = {{T, m, dv, m + 2, dv + 3, dv + 5, decay, 1, 1e-6f, chunk, NULL}, w, W_DQK, W_DQK + 1,
                     1.0f / sqrtf((float)W_DQK), 0};
  a.p = p;
  a.q = kx_test_zeros(T * p.ld_qk), a.k = kx_test_zeros(T * p.ld_qk);
  a.fq = kx_test_zeros(T * p.lin.ld_f), a.fk = kx_test_zeros(T * p.lin.ld_f);
  a.v = kx_test_zeros(T * p.lin.ld_v), a.lam = kx_test_zeros(T), a.o = kx_test_zeros(T * p.lin.ld_o);
  a.stats = kx_test_zeros(T * KX_WIN_STATS);
  a.scratch = kx_test_zeros(kx_win_scratch_floats(&p));
  a.beta = 0.3f;
  for (size_t t = 0; t < T; t++) {
    for (size_t c = 0; c < W_DQK; c++)
      a.q[t * p.ld_qk + c] = (float)(1.5 * kx_test_nrand()), a.k[t * p.ld_qk + c] = (float)(1.5 * kx_test_nrand());
    for (size_t c = 0; c < m; c++)
      a.fq[t * p.lin.ld_f + c] = (float)exp(0.5 * kx_test_nrand()),
      a.fk[t * p.lin.ld_f + c] = (float)exp(0.5 * kx_test_nrand());
    for (size_t c = 0; c < dv; c++) a.v[t * p.lin.ld_v + c] = (float)kx_test_nrand();
    a.lam[t] = (float)(lam_spread * (2 * kx_test_urand() - 1));
  }
  return a;
}

/* The problem's inputs in float64, contiguous. */
typedef struct {
  const kx_win_causal *p;
  double *q, *k, *fq, *fk, *v, *lam, beta;
} wref_in;

static wref_in wref_of(const wproblem *a) {
  const kx_win_causal *p = &a->p;
  size_t T = p->lin.T, m = p->lin.m, dv = p->lin.dv;
  wref_in r = {p, dvec(T * W_DQK), dvec(T * W_DQK), dvec(T * m), dvec(T * m), dvec(T * dv), dvec(T), a->beta};
  for (size_t t = 0; t < T; t++) {
    for (size_t c = 0; c < W_DQK; c++)
      r.q[t * W_DQK + c] = a->q[t * p->ld_qk + c], r.k[t * W_DQK + c] = a->k[t * p->ld_qk + c];
    for (size_t c = 0; c < m; c++)
      r.fq[t * m + c] = a->fq[t * p->lin.ld_f + c], r.fk[t * m + c] = a->fk[t * p->lin.ld_f + c];
    for (size_t c = 0; c < dv; c++) r.v[t * dv + c] = a->v[t * p->lin.ld_v + c];
    r.lam[t] = a->lam[t];
  }
  return r;
}

/* e_ij of the formula (unshifted), and the |argument| of its exponential
 * for the bound. */
static double wterm(const wref_in *r, size_t i, size_t j, double *arg) {
  const kx_win_causal *p = r->p;
  size_t m = p->lin.m, w = p->window;
  if (j + w > i) {
    double s = 0, s_abs = 0, sc = 1.0 / sqrt((double)W_DQK);
    for (size_t c = 0; c < W_DQK; c++) {
      s += r->q[i * W_DQK + c] * r->k[j * W_DQK + c];
      s_abs += fabs(r->q[i * W_DQK + c] * r->k[j * W_DQK + c]);
    }
    *arg = sc * s_abs;
    return exp(sc * s);
  }
  double f = 0;
  for (size_t c = 0; c < m; c++) f += r->fq[i * m + c] * r->fk[j * m + c];
  *arg = fabs(r->beta) + fabs(r->lam[i]);
  return exp(r->beta + r->lam[i]) * pow(p->lin.decay, (double)(i - w - j)) * f;
}

/* y (T, dv) and den (T) of the formula; with mag != NULL also mag (T, dv)
 * and A of the bound. */
static void wreference(const wref_in *r, double *y, double *den, double *mag, double *A) {
  const kx_win_causal *p = r->p;
  size_t T = p->lin.T, dv = p->lin.dv, w = p->window;
  if (A) *A = 0;
  for (size_t i = 0; i < T; i++) {
    double d = 0, D = 0, shift = -INFINITY, arg, args = 0;
    for (size_t c = 0; c < dv; c++) y[i * dv + c] = 0;
    for (size_t j = 0; j <= i; j++) {
      double e = wterm(r, i, j, &arg);
      d += e;
      if (j + w <= i) D += e;
      args = arg > args ? arg : args;
      for (size_t c = 0; c < dv; c++) y[i * dv + c] += e * r->v[j * dv + c];
      if (j + w > i) shift = fmax(shift, log(e));
    }
    if (i >= w) {
      double rho = exp(r->beta + r->lam[i]);
      d += rho * p->lin.eps;
      shift = fmax(shift, log(D + rho * p->lin.eps)); /* M_i */
    }
    den[i] = d;
    for (size_t c = 0; c < dv; c++) y[i * dv + c] /= d;
    if (!mag) continue;
    for (size_t c = 0; c < dv; c++) {
      double mg = 0;
      for (size_t j = 0; j <= i; j++) mg += wterm(r, i, j, &arg) * (fabs(r->v[j * dv + c]) + fabs(y[i * dv + c]));
      mag[i * dv + c] = mg / d;
    }
    *A = fmax(*A, args + fabs(shift));
  }
}

static double wbound(const kx_win_causal *p, double A, double mag) {
  double K = (double)(p->lin.m + p->dqk + p->lin.T + 2);
  return 10 * U * (sqrt(K) + A) * mag;
}

/* C forward against the reference, and the weights hook's rows (A v = y,
 * rows summing to 1 but for the linear part's eps, zero above the
 * diagonal); returns the violations. */
static int check_window_forward(size_t T, size_t w, float decay, double lam_spread, size_t chunk) {
  wproblem a = wmake(T, w, 5, 4, decay, lam_spread, chunk);
  const kx_win_causal *p = &a.p;
  size_t dv = p->lin.dv;
  kx_win_forward(p, a.q, a.k, a.fq, a.fk, a.v, a.lam, a.beta, a.o, a.stats, a.scratch);
  wref_in r = wref_of(&a);
  double *y = dvec(T * dv), *den = dvec(T), *mag = dvec(T * dv), A;
  wreference(&r, y, den, mag, &A);
  float *Aw = kx_test_zeros(T * T);
  kx_win_weights(p, a.q, a.k, a.fq, a.fk, a.stats, Aw);
  int bad = 0;
  double row_tol = 10 * (sqrt((double)T) + A) * U;
  for (size_t i = 0; i < T; i++) {
    double sum = 0;
    for (size_t j = 0; j < T; j++) {
      sum += Aw[i * T + j];
      if (j > i) bad += Aw[i * T + j] != 0.0f;
    }
    if (!(sum <= 1 + row_tol && sum >= 1 - p->lin.eps - row_tol) && bad++ < 5)
      fprintf(stderr, "T %zu w %zu: weights row %zu sums to %.9g\n", T, w, i, sum);
    for (size_t c = 0; c < dv; c++) {
      double got = a.o[i * p->lin.ld_o + c], want = y[i * dv + c], tol = wbound(p, A, mag[i * dv + c]), av = 0;
      if (!(fabs(got - want) <= tol) && bad++ < 5)
        fprintf(stderr, "T %zu w %zu g %g: y[%zu][%zu] = %.9g, reference %.9g, tol %.3g\n", T, w, decay, i, c, got,
                want, tol);
      for (size_t j = 0; j <= i; j++) av += (double)Aw[i * T + j] * r.v[j * dv + c];
      if (!(fabs(av - want) <= 2 * tol) && bad++ < 5)
        fprintf(stderr, "T %zu w %zu: weights row %zu: A v = %.9g, reference %.9g\n", T, w, i, av, want);
    }
  }
  return bad;
}

START_TEST(test_window_forward) {
  static const size_t Ts[] = {1, 5, 37, 100}, ws[] = {1, 3, 16, 40, 150};
  int bad = 0;
  for (size_t a = 0; a < 4; a++)
    for (size_t b = 0; b < 5; b++)
      for (int dec = 0; dec <= 1; dec++) bad += check_window_forward(Ts[a], ws[b], dec ? 0.9f : 1.0f, 20.0, 8);
  bad += check_window_forward(150, 16, 0.97f, 20.0, 0); /* the default chunk */
  ck_assert_int_eq(bad, 0);
}
END_TEST

/* w >= T: softmax attention, computed here as a softmax (not from the
 * hybrid's formula); w = 0: the linear kernel's own normalised output. */
START_TEST(test_window_limits) {
  int bad = 0;
  for (size_t T = 1; T <= 70; T += 23) {
    wproblem a = wmake(T, T + 3 * (T % 2), 5, 4, 1.0f, 20.0, 8);
    const kx_win_causal *p = &a.p;
    size_t dv = p->lin.dv;
    kx_win_forward(p, a.q, a.k, a.fq, a.fk, a.v, a.lam, a.beta, a.o, a.stats, a.scratch);
    wref_in r = wref_of(&a);
    double *y = dvec(T * dv), *den = dvec(T), *mag = dvec(T * dv), A, *s = dvec(T);
    wreference(&r, y, den, mag, &A); /* for the bound's magnitudes */
    for (size_t i = 0; i < T; i++) {
      double mx = -INFINITY, sum = 0;
      for (size_t j = 0; j <= i; j++) {
        s[j] = 0;
        for (size_t c = 0; c < W_DQK; c++) s[j] += r.q[i * W_DQK + c] * r.k[j * W_DQK + c] / sqrt((double)W_DQK);
        mx = fmax(mx, s[j]);
      }
      for (size_t j = 0; j <= i; j++) sum += exp(s[j] - mx);
      for (size_t c = 0; c < dv; c++) {
        double want = 0, got = a.o[i * p->lin.ld_o + c];
        for (size_t j = 0; j <= i; j++) want += exp(s[j] - mx) / sum * r.v[j * dv + c];
        if (!(fabs(got - want) <= wbound(p, A, mag[i * dv + c])) && bad++ < 5)
          fprintf(stderr, "w >= T = %zu: y[%zu][%zu] = %.9g, softmax %.9g\n", T, i, c, got, want);
      }
    }
  }
  for (int dec = 0; dec <= 1; dec++) {
    size_t T = 77, dv = 4;
    wproblem a = wmake(T, 0, 5, dv, dec ? 0.9f : 1.0f, 20.0, 8);
    const kx_win_causal *p = &a.p;
    float *o = kx_test_zeros(T * p->lin.ld_o), *dl = kx_test_zeros(T);
    float *ks = kx_test_zeros(kx_lin_causal_scratch_floats(&p->lin));
    kx_win_forward(p, a.q, a.k, a.fq, a.fk, a.v, a.lam, a.beta, a.o, a.stats, a.scratch);
    kx_lin_causal_forward(&p->lin, a.fq, a.fk, a.v, o, dl, ks);
    wref_in r = wref_of(&a);
    double *y = dvec(T * dv), *den = dvec(T), *mag = dvec(T * dv), A;
    wreference(&r, y, den, mag, &A);
    for (size_t i = 0; i < T; i++)
      for (size_t c = 0; c < dv; c++) {
        float got = a.o[i * p->lin.ld_o + c], want = o[i * p->lin.ld_o + c];
        if (!(fabs(got - want) <= 2 * wbound(p, A, mag[i * dv + c])) && bad++ < 5)
          fprintf(stderr, "w = 0: y[%zu][%zu] = %.9g, the kernel %.9g\n", i, c, got, want);
      }
  }
  ck_assert_int_eq(bad, 0);
}
END_TEST

/* f = sum R y of the reference. */
static double wloss(const wref_in *r, const double *R, double *y, double *den) {
  wreference(r, y, den, NULL, NULL);
  double f = 0;
  for (size_t i = 0; i < r->p->lin.T * r->p->lin.dv; i++) f += R[i] * y[i];
  return f;
}

/* Central difference of f in *x; step 1e-5 (|x| + 1): the double round-off
 * 2^-52 |f| / h and the truncation h^2 |f3| / 6 (f3 the third derivative)
 * both stay below 1e-8 here. */
static double wfd(const wref_in *r, double *x, const double *R, double *y, double *den) {
  double x0 = *x, h = 1e-5 * (fabs(x0) + 1);
  *x = x0 + h;
  double fp = wloss(r, R, y, den);
  *x = x0 - h;
  double fm = wloss(r, R, y, den);
  *x = x0;
  return (fp - fm) / (2 * h);
}

/* Magnitudes of the backward's terms (each taken in absolute value): with
 * de_ij = R_i . (v_j - y_i) / den_i, a window term gives dq_i, dk_j through
 * scale e_ij de_ij k_j (q_i) and beta through e_ij de_ij (rows with a
 * linear part), a linear term dfq_i, dfk_j through exp(beta + lam_i)
 * g^(i-w-j) de_ij fk_j (fq_i) and beta through e_ij de_ij, and dv_j gets
 * e_ij R_i / den_i. */
static void wgrad_magnitudes(const wref_in *r, const double *R, const double *y, const double *den, double *mq,
                             double *mk, double *mfq, double *mfk, double *mv, double *mb) {
  const kx_win_causal *p = r->p;
  size_t T = p->lin.T, m = p->lin.m, dv = p->lin.dv, w = p->window;
  double sc = 1.0 / sqrt((double)W_DQK), arg;
  *mb = 0;
  for (size_t i = 0; i < T; i++)
    for (size_t j = 0; j <= i; j++) {
      double e = wterm(r, i, j, &arg), de = 0;
      for (size_t c = 0; c < dv; c++) {
        de += fabs(R[i * dv + c]) * (fabs(r->v[j * dv + c]) + fabs(y[i * dv + c])) / den[i];
        mv[j * dv + c] += e * fabs(R[i * dv + c]) / den[i];
      }
      if (j + w > i) {
        for (size_t c = 0; c < W_DQK; c++) {
          mq[i * W_DQK + c] += sc * e * de * fabs(r->k[j * W_DQK + c]);
          mk[j * W_DQK + c] += sc * e * de * fabs(r->q[i * W_DQK + c]);
        }
        if (i >= w) *mb += e * de;
      } else {
        double c0 = exp(r->beta + r->lam[i]) * pow(p->lin.decay, (double)(i - w - j)) * de;
        for (size_t c = 0; c < m; c++) {
          mfq[i * m + c] += c0 * r->fk[j * m + c];
          mfk[j * m + c] += c0 * r->fq[i * m + c];
        }
        *mb += e * de;
      }
    }
}

/* Entries of the C gradient gc (row stride ldc) that differ from finite
 * differences in x (rows x width, contiguous) by more than the bound. */
static int wgrad_check(const wref_in *r, double *x, size_t rows, size_t width, const float *gc, size_t ldc,
                       const double *mag, double A, const double *R, double *y, double *den, const char *what) {
  int bad = 0;
  for (size_t t = 0; t < rows; t++)
    for (size_t c = 0; c < width; c++) {
      double fd = wfd(r, &x[t * width + c], R, y, den), an = gc[t * ldc + c];
      double tol = wbound(r->p, A, mag[t * width + c]) + 1e-8;
      if (!(fabs(fd - an) <= tol) && bad++ < 3)
        fprintf(stderr, "T %zu w %zu g %g: %s[%zu][%zu] backward %.9g, finite difference %.9g, tol %.3g\n",
                r->p->lin.T, r->p->window, r->p->lin.decay, what, t, c, an, fd, tol);
    }
  return bad;
}

static int check_window_backward(size_t T, size_t w, float decay) {
  wproblem a = wmake(T, w, 5, 4, decay, 3.0, 8);
  const kx_win_causal *p = &a.p;
  size_t m = p->lin.m, dv = p->lin.dv;
  kx_win_forward(p, a.q, a.k, a.fq, a.fk, a.v, a.lam, a.beta, a.o, a.stats, a.scratch);
  float *dout = kx_test_zeros(T * p->lin.ld_o), *dq = kx_test_zeros(T * p->ld_qk), *dk = kx_test_zeros(T * p->ld_qk);
  float *dfq = kx_test_zeros(T * p->lin.ld_f), *dfk = kx_test_zeros(T * p->lin.ld_f);
  float *dv_ = kx_test_zeros(T * p->lin.ld_v), dbeta = 0.0f;
  double *R = dvec(T * dv);
  for (size_t t = 0; t < T; t++)
    for (size_t c = 0; c < dv; c++) dout[t * p->lin.ld_o + c] = (float)(R[t * dv + c] = kx_test_nrand());
  kx_win_backward_linear(p, a.fq, a.fk, a.v, a.o, a.stats, dout, dfq, dfk, dv_, a.scratch);
  kx_win_backward_window(p, a.q, a.k, a.v, a.o, a.stats, dout, dq, dk, dv_, &dbeta, a.scratch);
  wref_in r = wref_of(&a);
  double *y = dvec(T * dv), *den = dvec(T), *mag = dvec(T * dv), A;
  wreference(&r, y, den, mag, &A);
  double *mq = dvec(T * W_DQK), *mk = dvec(T * W_DQK), *mfq = dvec(T * m), *mfk = dvec(T * m), *mv = dvec(T * dv);
  double mb;
  wgrad_magnitudes(&r, R, y, den, mq, mk, mfq, mfk, mv, &mb);
  int bad = wgrad_check(&r, r.q, T, W_DQK, dq, p->ld_qk, mq, A, R, y, den, "dq") +
            wgrad_check(&r, r.k, T, W_DQK, dk, p->ld_qk, mk, A, R, y, den, "dk") +
            wgrad_check(&r, r.fq, T, m, dfq, p->lin.ld_f, mfq, A, R, y, den, "dfq") +
            wgrad_check(&r, r.fk, T, m, dfk, p->lin.ld_f, mfk, A, R, y, den, "dfk") +
            wgrad_check(&r, r.v, T, dv, dv_, p->lin.ld_v, mv, A, R, y, den, "dv");
  return bad + wgrad_check(&r, &r.beta, 1, 1, &dbeta, 1, &mb, A, R, y, den, "dbeta");
}

START_TEST(test_window_backward) {
  static const size_t ws[] = {0, 1, 6, 40};
  int bad = 0;
  for (size_t b = 0; b < 4; b++)
    for (int dec = 0; dec <= 1; dec++) bad += check_window_backward(40, ws[b], dec ? 0.85f : 1.0f);
  ck_assert_int_eq(bad, 0);
}
END_TEST

/* ---- the kinds in the whole model ---- */
static const char *const linear_kinds[] = {"performer", "performer-prf", "performer-redraw", "pff",
                                            "cosformer"};
#define N_LINEAR_KINDS (sizeof linear_kinds / sizeof *linear_kinds)
/* The causality and weights tests run on these too (the kinds whose block
 * output is proj of the attention: the weights test's form), and a windowed
 * DiJiang (causality only: a gate follows its attention). */
static const char *const window_kinds[] = {"performer+w5", "performer-redraw+w4", "pff+w33", "cosformer+w3",
                                           "hedgehog+w9", "dijiang+w6"};
#define N_WEIGHT_KINDS (N_LINEAR_KINDS + sizeof window_kinds / sizeof *window_kinds - 1)
#define N_CAUSAL_KINDS (N_WEIGHT_KINDS + 1)
static const char *kind_of(int i) {
  return (size_t)i < N_LINEAR_KINDS ? linear_kinds[i] : window_kinds[(size_t)i - N_LINEAR_KINDS];
}

static void small_model(kx_decoder *m, const char *kind, size_t ctx) {
  kx_dec_config cfg;
  kx_test_config(&cfg, kind, 11, ctx, 32, 4);
  kx_test_model(m, &cfg, 3);
}

/* T = 100 spans two kernel chunks. */
START_TEST(test_kind_causality) {
  const char *kind = kind_of(_i);
  kx_decoder m;
  size_t B = 2, T = 100, t0 = 70, V = 11;
  small_model(&m, kind, T);
  int *tok = kx_test_track(malloc(B * T * sizeof(int)));
  for (size_t i = 0; i < B * T; i++) tok[i] = (int)(kx_mix64(i + 17) % V);
  ck_assert_int_eq(kx_dec_forward(&m, tok, NULL, B, T, NULL), 0);
  float *logits0 = kx_test_zeros(B * T * V);
  memcpy(logits0, m.logits, B * T * V * sizeof(float));
  for (size_t b = 0; b < B; b++)
    for (size_t t = t0; t < T; t++) tok[b * T + t] = (tok[b * T + t] + 1 + (int)(t % 5)) % (int)V;
  ck_assert_int_eq(kx_dec_forward(&m, tok, NULL, B, T, NULL), 0);
  for (size_t b = 0; b < B; b++) {
    ck_assert_msg(memcmp(m.logits + b * T * V, logits0 + b * T * V, t0 * V * sizeof(float)) == 0,
                  "%s: a logit before position %zu moved when later tokens changed", kind, t0);
    ck_assert(memcmp(m.logits + (b * T + t0) * V, logits0 + (b * T + t0) * V, V * sizeof(float)) != 0);
  }
  kx_dec_free(&m);
}
END_TEST

/* y = (A v per head) W_proj^T + b_proj with A from the attn_weights hook
 * must equal the block's attention output.  Each entry of y is a sum over
 * T positions then C channels; tolerance 10 sqrt(T + C) u times the sum of
 * the magnitudes of the terms (float64 here). */
START_TEST(test_kind_weights) {
  const char *kind = kind_of(_i);
  kx_decoder m;
  size_t B = 2, T = 70, V = 11;
  small_model(&m, kind, T);
  int *tok = kx_test_track(malloc(B * T * sizeof(int)));
  for (size_t i = 0; i < B * T; i++) tok[i] = (int)(kx_mix64(i + 5) % V);
  ck_assert_int_eq(kx_dec_forward(&m, tok, NULL, B, T, NULL), 0);
  const kx_dec_config *cfg = &m.cfg;
  size_t C = cfg->width, H = cfg->heads, d = C / H;
  kx_attn_ctx ac = {cfg, B, T, m.rope_cos, m.rope_sin, 0, 0, NULL};
  const float *q, *k, *v;
  size_t dqk, dv;
  int scaled;
  m.attn->qkv_view(&ac, m.blk[0].attn_acts, &q, &k, &v, &dqk, &dv, &scaled);
  ck_assert_uint_eq(dv, d);
  double *att = dvec(B * T * C), *att_abs = dvec(B * T * C);
  float *A = kx_test_zeros(T * T);
  for (size_t b = 0; b < B; b++)
    for (size_t h = 0; h < H; h++) {
      m.attn->attn_weights(&ac, m.attn_p, m.blk[0].attn_acts, b, h, A);
      const float *vh = v + (b * H + h) * T * d;
      for (size_t i = 0; i < T; i++)
        for (size_t j = 0; j < T; j++) {
          if (j > i) ck_assert_float_eq(A[i * T + j], 0.0f);
          for (size_t c = 0; c < d; c++) {
            att[(b * T + i) * C + h * d + c] += (double)A[i * T + j] * vh[j * d + c];
            att_abs[(b * T + i) * C + h * d + c] += fabs((double)A[i * T + j] * vh[j * d + c]);
          }
        }
    }
  const float *W = m.attn_p[2], *bias = m.attn_p[3]; /* proj_w, proj_b: the shared layout */
  int bad = 0;
  for (size_t n = 0; n < B * T; n++)
    for (size_t o = 0; o < C; o++) {
      double y = bias[o], mag = fabs(bias[o]), mag_in = 0;
      for (size_t c = 0; c < C; c++) {
        y += W[o * C + c] * att[n * C + c];
        mag += fabs(W[o * C + c] * att[n * C + c]);
        mag_in += fabs(W[o * C + c]) * att_abs[n * C + c];
      }
      double got = m.blk[0].attn_y[n * C + o], tol = 10 * sqrt((double)(T + C)) * U * (mag + mag_in);
      if (!(fabs(got - y) <= tol) && bad++ < 3)
        fprintf(stderr, "%s: y[%zu][%zu] = %.9g, from the weights %.9g (tol %.3g)\n", kind, n, o, got, y, tol);
    }
  ck_assert_int_eq(bad, 0);
  kx_dec_free(&m);
}
END_TEST

/* A window of the whole context makes a converted model the softmax
 * teacher again: every logit of KIND+wT equals the teacher's (same shared
 * tensors, T = ctx; with no linear part the shift is the row's largest
 * logit, as softmax's).  Tolerance as tests/test_decoder_infer.c's (the
 * same expressions summed in other orders): 2 (L + 1) (T + 4C) u (1 + max
 * |logit|). */
START_TEST(test_window_is_softmax) {
  static const char *const kinds[] = {"performer", "cosformer", "hedgehog"};
  enum { T = 45, V = 11 };
  kx_decoder t, m;
  small_model(&t, "softmax", T);
  char spec[64];
  snprintf(spec, sizeof spec, "%s+w%d", kinds[_i], T);
  ck_assert_msg(kx_dec_convert(&t, spec, 4, &m) == 0, "%s", kx_error_message());
  int tok[T];
  for (size_t i = 0; i < T; i++) tok[i] = (int)(kx_mix64(i + 3) % V);
  ck_assert_int_eq(kx_dec_forward(&t, tok, NULL, 1, T, NULL), 0);
  ck_assert_int_eq(kx_dec_forward(&m, tok, NULL, 1, T, NULL), 0);
  double mx = 0, worst = 0, C = (double)t.cfg.width, L = (double)t.cfg.layers;
  for (size_t i = 0; i < (size_t)T * V; i++) {
    mx = fmax(mx, fabs(t.logits[i]));
    worst = fmax(worst, fabs((double)t.logits[i] - (double)m.logits[i]));
  }
  double tol = 2 * (L + 1) * (T + 4 * C) * U * (1 + mx);
  fprintf(stderr, "%s: max |logit - softmax teacher's| = %.3g (tol %.3g)\n", spec, worst, tol);
  ck_assert_msg(worst <= tol, "%s: %g > %g", spec, worst, tol);
  kx_dec_free(&t);
  kx_dec_free(&m);
}
END_TEST

/* Same seed, same tensors; the fixed projections are frozen, non-zero and
 * differ between layers; a table with only shared tensors has nothing frozen. */
START_TEST(test_kind_init) {
  const char *kind = linear_kinds[_i];
  kx_decoder a, b;
  small_model(&a, kind, 16);
  small_model(&b, kind, 16);
  ck_assert_int_eq(memcmp(a.params, b.params, a.tab.total * sizeof(float)), 0);
  long w0 = kx_ptable_find(&a.tab, "layer0/feat_w"), w1 = kx_ptable_find(&a.tab, "layer1/feat_w");
  if (!strcmp(kind, "cosformer")) {
    ck_assert_int_eq(w0, -1);
  } else {
    ck_assert_int_ge(w0, 0);
    ck_assert_int_ge(w1, 0);
    ck_assert_int_eq(a.tab.t[w0].frozen, 1);
    const float *p0 = kx_dec_param(&a, (size_t)w0), *p1 = kx_dec_param(&a, (size_t)w1);
    double n2 = 0;
    for (size_t i = 0; i < a.tab.t[w0].size; i++) n2 += (double)p0[i] * p0[i];
    ck_assert(n2 > 0);
    ck_assert(memcmp(p0, p1, a.tab.t[w0].size * sizeof(float)) != 0);
  }
  for (size_t i = 0; i < a.tab.n; i++)
    if (strstr(a.tab.t[i].name, "feat_w") == NULL) ck_assert_int_eq(a.tab.t[i].frozen, 0);
  kx_dec_free(&a);
  kx_dec_free(&b);
}
END_TEST

/* performer-redraw's schedule (before the training steps 16, 32, ...):
 * the redraw hook leaves the features alone at step 0 and between
 * multiples of 16, replaces every head's matrix at the multiples, and its
 * draw is a pure function of (seed, step) (the training loop derives the
 * seed from the run's seed and the layer): the same on a model that has
 * seen earlier redraws as on a fresh one, different for another seed or
 * another redraw, and different between heads.  Each head's draw is an ORF block: its
 * d rows are orthogonal (|w_i . w_j| <= 10 sqrt(d) u |w_i| |w_j|, the
 * float32 rounding of the double-precision QR rows and of the dot product). */
START_TEST(test_redraw_schedule) {
  kx_decoder m, f;
  small_model(&m, "performer-redraw", 16);
  small_model(&f, "performer-redraw", 16);
  ck_assert_ptr_nonnull(m.attn->redraw);
  long w0 = kx_ptable_find(&m.tab, "layer0/feat_w");
  ck_assert_int_ge(w0, 0);
  size_t H = m.cfg.heads, d = m.cfg.width / H, n = m.tab.t[w0].size;
  ck_assert_uint_eq(n, H * d * d);
  float *W = kx_dec_param(&m, (size_t)w0), *Wf = kx_dec_param(&f, (size_t)w0);
  float *prev = kx_test_zeros(n), *at16 = kx_test_zeros(n);
  memcpy(prev, W, n * sizeof(float));
  for (uint64_t step = 0; step <= 40; step++) {
    ck_assert_int_eq(m.attn->redraw(&m.cfg, 0, m.attn_p, 5, step), 0);
    int changed = memcmp(prev, W, n * sizeof(float)) != 0;
    ck_assert_msg(changed == (step > 0 && step % 16 == 0), "step %llu: features %s", (unsigned long long)step,
                  changed ? "changed" : "unchanged");
    if (step % 16 == 0 && step > 0)
      for (size_t h = 0; h < H; h++) /* every head is redrawn */
        ck_assert(memcmp(prev + h * d * d, W + h * d * d, d * d * sizeof(float)) != 0);
    if (step == 16) memcpy(at16, W, n * sizeof(float));
    memcpy(prev, W, n * sizeof(float));
  }
  /* a fresh model redrawing straight at step 32 gets what m has after 16 and 32 */
  ck_assert_int_eq(f.attn->redraw(&f.cfg, 0, f.attn_p, 5, 32), 0);
  ck_assert_int_eq(memcmp(W, Wf, n * sizeof(float)), 0);
  ck_assert(memcmp(W, at16, n * sizeof(float)) != 0);
  /* another seed draws other features */
  ck_assert_int_eq(f.attn->redraw(&f.cfg, 0, f.attn_p, 6, 32), 0);
  ck_assert(memcmp(W, Wf, n * sizeof(float)) != 0);
  for (size_t h = 0; h + 1 < H; h++) /* and the heads differ */
    ck_assert(memcmp(W + h * d * d, W + (h + 1) * d * d, d * d * sizeof(float)) != 0);
  for (size_t h = 0; h < H; h++)
    for (size_t i = 0; i < d; i++)
      for (size_t j = 0; j < i; j++) {
        const float *wi = W + (h * d + i) * d, *wj = W + (h * d + j) * d;
        double dot = 0, ni = 0, nj = 0;
        for (size_t k = 0; k < d; k++)
          dot += (double)wi[k] * wj[k], ni += (double)wi[k] * wi[k], nj += (double)wj[k] * wj[k];
        ck_assert_msg(fabs(dot) <= 10 * sqrt((double)d) * U * sqrt(ni * nj), "head %zu rows %zu, %zu: %g", h, i,
                      j, dot);
      }
  kx_dec_free(&m);
  kx_dec_free(&f);
}
END_TEST

int main(void) {
  kx_dec_threads_init();
  Suite *s = kx_test_suite("decoder_linear");
  TCase *tc = kx_test_tracked_case(s, "kernel");
  kx_test_add(tc, (const TTest *const[]){test_chunked_equals_quadratic, test_causality, test_scratch_contents_do_not_matter, test_backward,
                                         test_thread_count_independence, test_window_forward, test_window_limits,
                                         test_window_backward, NULL});
  TCase *tk = kx_test_tracked_case(s, "kinds");
  tcase_add_loop_test(tk, test_kind_causality, 0, (int)N_CAUSAL_KINDS);
  tcase_add_loop_test(tk, test_kind_weights, 0, (int)N_WEIGHT_KINDS);
  tcase_add_loop_test(tk, test_window_is_softmax, 0, 3);
  tcase_add_loop_test(tk, test_kind_init, 0, (int)N_LINEAR_KINDS);
  tcase_add_test(tk, test_redraw_schedule);
  return kx_test_run(s);
}
