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
#include <stdlib.h>
#include <string.h>

#include "core/kx_error.h"
#include "experiments/eval/metrics.h"
#include "experiments/eval/runner.h"
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

/* A grid's worker evaluates point after point in one workspace, so each
 * point finds the previous point's numbers in its buffers, left by maps of
 * a larger or smaller m; and kernel-error / attn-fidelity compute only
 * their own metrics.  Neither may change a bit of any metric: compared
 * here with memcmp against each point evaluated alone in fresh buffers
 * (kx_evaluate_map) with every metric, over dense maps, a fitted one, a
 * DCT map with its own apply_log and one that estimates no kernel. */
static void random_rows(size_t n, size_t d, double scale, uint64_t *state, double *x) {
  for (size_t i = 0; i < n * d; i++) {
    *state = *state * 6364136223846793005ull + 1442695040888963407ull;
    x[i] = scale * ((double)(*state >> 11) * 0x1p-53 - 0.5);
  }
}

START_TEST(reused_workspace_and_masks_keep_every_bit) {
  enum { N = 70, D = 8 }; /* N: one full block of 64 rows and a partial one */
  static double q[N * D], k[N * D], v[N * D];
  uint64_t state = 7;
  random_rows(N, D, 1.2, &state, q);
  random_rows(N, D, 1.2, &state, k);
  random_rows(N, D, 1.0, &state, v);
  static const char *schemes[] = {"prf", "pff-halton", "wpff-sobol", "wdcf", "uniform"};
  static const size_t ms[] = {48, 8, 32, 16};
  const unsigned kernel_mask = (1u << KX_N_METRICS) - 1 - kx_metric_attention_mask();
  const unsigned masks[] = {0, kernel_mask, kx_metric_attention_mask()};
  kx_fmap_options base;
  kx_fmap_default_options(&base);
  for (int causal = 0; causal <= 1; causal++) {
    kx_head_reference r;
    ck_assert_int_eq(kx_head_reference_init(&r, N, D, D, q, k, v, causal, KX_KERNEL_SOFTMAX), 0);
    kx_eval_workspace *w = kx_eval_workspace_new(&r, 48);
    ck_assert_ptr_nonnull(w);
    for (size_t si = 0; si < sizeof schemes / sizeof *schemes; si++)
      for (size_t mi = 0; mi < sizeof ms / sizeof *ms; mi++) {
        int rc;
        kx_fmap *f = kx_point_map(&base, &r, schemes[si], ms[mi], 3, &rc);
        ck_assert_ptr_nonnull(f);
        double alone[KX_N_METRICS], reused[KX_N_METRICS];
        ck_assert_int_eq(kx_evaluate_map(&r, f, alone), 0);
        for (size_t a = 0; a < sizeof masks / sizeof *masks; a++) {
          ck_assert_int_eq(kx_evaluate_map_work(&r, f, masks[a], w, NULL, reused), 0);
          for (int i = 0; i < KX_N_METRICS; i++) {
            if (masks[a] && !(masks[a] & (1u << i))) {
              ck_assert(isnan(reused[i]));
              continue;
            }
            ck_assert_msg(!memcmp(&alone[i], &reused[i], sizeof alone[i]), "%s m=%zu mask %x causal %d: %s %.17g alone, "
                          "%.17g in a reused workspace", schemes[si], ms[mi], masks[a], causal, kx_metrics[i].name,
                          alone[i], reused[i]);
          }
        }
        kx_fmap_free(f);
      }
    kx_eval_workspace_free(w);
    kx_head_reference_free(&r);
  }
}
END_TEST

/* A map larger than the workspace was made for is refused, not overrun. */
START_TEST(workspace_refuses_a_larger_map) {
  static const double q[4] = {0.1, 0.2, 0.3, 0.4}, k[4] = {0.4, 0.3, 0.2, 0.1}, v[2] = {1, 2};
  kx_head_reference r;
  ck_assert_int_eq(kx_head_reference_init(&r, 2, 2, 1, q, k, v, 0, KX_KERNEL_SOFTMAX), 0);
  kx_eval_workspace *w = kx_eval_workspace_new(&r, 4);
  kx_fmap *f = kx_fmap_create("prf", 2, 8, 0, NULL);
  double m[KX_N_METRICS];
  ck_assert_int_eq(kx_evaluate_map_work(&r, f, 0, w, NULL, m), KX_EINVAL);
  kx_fmap_free(f);
  kx_eval_workspace_free(w);
  kx_head_reference_free(&r);
}
END_TEST

int main(void) {
  Suite *s = kx_test_suite("metrics");
  TCase *tc = kx_test_case(s, "metrics");
  kx_test_add(tc, (const TTest *const[]){metrics_by_hand, kernel_metrics_need_a_kernel_estimator,
                                         reused_workspace_and_masks_keep_every_bit, workspace_refuses_a_larger_map,
                                         NULL});
  return kx_test_run(s);
}
