/* Feature maps, kernel estimates and attention (approx/). */
#include <check.h>
#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "approx/attention.h"
#include "approx/fmap.h"
#include "approx/kernel.h"
#include "approx/weight_fit.h"
#include "core/kx_error.h"
#include "tests/test_support.h"

static void random_vector(gsl_rng *r, size_t d, double norm, double *x) {
  double s = 0;
  for (size_t j = 0; j < d; j++) {
    x[j] = gsl_ran_gaussian(r, 1.0);
    s += x[j] * x[j];
  }
  for (size_t j = 0; j < d; j++) x[j] *= norm / sqrt(s);
}

static double dot(size_t d, const double *a, const double *b) {
  double s = 0;
  for (size_t j = 0; j < d; j++) s += a[j] * b[j];
  return s;
}

/* For every scheme flagged unbiased, the mean of phi(q).phi(k) over S seeds
 * must lie within 4 standard errors of the kernel (softmax and Gaussian) (the standard error is
 * measured from the same S samples; a false alarm has probability ~6e-5 per
 * scheme under the normal approximation, which S = 2000 justifies). */
START_TEST(unbiased_schemes_have_mean_kernel) {
  const size_t d = 8, m = 16, S = 2000;
  gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
  double q[8], k[8], pq[16], pk[16];
  random_vector(r, d, 0.6, q);
  random_vector(r, d, 0.6, k);
  int tested = 0;
  for (int kernel = KX_KERNEL_SOFTMAX; kernel <= KX_KERNEL_GAUSS; kernel++) {
    kx_fmap_options opt;
    kx_fmap_default_options(&opt);
    opt.kernel = (kx_kernel)kernel;
    double lkappa;
    kx_log_kernel_exact(opt.kernel, 1, 1, d, q, k, &lkappa);
    const double kappa = exp(lkappa);
    for (size_t t = 0; kx_fmap_types[t]; t++) {
      const kx_fmap_type *T = kx_fmap_types[t];
      if (!T->unbiased) continue;
      tested++;
      double sum = 0, sum2 = 0;
      for (size_t s = 0; s < S; s++) {
        kx_fmap *f = kx_fmap_create(T->name, d, m, s, &opt);
        ck_assert_msg(f != NULL, "%s: %s", T->name, kx_error_message());
        ck_assert_int_eq(kx_fmap_apply(f, 1, q, pq), 0);
        ck_assert_int_eq(kx_fmap_apply(f, 1, k, pk), 0);
        double e = dot(m, pq, pk);
        sum += e;
        sum2 += e * e;
        kx_fmap_free(f);
      }
      double mean = sum / S, se = sqrt((sum2 / S - mean * mean) / (S - 1));
      ck_assert_msg(fabs(mean - kappa) < 4 * se, "%s (%s kernel): mean %g vs kernel %g (se %g)", T->name,
                    kernel ? "Gaussian" : "softmax", mean, kappa, se);
    }
  }
  ck_assert_int_ge(tested, 2 * 5); /* prf, orf, pff-mc, pff-sobol, pff-halton at least */
  gsl_rng_free(r);
}
END_TEST

/* PRF's relative MSE is (exp(|q+k|^2) - 1)/m (docs/methods.md#prf).  The measured
 * mean of S squared relative errors is compared with it within 4 of its own
 * standard errors. */
START_TEST(prf_mse_matches_closed_form) {
  const size_t d = 16, S = 20000;
  const size_t ms[] = {2, 8};
  gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
  gsl_rng_set(r, 3);
  double q[16], k[16], s2 = 0;
  /* small norms keep the squared errors light-tailed, so S samples pin the
   * MSE to a few percent and a wrong m (m+1, m-1) would be detected */
  random_vector(r, d, 0.35, q);
  random_vector(r, d, 0.3, k);
  for (size_t j = 0; j < d; j++) s2 += (q[j] + k[j]) * (q[j] + k[j]);
  const double lkappa = dot(d, q, k);
  for (size_t mi = 0; mi < 2; mi++) {
    size_t m = ms[mi];
    double *lq = malloc(m * sizeof *lq), *lk = malloc(m * sizeof *lk);
    double sum = 0, sum2 = 0;
    for (size_t s = 0; s < S; s++) {
      kx_fmap *f = kx_fmap_create("prf", d, m, 1000 + s, NULL);
      ck_assert_ptr_nonnull(f);
      kx_fmap_apply_log(f, 1, q, lq);
      kx_fmap_apply_log(f, 1, k, lk);
      double lest;
      kx_log_kernel_estimate(1, 1, m, lq, lk, &lest);
      double rel = expm1(lest - lkappa), sq = rel * rel;
      sum += sq;
      sum2 += sq * sq;
      kx_fmap_free(f);
    }
    double mean = sum / S, se = sqrt((sum2 / S - mean * mean) / (S - 1));
    double theory = expm1(s2) / (double)m;
    ck_assert_msg(fabs(mean - theory) < 4 * se, "m=%zu: measured %g, closed form %g (se %g)", m, mean,
                  theory, se);
    free(lq);
    free(lk);
  }
  gsl_rng_free(r);
}
END_TEST

