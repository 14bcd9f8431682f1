/* The pieces of the budget study (experiments/reproduce/budget.h): the fit
 * gap = c + a tokens^-alpha on synthetic data with known parameters, its
 * 95 % intervals' coverage, the cases it must call n/a; the tokens-to-a-
 * threshold interpolation on a case worked by hand; the budget list and
 * variant labels, with their refusals. */
#include <check.h>
#include <gsl/gsl_blas.h>
#include <gsl/gsl_linalg.h>
#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/kx_error.h"
#include "experiments/reproduce/budget.h"
#include "tests/test_support.h"

/* A realistic curve: at 8e4 tokens the gap is 0.3 + 40 * 8e4^-0.35 = 1.07,
 * at 2e7 tokens 0.41. */
static const double C = 0.3, A = 40.0, ALPHA = 0.35;
enum { NB = 5, NS = 3 };

static double curve(double t) { return C + A * pow(t, -ALPHA); }

/* Five budgets a factor 4 apart from 8e4 tokens, NS seeds each. */
static void design(double *t) {
  for (int b = 0; b < NB; b++)
    for (int s = 0; s < NS; s++) t[b * NS + s] = 8e4 * pow(4.0, b);
}

/* Standard deviations of (c, a, alpha) least-squares estimates for noise of
 * standard deviation sigma, to first order: sigma sqrt(diag((J'J)^-1)), J
 * the model's Jacobian at the true parameters over the design. */
static void true_sd(const double *t, size_t n, double sigma, double sd[3]) {
  gsl_matrix *J = gsl_matrix_alloc(n, 3), *JtJ = gsl_matrix_alloc(3, 3), *inv = gsl_matrix_alloc(3, 3);
  for (size_t i = 0; i < n; i++) {
    double b = pow(t[i], -ALPHA);
    gsl_matrix_set(J, i, 0, 1.0);
    gsl_matrix_set(J, i, 1, b);
    gsl_matrix_set(J, i, 2, -A * b * log(t[i]));
  }
  gsl_blas_dgemm(CblasTrans, CblasNoTrans, 1.0, J, J, 0.0, JtJ);
  gsl_permutation *p = gsl_permutation_alloc(3);
  int sign;
  gsl_linalg_LU_decomp(JtJ, p, &sign);
  gsl_linalg_LU_invert(JtJ, p, inv);
  for (int k = 0; k < 3; k++) sd[k] = sigma * sqrt(gsl_matrix_get(inv, k, k));
  gsl_permutation_free(p);
  gsl_matrix_free(J);
  gsl_matrix_free(JtJ);
  gsl_matrix_free(inv);
}

/* Without noise the fit recovers the parameters to the solver's tolerance
 * (xtol 1e-12 on the scaled parameters; 1e-7 relative leaves room for the
 * conditioning of a = A t0^alpha). */
START_TEST(test_fit_exact) {
  double t[NB * NS], y[NB * NS];
  design(t);
  for (int i = 0; i < NB * NS; i++) y[i] = curve(t[i]);
  kx_budget_fit f;
  ck_assert_int_eq(kx_budget_fit_power(t, y, NB * NS, &f), 0);
  ck_assert_msg(f.ok, "fit refused: %s", f.why ? f.why : "");
  ck_assert_double_eq_tol(f.c, C, 1e-7 * C);
  ck_assert_double_eq_tol(f.a, A, 1e-7 * A);
  ck_assert_double_eq_tol(f.alpha, ALPHA, 1e-7 * ALPHA);
  ck_assert_uint_eq(f.distinct, NB);
  ck_assert_uint_eq(f.dof, NB * NS - 3);
}
END_TEST

/* With Gaussian noise (sigma = 0.01 nats, about the seeds' spread of
 * Table 2) each estimate is within 5 of its first-order standard
 * deviations of the truth (a false alarm has probability below 1e-6 per
 * parameter for a linear model). */
