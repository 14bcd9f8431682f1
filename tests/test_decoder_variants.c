/* The linear-attention kinds retnet, the DiJiang forms and linformer
 * (loss and every gradient against the float64 PyTorch quadratic forms is
 * tests/torch_reference.py; this file checks what does not need torch):
 *
 *   - causality through the whole model: changing the tokens from position
 *     t0 on leaves every earlier logit bit-identical (future rows enter only
 *     through exact zeros of the kernel's mask, never its running state),
 *     and does move a later one (so the test can fail); T = 80 crosses the
 *     kernel's 32-row chunk boundaries, t0 = 30 lies in the first chunk;
 *   - attn_weights: every row a distribution over j <= i;
 *   - large q, k (far beyond the trained teacher's norms) keep the loss and
 *     every gradient finite;
 *   - initialisation: reproducible from the seed, the documented values
 *     (DiJiang radii = the chi_d inverse-CDF grid, D = 1; the released
 *     code's matrix = diag(t) C^T with C orthonormal, and diag(t) C for
 *     the DCT-II switch; its xavier gate within gain sqrt(6/2C) and
 *     GroupNorm affine 1, 0; Linformer E, F around 1), and frozen tensors
 *     untouched by an AdamW step;
 *   - DiJiang attention specs: switches after the kind, labels that read
 *     back as the same form, refused bad switches;
 *   - the float DCT (approx/dct.h): FFTW path and matrix path (through the
 *     decoder's sgemm) against the double-precision FFTW DCT, all four
 *     types, and their speed at d = 64 (printed). */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "approx/dct.h"
#include "core/kx_error.h"
#include "core/kx_seed.h"
#include "experiments/model/dec_adamw.h"
#include "experiments/model/dec_dijiang_form.h"
#include "experiments/model/dec_layers.h"
#include "experiments/model/dec_model.h"
#include "samplers/transforms.h"
#include "tests/test_support.h"

/* The DiJiang presets and two mixtures: softmax features with a
 * denominator and no D; exp features without the prescale, with the
 * released GroupNorm and gate. */
static const char *const kinds[] = {"retnet",
                                    "dijiang",
                                    "dijiang-code",
                                    "dijiang-released",
                                    "dijiang+softmax+noD+normal",
                                    "dijiang-released+exp+D+den+sq",
                                    "linformer"};
enum { N_KINDS = sizeof kinds / sizeof kinds[0] };
static const double U = 5.96e-8; /* 2^-24 */

/* kind: an attention spec (kx_dec_config_set_attention). */
static void small_model(kx_decoder *m, const char *kind, uint64_t seed) {
  kx_dec_config c;
  kx_test_config(&c, "softmax", 11, 80, 32, 4);
  ck_assert_msg(kx_dec_config_set_attention(&c, kind) == 0, "%s: %s", kind, kx_error_message());
  kx_test_model(m, &c, seed);
}

static float *param(const kx_decoder *m, const char *name) {
  long i = kx_ptable_find(&m->tab, name);
  ck_assert_msg(i >= 0, "no tensor %s", name);
  return kx_dec_param(m, (size_t)i);
}