/* The GEMM path of the log-kernel estimate equals a direct log-sum-exp,
 * including entries whose features are -inf or far apart in scale. */
START_TEST(log_kernel_estimate_matches_direct) {
  const size_t nq = 5, nk = 7, m = 6;
  gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
  double lq[30], lk[42], est[35];
  for (size_t i = 0; i < nq * m; i++) lq[i] = gsl_ran_gaussian(r, 30.0);
  for (size_t i = 0; i < nk * m; i++) lk[i] = gsl_ran_gaussian(r, 30.0);
  lq[3] = -INFINITY;
  for (size_t f = 0; f < m; f++) lk[2 * m + f] = -INFINITY; /* key 2: all features zero */
  /* disjoint supports: forces the exact fallback */
  lq[4 * m + 0] = 400, lk[6 * m + 1] = 400, lq[4 * m + 1] = -800, lk[6 * m + 0] = -800;
  ck_assert_int_eq(kx_log_kernel_estimate(nq, nk, m, lq, lk, est), 0);
  for (size_t i = 0; i < nq; i++)
    for (size_t j = 0; j < nk; j++) {
      double mx = -INFINITY, s = 0;
      for (size_t f = 0; f < m; f++) mx = fmax(mx, lq[i * m + f] + lk[j * m + f]);
      if (isinf(mx)) {
        ck_assert(isinf(est[i * nk + j]) && est[i * nk + j] < 0);
        continue;
      }
      for (size_t f = 0; f < m; f++) s += exp(lq[i * m + f] + lk[j * m + f] - mx);
      /* both are sums of <= m positive terms: agreement to a few ulps of the
       * largest term's exponent, i.e. 1e-13 absolute in the log */
      ck_assert_double_eq_tol(est[i * nk + j], mx + log(s), 1e-13 * fmax(1, fabs(mx)));
    }
  gsl_rng_free(r);
}
END_TEST

/* With "features" that reproduce the kernel exactly (m = n, phi(k_j) = e_j,
 * log phi(q_i)_j = q_i.k_j) linear attention must equal softmax attention,
 * causal and not, for logits spanning +-80: this tests the prefix sums, the
 * running-maximum rescaling and the -inf features together. */
START_TEST(linear_attention_with_exact_kernel_is_softmax) {
  const size_t n = 40, d = 8, dv = 3;
  gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
  double *q = malloc(n * d * sizeof *q), *k = malloc(n * d * sizeof *k), *v = malloc(n * dv * sizeof *v);
  double *lq = malloc(n * n * sizeof *lq), *lk = malloc(n * n * sizeof *lk);
  double *o1 = malloc(n * dv * sizeof *o1), *o2 = malloc(n * dv * sizeof *o2);
  for (size_t i = 0; i < n; i++) {
    random_vector(r, d, 9.0, q + i * d); /* |q.k| up to 81 */
    random_vector(r, d, 9.0, k + i * d);
  }
  for (size_t i = 0; i < n * dv; i++) v[i] = gsl_ran_gaussian(r, 1.0);
  for (size_t i = 0; i < n; i++)
    for (size_t j = 0; j < n; j++) {
      lq[i * n + j] = dot(d, q + i * d, k + j * d);
      lk[i * n + j] = i == j ? 0.0 : -INFINITY;
    }
  for (int causal = 0; causal <= 1; causal++) {
    ck_assert_int_eq(kx_softmax_attention(n, d, dv, q, k, v, causal, o1), 0);
    ck_assert_int_eq(kx_linear_attention(n, n, dv, lq, lk, v, causal, o2), 0);
    for (size_t i = 0; i < n * dv; i++) {
      ck_assert(isfinite(o1[i]) && isfinite(o2[i]));
      /* same exponentials summed in another order: n * eps relative to |v| */
      ck_assert_double_eq_tol(o1[i], o2[i], 1e-12);
    }
  }
  free(q), free(k), free(v), free(lq), free(lk), free(o1), free(o2);
  gsl_rng_free(r);
}
END_TEST