START_TEST(test_fit_noise) {
  const double sigma = 0.01;
  double t[NB * NS], y[NB * NS], sd[3];
  design(t);
  true_sd(t, NB * NS, sigma, sd);
  gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
  gsl_rng_set(r, 7);
  for (int i = 0; i < NB * NS; i++) y[i] = curve(t[i]) + gsl_ran_gaussian(r, sigma);
  gsl_rng_free(r);
  kx_budget_fit f;
  ck_assert_int_eq(kx_budget_fit_power(t, y, NB * NS, &f), 0);
  ck_assert_msg(f.ok, "fit refused: %s", f.why ? f.why : "");
  ck_assert_msg(fabs(f.c - C) <= 5 * sd[0], "c = %g, want %g within %g", f.c, C, 5 * sd[0]);
  ck_assert_msg(fabs(f.a - A) <= 5 * sd[1], "a = %g, want %g within %g", f.a, A, 5 * sd[1]);
  ck_assert_msg(fabs(f.alpha - ALPHA) <= 5 * sd[2], "alpha = %g, want %g within %g", f.alpha, ALPHA, 5 * sd[2]);
  ck_assert(isfinite(f.c_hw) && f.c_hw > 0 && isfinite(f.alpha_hw) && f.alpha_hw > 0);
  ck_assert(f.levels_off);
}
END_TEST

/* Coverage of the 95 % intervals over 400 noisy data sets: the count of
 * intervals holding the truth is binomial(400, 0.95) if they are right
 * (standard deviation 0.0109 of the share); 4 standard deviations either
 * side, [0.906, 0.994], catches intervals that are standard errors (68 %),
 * that forget the residual variance or the t quantile, or are too wide. */
START_TEST(test_fit_coverage) {
  const double sigma = 0.01;
  const int trials = 400;
  double t[NB * NS], y[NB * NS];
  design(t);
  gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
  gsl_rng_set(r, 11);
  int cover_c = 0, cover_alpha = 0;
  for (int k = 0; k < trials; k++) {
    for (int i = 0; i < NB * NS; i++) y[i] = curve(t[i]) + gsl_ran_gaussian(r, sigma);
    kx_budget_fit f;
    ck_assert_int_eq(kx_budget_fit_power(t, y, NB * NS, &f), 0);
    ck_assert_msg(f.ok, "trial %d: fit refused: %s", k, f.why ? f.why : "");
    cover_c += fabs(f.c - C) <= f.c_hw;
    cover_alpha += fabs(f.alpha - ALPHA) <= f.alpha_hw;
  }
  gsl_rng_free(r);
  double half = 4 * sqrt(0.95 * 0.05 / trials);
  ck_assert_msg(fabs(cover_c / (double)trials - 0.95) <= half, "c: %d of %d intervals hold the truth", cover_c, trials);
  ck_assert_msg(fabs(cover_alpha / (double)trials - 0.95) <= half, "alpha: %d of %d intervals hold the truth",
                cover_alpha, trials);
}
END_TEST

/* n/a where the data cannot give three parameters: two budgets (however
 * many seeds), a gap that grows with the budget, a flat one, one that
 * falls along a straight line in log tokens.  Three
 * points: estimates without intervals. */
START_TEST(test_fit_na) {
  double t[10], y[10];
  for (int i = 0; i < 10; i++) t[i] = i < 5 ? 1e5 : 4e5, y[i] = curve(t[i]) + 0.001 * (i % 5);
  kx_budget_fit f;
  ck_assert_int_eq(kx_budget_fit_power(t, y, 10, &f), 0);
  ck_assert(!f.ok && isnan(f.c) && isnan(f.alpha) && isnan(f.c_hw));
  ck_assert_uint_eq(f.distinct, 2);
  double t3[4] = {1e5, 4e5, 1.6e6, 6.4e6}, up[4] = {0.2, 0.3, 0.4, 0.5}, flat[4] = {0.3, 0.3, 0.3, 0.3};
  ck_assert_int_eq(kx_budget_fit_power(t3, up, 4, &f), 0);
  ck_assert_msg(!f.ok && isnan(f.alpha), "a growing gap fitted alpha %g", f.alpha);
  ck_assert_int_eq(kx_budget_fit_power(t3, flat, 4, &f), 0);
  ck_assert_msg(!f.ok, "a flat gap fitted alpha %g", f.alpha);
  /* a straight line in log tokens never levels off: alpha -> 0, c -> -inf */
  double line[4];
  for (int i = 0; i < 4; i++) line[i] = 1.0 - 0.1 * log(t3[i] / 1e5);
  ck_assert_int_eq(kx_budget_fit_power(t3, line, 4, &f), 0);
  ck_assert_msg(!f.ok || !f.levels_off, "a line in log tokens levels off at c = %g ± %g", f.c, f.c_hw);
  double y3[3];
  for (int i = 0; i < 3; i++) y3[i] = curve(t3[i]);
  ck_assert_int_eq(kx_budget_fit_power(t3, y3, 3, &f), 0);
  ck_assert(f.ok && f.dof == 0 && isnan(f.c_hw) && isnan(f.alpha_hw) && !f.levels_off);
  ck_assert_double_eq_tol(f.alpha, ALPHA, 1e-6);
}
END_TEST