START_TEST(test_causality) {
  enum { B = 2, T = 80, T0 = 30 };
  kx_decoder m;
  small_model(&m, kinds[_i], 3);
  size_t V = m.cfg.vocab;
  int tok[B * T];
  for (size_t k = 0; k < B * T; k++) tok[k] = (int)(kx_mix64(k) % V);
  ck_assert_int_eq(kx_dec_forward(&m, tok, NULL, B, T, NULL), 0);
  float *before = malloc(B * T * V * sizeof *before);
  for (size_t b = 0; b < B; b++)
    for (size_t t = 0; t < T; t++) memcpy(before + (b * T + t) * V, kx_dec_logits(&m, b, t), V * sizeof(float));
  for (size_t b = 0; b < B; b++)
    for (size_t t = T0; t < T; t++) tok[b * T + t] = (tok[b * T + t] + 1 + (int)(t % 3)) % (int)V;
  ck_assert_int_eq(kx_dec_forward(&m, tok, NULL, B, T, NULL), 0);
  double moved_later = 0.0;
  for (size_t b = 0; b < B; b++)
    for (size_t t = 0; t < T; t++) {
      const float *now = kx_dec_logits(&m, b, t);
      for (size_t v = 0; v < V; v++) {
        if (t < T0)
          ck_assert_msg(now[v] == before[(b * T + t) * V + v], "%s: logit at t=%zu moved when tokens >= %d changed",
                        kinds[_i], t, T0);
        else
          moved_later = fmax(moved_later, fabs(now[v] - before[(b * T + t) * V + v]));
      }
    }
  ck_assert_msg(moved_later > 0.0, "%s: changing tokens changed no logit at all", kinds[_i]);
  free(before);
  kx_dec_free(&m);
}
END_TEST

/* Rows of A: non-negative, zero above the diagonal, summing to 1 up to the
 * round-off of a float sum of at most T terms (T u, worst case).  For the
 * DiJiang forms with a denominator the sum is den/(den + eps), eps = 1e-6:
 * at least 0.999 while den >= 1e-3, which holds at init (the diagonal term
 * alone is phi(q_i).phi(k_i) ~ e^(-|x~|^2/2 + ...) / sqrt(d) with |x~| of
 * order 1 for exp features, and at least 1/d for softmax features). */
START_TEST(test_attn_weights) {
  enum { B = 2, T = 70 };
  kx_decoder m;
  small_model(&m, kinds[_i], 4);
  int tok[B * T];
  for (size_t k = 0; k < B * T; k++) tok[k] = (int)(kx_mix64(k + 99) % m.cfg.vocab);
  ck_assert_int_eq(kx_dec_forward(&m, tok, NULL, B, T, NULL), 0);
  ck_assert_ptr_nonnull(m.attn->attn_weights);
  float *A = malloc(T * T * sizeof *A);
  kx_attn_ctx c = {&m.cfg, B, T, m.rope_cos, m.rope_sin, 0, 0, NULL};
  for (size_t l = 0; l < m.cfg.layers; l++)
    for (size_t b = 0; b < B; b++)
      for (size_t h = 0; h < m.cfg.heads; h++) {
        m.attn->attn_weights(&c, kx_dec_attn_p(&m, l), m.blk[l].attn_acts, b, h, A);
        for (size_t i = 0; i < T; i++) {
          double sum = 0.0;
          for (size_t j = 0; j < T; j++) {
            ck_assert(A[i * T + j] >= 0.0f);
            if (j > i) ck_assert(A[i * T + j] == 0.0f);
            sum += A[i * T + j];
          }
          /* dijiang is normalised: its rows sum to den_i / (den_i + 1e-6),
           * just below 1 (the weights o_i really gives); the others are
           * normalised by the hook itself */
          const kx_dijiang_preset *pr = kx_dijiang_preset_of(m.cfg.attn_kind);
          int den = pr && !kx_dj_released(pr->form ^ m.cfg.dijiang_flips, KX_DJ_NORMALISER);
          double lo = den ? 0.999 : 1.0 - T * U;
          ck_assert_msg(sum >= lo && sum <= 1.0 + T * U, "%s: row %zu sums to %.9g", kinds[_i], i, sum);
        }
      }
  free(A);
  kx_dec_free(&m);
}
END_TEST

/* Same seed, same tensors; another seed changes every tensor the kind
 * draws; frozen tensors survive an AdamW step that moves the others. */