/* Softmax attention over several row blocks (n = 300: four blocks of 64
 * and a tail of 44, run in parallel): bit-identical on 1 and 2 threads, and
 * equal to a row-by-row evaluation.  Tolerance: each output is a convex
 * combination of v computed with n-term sums and exponentials within a few
 * ulps, so its error is below 4 n eps max|v|. */
START_TEST(softmax_attention_blocks_and_threads) {
  const size_t n = 300, d = 16, dv = 5;
  gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
  gsl_rng_set(r, 23);
  double *q = malloc(n * d * sizeof *q), *k = malloc(n * d * sizeof *k), *v = malloc(n * dv * sizeof *v);
  double *o[2] = {malloc(n * dv * sizeof(double)), malloc(n * dv * sizeof(double))}, *lw = malloc(n * sizeof *lw);
  for (size_t i = 0; i < n; i++) {
    random_vector(r, d, 3.0, q + i * d);
    random_vector(r, d, 3.0, k + i * d);
  }
  double vmax = 0;
  for (size_t i = 0; i < n * dv; i++) v[i] = gsl_ran_gaussian(r, 1.0), vmax = fmax(vmax, fabs(v[i]));
  int saved = omp_get_max_threads();
  for (int causal = 0; causal <= 1; causal++) {
    for (int t = 0; t < 2; t++) {
      omp_set_num_threads(t + 1);
      ck_assert_int_eq(kx_softmax_attention(n, d, dv, q, k, v, causal, o[t]), 0);
    }
    ck_assert_msg(memcmp(o[0], o[1], n * dv * sizeof(double)) == 0,
                  "causal=%d: softmax attention differs between 1 and 2 threads", causal);
    for (size_t i = 0; i < n; i++) {
      size_t end = causal ? i + 1 : n;
      double mx = -INFINITY, z = 0;
      for (size_t j = 0; j < end; j++) lw[j] = dot(d, q + i * d, k + j * d), mx = fmax(mx, lw[j]);
      for (size_t j = 0; j < end; j++) z += lw[j] = exp(lw[j] - mx);
      for (size_t c = 0; c < dv; c++) {
        double want = 0;
        for (size_t j = 0; j < end; j++) want += lw[j] / z * v[j * dv + c];
        ck_assert_double_eq_tol(o[0][i * dv + c], want, 4.0 * (double)n * 2.2e-16 * vmax);
      }
    }
  }
  omp_set_num_threads(saved);
  q[70 * d] = NAN; /* row 70 lies in the second block */
  ck_assert_int_eq(kx_softmax_attention(n, d, dv, q, k, v, 1, o[0]), KX_ENUM);
  ck_assert_msg(strstr(kx_error_message(), "row 70") != NULL, "message: %s", kx_error_message());
  free(q), free(k), free(v), free(o[0]), free(o[1]), free(lw);
  gsl_rng_free(r);
}
END_TEST

/* The O(n m dv) prefix-sum form equals the explicit n x n weights times V. */
START_TEST(linear_attention_matches_weight_matrix) {
  const size_t n = 33, d = 16, m = 24, dv = 5;
  gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
  gsl_rng_set(r, 11);
  double *q = malloc(n * d * sizeof *q), *k = malloc(n * d * sizeof *k), *v = malloc(n * dv * sizeof *v);
  double *lq = malloc(n * m * sizeof *lq), *lk = malloc(n * m * sizeof *lk), *L = malloc(n * n * sizeof *L);
  double *o = malloc(n * dv * sizeof *o);
  for (size_t i = 0; i < n; i++) {
    random_vector(r, d, 1.0 + 3.0 * gsl_rng_uniform(r), q + i * d);
    random_vector(r, d, 1.0 + 3.0 * gsl_rng_uniform(r), k + i * d);
  }
  for (size_t i = 0; i < n * dv; i++) v[i] = gsl_ran_gaussian(r, 1.0);
  kx_fmap *f = kx_fmap_create("prf", d, m, 5, NULL);
  ck_assert_int_eq(kx_fmap_apply_log(f, n, q, lq), 0);
  ck_assert_int_eq(kx_fmap_apply_log(f, n, k, lk), 0);
  for (int causal = 0; causal <= 1; causal++) {
    ck_assert_int_eq(kx_log_kernel_estimate(n, n, m, lq, lk, L), 0);
    ck_assert_int_eq(kx_attention_log_weights(n, causal, L), 0);
    ck_assert_int_eq(kx_linear_attention(n, m, dv, lq, lk, v, causal, o), 0);
    for (size_t i = 0; i < n; i++)
      for (size_t t = 0; t < dv; t++) {
        double ref = 0;
        for (size_t j = 0; j < n; j++) ref += exp(L[i * n + j]) * v[j * dv + t];
        ck_assert_double_eq_tol(o[i * dv + t], ref, 1e-11);
      }
  }
  kx_fmap_free(f);
  free(q), free(k), free(v), free(lq), free(lk), free(L), free(o);
  gsl_rng_free(r);
}
END_TEST

