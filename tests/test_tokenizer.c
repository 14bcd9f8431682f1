/* llama2.c's tokenizer file and run.c's encoding (dec_tokenizer.h), and
 * token files (dec_data.h):
 *   - a tokenizer written here (the 3 special and 256 byte pieces, then a
 *     few pieces with scores) encodes and decodes texts round trip,
 *     characters without a piece through the byte pieces;
 *   - the merge rule is the highest-scoring pair first, not the leftmost:
 *     "abc" with score(bc) > score(ab) is [" a", bc], with the scores
 *     the other way [" ab", c];
 *   - a tokenizer of another vocabulary size, a truncated one and one with
 *     a negative length are refused with a message;
 *   - token files: the split at BOS, an odd length and an id beyond the
 *     vocabulary refused, kx_dec_tokens_write read back. */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/kx_error.h"
#include "experiments/model/dec_data.h"
#include "experiments/model/dec_tokenizer.h"
#include "tests/test_support.h"

typedef struct {
  unsigned char *b;
  size_t n, cap;
} buf;

static void put(buf *b, const void *p, size_t n) {
  if (b->n + n > b->cap) b->b = realloc(b->b, b->cap = 2 * (b->n + n));
  memcpy(b->b + b->n, p, n);
  b->n += n;
}

static void piece(buf *b, const char *s, float score) {
  int32_t len = (int32_t)strlen(s);
  put(b, &score, 4);
  put(b, &len, 4);
  put(b, s, (size_t)len);
}

/* <unk>, <s>, </s>, <0x00>..<0xFF>, then " ", "a", "b", "c", "ab", "bc",
 * " a", " ab", "ca" (ids 259 .. 267) with the given scores of ab and bc. */
static buf make(float ab, float bc) {
  buf b = {0};
  int32_t maxlen = 6;
  put(&b, &maxlen, 4);
  piece(&b, "<unk>", 0), piece(&b, "\n<s>\n", 0), piece(&b, "\n</s>\n", 0);
  for (int i = 0; i < 256; i++) {
    char s[8];
    snprintf(s, sizeof s, "<0x%02X>", i);
    piece(&b, s, 0);
  }
  piece(&b, " ", -1), piece(&b, "a", -2), piece(&b, "b", -3), piece(&b, "c", -4);
  piece(&b, "ab", ab), piece(&b, "bc", bc), piece(&b, " a", -20), piece(&b, " ab", -30), piece(&b, "ca", -40);
  return b;
}
enum { V = 268, SP = 259, A = 260, B = 261, C = 262, AB = 263, BC = 264, SPA = 265, SPAB = 266 };

static void encode(const kx_tokenizer *t, const char *text, int bos, int *want, size_t n_want) {
  int *ids;
  size_t n;
  ck_assert_msg(kx_tokenizer_encode(t, text, bos, &ids, &n) == 0, "%s", kx_error_message());
  ck_assert_uint_eq(n, n_want);
  for (size_t i = 0; i < n; i++) ck_assert_msg(ids[i] == want[i], "'%s': id %zu is %d, want %d", text, i, ids[i], want[i]);
  /* decoding gives the text back (after BOS the dummy space is dropped) */
  char out[256] = "";
  size_t len = 0;
  for (size_t i = bos ? 1 : 0; i < n; i++) {
    size_t l;
    const char *p = kx_tokenizer_decode(t, i ? ids[i - 1] : 0, ids[i], &l);
    memcpy(out + len, p, l), len += l;
  }
  out[len] = '\0';
  if (bos) ck_assert_str_eq(out, text);
  free(ids);
}

START_TEST(test_merge_order) {
  buf b = make(-5, -6); /* ab above bc */
  kx_tokenizer t;
  ck_assert_int_eq(kx_tokenizer_parse(b.b, b.n, V, &t), 0);
  encode(&t, "abc", 1, (int[]){1, SPAB, C}, 3); /* ab, then " " + ab */
  kx_tokenizer_free(&t);
  free(b.b);
  b = make(-6, -5); /* bc above ab: the pair on the right merges first */
  ck_assert_int_eq(kx_tokenizer_parse(b.b, b.n, V, &t), 0);
  encode(&t, "abc", 1, (int[]){1, SPA, BC}, 3); /* bc, then " " + a */
  kx_tokenizer_free(&t);
  free(b.b);
}
END_TEST