START_TEST(test_init_and_frozen) {
  kx_decoder a, b, c;
  small_model(&a, kinds[_i], 7);
  small_model(&b, kinds[_i], 7);
  small_model(&c, kinds[_i], 8);
  ck_assert(!memcmp(a.params, b.params, a.tab.total * sizeof(float)));
  for (size_t i = 0; i < a.tab.n; i++) {
    const kx_tensor_info *t = &a.tab.t[i];
    /* feat_d is 1 and the GroupNorm's affine part 1 and 0: not drawn */
    if (t->init != KX_INIT_KIND || strstr(t->name, "feat_d") || strstr(t->name, "/gn_")) continue;
    ck_assert_msg(memcmp(kx_dec_param(&a, i), kx_dec_param(&c, i), t->size * sizeof(float)),
                  "%s: %s does not depend on the seed", kinds[_i], t->name);
  }
  /* One AdamW step with gradient 1 everywhere. */
  kx_adamw opt;
  ck_assert_int_eq(kx_adamw_create(&opt, a.tab.total, 0.9, 0.95, 1e-8, 0.1), 0);
  float *g = malloc(a.tab.total * sizeof *g), *p0 = malloc(a.tab.total * sizeof *p0);
  for (size_t k = 0; k < a.tab.total; k++) g[k] = 1.0f;
  memcpy(p0, a.params, a.tab.total * sizeof *p0);
  kx_adamw_step(&opt, &a.tab, a.params, g, 1e-3);
  for (size_t i = 0; i < a.tab.n; i++) {
    const kx_tensor_info *t = &a.tab.t[i];
    int same = !memcmp(a.params + t->offset, p0 + t->offset, t->size * sizeof(float));
    ck_assert_msg(same == t->frozen, "%s: %s %s by AdamW", kinds[_i], t->name, same ? "not moved" : "moved");
  }
  free(g);
  free(p0);
  kx_adamw_free(&opt);
  kx_dec_free(&a);
  kx_dec_free(&b);
  kx_dec_free(&c);
}
END_TEST

/* Large queries and keys (qkv_w times 20: |k / d^(1/4)| in the tens,
 * beyond the 5-8 of the trained teacher) must not overflow: the loss and
 * every gradient stay finite (dijiang's key features are bounded by
 * e^(max t^2/2) whatever |k|, its query features by 1). */
START_TEST(test_large_inputs_finite) {
  enum { B = 2, T = 70 };
  kx_decoder m;
  small_model(&m, kinds[_i], 6);
  for (size_t l = 0; l < m.cfg.layers; l++) {
    char name[48];
    snprintf(name, sizeof name, "layer%zu/qkv_w", l);
    float *w = param(&m, name);
    for (size_t k = 0; k < 3 * m.cfg.width * m.cfg.width; k++) w[k] *= 20.0f;
  }
  int tok[B * T], tgt[B * T];
  for (size_t k = 0; k < B * T; k++) {
    tok[k] = (int)(kx_mix64(k + 5) % m.cfg.vocab);
    tgt[k] = (int)(kx_mix64(k + 6) % m.cfg.vocab);
  }
  double loss;
  ck_assert_int_eq(kx_dec_forward(&m, tok, tgt, B, T, &loss), 0);
  ck_assert_msg(isfinite(loss), "%s: loss %g", kinds[_i], loss);
  ck_assert_int_eq(kx_dec_backward(&m), 0);
  for (size_t k = 0; k < m.tab.total; k++) ck_assert_msg(isfinite(m.grads[k]), "%s: gradient not finite", kinds[_i]);
  kx_dec_free(&m);
}
END_TEST

static int cmp_float(const void *x, const void *y) {
  float a = *(const float *)x, b = *(const float *)y;
  return (a > b) - (a < b);
}