/* The NNLS solution satisfies the KKT conditions: b >= 0, gradient >= 0
 * where b = 0, gradient = 0 where b > 0 (to the solver's tolerance scaled
 * by the problem's magnitude). */
START_TEST(nnls_satisfies_kkt) {
  const size_t n = 12, p = 30;
  gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
  double A[30 * 12], y[30], G[144], h[12], b[12];
  for (size_t i = 0; i < p * n; i++) A[i] = gsl_ran_gaussian(r, 1.0);
  for (size_t i = 0; i < p; i++) y[i] = gsl_ran_gaussian(r, 1.0);
  for (size_t i = 0; i < n; i++) {
    h[i] = 0;
    for (size_t t = 0; t < p; t++) h[i] += A[t * n + i] * y[t];
    for (size_t j = 0; j < n; j++) {
      G[i * n + j] = 0;
      for (size_t t = 0; t < p; t++) G[i * n + j] += A[t * n + i] * A[t * n + j];
    }
    b[i] = 1;
  }
  size_t sweeps;
  ck_assert_int_eq(kx_nnls_gram(n, G, h, b, 100000, 1e-12, &sweeps), 0);
  int zeros = 0;
  for (size_t i = 0; i < n; i++) {
    double g = -h[i];
    for (size_t j = 0; j < n; j++) g += G[i * n + j] * b[j];
    ck_assert(b[i] >= 0);
    if (b[i] == 0) {
      zeros++;
      ck_assert_msg(g > -1e-9, "active constraint %zu has gradient %g", i, g);
    } else {
      ck_assert_msg(fabs(g) < 1e-9, "free coordinate %zu has gradient %g", i, g);
    }
  }
  ck_assert_int_gt(zeros, 0); /* random y: some constraints must bind */
  gsl_rng_free(r);
}
END_TEST

START_TEST(bad_parameters_are_refused) {
  double x[4] = {1, 2, NAN, 4}, out[8];
  ck_assert_ptr_null(kx_fmap_create("prf", 4, 0, 0, NULL));
  ck_assert_ptr_nonnull(strstr(kx_error_message(), "m must be at least 1"));
  ck_assert_ptr_null(kx_fmap_create("prf", 0, 4, 0, NULL));
  ck_assert_ptr_null(kx_fmap_create("no-such-scheme", 4, 4, 0, NULL));
  ck_assert_ptr_nonnull(strstr(kx_error_message(), "unknown feature-map scheme"));
  kx_fmap *f = kx_fmap_create("prf", 4, 2, 0, NULL);
  ck_assert_int_ne(kx_fmap_apply_log(f, 1, x, out), 0);
  ck_assert_ptr_nonnull(strstr(kx_error_message(), "non-finite"));
  kx_fmap_free(f);
  for (size_t t = 0; kx_fmap_types[t]; t++)
    if (kx_fmap_types[t]->fitted_weights) {
      ck_assert_ptr_null(kx_fmap_create(kx_fmap_types[t]->name, 4, 4, 0, NULL));
      ck_assert_ptr_nonnull(strstr(kx_error_message(), "calibration"));
    }
}
END_TEST

/* Fitting can only lower the fit's objective: on the calibration pairs
 * themselves (all of them, once each) the fitted map's mean squared relative
 * error is at most the unweighted map's (beta = 1 is feasible and has zero
 * ridge penalty, and the solver stops at the optimum).  The same-seed
 * unweighted map has the same W, so the difference is the weights alone. */
