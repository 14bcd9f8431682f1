/* Decoder data and inference helpers: UTF-8 tokenizer, the fixed split,
 * n-gram baselines, batches, sampling, Q/K extraction, and the accuracy of
 * the vectorised exp / normal CDF used by GELU. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/kx_error.h"
#include "experiments/model/dec_data.h"
#include "experiments/model/dec_fastmath.h"
#include "experiments/model/dec_layers.h"
#include "experiments/model/dec_sample.h"
#include "experiments/qk/qk_file.h"
#include "tests/test_support.h"

static char *write_tmp(const char *content) {
  static char path[64];
  snprintf(path, sizeof path, "/tmp/kx_dec_data_XXXXXX");
  int fd = mkstemp(path);
  ck_assert_int_ge(fd, 0);
  ck_assert_int_eq(write(fd, content, strlen(content)), (ssize_t)strlen(content));
  close(fd);
  return path;
}

START_TEST(test_utf8_split) {
  /* 40 lines; lines 20 and 40 are validation.  Multi-byte characters. */
  char text[4096] = "";
  for (int i = 1; i <= 40; i++) {
    char line[64];
    snprintf(line, sizeof line, i % 20 == 0 ? "v\xc3\xa9%02d\n" : "t\xe2\x80\x94%02d\n", i);
    strcat(text, line);
  }
  char *p = write_tmp(text);
  kx_dec_data d;
  ck_assert_int_eq(kx_dec_data_load(p, NULL, &d), 0);
  /* vocabulary: \n 0-9 t v e-acute em-dash, sorted by code point */
  ck_assert_uint_eq(d.vocab.V, 1 + 10 + 2 + 2);
  ck_assert_uint_eq(d.vocab.vocab[0], '\n');
  ck_assert_uint_eq(d.vocab.vocab[d.vocab.V - 1], 0x2014);
  ck_assert_uint_eq(d.n_val, 2 * 5);
  ck_assert_uint_eq(d.n_train, 38 * 5);
  char buf[8];
  size_t nb = kx_dec_decode(&d.vocab, d.val[1], buf);
  ck_assert_uint_eq(nb, 2);
  ck_assert_int_eq(memcmp(buf, "\xc3\xa9", 2), 0);
  int *ids;
  size_t n;
  ck_assert_int_eq(kx_dec_encode(&d.vocab, "t\xe2\x80\x94" "7", &ids, &n), 0);
  ck_assert_uint_eq(n, 3);
  free(ids);
  ck_assert_int_ne(kx_dec_encode(&d.vocab, "x", &ids, &n), 0);
  ck_assert_ptr_nonnull(strstr(kx_error_message(), "'x'"));
  ck_assert_int_ne(kx_dec_encode(&d.vocab, "\xe2\x80", &ids, &n), 0);
  kx_dec_data_free(&d);
  unlink(p);
}
END_TEST

START_TEST(test_baselines) {
  /* train "abab...": after 'a' always 'b'; the validation line "ab\n". */
  char text[4096] = "";
  for (int i = 1; i <= 20; i++) strcat(text, i == 20 ? "ab\n" : "abab\n");
  char *p = write_tmp(text);
  kx_dec_data d;
  ck_assert_int_eq(kx_dec_data_load(p, NULL, &d), 0);
  double uni, bi;
  kx_dec_baselines(&d, &uni, &bi);
  /* train: 19 lines "abab\n": a 38, b 38, \n 19 = 95; V = 3 */
  double pa = 39.0 / 98, pb = 39.0 / 98, pn = 20.0 / 98;
  ck_assert_double_eq_tol(uni, -(log(pa) + log(pb) + log(pn)) / 3, 1e-12);
  /* bigrams in train: a->b 38, b->a 19, b->\n 19, \n->a 18 */
  double b_ab = (38.0 + 1) / (38 + 3), b_bn = (19.0 + 1) / (38 + 3);
  ck_assert_double_eq_tol(bi, -(log(pa) + log(b_ab) + log(b_bn)) / 3, 1e-12);
  kx_dec_data_free(&d);
  unlink(p);
}
END_TEST

