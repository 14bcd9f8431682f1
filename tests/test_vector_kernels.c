/* Tests of the batched, vectorised kernels: libmvec's
 * exponentials against libm, feature maps that give the same bits for a
 * vector whatever batch it comes in and however many threads run, the DCT
 * batch routes against the one-vector transform, and the chunked causal
 * linear attention against the explicit causal weights. */
#include <cblas.h>
#include <check.h>
#include <float.h>
#include <gsl/gsl_rng.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "approx/attention.h"
#include "approx/dct.h"
#include "approx/fmap.h"
#include "approx/vexp.h"
#include "core/kx_error.h"
#include "samplers/transforms.h"
#include "tests/test_support.h"

/* glibc documents at most 4 ulps for libmvec's exp, log and expf (manual,
 * "Known Maximum Errors in Math Functions"), and libm's own exp/log/expf
 * are below 1 ulp: two results within 4 + 1 ulps of the exact value. */
#define KX_VEC_ULPS 5.0

/* |a - b| in units of the last place of b (the spacing at b's binade, never
 * below the smallest subnormal). */
static double ulps(double a, double b) {
  if (a == b) return 0;
  if (!isfinite(a) || !isfinite(b)) return INFINITY;
  int e;
  frexp(b, &e);
  double u = ldexp(1.0, e - DBL_MANT_DIG);
  if (u < DBL_TRUE_MIN) u = DBL_TRUE_MIN;
  return fabs(a - b) / u;
}

static double ulpsf(float a, float b) {
  if (a == b) return 0;
  if (!isfinite(a) || !isfinite(b)) return INFINITY;
  int e;
  frexpf(b, &e);
  float u = ldexpf(1.0f, e - FLT_MANT_DIG);
  if (u < FLT_TRUE_MIN) u = FLT_TRUE_MIN;
  return fabsf(a - b) / u;
}

/* Every input exp sees in the library: log features and max-shifted log
 * features span everything from underflow (results down to subnormals,
 * below -708) to the overflow limit log(DBL_MAX) = 709.78..., plus -inf
 * (zero weights) and the first inputs past overflow. */
START_TEST(vexp_agrees_with_libm) {
  const size_t n = 1 << 20;
  double *x = malloc((n + 8) * sizeof *x), *y = malloc((n + 8) * sizeof *y);
  const double lo = -745.2, hi = log(DBL_MAX);
  for (size_t i = 0; i < n; i++) x[i] = lo + (hi - lo) * (double)i / (double)(n - 1);
  x[n] = -INFINITY;
  x[n + 1] = hi;
  x[n + 2] = nextafter(hi, INFINITY); /* overflows to inf in both */
  x[n + 3] = 710.0;
  x[n + 4] = -708.4; /* the normal/subnormal boundary */
  x[n + 5] = 0.0;
  x[n + 6] = -0.0;
  x[n + 7] = 1e-300;
  kx_vexp(n + 8, x, y);
  double worst = 0, at = 0;
  for (size_t i = 0; i < n + 8; i++) {
    double ref = exp(x[i]);
    if (isinf(ref) || ref == 0) {
      ck_assert_msg(y[i] == ref, "exp(%.17g): %g, libm %g", x[i], y[i], ref);
      continue;
    }
    double u = ulps(y[i], ref);
    if (u > worst) worst = u, at = x[i];
  }
  ck_assert_msg(worst <= KX_VEC_ULPS, "kx_vexp is %g ulps from libm at x = %.17g", worst, at);
  /* the shifted form is exp of the rounded difference */
  kx_vexp_shift(n, x, 3.5, y);
  for (size_t i = 0; i < n; i += 97) ck_assert(ulps(y[i], exp(x[i] - 3.5)) <= KX_VEC_ULPS);
  /* in place */
  memcpy(y, x, n * sizeof *x);
  kx_vexp(n, y, y);
  for (size_t i = 0; i < n; i += 89) ck_assert(ulps(y[i], exp(x[i])) <= KX_VEC_ULPS);
  free(x);
  free(y);
}
END_TEST

/* Deep underflow, where kx_vexp answers +0 itself instead of letting
 * libmvec call the scalar exp: it must give libm's bits there (+0, not
 * -0 or a subnormal), and libm's value on both sides of its bound. */
