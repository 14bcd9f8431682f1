/* The in-context recall probe (dec_recall.h) on known answers:
 *
 *   - an exact copier (a mock scorer that puts logit M on the token n
 *     positions back in the second copy, 0 everywhere else) scores
 *     log(1 + (V - 1) e^-M) on the second copy, accuracy 1, and log V on
 *     the first, with the first copy's accuracy the share of targets that
 *     are token 0 (arg-max ties go to the lowest id);
 *   - a decoder whose logits are all 0 (unembedding zeroed) scores log V on
 *     both copies;
 *   - a decoder that ignores its context (every attention output
 *     projection zeroed: no position embedding, so each prediction depends
 *     on the current token only) scores the same on both copies;
 *   - strings are reproducible from the seed, lengths that do not fit are
 *     refused.
 * Tolerances from the maths: each per-token loss is a log-sum-exp in
 * double of magnitude <= M + log V, exact to a few units eps = 2^-52 of
 * that; summing P of them in order adds at most (P - 1) eps relative to
 * the sum, so a mean is within (8 (M + log V) + P mean) eps of the exact
 * value.  The context-blind
 * decoder computes the same rows in float32 at two positions, which may
 * differ only by the summation order of the matmuls (test_decoder_infer's
 * worst-case bound 2 (L + 1) (4C) u (1 + max|logit|) per logit; a
 * cross-entropy moves by at most twice the largest logit change). */
#include <check.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/kx_error.h"
#include "experiments/model/dec_model.h"
#include "experiments/model/dec_recall.h"

enum { NV = 13, NCTX = 40 };

typedef struct {
  size_t n, V;
  double M;
  float *logits;
} copier;

static int copier_logits(void *user, const int *tokens, size_t B, size_t T, const float **logits) {
  copier *c = user;
  free(c->logits);
  c->logits = calloc(B * T * c->V, sizeof(float));
  for (size_t b = 0; b < B; b++)
    for (size_t t = c->n; t < T; t++) c->logits[(b * T + t) * c->V + tokens[b * T + t + 1 - c->n]] = (float)c->M;
  *logits = c->logits;
  return 0;
}

START_TEST(test_exact_copier) {
  kx_dec_recall_opts o = {.length = 12, .strings = 50, .seed = 3, .batch = 16};
  copier c = {12, NV, 20.0, NULL};
  kx_dec_recall_result r;
  ck_assert_int_eq(kx_dec_recall_run(copier_logits, &c, NV, NCTX, &o, &r), 0);
  ck_assert_uint_eq(r.length, 12);
  ck_assert_uint_eq(r.strings, 50);
  ck_assert_uint_eq(r.predictions, 50 * 11);
  double want = log1p((NV - 1) * exp(-c.M)), eps = DBL_EPSILON;
  printf("exact copier: second copy %.6g (want %.6g), first copy %.6f (log V %.6f)\n", r.loss, want, r.first_loss,
         log((double)NV));
  /* lse = M + log(1 + ...) is rounded at magnitude M before M is taken off */
  double P = (double)r.predictions, lv = log((double)NV);
  ck_assert_msg(fabs(r.loss - want) <= (8 * (c.M + lv) + P * want) * eps, "%.17g vs %.17g", r.loss, want);
  ck_assert(r.accuracy == 1.0);
  ck_assert_msg(fabs(r.first_loss - lv) <= (8 + P) * lv * eps, "%.17g", r.first_loss);
  size_t zeros = 0;
  int s[12];
  for (size_t i = 0; i < 50; i++) {
    kx_dec_recall_string(NV, 12, 3, i, s);
    for (size_t k = 1; k < 12; k++) zeros += s[k] == 0;
  }
  ck_assert(r.first_accuracy == (double)zeros / (50.0 * 11.0));
  free(c.logits);
}
END_TEST

static void model_of(kx_decoder *m, uint64_t seed) {
  kx_dec_config c;
  kx_dec_config_default(&c);
  c.vocab = NV;
  c.ctx = NCTX;
  c.layers = 2;
  c.heads = 2;
  c.width = 16;
  c.rotary_dims = 4;
  ck_assert_int_eq(kx_dec_create(m, &c), 0);
  ck_assert_int_eq(kx_dec_init_params(m, seed), 0);
}

static void zero_tensor(kx_decoder *m, const char *name) {
  long i = kx_ptable_find(&m->tab, name);
  ck_assert_msg(i >= 0, "%s", name);
  memset(kx_dec_param(m, (size_t)i), 0, m->tab.t[i].size * sizeof(float));
}