/* The documented values of the new tensors (layer 1, d = 16, 2 heads). */
START_TEST(test_init_values) {
  kx_decoder m;
  size_t d = 16;
  small_model(&m, "dijiang", 5);
  float t[16];
  memcpy(t, param(&m, "layer1/feat_t"), sizeof t);
  qsort(t, d, sizeof *t, cmp_float);
  for (size_t i = 0; i < d; i++) /* float rounding of a value below 10 */
    ck_assert_double_eq_tol(t[i], kx_chi_inv((i + 0.5) / d, (double)d), 1e-6);
  for (size_t i = 0; i < 2 * d; i++) ck_assert(param(&m, "layer1/feat_d")[i] == 1.0f);
  kx_dec_free(&m);

  /* W = diag(t) C^T with C orthonormal: W W^T = diag(t^2), t_j signed. */
  small_model(&m, "dijiang-code", 5);
  const float *W = param(&m, "layer1/feat_w");
  int negative = 0;
  for (size_t i = 0; i < d; i++)
    for (size_t j = 0; j < d; j++) {
      double s = 0.0, ti = 0.0, tj = 0.0;
      for (size_t k = 0; k < d; k++) s += (double)W[i * d + k] * W[j * d + k];
      for (size_t k = 0; k < d; k++) ti += (double)W[i * d + k] * W[i * d + k];
      for (size_t k = 0; k < d; k++) tj += (double)W[j * d + k] * W[j * d + k];
      if (i != j) ck_assert_double_le(fabs(s), 4 * d * U * sqrt(ti * tj)); /* float entries: d u each */
    }
  /* the column j of W^T is t_j times row j of C^T: its sign follows t_j's,
   * and normal scales are negative half of the time (16 draws) */
  for (size_t j = 0; j < d; j++) negative += W[j * d] < 0.0f;
  ck_assert_int_gt(negative, 0);
  ck_assert_int_lt(negative, (int)d);
  kx_dec_free(&m);

  /* Linformer: E = 1 + N(0, 1/S): the mean of S ctx = 2560 entries is 1
   * within 5 standard errors (5 / sqrt(S * 2560) = 0.0197 with S = 32). */
  small_model(&m, "linformer", 5);
  const float *E = param(&m, "layer0/lin_e");
  double mean = 0.0;
  for (size_t k = 0; k < 32 * 80; k++) mean += E[k];
  mean /= 32 * 80;
  ck_assert_double_le(fabs(mean - 1.0), 5.0 / sqrt(32.0 * 32 * 80));
  kx_dec_free(&m);
}
END_TEST

