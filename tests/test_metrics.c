/* Every metric of the table (experiments/eval/metrics.h) on a 3 x 3 head whose
 * values are worked out by hand below, causal and not, and the kernel
 * metrics' absence for a map that does not estimate the kernel.
 *
 * The head: d = 1, q = k = 0, so the exact kernel is K = 1 everywhere and
 * each row of A is uniform over its visible keys; v = (3, 0, 0).  The
 * estimate changes one kernel entry to 2.  Each value is a handful of
 * double operations (exp, log, sums of at most 9 terms), each rounded to
 * within 2^-53 relative, so 1e-13 relative bounds the round-off with a
 * margin of about 100 and still fails on any wrong formula. */
#include <check.h>
#include <math.h>

#include "core/kx_error.h"
#include "experiments/eval/metrics.h"
#include "tests/test_support.h"

#define TOL 1e-13

/* Runs the metrics for the estimate K^ = 1 except K^[row][col] = 2 and
 * compares each with its hand-computed value. */
static void check_case(int causal, size_t row, size_t col, int kernel_estimator, const double want[KX_N_METRICS],
                       double got[KX_N_METRICS]) {
  static const double q[3] = {0, 0, 0}, k[3] = {0, 0, 0}, v[3] = {3, 0, 0};
  kx_head_reference r;
  ck_assert_int_eq(kx_head_reference_init(&r, 3, 1, 1, q, k, v, causal, KX_KERNEL_SOFTMAX), 0);
  double logK_hat[9] = {0};
  logK_hat[row * 3 + col] = log(2.0);
  ck_assert_int_eq(kx_evaluate_log_kernel(&r, logK_hat, kernel_estimator, got), 0);
  kx_head_reference_free(&r);
  for (int i = 0; want && i < KX_N_METRICS; i++)
    ck_assert_msg(fabs(got[i] - want[i]) <= TOL * fabs(want[i]), "%s (causal %d): %.17g, want %.17g",
                  kx_metrics[i].name, causal, got[i], want[i]);
}

START_TEST(metrics_by_hand) {
  double want[KX_N_METRICS], got[KX_N_METRICS];
  /* Not causal, K^[0][0] = 2.
   * K^ - K has one entry 1: |.|_F = 1 against |K|_F = 3 */
  want[KX_METRIC_KERNEL_REL_FRO] = 1.0 / 3;
  /* (K^/K - 1)^2 is 1 at one of 9 pairs */
  want[KX_METRIC_KERNEL_REL_MSE] = 1.0 / 9;
  /* row 0: a = (1/3, 1/3, 1/3), a^ = (2, 1, 1)/4 = (1/2, 1/4, 1/4); rows 1, 2 exact.
   * KL row 0 = 1/3 [log(2/3) + 2 log(4/3)] = log(32/27)/3, mean over 3 rows */
  want[KX_METRIC_ATTN_KL] = log(32.0 / 27.0) / 9;
  /* TV row 0 = 1/2 (1/6 + 1/12 + 1/12) = 1/6, mean 1/18; largest entry 1/6 */
  want[KX_METRIC_ATTN_TV] = 1.0 / 18;
  want[KX_METRIC_ATTN_MAX_ABS] = 1.0 / 6;
  /* AV = (1, 1, 1); A^V = (3/2, 1, 1): |diff| = 1/2, |AV| = sqrt 3 */
  want[KX_METRIC_OUT_REL_ERR] = 0.5 / sqrt(3.0);
  check_case(0, 0, 0, 1, want, got);
  /* Causal, K^[2][1] = 2: the kernel metrics cover every pair, masked or
   * not, so they stay.  Rows 0 and 1 see keys 0 and 0..1, unchanged; row 2:
   * a = (1/3, 1/3, 1/3), a^ = (1, 2, 1)/4: KL = 1/3 [log(4/3) + log(2/3) +
   * log(4/3)] = log(32/27)/3 and TV = 1/2 (1/12 + 1/6 + 1/12) = 1/6, the
   * values above.  AV = (3, 3/2, 1), A^V = (3, 3/2, 3/4): |diff| = 1/4,
   * |AV| = sqrt(49/4) = 7/2 */
  want[KX_METRIC_OUT_REL_ERR] = 1.0 / 14;
  check_case(1, 2, 1, 1, want, got);
  for (int i = 0; i < KX_N_METRICS; i++) ck_assert_int_eq(kx_metric_lookup(kx_metrics[i].name), i);
}
END_TEST

START_TEST(kernel_metrics_need_a_kernel_estimator) {
  double m[KX_N_METRICS];
  check_case(0, 0, 0, 0, NULL, m);
  for (int i = 0; i < KX_N_METRICS; i++) {
    ck_assert_int_eq(isnan(m[i]) != 0, kx_metrics[i].needs_kernel);
    ck_assert_int_eq(kx_metric_defined(i, 0), !kx_metrics[i].needs_kernel);
  }
  ck_assert(fabs(m[KX_METRIC_ATTN_TV] - 1.0 / 18) <= TOL / 18);
}
END_TEST

int main(void) {
  Suite *s = kx_test_suite("metrics");
  TCase *tc = kx_test_case(s, "metrics");
  kx_test_add(tc, (const TTest *const[]){metrics_by_hand, kernel_metrics_need_a_kernel_estimator, NULL});
  return kx_test_run(s);
}