START_TEST(test_batches) {
  int stream[100];
  for (int i = 0; i < 100; i++) stream[i] = i;
  int x1[3 * 5], y1[3 * 5], x2[3 * 5], y2[3 * 5];
  kx_dec_batch(stream, 100, 3, 5, 9, 4, 0, x1, y1);
  kx_dec_batch(stream, 100, 3, 5, 9, 4, 0, x2, y2);
  ck_assert_int_eq(memcmp(x1, x2, sizeof x1), 0);
  for (int b = 0; b < 3; b++)
    for (int t = 0; t < 5; t++) {
      ck_assert_int_eq(y1[b * 5 + t], x1[b * 5 + t] + 1);
      ck_assert_int_lt(y1[b * 5 + t], 100);
    }
  kx_dec_batch(stream, 100, 3, 5, 9, 5, 0, x2, y2);
  ck_assert_int_ne(memcmp(x1, x2, sizeof x1), 0);
}
END_TEST

/* Token data: every window starts at its story's BOS (the last BOS at or
 * before the drawn position); a stream without a BOS before the position
 * keeps it. */
START_TEST(test_story_windows) {
  int stream[100];
  for (int i = 0; i < 100; i++) stream[i] = 100 + i; /* a token says its position */
  for (int i = 5; i < 100; i += 13) stream[i] = KX_DEC_BOS; /* stories at 5, 18, 31, ... */
  ck_assert_uint_eq(kx_dec_story_start(stream, 4), 4);
  ck_assert_uint_eq(kx_dec_story_start(stream, 5), 5);
  ck_assert_uint_eq(kx_dec_story_start(stream, 17), 5);
  ck_assert_uint_eq(kx_dec_story_start(stream, 18), 18);
  ck_assert_uint_eq(kx_dec_window_start(stream, 17, 0), 17);
  int x[8 * 6], y[8 * 6], at_bos = 0;
  for (uint64_t step = 0; step < 4; step++) {
    kx_dec_batch(stream, 100, 8, 6, 3, step, 1, x, y);
    for (int b = 0; b < 8; b++) {
      /* at a BOS, or drawn before the first story (positions 0 .. 4) */
      at_bos += x[b * 6] == KX_DEC_BOS;
      ck_assert(x[b * 6] == KX_DEC_BOS || x[b * 6] < 105);
      ck_assert_int_eq(memcmp(x + b * 6 + 1, y + b * 6, 5 * sizeof(int)), 0);
    }
  }
  ck_assert_int_ge(at_bos, 16); /* 32 draws, 5 of the 94 positions before the first story */
}
END_TEST

START_TEST(test_pick) {
  float logits[5] = {0.1f, 2.0f, 1.9f, -1.0f, 0.0f};
  ck_assert_int_eq(kx_dec_pick(logits, 5, 0.0, 0, 0.99), 1);
  ck_assert_int_eq(kx_dec_pick(logits, 5, 1.0, 1, 0.99), 1);
  /* top-2: only 1 and 2 can come out; frequencies follow softmax of the two */
  int count[5] = {0};
  for (int i = 0; i < 1000; i++) count[kx_dec_pick(logits, 5, 1.0, 2, (i + 0.5) / 1000.0)]++;
  ck_assert_int_eq(count[0] + count[3] + count[4], 0);
  double p1 = 1.0 / (1.0 + exp(-0.1));
  ck_assert_int_le(abs(count[1] - (int)(1000 * p1 + 0.5)), 1);
}
END_TEST