/* The switches' tensors (layer 1, d = 16, C = 32). */
START_TEST(test_form_values) {
  size_t d = 16, C = 32;
  kx_decoder m;
  double C_[16 * 16];
  ck_assert_int_eq(kx_dct_matrix(2, d, C_), 0);
  /* feat_w = diag(t) M: row j is t_j times row j of M, M = C^T (dct3, the
   * released code) or C (dct2); t read back as <W_j, M_j> (M orthonormal),
   * each entry within the float rounding of t_j M_jk (u |t_j|, |M_jk| <= 1);
   * the released code's scales are signed, chi radii are the grid */
  const struct {
    const char *spec;
    int dct3, chi;
  } cases[] = {{"dijiang-released", 1, 0}, {"dijiang-released+dct2", 0, 0}, {"dijiang-released+chi", 1, 1}};
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    small_model(&m, cases[c].spec, 5);
    const float *W = param(&m, "layer1/feat_w");
    float t[16];
    int negative = 0;
    for (size_t j = 0; j < d; j++) {
      double tj = 0.0;
      for (size_t k = 0; k < d; k++) tj += W[j * d + k] * (cases[c].dct3 ? C_[k * d + j] : C_[j * d + k]);
      for (size_t k = 0; k < d; k++)
        ck_assert_msg(fabs(W[j * d + k] - tj * (cases[c].dct3 ? C_[k * d + j] : C_[j * d + k])) <= 4 * d * U * fabs(tj),
                      "%s: feat_w row %zu is not t_j times the %s row", cases[c].spec, j, cases[c].dct3 ? "C^T" : "C");
      t[j] = (float)tj;
      negative += tj < 0;
    }
    if (cases[c].chi) {
      qsort(t, d, sizeof *t, cmp_float);
      for (size_t i = 0; i < d; i++) ck_assert_double_eq_tol(t[i], kx_chi_inv((i + 0.5) / d, (double)d), 1e-5);
    } else {
      ck_assert_int_gt(negative, 0);
      ck_assert_int_lt(negative, (int)d);
    }
    ck_assert_int_lt(kx_ptable_find(&m.tab, "layer1/feat_d"), 0); /* no D in the released form */
    kx_dec_free(&m);
  }
  /* the paper form's scales switched to signed normals: both signs */
  small_model(&m, "dijiang+normal", 5);
  int negative = 0;
  for (size_t j = 0; j < d; j++) negative += param(&m, "layer1/feat_t")[j] < 0;
  ck_assert_int_gt(negative, 0);
  ck_assert_int_lt(negative, (int)d);
  ck_assert_int_lt(kx_ptable_find(&m.tab, "layer1/gn_w"), 0);
  kx_dec_free(&m);
  /* The released gate: uniform on (-a, a), a = 2^-2.5 sqrt(6 / 2C).  Of
   * 1024 draws the largest |w| is above 0.99 a unless all miss the outer
   * 1 % (probability 0.99^1024 = 3e-5); the mean square is a^2/3 within 5
   * standard errors (w^2 has variance 4 a^4 / 45).  GroupNorm: weight 1,
   * bias 0. */
  small_model(&m, "dijiang-released", 5);
  const float *g = param(&m, "layer1/gate_w"), *gw = param(&m, "layer1/gn_w"), *gb = param(&m, "layer1/gn_b");
  double a = pow(2.0, -2.5) * sqrt(6.0 / (2.0 * (double)C)), big = 0.0, ms = 0.0;
  for (size_t k = 0; k < C * C; k++) {
    ck_assert_double_lt(fabs(g[k]), a);
    big = fmax(big, fabs(g[k]));
    ms += (double)g[k] * g[k] / (double)(C * C);
  }
  ck_assert_double_gt(big, 0.99 * a);
  ck_assert_double_le(fabs(ms - a * a / 3.0), 5.0 * a * a * sqrt(4.0 / 45.0 / (double)(C * C)));
  for (size_t c = 0; c < C; c++) ck_assert(gw[c] == 1.0f && gb[c] == 0.0f);
  kx_dec_free(&m);
  /* the paper form's gate, N(0, 2/(5C)): its mean square is 2/(5C) within
   * 5 standard errors (w^2 has variance 2 sd^4) -- far from xavier's a^2/3 */
  small_model(&m, "dijiang", 5);
  g = param(&m, "layer1/gate_w");
  ms = 0.0;
  for (size_t k = 0; k < C * C; k++) ms += (double)g[k] * g[k] / (double)(C * C);
  double var = 2.0 / (5.0 * (double)C);
  ck_assert_double_le(fabs(ms - var), 5.0 * var * sqrt(2.0 / (double)(C * C)));
  kx_dec_free(&m);
}
END_TEST

/* Attention specs: the switches after the kind, in any order, give the
 * canonical label; restating a preset's value flips nothing; bad specs are
 * refused with a message; every form prints and parses back. */
