/* Recurrent inference (dec_infer.h) against the parallel forward, for every
 * attention kind:
 *
 *   - logits: a prompt of P tokens prefilled in one parallel call, then
 *     T - P tokens fed one at a time through the kind's recurrent state (KV
 *     cache for softmax); every logit equals kx_dec_forward's over the same
 *     T tokens to float32 round-off;
 *   - the same beyond the training context, for the kinds that define every
 *     position: a copy of the model with a short ctx (same tensors) decodes
 *     T > ctx tokens, its prefill cut into ctx-sized chunks that hand the
 *     state on, and matches the long-context model's parallel forward;
 *     kinds limited to ctx refuse with a message;
 *   - greedy generation gives the same tokens both ways.
 * A sliding-window hybrid's recurrent form keeps the window's tokens in a
 * buffer and folds each token leaving it into the kind's state: the same
 * logits as its parallel form. 
 *
 * Tolerance.  Both paths evaluate the same expressions in float32, only the
 * order of the additions differs (chunked BLAS sums against one running
 * state, a KV cache row against a masked square).  A sum of n terms in two
 * orders differs by at most 2 gamma_n sum|terms|, gamma_n ~ n u (u = 2^-24);
 * the longest sums here are the state/causal sums over T positions and the
 * MLP contraction over 4C.  Per block, the difference relative to the
 * residual stream's scale is then at most 2 (T + 4C) u, and the blocks add
 * (L of them, plus the unembedding over C), so we allow
 *   |logit_rec - logit_par| <= 2 (L + 1) (T + 4C) u (1 + max |logit|),
 * a worst-case bound (no cancellation assumed), 1.5e-4 relative here;
 * typical differences are ~sqrt(n) u, far below it. */
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/kx_error.h"
#include "experiments/model/dec_attn.h"
#include "experiments/model/dec_infer.h"
#include "experiments/model/dec_model.h"
#include "experiments/model/dec_sample.h"
#include "tests/test_support.h"

/* Every kind, and sliding-window hybrids (dec_window.h) of each family:
 * windows of 1 and of a few tokens, one larger than the decoding buffer's
 * piece (32 tokens), the prefill longer than both. */
static const char *const kinds[] = {"softmax",      "performer",    "performer-prf", "performer-redraw", "pff",
                                    "cosformer",    "retnet",       "dijiang",       "dijiang-code",     "linformer",
                                    "hedgehog",     "performer+w16", "pff+w1",       "cosformer+w5",     "dijiang+w7",
                                    "hedgehog+w64",
                                    /* the llama block (grouped-query attention, SwiGLU, RMSNorm), with
                                     * softmax and converted kinds */
                                    "llama:softmax", "llama:performer", "llama:dijiang", "llama:hedgehog",
                                    "llama:linformer", "llama:cosformer", "llama:dijiang+w7"};
enum { N_KINDS = sizeof kinds / sizeof kinds[0], T = 300, P = 100, CTX = 320, SHORT_CTX = 64 };
static const double U = 5.96e-8; /* 2^-24 */

static void make_model(kx_decoder *m, const char *kind, size_t ctx, uint64_t seed) {
  kx_dec_config c;
  int llama = !strncmp(kind, "llama:", 6);
  kx_test_config(&c, llama ? kind + 6 : kind, 13, ctx, 32, 8);
  if (llama) /* 4 query heads on 2 key/value heads of d = 8, SwiGLU width 40 */
    c.arch = KX_ARCH_LLAMA, c.heads = 4, c.kv_heads = 2, c.ffn_hidden = 40;
  kx_test_model(m, &c, seed);
}

static void tokens_of(int *tok, size_t n, uint64_t seed) {
  uint64_t s = seed * 2654435761u + 1;
  for (size_t i = 0; i < n; i++) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    tok[i] = (int)((s >> 33) % 13);
  }
}