START_TEST(test_round_trip) {
  buf b = make(-5, -6);
  kx_tokenizer t;
  ck_assert_int_eq(kx_tokenizer_parse(b.b, b.n, V, &t), 0);
  /* " a" + "b" -> " ab" (-30) competes with "ab" (-5): ab first, then " " + "ab" = " ab" */
  encode(&t, "ab", 1, (int[]){1, SPAB}, 2);
  /* é has no piece: its two UTF-8 bytes through <0xC3>, <0xA9> */
  encode(&t, "c\xc3\xa9" "a", 1, (int[]){1, SP, C, 0xC3 + 3, 0xA9 + 3, A}, 6);
  encode(&t, "", 1, (int[]){1}, 1);
  kx_tokenizer_free(&t);
  free(b.b);
}
END_TEST

START_TEST(test_refused) {
  buf b = make(-5, -6);
  kx_tokenizer t;
  ck_assert_int_ne(kx_tokenizer_parse(b.b, b.n, V + 1, &t), 0);
  ck_assert_ptr_nonnull(strstr(kx_error_message(), "268 tokens but the model's vocabulary has 269"));
  ck_assert_int_ne(kx_tokenizer_parse(b.b, b.n - 1, V, &t), 0);
  ck_assert_ptr_nonnull(strstr(kx_error_message(), "truncated"));
  int32_t neg = -5;
  memcpy(b.b + 4 + 4, &neg, 4);
  ck_assert_int_ne(kx_tokenizer_parse(b.b, b.n, V, &t), 0);
  ck_assert_ptr_nonnull(strstr(kx_error_message(), "negative length"));
  ck_assert_int_ne(kx_tokenizer_parse(b.b, 2, V, &t), 0);
  free(b.b);
}
END_TEST

START_TEST(test_token_files) {
  /* 40 pieces from BOS: pieces 20 and 40 (1-based) are validation */
  uint16_t ids[120];
  for (int i = 0; i < 120; i++) ids[i] = i % 3 == 0 ? 1 : (uint16_t)(10 + i);
  kx_dec_data d;
  ck_assert_int_eq(kx_dec_tokens_parse((const unsigned char *)ids, sizeof ids, 512, "x", &d), 0);
  ck_assert_uint_eq(d.n_val, 6);
  ck_assert_uint_eq(d.n_train, 114);
  ck_assert_int_eq(d.val[0], 1);
  ck_assert_int_eq(d.val[1], 10 + 58);
  ck_assert_int_eq(d.val[4], 10 + 118);
  ck_assert(d.vocab.ids && d.vocab.V == 512);
  kx_dec_data_free(&d);
  /* fewer than 20 pieces: the last 1/20 of the tokens */
  for (int i = 0; i < 120; i++) ids[i] = (uint16_t)(2 + i);
  ck_assert_int_eq(kx_dec_tokens_parse((const unsigned char *)ids, sizeof ids, 512, "x", &d), 0);
  ck_assert_uint_eq(d.n_val, 6);
  ck_assert_int_eq(d.val[0], 2 + 114);
  kx_dec_data_free(&d);
  ck_assert_int_ne(kx_dec_tokens_parse((const unsigned char *)ids, 5, 512, "x", &d), 0);
  ck_assert_ptr_nonnull(strstr(kx_error_message(), "odd length"));
  ck_assert_int_ne(kx_dec_tokens_parse((const unsigned char *)ids, sizeof ids, 100, "x", &d), 0);
  ck_assert_ptr_nonnull(strstr(kx_error_message(), "token 98 of 'x' is id 100, beyond the model's vocabulary of 100"));
  /* written and read back */
  const char *path = kx_test_path("t.bin");
  int w[4] = {1, 300, 65535, 0};
  ck_assert_int_eq(kx_dec_tokens_write(path, w, 4), 0);
  kx_dec_vocab v = {NULL, 65536, 1};
  ck_assert_int_eq(kx_dec_data_load(path, &v, &d), 0);
  ck_assert_uint_eq(d.n_train + d.n_val, 4);
  ck_assert_int_eq(d.train[2], 65535);
  kx_dec_data_free(&d);
  int bad = 70000;
  ck_assert_int_ne(kx_dec_tokens_write(path, &bad, 1), 0);
}
END_TEST

int main(void) {
  Suite *s = kx_test_suite("tokenizer");
  TCase *tc = kx_test_case(s, "tokenizer");
  kx_test_add(tc, (const TTest *const[]){test_merge_order, test_round_trip, test_refused, test_token_files, NULL});
  return kx_test_run(s);
}