START_TEST(test_form_specs) {
  kx_dec_config c;
  char label[KX_DEC_NAME_MAX + 256];
  const struct {
    const char *spec, *label;
    uint32_t flips;
  } good[] = {
      {"dijiang", "dijiang", 0},
      {"dijiang+noden+softmax", "dijiang+softmax+noden", 1u << KX_DJ_FEATURES | 1u << KX_DJ_NORMALISER},
      {"dijiang+exp+chi", "dijiang", 0},
      {"dijiang-code+gnd+gatexavier", "dijiang-code+gnd+gatexavier", 1u << KX_DJ_GROUPNORM | 1u << KX_DJ_GATE},
      {"dijiang-released+exp", "dijiang-released+exp", 1u << KX_DJ_FEATURES},
  };
  for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
    kx_dec_config_default(&c);
    c.vocab = 5;
    ck_assert_msg(kx_dec_config_set_attention(&c, good[i].spec) == 0, "%s: %s", good[i].spec, kx_error_message());
    ck_assert_uint_eq(c.dijiang_flips, good[i].flips);
    ck_assert_int_eq(kx_dec_config_check(&c), 0);
    kx_dec_config_label(&c, label, sizeof label);
    ck_assert_str_eq(label, good[i].label);
  }
  /* dijiang-code with the released GroupNorm and gate is the released form */
  ck_assert_uint_eq(kx_dijiang_preset_of("dijiang-code")->form ^ good[3].flips,
                    kx_dijiang_preset_of("dijiang-released")->form);
  const struct {
    const char *spec, *needle;
  } bad[] = {{"dijiang+bogus", "'bogus' is not a DiJiang form switch"},
             {"dijiang+exp+softmax", "factor features is given twice"},
             {"retnet+softmax", "attention 'retnet' has no DiJiang form switches"},
             {"nope+softmax", "unknown attention kind 'nope'"},
             {"dijiang+", "empty"}};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    kx_dec_config_default(&c);
    ck_assert_int_eq(kx_dec_config_set_attention(&c, bad[i].spec), KX_EINVAL);
    ck_assert_msg(strstr(kx_error_message(), bad[i].needle), "%s: '%s' lacks '%s'", bad[i].spec, kx_error_message(),
                  bad[i].needle);
    ck_assert_str_eq(c.attn_kind, "softmax"); /* untouched */
  }
  kx_dec_config_default(&c);
  c.vocab = 5;
  c.dijiang_flips = 1;
  ck_assert_int_eq(kx_dec_config_check(&c), KX_EINVAL);
  ck_assert_ptr_nonnull(strstr(kx_error_message(), "no DiJiang form switches"));
  for (kx_dijiang_form f = 0; f <= KX_DJ_ALL; f++) {
    char text[256];
    kx_dijiang_form back;
    kx_dijiang_form_format(f, ",", text, sizeof text);
    ck_assert_int_eq(kx_dijiang_form_parse_full(text, "form", &back), 0);
    ck_assert_uint_eq(back, f);
  }
  ck_assert_int_eq(kx_dijiang_form_parse_full("exp,chi", "form", &(kx_dijiang_form){0}), KX_EINVAL);
  ck_assert_ptr_nonnull(strstr(kx_error_message(), "gives no value of factor dct"));
}
END_TEST

static double seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

/* Both float DCT paths against the double DCT of approx/dct.h, every
 * type.  Bound per row: a float dot product of d terms with an
 * orthonormal row errs by at most d u |x| (worst case, |c| = 1; the
 * matrix entries' own rounding is one more u), and the fast paths stay
 * inside that: FFTW's log2(d) butterfly stages, and the batched kernels'
 * log2(d) levels, whose longest chain of dependent roundings (the
 * DCT-IV's running difference) has fewer than d links; its scalings add at most 7
 * roundings of u |x| each (the constants sqrt 2 and 1/sqrt 2, 1/sqrtf(2d)
 * with its square root and division, and three multiplications: DCT-I,
 * which has all of them), hence (d + 7) u |x|.  The float input itself is
 * exact. */