START_TEST(vexp_deep_underflow_is_libm_zero) {
  const size_t n = 1 << 16, n_special = 8;
  double *x = malloc((n + n_special) * sizeof *x), *y = malloc((n + n_special) * sizeof *y);
  for (size_t i = 0; i < n; i++) x[i] = -760.0 + 20.0 * (double)i / (double)(n - 1);
  const double special[] = {-INFINITY, -DBL_MAX, -1e300, -1100.0, -746.0, nextafter(-746.0, 0),
                            nextafter(-746.0, -INFINITY), NAN};
  memcpy(x + n, special, sizeof special);
  for (int shifted = 0; shifted <= 1; shifted++) {
    if (shifted) kx_vexp_shift(n + n_special, x, -2.0, y); /* exp(x + 2): the bound moves by 2 */
    else kx_vexp(n + n_special, x, y);
    for (size_t i = 0; i < n + n_special; i++) {
      const double ref = exp(shifted ? x[i] - -2.0 : x[i]);
      if (isnan(ref)) {
        ck_assert_msg(isnan(y[i]), "exp(NaN) must stay NaN, got %g", y[i]);
      } else if (ref == 0) {
        ck_assert_msg(y[i] == 0 && !signbit(y[i]), "shift %d: exp(%.17g) = %g, libm +0", shifted, x[i], y[i]);
      } else {
        ck_assert_msg(ulps(y[i], ref) <= KX_VEC_ULPS, "shift %d: exp(%.17g) = %g, libm %g", shifted, x[i],
                      y[i], ref);
      }
    }
  }
  float *xf = malloc(n * sizeof *xf), *yf = malloc(n * sizeof *yf);
  for (size_t i = 0; i < n; i++) xf[i] = -120.0f + 30.0f * (float)i / (float)(n - 1);
  xf[0] = -INFINITY;
  xf[1] = -FLT_MAX;
  kx_vexpf(n, xf, yf);
  for (size_t i = 0; i < n; i++) {
    const float ref = expf(xf[i]);
    if (ref == 0) ck_assert_msg(yf[i] == 0 && !signbit(yf[i]), "expf(%.9g) = %g, libm +0", xf[i], yf[i]);
    else ck_assert_msg(ulpsf(yf[i], ref) <= KX_VEC_ULPS, "expf(%.9g) = %g, libm %g", xf[i], yf[i], ref);
  }
  free(x), free(y), free(xf), free(yf);
}
END_TEST

START_TEST(vlog_and_vexpf_agree_with_libm) {
  const size_t n = 1 << 18;
  double *x = malloc(n * sizeof *x), *y = malloc(n * sizeof *y);
  /* log: positive doubles from subnormal to huge, log-uniformly */
  for (size_t i = 0; i < n; i++) x[i] = exp2(-1074.0 + 2097.0 * (double)i / (double)(n - 1));
  kx_vlog(n, x, y);
  double worst = 0;
  for (size_t i = 0; i < n; i++) {
    double u = ulps(y[i], log(x[i]));
    if (u > worst) worst = u;
  }
  ck_assert_msg(worst <= KX_VEC_ULPS, "kx_vlog is %g ulps from libm", worst);
  float *xf = malloc(n * sizeof *xf), *yf = malloc(n * sizeof *yf);
  const float lof = -103.9f, hif = logf(FLT_MAX);
  for (size_t i = 0; i < n; i++) xf[i] = lof + (hif - lof) * (float)i / (float)(n - 1);
  kx_vexpf(n, xf, yf);
  worst = 0;
  for (size_t i = 0; i < n; i++) {
    float ref = expf(xf[i]);
    if (ref == 0 || isinf(ref)) {
      ck_assert(yf[i] == ref);
      continue;
    }
    double u = ulpsf(yf[i], ref);
    if (u > worst) worst = u;
  }
  ck_assert_msg(worst <= KX_VEC_ULPS, "kx_vexpf is %g ulps from libm", worst);
  free(x), free(y), free(xf), free(yf);
}
END_TEST

static void random_fill(gsl_rng *rng, size_t n, double sd, double *x) {
  for (size_t i = 0; i < n; i++) x[i] = sd * kx_normal_inv(gsl_rng_uniform_pos(rng));
}

static void set_threads(int t) {
  omp_set_num_threads(t);
  openblas_set_num_threads(t);
}

/* Sizes that reach every route: d = 32 (every type through the SIMD
 * kernels, m = 5d: four types and a signed repeat, the last block
 * partial), d = 128 (SIMD) and d = 100 (II-IV through FFTW's batch plans,
 * DCT-I through the folded dense GEMM). */
static const size_t case_d[] = {32, 128, 100}, case_m[] = {150, 256, 200};