static double tolerance(const kx_decoder *m, const float *logits, size_t n) {
  double mx = 0.0;
  for (size_t i = 0; i < n; i++) mx = fmax(mx, fabs(logits[i]));
  double C = (double)m->cfg.width, L = (double)m->cfg.layers;
  return 2.0 * (L + 1.0) * ((double)T + 4.0 * C) * U * (1.0 + mx);
}

/* Max |a - b| over n floats, and where. */
static double max_diff(const float *a, const float *b, size_t n, size_t *at) {
  double worst = 0.0;
  *at = 0;
  for (size_t i = 0; i < n; i++) {
    double d = fabs((double)a[i] - (double)b[i]);
    if (!(d <= worst)) worst = d, *at = i; /* NaN counts as worst */
  }
  return worst;
}

/* Logits of `dec` (recurrent: prefill P, then one at a time) vs `ref` (parallel). */
static void check_recurrent(kx_decoder *dec, kx_decoder *ref, const char *kind, const char *what) {
  size_t V = ref->cfg.vocab;
  int tok[T];
  tokens_of(tok, T, 7);
  ck_assert_int_eq(kx_dec_forward(ref, tok, NULL, 1, T, NULL), 0);
  float *rec = malloc((size_t)T * V * sizeof(float));
  kx_dec_infer s;
  ck_assert_msg(kx_dec_infer_create(&s, dec, T) == 0, "%s: %s", kind, kx_error_message());
  ck_assert_int_eq(kx_dec_infer_feed(&s, tok, P, rec), 0);
  for (size_t t = P; t < T; t++) ck_assert_int_eq(kx_dec_infer_feed(&s, tok + t, 1, rec + t * V), 0);
  double tol = tolerance(ref, ref->logits, (size_t)T * V);
  size_t at;
  double d = max_diff(rec, ref->logits, (size_t)T * V, &at);
  printf("%-14s %-12s max |recurrent - parallel| = %.3g (tolerance %.3g) at token %zu\n", kind, what, d, tol,
         at / V);
  ck_assert_msg(d <= tol, "%s (%s): logit of token %zu differs by %g > %g", kind, what, at / V, d, tol);
  kx_dec_infer_free(&s);
  free(rec);
}

START_TEST(test_logits_match) {
  const char *kind = kinds[_i];
  kx_decoder m;
  make_model(&m, kind, CTX, 11);
  check_recurrent(&m, &m, kind, "within ctx");
  kx_dec_free(&m);
}
END_TEST

START_TEST(test_beyond_ctx) {
  const char *kind = kinds[_i];
  kx_decoder ref, dec;
  make_model(&ref, kind, CTX, 11);
  make_model(&dec, kind, SHORT_CTX, 11);
  kx_dec_infer s;
  if (ref.attn->max_positions(&ref.cfg) <= CTX) {
    /* Refused, with the limit in the message. */
    ck_assert_int_ne(kx_dec_infer_create(&s, &dec, SHORT_CTX + 1), 0);
    ck_assert_ptr_nonnull(strstr(kx_error_message(), "positions"));
    ck_assert_int_eq(kx_dec_infer_create(&s, &dec, SHORT_CTX), 0);
    kx_dec_infer_free(&s);
  } else {
    /* Tensors do not depend on ctx for these kinds: same table, same values. */
    ck_assert_uint_eq(ref.tab.total, dec.tab.total);
    memcpy(dec.params, ref.params, ref.tab.total * sizeof(float));
    check_recurrent(&dec, &ref, kind, "beyond ctx");
  }
  kx_dec_free(&ref);
  kx_dec_free(&dec);
}
END_TEST