/* Gaps 0.5, 0.3, 0.1 at 1e5, 4e5, 1.6e6 tokens: 0.25 is crossed a quarter
 * of the way from 4e5 to 1.6e6 in log tokens, 4e5 * 4^0.25; 0.1 exactly at
 * 1.6e6; 0.6 already at the smallest budget; 0.05 never.  A gap that dips
 * below and rises again: the first crossing. */
START_TEST(test_tokens_within) {
  const double t[3] = {1e5, 4e5, 1.6e6}, g[3] = {0.5, 0.3, 0.1};
  double at;
  ck_assert_int_eq(kx_budget_tokens_within(t, g, 3, 0.25, &at), KX_WITHIN_INTERPOLATED);
  ck_assert_double_eq_tol(at, 4e5 * pow(4.0, 0.25), 1e-9 * at);
  ck_assert_int_eq(kx_budget_tokens_within(t, g, 3, 0.1, &at), KX_WITHIN_INTERPOLATED);
  ck_assert_double_eq_tol(at, 1.6e6, 1e-9 * at);
  ck_assert_int_eq(kx_budget_tokens_within(t, g, 3, 0.6, &at), KX_WITHIN_SMALLEST);
  ck_assert_double_eq(at, 1e5);
  ck_assert_int_eq(kx_budget_tokens_within(t, g, 3, 0.05, &at), KX_WITHIN_NOT);
  ck_assert(isinf(at));
  const double t4[4] = {1e5, 4e5, 1.6e6, 6.4e6}, g4[4] = {0.5, 0.2, 0.3, 0.1};
  ck_assert_int_eq(kx_budget_tokens_within(t4, g4, 4, 0.25, &at), KX_WITHIN_INTERPOLATED);
  ck_assert_double_eq_tol(at, 1e5 * pow(4.0, 0.25 / 0.3), 1e-9 * at);
}
END_TEST