START_TEST(features_do_not_depend_on_batch_or_threads) {
  const size_t d = case_d[_i], m = case_m[_i], N = 4096;
  const size_t batches[] = {1, 7, 64, N};
  gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
  gsl_rng_set(rng, 12);
  double *x = malloc(N * d * sizeof *x), *cq = malloc(64 * d * sizeof *cq), *ck = malloc(64 * d * sizeof *ck);
  random_fill(rng, N * d, 1.0 / sqrt((double)d), x);
  random_fill(rng, 64 * d, 1.0 / sqrt((double)d), cq);
  random_fill(rng, 64 * d, 1.0 / sqrt((double)d), ck);
  double *ref = malloc(N * m * sizeof *ref), *got = malloc(N * m * sizeof *got);
  double *log_ref = malloc(N * m * sizeof *log_ref);
  kx_fmap_options o;
  kx_fmap_default_options(&o);
  o.calib_q = cq;
  o.calib_k = ck;
  o.n_calib_q = o.n_calib_k = 64;
  o.n_calib_pairs = 256;
  for (size_t s = 0; kx_fmap_types[s]; s++) {
    const char *name = kx_fmap_types[s]->name;
    kx_fmap *f = kx_fmap_create(name, d, m, 5, &o);
    if (!f) continue; /* a sequence's dimension limit: not this test's concern */
    for (int want_exp = 0; want_exp <= 1; want_exp++) {
      int (*apply)(const kx_fmap *, size_t, const double *, double *) =
          want_exp ? kx_fmap_apply : kx_fmap_apply_log;
      set_threads(1);
      ck_assert_int_eq(apply(f, N, x, ref), 0);
      if (!want_exp) {
        memcpy(log_ref, ref, N * m * sizeof *ref);
      } else {
        /* maps that exponentiate inside their own batches: still exactly
         * the exponentials of their log features */
        kx_vexp(N * m, log_ref, log_ref);
        ck_assert_msg(!memcmp(ref, log_ref, N * m * sizeof *ref),
                      "%s d=%zu m=%zu: kx_fmap_apply is not kx_vexp of kx_fmap_apply_log", name, d, m);
      }
      for (int threads = 1; threads <= 2; threads++) {
        set_threads(threads);
        for (size_t b = 0; b < sizeof batches / sizeof *batches; b++) {
          const size_t n = batches[b];
          ck_assert_int_eq(apply(f, n, x, got), 0);
          ck_assert_msg(!memcmp(got, ref, n * m * sizeof *got),
                        "%s d=%zu m=%zu: %zu vectors on %d threads differ from one big batch",
                        name, d, m, n, threads);
        }
      }
    }
    kx_fmap_free(f);
  }
  set_threads(1);
  free(x), free(cq), free(ck), free(ref), free(got), free(log_ref);
  gsl_rng_free(rng);
}
END_TEST

/* Log features spread over +-A with per-key offsets up to +-A (so the
 * running maximum grows and falls across chunks and the state is rescaled). */
static void attention_inputs(gsl_rng *rng, size_t n, size_t m, size_t dv, double A, double *lq,
                             double *lk, double *v) {
  for (size_t i = 0; i < n; i++) {
    const double offset = A * (2 * gsl_rng_uniform(rng) - 1);
    for (size_t f = 0; f < m; f++) {
      lq[i * m + f] = 3.0 * kx_normal_inv(gsl_rng_uniform_pos(rng));
      lk[i * m + f] = offset + 3.0 * kx_normal_inv(gsl_rng_uniform_pos(rng));
    }
  }
  random_fill(rng, n * dv, 1.0, v);
}

/* n = 203 spans several chunks and a partial one. */
#define ATTN_N 203
#define ATTN_M 24
#define ATTN_DV 5