START_TEST(fitted_weights_lower_calibration_error) {
  const size_t d = 16, n = 24;
  gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
  double *q = malloc(n * d * sizeof *q), *k = malloc(n * d * sizeof *k);
  for (size_t i = 0; i < n; i++) {
    random_vector(r, d, 1.2, q + i * d);
    random_vector(r, d, 1.2, k + i * d);
  }
  const char *pairs[][2] = {{"pff-sobol", "wpff-sobol"}, {"pff-halton", "wpff-halton"}};
  const size_t ms[] = {8, 64};
  for (size_t pi = 0; pi < 2; pi++)
    for (size_t mi = 0; mi < 2; mi++) {
      size_t m = ms[mi];
      kx_fmap_options opt;
      kx_fmap_default_options(&opt);
      opt.calib_q = q, opt.calib_k = k, opt.n_calib_q = opt.n_calib_k = n, opt.calib_all_pairs = 1;
      double err[2];
      for (int w = 0; w < 2; w++) {
        kx_fmap *f = kx_fmap_create(pairs[pi][w], d, m, 9, &opt);
        ck_assert_msg(f != NULL, "%s", kx_error_message());
        double *lq = malloc(n * m * sizeof *lq), *lk = malloc(n * m * sizeof *lk), *L = malloc(n * n * sizeof *L);
        kx_fmap_apply_log(f, n, q, lq);
        kx_fmap_apply_log(f, n, k, lk);
        kx_log_kernel_estimate(n, n, m, lq, lk, L);
        err[w] = 0;
        for (size_t a = 0; a < n; a++)
          for (size_t b = 0; b < n; b++) {
            double e = expm1(L[a * n + b] - dot(d, q + a * d, k + b * d));
            err[w] += e * e / (double)(n * n);
          }
        free(lq), free(lk), free(L);
        kx_fmap_free(f);
      }
      ck_assert_msg(err[1] <= err[0] * (1 + 1e-9), "%s m=%zu: fitted %g > unweighted %g", pairs[pi][1], m,
                    err[1], err[0]);
      ck_assert_msg(err[1] < 0.9 * err[0], "%s m=%zu: fitting gained nothing (%g vs %g)", pairs[pi][1], m,
                    err[1], err[0]);
    }
  free(q), free(k);
  gsl_rng_free(r);
}
END_TEST

START_TEST(gaussian_kernel_exact) {
  double q[3] = {0.3, -1, 2}, k[3] = {1, 0.5, -0.25}, L;
  kx_log_kernel_exact(KX_KERNEL_GAUSS, 1, 1, 3, q, k, &L);
  double d2 = 0.7 * 0.7 + 1.5 * 1.5 + 2.25 * 2.25;
  ck_assert_double_eq_tol(L, -0.5 * d2, 1e-14);
}
END_TEST

/* The input check finds the first non-finite value wherever it is (the
 * vector lanes, a chunk's scalar tail, the last chunk), names its index,
 * and passes every finite value, the extremes included. */
START_TEST(all_finite_names_the_first_bad_value) {
  static const size_t lengths[] = {1, 2, 3, 511, 512, 513, 1025};
  const double bad[] = {NAN, -NAN, INFINITY, -INFINITY};
  for (size_t l = 0; l < sizeof lengths / sizeof *lengths; l++) {
    const size_t n = lengths[l];
    double *x = malloc(n * sizeof *x);
    for (size_t i = 0; i < n; i++) x[i] = i % 4 == 0 ? DBL_MAX : i % 4 == 1 ? -DBL_MAX : i % 4 == 2 ? -0.0 : 4.9e-324;
    ck_assert_int_eq(kx_all_finite(x, n, "x"), 1);
    for (size_t at = 0; at < n; at += (at < 8 || n - at < 8) ? 1 : 61)
      for (size_t b = 0; b < sizeof bad / sizeof *bad; b++) {
        const double keep = x[at];
        x[at] = bad[b];
        if (at + 3 < n) x[at + 3] = NAN; /* a later bad value is not the one named */
        ck_assert_int_eq(kx_all_finite(x, n, "x"), 0);
        char want[64];
        snprintf(want, sizeof want, "at flat index %zu", at);
        ck_assert_msg(strstr(kx_error_message(), want), "n = %zu, bad at %zu: %s", n, at, kx_error_message());
        x[at] = keep;
        if (at + 3 < n) x[at + 3] = (at + 3) % 4 == 0 ? DBL_MAX : (at + 3) % 4 == 1 ? -DBL_MAX : (at + 3) % 4 == 2 ? -0.0 : 4.9e-324;
      }
    ck_assert_int_eq(kx_all_finite(x, n, "x"), 1);
    free(x);
  }
  ck_assert_int_eq(kx_all_finite(NULL, 0, "x"), 1);
}
END_TEST

int main(void) {
  Suite *s = kx_test_suite("approx");
  TCase *tc = kx_test_case(s, "core");
  tcase_set_timeout(tc, 600);
  kx_test_add(tc, (const TTest *const[]){unbiased_schemes_have_mean_kernel, prf_mse_matches_closed_form,
                                         log_kernel_estimate_matches_direct,
                                         linear_attention_with_exact_kernel_is_softmax,
                                         softmax_attention_blocks_and_threads,
                                         linear_attention_matches_weight_matrix, nnls_satisfies_kkt,
                                         bad_parameters_are_refused, gaussian_kernel_exact,
                                         fitted_weights_lower_calibration_error,
                                         all_finite_names_the_first_bad_value, NULL});
  return kx_test_run(s);
}