START_TEST(test_greedy_same_text) {
  enum { PROMPT = 20, LEN = 60 };
  const char *kind = kinds[_i];
  kx_decoder m;
  make_model(&m, kind, CTX, 5);
  int prompt[PROMPT], par[LEN], rec[LEN];
  tokens_of(prompt, PROMPT, 3);
  ck_assert_int_eq(kx_dec_generate(&m, prompt, PROMPT, LEN, 0.0, 0, 1, par), 0);
  ck_assert_int_eq(kx_dec_infer_generate(&m, prompt, PROMPT, LEN, 0.0, 0, 1, rec), 0);
  for (size_t i = 0; i < LEN; i++) ck_assert_msg(par[i] == rec[i], "%s: token %zu differs", kind, i);
  /* Sampling (temperature 1) uses the same uniforms: same text too. */
  ck_assert_int_eq(kx_dec_generate(&m, prompt, PROMPT, LEN, 1.0, 0, 9, par), 0);
  ck_assert_int_eq(kx_dec_infer_generate(&m, prompt, PROMPT, LEN, 1.0, 0, 9, rec), 0);
  for (size_t i = 0; i < LEN; i++) ck_assert_msg(par[i] == rec[i], "%s: sampled token %zu differs", kind, i);
  kx_dec_free(&m);
}
END_TEST

START_TEST(test_bad_input) {
  kx_decoder m;
  make_model(&m, "softmax", SHORT_CTX, 1);
  kx_dec_infer s;
  ck_assert_int_eq(kx_dec_infer_create(&s, &m, 8), 0);
  int bad = 13, ok[9] = {0};
  ck_assert_int_ne(kx_dec_infer_feed(&s, &bad, 1, NULL), 0);
  ck_assert_int_ne(kx_dec_infer_feed(&s, ok, 9, NULL), 0); /* more than the capacity */
  ck_assert_uint_eq(s.pos, 0);
  kx_dec_infer_free(&s);
  /* A capacity whose KV cache exceeds any machine's memory is refused up front. */
  ck_assert_int_ne(kx_dec_infer_create(&s, &m, (size_t)1 << 40), 0);
  ck_assert_ptr_nonnull(strstr(kx_error_message(), "MiB"));
  kx_dec_free(&m);
}
END_TEST

/* Logits that are not finite (an unembedding of +-3e38, which a loaded
 * checkpoint's probe refuses, here set in memory) stop generation and Q/K
 * extraction with KX_ENUM instead of drawing from them. */
START_TEST(test_absurd_logits) {
  kx_decoder m;
  make_model(&m, "softmax", SHORT_CTX, 1);
  float *u = kx_dec_param(&m, m.unembed);
  for (size_t j = 0; j < m.tab.t[m.unembed].size; j++) u[j] = j % 2 ? -3e38f : 3e38f;
  int prompt[3] = {1, 2, 3}, out[4];
  ck_assert_int_eq(kx_dec_infer_generate(&m, prompt, 3, 4, 0.8, 0, 1, out), KX_ENUM);
  ck_assert_ptr_nonnull(strstr(kx_error_message(), "logits before generated character 1 are not finite"));
  ck_assert_int_eq(kx_dec_generate(&m, prompt, 3, 4, 0.0, 0, 1, out), KX_ENUM);
  ck_assert_ptr_nonnull(strstr(kx_error_message(), "not finite"));
  kx_qk_layer layers[2];
  int scaled;
  ck_assert_int_eq(kx_dec_extract_qk(&m, prompt, 3, layers, &scaled), KX_ENUM);
  ck_assert_ptr_nonnull(strstr(kx_error_message(), "in the logits"));
  kx_dec_free(&m);
}
END_TEST

int main(void) {
  Suite *s = kx_test_suite("decoder_infer");
  TCase *tc = kx_test_case(s, "infer");
  tcase_set_timeout(tc, 120);
  tcase_add_loop_test(tc, test_logits_match, 0, N_KINDS);
  tcase_add_loop_test(tc, test_beyond_ctx, 0, N_KINDS);
  tcase_add_loop_test(tc, test_greedy_same_text, 0, N_KINDS);
  tcase_add_test(tc, test_bad_input);
  tcase_add_test(tc, test_absurd_logits);
  return kx_test_run(s);
}