START_TEST(linear_attention_is_causal_and_thread_independent) {
  const size_t n = ATTN_N, m = ATTN_M, dv = ATTN_DV, t = 77;
  gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
  gsl_rng_set(rng, 21);
  double *lq = malloc(n * m * sizeof *lq), *lk = malloc(n * m * sizeof *lk), *v = malloc(n * dv * sizeof *v);
  double *ref = malloc(n * dv * sizeof *ref), *got = malloc(n * dv * sizeof *got);
  attention_inputs(rng, n, m, dv, 200.0, lq, lk, v);
  for (int causal = 0; causal <= 1; causal++) {
    set_threads(1);
    ck_assert_int_eq(kx_linear_attention(n, m, dv, lq, lk, v, causal, ref), 0);
    set_threads(2);
    ck_assert_int_eq(kx_linear_attention(n, m, dv, lq, lk, v, causal, got), 0);
    ck_assert_msg(!memcmp(got, ref, n * dv * sizeof *got), "causal=%d: 2 threads differ from 1", causal);
  }
  /* causal: keys and values from t on changed, a far larger key among them
   * (it would move a shared stabiliser): rows before t keep their bits */
  for (size_t j = t; j < n; j++)
    for (size_t f = 0; f < m; f++) lk[j * m + f] += j == t + 1 ? 600.0 : 1.0;
  random_fill(rng, (n - t) * dv, 1.0, v + t * dv);
  set_threads(1);
  ck_assert_int_eq(kx_linear_attention(n, m, dv, lq, lk, v, 1, got), 0);
  ck_assert_msg(!memcmp(got, ref, t * dv * sizeof *got), "a future key changed an earlier output");
  free(lq), free(lk), free(v), free(ref), free(got);
  gsl_rng_free(rng);
}
END_TEST

/* The chunked form against the weights written out in the log domain,
 * w_ij = logsumexp_f(lq_if + lk_jf), with key offsets of +-3 (many keys
 * share the weight while the running maximum still grows) and +-300 (the
 * state is rescaled by factors far below DBL_EPSILON).  Both round each weight's exponent argument
 * (|arg| <= 2A + tails) to eps |arg|, a relative weight error of that size;
 * the output is a convex combination of v, so the two agree to
 * 4 (2A + 50) eps max|v| (the factor 4 for the exp's own ulps). */
START_TEST(linear_attention_matches_log_domain_weights) {
  const size_t n = ATTN_N, m = ATTN_M, dv = ATTN_DV;
  const double A = _i ? 300.0 : 3.0; /* many keys share the weight / one dominates */
  gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
  gsl_rng_set(rng, 22);
  double *lq = malloc(n * m * sizeof *lq), *lk = malloc(n * m * sizeof *lk), *v = malloc(n * dv * sizeof *v);
  double *out = malloc(n * dv * sizeof *out), *lw = malloc(n * sizeof *lw);
  attention_inputs(rng, n, m, dv, A, lq, lk, v);
  double vmax = 0;
  for (size_t i = 0; i < n * dv; i++) vmax = fmax(vmax, fabs(v[i]));
  const double tol = 4.0 * (2 * A + 50.0) * DBL_EPSILON * vmax;
  for (int causal = 0; causal <= 1; causal++) {
    ck_assert_int_eq(kx_linear_attention(n, m, dv, lq, lk, v, causal, out), 0);
    for (size_t i = 0; i < n; i++) {
      const size_t end = causal ? i + 1 : n;
      double top = -INFINITY, z = 0;
      for (size_t j = 0; j < end; j++) {
        double a = -INFINITY, s = 0;
        for (size_t f = 0; f < m; f++) a = fmax(a, lq[i * m + f] + lk[j * m + f]);
        for (size_t f = 0; f < m; f++) s += exp(lq[i * m + f] + lk[j * m + f] - a);
        lw[j] = a + log(s);
        top = fmax(top, lw[j]);
      }
      for (size_t j = 0; j < end; j++) z += (lw[j] = exp(lw[j] - top));
      for (size_t c = 0; c < dv; c++) {
        double o = 0;
        for (size_t j = 0; j < end; j++) o += lw[j] / z * v[j * dv + c];
        ck_assert_msg(fabs(out[i * dv + c] - o) <= tol, "causal=%d row %zu: %.17g vs %.17g", causal, i,
                      out[i * dv + c], o);
      }
    }
  }
  free(lq), free(lk), free(v), free(out), free(lw);
  gsl_rng_free(rng);
}
END_TEST

int main(void) {
  Suite *s = kx_test_suite("vector_kernels");
  TCase *tc = kx_test_case(s, "vexp");
  kx_test_add(tc, (const TTest *const[]){vexp_agrees_with_libm, vexp_deep_underflow_is_libm_zero,
                                         vlog_and_vexpf_agree_with_libm, NULL});
  tc = kx_test_case(s, "batches");
  tcase_add_loop_test(tc, features_do_not_depend_on_batch_or_threads, 0, (int)(sizeof case_d / sizeof *case_d));
  kx_test_add(tc, (const TTest *const[]){linear_attention_is_causal_and_thread_independent, NULL});
  tcase_add_loop_test(tc, linear_attention_matches_log_domain_weights, 0, 2);
  return kx_test_run(s);
}