START_TEST(test_float_dct) {
  size_t ds[] = {1, 2, 16, 64, 100};
  for (size_t di = 0; di < sizeof ds / sizeof ds[0]; di++) {
    size_t d = ds[di], R = 37;
    float *x = malloc(R * d * sizeof *x), *yf = malloc(R * d * sizeof *yf), *ym = malloc(R * d * sizeof *ym);
    double *xd = malloc(d * sizeof *xd), *yd = malloc(d * sizeof *yd);
    for (size_t k = 0; k < R * d; k++) x[k] = (float)((double)(kx_mix64(k + 1000 * d) >> 11) * 0x1.0p-53 - 0.5);
    for (int type = d > 1 ? 1 : 2; type <= 4; type++) {
      kx_dct *ref = kx_dct_create(type, d);
      const kx_dctf *p = kx_dctf_shared(type, d);
      ck_assert_ptr_nonnull(ref);
      ck_assert_ptr_nonnull(p);
      kx_dctf_rows(p, R, x, yf);
      kx_matmul_forward(ym, x, kx_dctf_matrix(p), NULL, R, d, d);
      /* a row's result does not depend on the call around it (the batched
       * route pads its last batch): row by row gives the same bits */
      for (size_t r = 0; r < R; r++) {
        float one[128];
        kx_dctf_rows(p, 1, x + r * d, one);
        ck_assert_msg(!memcmp(one, yf + r * d, d * sizeof *one), "DCT-%d d=%zu row %zu alone differs", type, d, r);
      }
      ck_assert_int_eq(kx_dctf_is_batched(p), type >= 2 && d % 16 == 0 && !(d & (d - 1)));
      for (size_t r = 0; r < R; r++) {
        double norm = 0.0;
        for (size_t k = 0; k < d; k++) {
          xd[k] = x[r * d + k];
          norm += xd[k] * xd[k];
        }
        ck_assert_int_eq(kx_dct_apply(ref, xd, yd, NULL), 0);
        double tol = ((double)d + 7.0) * U * sqrt(norm) + 1e-30;
        for (size_t k = 0; k < d; k++) {
          ck_assert_msg(fabs(yf[r * d + k] - yd[k]) <= tol, "FFTW float DCT-%d d=%zu: %g vs %g", type, d,
                        yf[r * d + k], yd[k]);
          ck_assert_msg(fabs(ym[r * d + k] - yd[k]) <= tol, "matrix float DCT-%d d=%zu", type, d);
        }
      }
      kx_dct_free(ref);
    }
    free(x), free(yf), free(ym), free(xd), free(yd);
  }
  /* Speed at the default decoder's d = 64, for the q and k rows of one
   * block of a default batch (B 16, H 4, T 128: 8192 rows). */
  size_t d = 64, R = 8192;
  float *x = calloc(R * d, sizeof *x), *y = malloc(R * d * sizeof *y);
  for (size_t k = 0; k < R * d; k++) x[k] = (float)(k % 7) - 3.0f;
  const kx_dctf *plan = kx_dctf_shared(2, d);
  ck_assert_ptr_nonnull(plan);
  double best[2] = {1e30, 1e30};
  for (int rep = 0; rep < 30; rep++)
    for (int meth = 0; meth < 2; meth++) {
      double t0 = seconds();
      if (meth) kx_matmul_forward(y, x, kx_dctf_matrix(plan), NULL, R, d, d);
      else kx_dctf_rows(plan, R, x, y);
      best[meth] = fmin(best[meth], seconds() - t0);
    }
  fprintf(stderr, "float DCT-II of %zu rows at d = %zu (best of 30): kx_dctf_rows (%s) %.3f ms, matrix (sgemm) %.3f ms\n",
          R, d, kx_dctf_is_batched(plan) ? "batched kernels" : "FFTW", 1e3 * best[0], 1e3 * best[1]);
  free(x), free(y);
}
END_TEST

int main(void) {
  kx_dec_threads_init();
  Suite *s = kx_test_suite("decoder_variants");
  TCase *tc = kx_test_case(s, "variants");
  tcase_add_loop_test(tc, test_causality, 0, N_KINDS);
  tcase_add_loop_test(tc, test_attn_weights, 0, N_KINDS);
  tcase_add_loop_test(tc, test_init_and_frozen, 0, N_KINDS);
  tcase_add_loop_test(tc, test_large_inputs_finite, 0, N_KINDS);
  kx_test_add(tc, (const TTest *const[]){test_init_values, test_form_values, test_form_specs, test_float_dct, NULL});
  return kx_test_run(s);
}