START_TEST(test_uniform_logits) {
  kx_decoder m;
  model_of(&m, 1);
  zero_tensor(&m, "unembed");
  kx_dec_recall_opts o = {.strings = 20, .seed = 1};
  kx_dec_recall_result r;
  ck_assert_int_eq(kx_dec_recall(&m, &o, &r), 0);
  ck_assert_uint_eq(r.length, NCTX / 2 - 1); /* the default */
  double lv = log((double)NV), tol = (8 + (double)r.predictions) * DBL_EPSILON * lv;
  ck_assert_msg(fabs(r.loss - lv) <= tol && fabs(r.first_loss - lv) <= tol, "%.17g %.17g", r.loss, r.first_loss);
  ck_assert(r.accuracy == r.first_accuracy);
  kx_dec_free(&m);
}
END_TEST

START_TEST(test_context_blind) {
  kx_decoder m;
  model_of(&m, 2);
  zero_tensor(&m, "layer0/proj_w");
  zero_tensor(&m, "layer0/proj_b");
  zero_tensor(&m, "layer1/proj_w");
  zero_tensor(&m, "layer1/proj_b");
  kx_dec_recall_opts o = {.strings = 32, .seed = 5};
  kx_dec_recall_result r;
  ck_assert_int_eq(kx_dec_recall(&m, &o, &r), 0);
  /* the largest logit of any position: one forward over the strings */
  int x[2 * NCTX];
  kx_dec_recall_string(NV, NCTX, 5, 0, x);
  ck_assert_int_eq(kx_dec_forward(&m, x, NULL, 1, NCTX, NULL), 0);
  double mx = 0.0;
  for (size_t i = 0; i < (size_t)NCTX * NV; i++) mx = fmax(mx, fabs(m.logits[i]));
  double u = 5.96e-8, tol = 2.0 * 2.0 * (2 + 1) * (4.0 * 16) * u * (1.0 + mx);
  printf("context-blind: second copy %.9f, first copy %.9f (tolerance %.2g)\n", r.loss, r.first_loss, tol);
  ck_assert_msg(fabs(r.loss - r.first_loss) <= tol, "%.9g vs %.9g", r.loss, r.first_loss);
  /* with its attention, the same model sees the first copy: the probe is not blind */
  kx_decoder a;
  model_of(&a, 2);
  kx_dec_recall_result ra;
  ck_assert_int_eq(kx_dec_recall(&a, &o, &ra), 0);
  ck_assert(ra.loss != ra.first_loss);
  kx_dec_free(&m);
  kx_dec_free(&a);
}
END_TEST

START_TEST(test_strings_and_refusals) {
  int a[9], b[9], c[9];
  kx_dec_recall_string(NV, 9, 7, 2, a);
  kx_dec_recall_string(NV, 9, 7, 2, b);
  kx_dec_recall_string(NV, 9, 8, 2, c);
  ck_assert(!memcmp(a, b, sizeof a));
  ck_assert(memcmp(a, c, sizeof a));
  for (int k = 0; k < 9; k++) ck_assert(a[k] >= 0 && a[k] < NV);
  ck_assert_uint_eq(kx_dec_recall_default_length(128), 63);
  ck_assert_uint_eq(kx_dec_recall_default_length(32), 15);
  ck_assert_uint_eq(kx_dec_recall_default_length(4), 2);
  ck_assert_uint_eq(kx_dec_recall_default_length(3), 2);
  ck_assert_uint_eq(kx_dec_recall_default_length(2), 0);
  copier cp = {2, NV, 1.0, NULL};
  kx_dec_recall_result r;
  kx_dec_recall_opts o = {.length = 21};
  ck_assert_int_ne(kx_dec_recall_run(copier_logits, &cp, NV, NCTX, &o, &r), 0);
  ck_assert_msg(strstr(kx_error_message(), "at most 20"), "%s", kx_error_message());
  o.length = 1;
  ck_assert_int_ne(kx_dec_recall_run(copier_logits, &cp, NV, NCTX, &o, &r), 0);
  o.length = 20; /* 39 input tokens: fits */
  cp.n = 20;
  ck_assert_int_eq(kx_dec_recall_run(copier_logits, &cp, NV, NCTX, &o, &r), 0);
  kx_error_clear();
  free(cp.logits);
}
END_TEST

int main(void) {
  Suite *s = suite_create("decoder_recall");
  TCase *tc = tcase_create("recall");
  tcase_add_test(tc, test_exact_copier);
  tcase_add_test(tc, test_uniform_logits);
  tcase_add_test(tc, test_context_blind);
  tcase_add_test(tc, test_strings_and_refusals);
  suite_add_tcase(s, tc);
  SRunner *r = srunner_create(s);
  srunner_run_all(r, CK_NORMAL);
  int failed = srunner_ntests_failed(r);
  srunner_free(r);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