START_TEST(test_budget_list) {
  kx_budget b[KX_BUDGET_MAX];
  size_t n;
  ck_assert_int_eq(kx_budget_parse_list("1,1/64,0.25,1/16,2", "--budgets", b, KX_BUDGET_MAX, &n), 0);
  ck_assert_uint_eq(n, 5);
  const double want[5] = {1.0 / 64, 1.0 / 16, 0.25, 1.0, 2.0};
  for (size_t i = 0; i < n; i++) ck_assert_double_eq(b[i].value, want[i]);
  ck_assert_str_eq(b[0].text, "1/64");
  static const char *bad[] = {"0", "-1", "1/4,0.25", "x", "1/0", "0/5", "1/x", "nan", "inf", "1,,2", "", "101",
                              "1/4/2", "-1/4"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    ck_assert_msg(kx_budget_parse_list(bad[i], "--budgets", b, KX_BUDGET_MAX, &n) != 0, "'%s' accepted", bad[i]);
  ck_assert_int_ne(kx_budget_parse_list("1/4,0.25", "--budgets", b, KX_BUDGET_MAX, &n), 0);
  ck_assert_ptr_nonnull(strstr(kx_error_message(), "repeated"));
  /* 1/1000 and 1/900 of 2500 steps are both 3 steps */
  uint64_t steps[KX_BUDGET_MAX];
  ck_assert_int_eq(kx_budget_parse_list("1/1000,1/900,1", "--budgets", b, KX_BUDGET_MAX, &n), 0);
  ck_assert_int_ne(kx_budget_steps(b, n, 2500, steps), 0);
  ck_assert_int_eq(kx_budget_steps(b, n, 1000000, steps), 0);
  ck_assert_int_eq(steps[0], 1000);
}
END_TEST

START_TEST(test_variants) {
  kx_repro_variant v;
  ck_assert_int_eq(kx_budget_variant_parse("hedgehog+AT", 0, &v), 0);
  ck_assert_str_eq(v.kind->name, "hedgehog");
  ck_assert(v.transfer && !v.scratch);
  ck_assert_str_eq(v.label, "hedgehog+AT");
  ck_assert_int_eq(kx_budget_variant_parse("performer-prf", 0, &v), 0);
  ck_assert_str_eq(v.kind->name, "performer-prf");
  ck_assert_int_eq(kx_budget_variant_parse("softmax", 1, &v), 0);
  ck_assert_str_eq(v.label, "softmax-scratch");
  /* every kind with a feature map to train takes +AT, a hybrid of it too;
   * the others are refused, the message naming the kind and the kinds
   * that do take it */
  static const char *with_map[] = {"performer",    "performer-prf",    "pff",     "dijiang",
                                   "dijiang-code", "dijiang-released", "hedgehog"};
  for (size_t i = 0; i < sizeof with_map / sizeof with_map[0]; i++) {
    char label[64];
    snprintf(label, sizeof label, "%s+AT", with_map[i]);
    ck_assert_msg(kx_budget_variant_parse(label, 0, &v) == 0, "'%s' refused: %s", label, kx_error_message());
    ck_assert(v.transfer && !v.scratch);
    ck_assert_str_eq(v.label, label);
    snprintf(label, sizeof label, "%s+sm1+AT", with_map[i]);
    ck_assert_msg(kx_budget_variant_parse(label, 0, &v) == 0, "'%s' refused: %s", label, kx_error_message());
    ck_assert(v.transfer && v.softmax_layers == 2);
    ck_assert_str_eq(v.label, label);
  }
  static const char *without_map[] = {"cosformer", "retnet", "linformer", "performer-redraw"};
  for (size_t i = 0; i < sizeof without_map / sizeof without_map[0]; i++) {
    char label[64], want[160];
    snprintf(label, sizeof label, "%s+AT", without_map[i]);
    ck_assert_msg(kx_budget_variant_parse(label, 0, &v) != 0, "'%s' accepted", label);
    snprintf(want, sizeof want, "'%s': %s has nothing trainable in its feature map", label, without_map[i]);
    ck_assert_msg(strstr(kx_error_message(), want), "%s", kx_error_message());
    ck_assert_ptr_nonnull(strstr(kx_error_message(), "+AT applies to performer, performer-prf"));
  }
  /* softmax converted: the control, the teacher fine-tuned further; it takes no option */
  ck_assert_int_eq(kx_budget_variant_parse("softmax", 0, &v), 0);
  ck_assert_str_eq(v.label, "softmax");
  ck_assert(!v.scratch && !v.transfer && !v.window && !v.softmax_layers);
  static const char *bad[] = {"cosformer+AT", "softmax+AT", "softmax+w16", "softmax+sm0", "nope", "hedgehog+XY",
                              "hedgehog+AT+AT", "retnetx", ""};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    ck_assert_msg(kx_budget_variant_parse(bad[i], 0, &v) != 0, "'%s' accepted", bad[i]);
  ck_assert_int_ne(kx_budget_variant_parse("hedgehog+AT", 1, &v), 0);
  /* layer hybrids: the kept layers in any order, the label normalised */
  ck_assert_int_eq(kx_budget_variant_parse("hedgehog+sm3.0+AT", 0, &v), 0);
  ck_assert_uint_eq(v.softmax_layers, 9);
  ck_assert(v.transfer);
  ck_assert_str_eq(v.label, "hedgehog+sm0.3+AT");
  ck_assert_int_eq(kx_budget_variant_parse("performer+sm1", 0, &v), 0);
  ck_assert_uint_eq(v.softmax_layers, 2);
  ck_assert_str_eq(v.label, "performer+sm1");
  static const char *bad_hybrid[] = {"performer+sm", "performer+sm1.1", "performer+smx", "performer+sm64",
                                     "hedgehog+AT+sm1"};
  for (size_t i = 0; i < sizeof bad_hybrid / sizeof bad_hybrid[0]; i++)
    ck_assert_msg(kx_budget_variant_parse(bad_hybrid[i], 0, &v) != 0, "'%s' accepted", bad_hybrid[i]);
  ck_assert_int_ne(kx_budget_variant_parse("performer+sm1", 1, &v), 0);
  /* sliding windows: before the kept layers, the label normalised; the
   * conversion's spec carries the window, not the kept layers */
  ck_assert_int_eq(kx_budget_variant_parse("performer+w016", 0, &v), 0);
  ck_assert_uint_eq(v.window, 16);
  ck_assert_uint_eq(v.softmax_layers, 0);
  ck_assert_str_eq(v.label, "performer+w16");
  ck_assert_int_eq(kx_budget_variant_parse("hedgehog+w8+sm1.0+AT", 0, &v), 0);
  ck_assert(v.window == 8 && v.softmax_layers == 3 && v.transfer);
  ck_assert_str_eq(v.label, "hedgehog+w8+sm0.1+AT");
  char spec[KX_DEC_LABEL_MAX];
  kx_repro_variant_spec(&v, spec, sizeof spec);
  ck_assert_str_eq(spec, "hedgehog+w8");
  static const char *bad_window[] = {"performer+w0", "performer+w", "performer+wx", "performer+w8193",
                                     "performer+w-1", "performer+sm0+w8", "performer+w8+w8", "hedgehog+AT+w8"};
  for (size_t i = 0; i < sizeof bad_window / sizeof bad_window[0]; i++)
    ck_assert_msg(kx_budget_variant_parse(bad_window[i], 0, &v) != 0, "'%s' accepted", bad_window[i]);
  /* a kind without the hybrid: refused with its reason */
  static const char *no_window[] = {"retnet+w16", "dijiang-code+w16", "linformer+w16"};
  for (size_t i = 0; i < sizeof no_window / sizeof no_window[0]; i++) {
    ck_assert_msg(kx_budget_variant_parse(no_window[i], 0, &v) != 0, "'%s' accepted", no_window[i]);
    ck_assert_ptr_nonnull(strstr(kx_error_message(), "cannot take a sliding window"));
  }
  ck_assert_int_ne(kx_budget_variant_parse("performer+w16", 1, &v), 0);
  kx_repro_variant list[KX_BUDGET_MAX_VARIANTS];
  size_t n;
  ck_assert_int_eq(kx_budget_variants("retnet,hedgehog+AT", "softmax,retnet", list, KX_BUDGET_MAX_VARIANTS, &n), 0);
  ck_assert_uint_eq(n, 4);
  ck_assert(!list[1].scratch && list[2].scratch && list[3].scratch);
  ck_assert_int_ne(kx_budget_variants("retnet,retnet", NULL, list, KX_BUDGET_MAX_VARIANTS, &n), 0);
  ck_assert_int_ne(kx_budget_variants("retnet+sm0.2,retnet+sm2.0", NULL, list, KX_BUDGET_MAX_VARIANTS, &n), 0);
  ck_assert_ptr_nonnull(strstr(kx_error_message(), "twice"));
  ck_assert_ptr_nonnull(strstr(kx_error_message(), "twice"));
  ck_assert_int_ne(kx_budget_variants("retnet", "nope", list, KX_BUDGET_MAX_VARIANTS, &n), 0);
  /* all: every kind but softmax, and +AT for exactly the kinds with a map */
  ck_assert_int_eq(kx_budget_variants("all", NULL, list, KX_BUDGET_MAX_VARIANTS, &n), 0);
  size_t at = 0;
  for (size_t i = 0; i < n; i++) {
    ck_assert_str_ne(list[i].kind->name, "softmax");
    if (!list[i].transfer) continue;
    at++;
    int known = 0;
    for (size_t j = 0; j < sizeof with_map / sizeof with_map[0]; j++) known |= !strcmp(list[i].kind->name, with_map[j]);
    ck_assert_msg(known, "all: %s", list[i].label);
  }
  ck_assert_uint_eq(at, sizeof with_map / sizeof with_map[0]);
}
END_TEST

int main(void) {
  Suite *s = kx_test_suite("budget");
  TCase *tc = kx_test_case(s, "budget");
  kx_test_add(tc, (const TTest *const[]){test_fit_exact, test_fit_noise, test_fit_coverage, test_fit_na,
                                         test_tokens_within, test_budget_list, test_variants, NULL});
  return kx_test_run(s);
}