START_TEST(test_extract_qk) {
  kx_dec_config c;
  kx_test_config(&c, "softmax", 7, 12, 16, 4);
  kx_decoder m;
  kx_test_model(&m, &c, 5);
  int tok[10];
  for (int i = 0; i < 10; i++) tok[i] = i % 7;
  kx_qk_layer layers[2];
  int scaled = -1;
  ck_assert_int_eq(kx_dec_extract_qk(&m, tok, 10, layers, &scaled), 0);
  ck_assert_int_eq(scaled, 0);
  /* at position 0 the rotation is the identity: q equals the projection */
  const float *qkv = m.blk[1].attn_acts; /* softmax kind: qkv (N,3C) first */
  for (size_t h = 0; h < 2; h++)
    for (size_t e = 0; e < 8; e++) ck_assert_float_eq((float)layers[1].q[h * 10 * 8 + e], qkv[h * 8 + e]);
  char path[64];
  snprintf(path, sizeof path, "/tmp/kx_dec_qk_%d.h5", (int)getpid());
  ck_assert_int_eq(kx_qk_write(path, scaled, 1, 2, layers, 1), 0);
  kx_qk_file *f = kx_qk_open(path);
  ck_assert_ptr_nonnull(f);
  ck_assert_uint_eq(kx_qk_n_layers(f), 2);
  ck_assert_int_eq(kx_qk_causal(f), 1);
  kx_qk_layer back;
  ck_assert_int_eq(kx_qk_read_layer(f, 1, &back), 0);
  ck_assert_uint_eq(back.heads, 2);
  ck_assert_uint_eq(back.tokens, 10);
  ck_assert_uint_eq(back.d, 8);
  ck_assert_uint_eq(back.dv, 8);
  for (size_t i = 0; i < 2 * 10 * 8; i++) ck_assert_double_eq(back.k[i], layers[1].k[i]);
  kx_qk_layer_free(&back);
  kx_qk_close(f);
  unlink(path);
  kx_qk_layer_free(&layers[0]);
  kx_qk_layer_free(&layers[1]);
  kx_dec_free(&m);
}
END_TEST

/* GELU's exp and Phi are our own; they must be as good as float32 needs:
 * a few ulp of the float64 value over the range GELU sees. */
START_TEST(test_fastmath) {
  double worst_e = 0, worst_c = 0;
  for (int i = -200000; i <= 200000; i++) {
    float x = (float)i * 4e-4f; /* [-80, 80] */
    double e = exp((double)x);
    double re = fabs((double)kx_expf(x) - e) / e;
    if (re > worst_e) worst_e = re;
    float z = (float)i * 5e-5f; /* [-10, 10] */
    double phi = 0.5 * erfc(-(double)z / sqrt(2.0));
    if (phi > 1e-30) {
      double rc = fabs((double)kx_normal_cdf(z) - phi) / phi;
      if (rc > worst_c) worst_c = rc;
    }
  }
  fprintf(stderr, "fastmath: exp worst relative error %.2e, Phi %.2e\n", worst_e, worst_c);
  /* the ends: clamped, never inf or 0; NaN stays NaN (and, under UBSan,
   * never reaches the float-to-int conversion) */
  ck_assert(kx_expf(INFINITY) == kx_expf(88.3f) && isfinite(kx_expf(INFINITY)) && kx_expf(88.3f) > 2e38f);
  ck_assert(kx_expf(-INFINITY) == kx_expf(-87.3f) && kx_expf(-INFINITY) > 0.0f);
  ck_assert(isnan(kx_expf(NAN)) && isnan(kx_expf(-NAN)));
  ck_assert(worst_e < 4 * 5.96e-8);
  /* Phi's error is dominated by exp(-z^2) of a rounded z^2: relative error
   * ~ z^2 u, i.e. 6e-6 at z = 10 where Phi ~ 1e-23 (GELU there is ~0). */
  ck_assert(worst_c < 1e-5);
}
END_TEST

int main(void) {
  kx_init_library();
  kx_dec_threads_init();
  Suite *s = kx_test_suite("decoder_data");
  TCase *tc = kx_test_case(s, "data");
  kx_test_add(tc, (const TTest *const[]){test_utf8_split, test_baselines, test_batches, test_story_windows, test_pick,
                                         test_extract_qk, test_fastmath, NULL});
  return kx_test_run(s);
}
