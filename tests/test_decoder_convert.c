/* Conversion of a softmax teacher, the hedgehog kind, attention transfer
 * and the attention comparison against the teacher. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/kx_error.h"
#include "experiments/model/attn/dec_attn_rows.h"
#include "experiments/model/dec_attn_eval.h"
#include "experiments/model/dec_convert.h"
#include "experiments/model/dec_eval.h"
#include "experiments/model/dec_layers.h"
#include "experiments/model/dec_model.h"
#include "experiments/model/dec_transfer.h"
#include "experiments/model/dec_window.h"
#include "tests/test_support.h"

#define V 9

static void tiny_teacher(kx_decoder *m, uint64_t seed, float qk_gain) {
  kx_dec_config c;
  kx_test_config(&c, "softmax", V, 24, 16, 4);
  kx_test_model(m, &c, seed);
  /* Larger q/k weights make the teacher's attention far from uniform, so
   * that matching it is a real task. */
  for (size_t l = 0; l < c.layers; l++) {
    char name[48];
    snprintf(name, sizeof name, "layer%zu/qkv_w", l);
    long i = kx_ptable_find(&m->tab, name);
    ck_assert(i >= 0);
    float *w = kx_dec_param(m, (size_t)i);
    for (size_t k = 0; k < 2 * c.width * c.width; k++) w[k] *= qk_gain;
  }
}

static void tokens(int *x, int *y, size_t n, unsigned salt) {
  for (size_t i = 0; i < n; i++) {
    x[i] = (int)((i * 7 + salt + (i * i) % 5) % V);
    y[i] = (int)((i * 3 + 2 * salt + 1) % V);
  }
}

/* Every tensor the teacher has is copied bit for bit; the kind's own get
 * their init; softmax -> softmax is the identity (same loss to the bit). */
START_TEST(test_convert_reuses_tensors) {
  kx_decoder t, s, h;
  tiny_teacher(&t, 3, 1.0f);
  int x[48], y[48];
  tokens(x, y, 48, 1);
  double lt, ls;
  ck_assert_int_eq(kx_dec_convert(&t, "softmax", 9, &s), 0);
  ck_assert_int_eq(kx_dec_forward(&t, x, y, 2, 24, &lt), 0);
  ck_assert_int_eq(kx_dec_forward(&s, x, y, 2, 24, &ls), 0);
  ck_assert(lt == ls);
  ck_assert_int_eq(kx_dec_convert(&t, "hedgehog", 9, &h), 0);
  size_t reused = 0, d = 8;
  for (size_t i = 0; i < h.tab.n; i++) {
    const kx_tensor_info *ti = &h.tab.t[i];
    long src = kx_dec_convert_source(&t, ti);
    if (src >= 0) {
      reused++;
      ck_assert(!memcmp(h.params + ti->offset, kx_dec_param(&t, (size_t)src), ti->size * sizeof(float)));
    } else if (strstr(ti->name, "hh_qw") || strstr(ti->name, "hh_kw")) {
      const float *A = h.params + ti->offset; /* per head the d x d identity */
      for (size_t r = 0; r < ti->rows; r++)
        for (size_t k = 0; k < d; k++) ck_assert(A[r * d + k] == (k == r % d ? 1.0f : 0.0f));
    }
  }
  ck_assert_uint_eq(reused, t.tab.n); /* hedgehog keeps every softmax tensor */
  /* a student is not a teacher */
  kx_decoder again;
  ck_assert_int_ne(kx_dec_convert(&h, "hedgehog", 1, &again), 0);
  ck_assert(strstr(kx_error_message(), "softmax teacher"));
  ck_assert_int_ne(kx_dec_convert(&t, "no-such-kind", 1, &again), 0);
  ck_assert(strstr(kx_error_message(), "unknown attention kind"));
  kx_error_clear();
  kx_dec_free(&t);
  kx_dec_free(&s);
  kx_dec_free(&h);
}
END_TEST

/* Gradient of the whole model along one +-1 direction per trainable tensor
 * by central differences (h = 1e-2): hedgehog, and performer-redraw after a
 * redraw of its features (the redrawn matrices are constants, as the fixed
 * ones).  Tolerance as in test_decoder_model: a float32 loss carries about
 * sqrt(K) u relative round-off (K ~ 400 operations on the longest path,
 * u = 2^-24), so a central difference is uncertain by about sqrt(K) u
 * loss / h; we allow twice that plus 0.2% of the derivative for the
 * truncation h^2 f''' / 6. */
static const char *const gradient_kinds[] = {"hedgehog", "performer-redraw"};

START_TEST(test_kind_gradient) {
  const char *kind = gradient_kinds[_i];
  kx_decoder t, m;
  tiny_teacher(&t, 5, 1.0f);
  ck_assert_int_eq(kx_dec_convert(&t, kind, 2, &m), 0);
  /* maps away from the identity so that every term is exercised */
  for (size_t i = 0; i < m.tab.n; i++)
    if (strstr(m.tab.t[i].name, "/hh_")) {
      float *p = m.params + m.tab.t[i].offset;
      for (size_t k = 0; k < m.tab.t[i].size; k++) p[k] += 0.3f * sinf((float)(3 * k + i));
    }
  /* the draw of step 16, performer-redraw's first redraw */
  for (size_t l = 0; m.attn->redraw && l < m.cfg.layers; l++)
    ck_assert_int_eq(m.attn->redraw(&m.cfg, l, kx_dec_attn_p(&m, l), 9, 16), 0);
  size_t B = 2, T = 20;
  int x[40], y[40];
  tokens(x, y, B * T, 4);
  double loss0;
  ck_assert_int_eq(kx_dec_forward(&m, x, y, B, T, &loss0), 0);
  ck_assert_int_eq(kx_dec_backward(&m), 0);
  float *g = malloc(m.tab.total * sizeof(float));
  memcpy(g, m.grads, m.tab.total * sizeof(float));
  const double u = 5.96e-8, K = 400, h = 1e-2, noise = 2.0 * sqrt(K) * u * loss0 / h;
  int bad = 0;
  for (size_t i = 0; i < m.tab.n; i++) {
    const kx_tensor_info *ti = &m.tab.t[i];
    if (ti->frozen) continue; /* constants: no gradient by design */
    float *p = m.params + ti->offset, *p0 = malloc(ti->size * sizeof(float));
    memcpy(p0, p, ti->size * sizeof(float));
    double an = 0.0, lp, lm, scale = 1.0 / sqrt((double)ti->size);
    for (size_t k = 0; k < ti->size; k++) an += ((k * 2654435761u) >> 7 & 1 ? scale : -scale) * g[ti->offset + k];
    for (int sgn = 1; sgn >= -1; sgn -= 2) {
      for (size_t k = 0; k < ti->size; k++)
        p[k] = (float)(p0[k] + sgn * h * ((k * 2654435761u) >> 7 & 1 ? scale : -scale));
      ck_assert_int_eq(kx_dec_forward(&m, x, y, B, T, sgn > 0 ? &lp : &lm), 0);
    }
    memcpy(p, p0, ti->size * sizeof(float));
    free(p0);
    double fd = (lp - lm) / (2 * h), tol = noise + 2e-3 * fabs(an);
    if (fabs(fd - an) > tol) {
      fprintf(stderr, "%s %s: finite difference %.7g, backward %.7g, tolerance %.3g\n", kind, ti->name, fd, an,
              tol);
      bad++;
    }
  }
  ck_assert_int_eq(bad, 0);
  free(g);
  kx_dec_free(&t);
  kx_dec_free(&m);
}
END_TEST

/* Changing the tokens after position p moves no logit at positions <= p
 * (bit for bit: the masked entries of a chunk are exact zeros), and the
 * chunked linear form equals the quadratic one, o = A v with A from the
 * attn_weights hook, to float32 round-off. */
START_TEST(test_hedgehog_causal_and_quadratic) {
  kx_decoder t, m;
  tiny_teacher(&t, 6, 2.0f);
  ck_assert_int_eq(kx_dec_convert(&t, "hedgehog", 2, &m), 0);
  size_t T = 24, C = 16, H = 2, d = 8, p = 13;
  int x[24], y[24], x2[24];
  tokens(x, y, T, 7);
  memcpy(x2, x, sizeof x);
  for (size_t i = p + 1; i < T; i++) x2[i] = (x[i] + 3) % V;
  float *z = malloc(T * V * sizeof(float));
  ck_assert_int_eq(kx_dec_forward(&m, x, NULL, 1, T, NULL), 0);
  memcpy(z, m.logits, T * V * sizeof(float));
  ck_assert_int_eq(kx_dec_forward(&m, x2, NULL, 1, T, NULL), 0);
  ck_assert(!memcmp(z, m.logits, (p + 1) * V * sizeof(float)));
  ck_assert(memcmp(z, m.logits, T * V * sizeof(float)));
  /* quadratic form of block 1: y = proj(concat_h A_h v_h) */
  ck_assert_int_eq(kx_dec_forward(&m, x, NULL, 1, T, NULL), 0);
  kx_attn_ctx c = {&m.cfg, 1, T, m.rope_cos, m.rope_sin, 0, 0, NULL};
  const float *q, *k, *v;
  size_t dqk, dv;
  int scaled;
  m.attn->qkv_view(&c, m.blk[1].attn_acts, &q, &k, &v, &dqk, &dv, &scaled);
  float *A = malloc(T * T * sizeof(float));
  double *att = calloc(T * C, sizeof(double));
  for (size_t h = 0; h < H; h++) {
    m.attn->attn_weights(&c, kx_dec_attn_p(&m, 1), m.blk[1].attn_acts, 0, h, A);
    for (size_t i = 0; i < T; i++)
      for (size_t j = 0; j <= i; j++)
        for (size_t e = 0; e < d; e++) att[i * C + h * d + e] += (double)A[i * T + j] * v[(h * T + j) * d + e];
  }
  const float *W = kx_dec_attn_p(&m, 1)[2], *b = kx_dec_attn_p(&m, 1)[3];
  double err = 0.0, ref = 0.0;
  for (size_t i = 0; i < T; i++)
    for (size_t o = 0; o < C; o++) {
      double s = b[o];
      for (size_t e = 0; e < C; e++) s += (double)W[o * C + e] * att[i * C + e];
      err = fmax(err, fabs(s - m.blk[1].attn_y[i * C + o]));
      ref = fmax(ref, fabs(s));
    }
  /* round-off: sums of T terms in the kernel then C in proj, each term
   * within a few u of its value: (T + C) u relative to the largest entry,
   * times 10 for the chunk/prefix reordering and the features' own exp. */
  double tol = 10.0 * (double)(T + C) * 5.96e-8 * ref;
  ck_assert_msg(err <= tol, "linear vs quadratic: %g > %g", err, tol);
  free(z);
  free(A);
  free(att);
  kx_dec_free(&t);
  kx_dec_free(&m);
}
END_TEST

/* attn_weights_backward against central differences of F = sum dA_ij A_ij
 * in one entry (of head 1, or of the second half of a tensor shared by the
 * heads) of each transfer tensor the rows depend on: every kind with
 * attention transfer on the rows (hedgehog: its four maps; performer,
 * performer-prf, pff, dijiang-code: the projection W; dijiang: D and the
 * radii t), three switched DiJiang forms (vector scales with softmax
 * features and no D; matrix scales with D and the prescale; exp features
 * with the denominator on matrix scales: a listed tensor the form does not
 * declare is skipped); for a sliding-window hybrid (KIND+w5: the hybrid's
 * rows) also head 1's win_beta.  Tolerance: F sums T^2/2 products of
 * weights <= 1 computed in float32, so its round-off is about T u |dA|max
 * per row summed over T rows, over 2h; plus 1% truncation. */
static const char *const row_kinds[] = {"hedgehog",         "dijiang",
                                        "performer",        "performer-prf",
                                        "pff",              "dijiang-code",
                                        "hedgehog+w5",      "dijiang+w5",
                                        "performer+w5",     "dijiang-released",
                                        "dijiang+softmax+noD", "dijiang-released+D+prescale",
                                        "dijiang-released+exp+den+sq", "dijiang-released+den+w5"};
#define N_ROW_KINDS (int)(sizeof row_kinds / sizeof row_kinds[0])

START_TEST(test_weights_gradient) {
  const char *kind = row_kinds[_i];
  kx_decoder t, m;
  tiny_teacher(&t, 8, 2.0f);
  ck_assert_int_eq(kx_dec_convert(&t, kind, 3, &m), 0);
  size_t T = 16, layer = 0, head = 1, H = m.cfg.heads;
  /* D away from its initial 1, so that the check is not at a special point */
  long fd_index = kx_ptable_find(&m.tab, "layer0/feat_d");
  if (fd_index >= 0) {
    float *D = kx_dec_param(&m, (size_t)fd_index);
    for (size_t k = 0; k < m.tab.t[fd_index].size; k++) D[k] = 1.0f + 0.3f * sinf((float)(5 * k + 1));
  }
  int x[16], y[16];
  tokens(x, y, T, 2);
  float *dA = malloc(T * T * sizeof(float)), *A = malloc(T * T * sizeof(float));
  for (size_t i = 0; i < T * T; i++) dA[i] = (float)sin(0.37 * (double)i);
  kx_attn_ctx c = {&m.cfg, 1, T, m.rope_cos, m.rope_sin, 0, 0, NULL};
  float *scratch = malloc(m.attn->scratch_floats(&m.cfg, 1, T) * sizeof(float));
  /* the kinds hand a hybrid's rows backward the rows' scratch */
  ck_assert_uint_le(kx_win_rows_scratch_floats(T), kx_attn_rows_scratch_floats(T));
  ck_assert_int_eq(kx_dec_forward(&m, x, NULL, 1, T, NULL), 0);
  memset(m.grads, 0, m.tab.total * sizeof(float));
  m.attn->attn_weights_backward(&c, kx_dec_attn_p(&m, layer), kx_dec_attn_dp(&m, layer), m.blk[layer].attn_acts,
                                0, head, dA, scratch);
  const double h = 1e-2;
  int checked = 0;
  const char *names[8];
  size_t n_names = 0;
  for (const char *const *tn = m.attn->transfer_tensors; *tn; tn++)
    if (strcmp(*tn, "gate_w")) names[n_names++] = *tn; /* the gate is after the rows: no row gradient */
  if (m.cfg.window) names[n_names++] = "win_beta";
  for (size_t k = 0; k < n_names; k++) {
    char name[48];
    snprintf(name, sizeof name, "layer%zu/%s", layer, names[k]);
    long w = kx_ptable_find(&m.tab, name);
    if (w < 0 && !strcmp(names[k], "feat_d")) continue; /* a DiJiang form without D */
    ck_assert(w >= 0);
    float *p = kx_dec_param(&m, (size_t)w);
    /* an entry of head 1: of the first eight, the one with the largest
     * gradient (a hybrid's map has few rows with a linear part) */
    size_t per_head = m.tab.t[w].size / H, idx = per_head * head;
    const float *grad = kx_dec_grad(&m, (size_t)w);
    for (size_t e = 1; e < per_head && e < 8; e++)
      if (fabsf(grad[per_head * head + e]) > fabsf(grad[idx])) idx = per_head * head + e;
    float keep = p[idx];
    double F[2];
    for (int s = 0; s < 2; s++) {
      p[idx] = (float)(keep + (s ? -h : h));
      ck_assert_int_eq(kx_dec_forward(&m, x, NULL, 1, T, NULL), 0);
      m.attn->attn_weights(&c, kx_dec_attn_p(&m, layer), m.blk[layer].attn_acts, 0, head, A);
      F[s] = 0.0;
      for (size_t i = 0; i < T * T; i++) F[s] += (double)dA[i] * A[i];
    }
    p[idx] = keep;
    double fd = (F[0] - F[1]) / (2 * h), an = kx_dec_grad(&m, (size_t)w)[idx];
    double tol = (double)T * (double)T * 5.96e-8 / (2 * h) + 1e-2 * fabs(an);
    ck_assert_msg(fabs(fd - an) <= tol, "%s %s: finite difference %g, hook %g, tol %g", kind, name, fd, an, tol);
    ck_assert(fabs(an) > 2 * tol); /* the entry does matter: the check is not vacuous */
    checked++;
  }
  ck_assert_int_gt(checked, 0);
  free(dA);
  free(A);
  free(scratch);
  kx_dec_free(&t);
  kx_dec_free(&m);
}
END_TEST

/* 1 if the row target moves tensor `name` of `kind`: a listed transfer
 * tensor other than the gate, which is not in the rows. */
static int moved_by_rows(const kx_attn_kind *kind, const char *name) {
  const char *suffix = strchr(name, '/');
  if (!suffix || !strcmp(suffix + 1, "gate_w")) return 0;
  if (!strcmp(suffix + 1, "win_beta")) return 1; /* a window hybrid's weight */
  for (const char *const *tn = kind->transfer_tensors; *tn; tn++)
    if (!strcmp(suffix + 1, *tn)) return 1;
  return 0;
}

/* A softmax student's attention KL against its own teacher is 0; a fresh
 * student's is positive, and attention transfer on the rows lowers it for
 * every kind that has it, while leaving every tensor outside the feature
 * map untouched (also tensors frozen for fine-tuning move: the projection
 * W of performer, pff and dijiang-code, dijiang's radii).  hedgehog's free
 * d x d maps per head can match the teacher closely (below 0.7 of the
 * starting KL); for the others the test asks only for a lower KL. */
START_TEST(test_transfer_lowers_kl) {
  const char *kind = row_kinds[_i];
  double reduction = !strcmp(kind, "hedgehog") ? 0.7 : 1.0;
  kx_decoder t, m;
  tiny_teacher(&t, 11, 3.0f);
  kx_dec_data data = {0};
  size_t n = 4000;
  data.train = malloc(n * sizeof(int));
  data.val = malloc(n * sizeof(int));
  data.n_train = data.n_val = n;
  for (size_t i = 0; i < n; i++) {
    data.train[i] = (int)((i * i * 31 + i / 7) % V);
    data.val[i] = (int)((i * i * 17 + i / 5) % V);
  }
  double kl0, kl1, kl_same;
  ck_assert_int_eq(kx_dec_convert(&t, "softmax", 1, &m), 0);
  ck_assert_int_eq(kx_dec_attn_kl(&t, &m, data.val, n, 4, &kl_same), 0);
  ck_assert(kl_same == 0.0);
  kx_dec_free(&m);
  ck_assert_int_eq(kx_dec_convert(&t, kind, 1, &m), 0);
  kx_transfer_target target;
  ck_assert_int_eq(kx_dec_transfer_target(m.attn, &target), 0);
  ck_assert_int_eq(target, KX_TRANSFER_KL);
  float *before = malloc(m.tab.total * sizeof(float));
  memcpy(before, m.params, m.tab.total * sizeof(float));
  ck_assert_int_eq(kx_dec_attn_kl(&t, &m, data.val, n, 4, &kl0), 0);
  kx_transfer_opts o = {.steps = 60, .batch = 4, .seed = 1, .lr = 1e-2};
  ck_assert_int_eq(kx_dec_transfer(&t, &m, &data, &o, NULL, NULL), 0);
  ck_assert_int_eq(kx_dec_attn_kl(&t, &m, data.val, n, 4, &kl1), 0);
  fprintf(stderr, "attention transfer (%s): KL %.4f -> %.4f\n", kind, kl0, kl1);
  ck_assert(kl0 > 0.05);
  ck_assert(kl1 < reduction * kl0);
  for (size_t i = 0; i < m.tab.n; i++) {
    const kx_tensor_info *ti = &m.tab.t[i];
    int same = !memcmp(before + ti->offset, m.params + ti->offset, ti->size * sizeof(float));
    ck_assert_msg(same == !moved_by_rows(m.attn, ti->name), "%s %s", ti->name, same ? "unchanged" : "changed");
  }
  /* softmax has no feature map to transfer */
  ck_assert_int_ne(kx_dec_transfer_target(t.attn, &target), 0);
  kx_error_clear();
  free(before);
  free(data.train);
  free(data.val);
  kx_dec_free(&t);
  kx_dec_free(&m);
}
END_TEST

/* Mean over blocks of the squared difference between the student's and the
 * teacher's attention outputs, both on the teacher's LN1 output of batch x. */
static double output_mse(kx_decoder *t, kx_decoder *s, const int *x, size_t B, size_t T) {
  size_t N = B * T, C = s->cfg.width;
  ck_assert_int_eq(kx_dec_forward(t, x, NULL, B, T, NULL), 0);
  float *y = malloc(N * C * sizeof(float)), *acts = malloc(s->attn->act_floats(&s->cfg, B, T) * sizeof(float));
  kx_attn_ctx c = {&s->cfg, B, T, s->rope_cos, s->rope_sin, 0, 0, NULL};
  double sum = 0.0;
  for (size_t l = 0; l < s->cfg.layers; l++) {
    s->attn->forward(&c, kx_dec_attn_p(s, l), t->blk[l].ln1, y, acts);
    for (size_t k = 0; k < N * C; k++) sum += pow((double)y[k] - t->blk[l].attn_y[k], 2) / (double)(N * C);
  }
  free(y);
  free(acts);
  return sum / (double)s->cfg.layers;
}

/* Transfer by matching the attention outputs (LoLCATs' target, chosen by
 * match_outputs; these kinds' own target is their rows): the outputs'
 * error on a batch the transfer never draws falls, and only the transfer
 * tensors that fine-tuning also trains move (D and the gate; Hedgehog's
 * maps; a sliding-window hybrid's win_beta too). */
static const struct {
  const char *kind, *moved[3];
} output_cases[] = {{"dijiang", {"/feat_d", "/gate_w", NULL}},
                    {"dijiang+w5", {"/feat_d", "/gate_w", "/win_beta"}},
                    {"hedgehog+w5", {"/hh_", "/win_beta", NULL}}};

START_TEST(test_transfer_outputs) {
  kx_decoder t, m;
  tiny_teacher(&t, 13, 3.0f);
  ck_assert_int_eq(kx_dec_convert(&t, output_cases[_i].kind, 1, &m), 0);
  kx_transfer_target target;
  ck_assert_int_eq(kx_dec_transfer_target(m.attn, &target), 0);
  ck_assert_int_eq(target, KX_TRANSFER_KL);
  kx_dec_data data = {0};
  size_t n = 4000;
  data.train = malloc(n * sizeof(int));
  data.n_train = n;
  for (size_t i = 0; i < n; i++) data.train[i] = (int)((i * i * 31 + i / 7) % V);
  int x[96], y[96];
  tokens(x, y, 96, 9);
  float *before = malloc(m.tab.total * sizeof(float));
  memcpy(before, m.params, m.tab.total * sizeof(float));
  double e0 = output_mse(&t, &m, x, 4, 24);
  kx_transfer_opts o = {.steps = 60, .batch = 4, .seed = 2, .lr = 1e-2, .match_outputs = 1};
  ck_assert_int_eq(kx_dec_transfer(&t, &m, &data, &o, NULL, NULL), 0);
  double e1 = output_mse(&t, &m, x, 4, 24);
  fprintf(stderr, "attention transfer (outputs, %s): MSE %.4g -> %.4g\n", output_cases[_i].kind, e0, e1);
  ck_assert(e1 < 0.9 * e0);
  for (size_t i = 0; i < m.tab.n; i++) {
    const kx_tensor_info *ti = &m.tab.t[i];
    int same = !memcmp(before + ti->offset, m.params + ti->offset, ti->size * sizeof(float)), map = 0;
    for (int k = 0; k < 3 && output_cases[_i].moved[k]; k++) map |= strstr(ti->name, output_cases[_i].moved[k]) != NULL;
    ck_assert_msg(same == !map, "%s %s", ti->name, same ? "unchanged" : "changed");
  }
  /* performer's W is fixed in fine-tuning: the block's backward, which the
   * output target goes through, gives it no gradient, so that target has
   * nothing to train and is refused with a message (once) */
  if (_i) goto done;
  kx_dec_free(&m);
  ck_assert_int_eq(kx_dec_convert(&t, "performer", 1, &m), 0);
  free(before);
  before = malloc(m.tab.total * sizeof(float));
  memcpy(before, m.params, m.tab.total * sizeof(float));
  ck_assert_int_ne(kx_dec_transfer(&t, &m, &data, &o, NULL, NULL), 0);
  ck_assert(strstr(kx_error_message(), "output target reaches none"));
  ck_assert(!memcmp(before, m.params, m.tab.total * sizeof(float)));
  kx_error_clear();
done:
  free(before);
  free(data.train);
  kx_dec_free(&t);
  kx_dec_free(&m);
}
END_TEST

/* kx_dec_evaluate scores every prediction once: its loss is the
 * token-weighted mean of the forward losses of the same windows. */
START_TEST(test_evaluate_windows) {
  kx_decoder t;
  tiny_teacher(&t, 12, 1.0f);
  int s[60], y[60];
  tokens(s, y, 60, 3);
  kx_dec_eval_result r;
  ck_assert_int_eq(kx_dec_evaluate(&t, s, 60, 0, 2, &r), 0);
  ck_assert_uint_eq(r.predictions, 59);
  double l1, l2, l3;
  ck_assert_int_eq(kx_dec_forward(&t, s, s + 1, 1, 24, &l1), 0);
  ck_assert_int_eq(kx_dec_forward(&t, s + 24, s + 25, 1, 24, &l2), 0);
  ck_assert_int_eq(kx_dec_forward(&t, s + 48, s + 49, 1, 11, &l3), 0);
  double want = (24 * l1 + 24 * l2 + 11 * l3) / 59;
  /* sums of 59 float32 losses in another order: 59 u relative */
  ck_assert_msg(fabs(r.loss - want) <= 59 * 5.96e-8 * want, "%.9g vs %.9g", r.loss, want);
  ck_assert(r.accuracy >= 0 && r.accuracy <= 1);
  /* three spread windows start at 0, 17 and 35 = 60 - 24 - 1 */
  ck_assert_int_eq(kx_dec_evaluate(&t, s, 60, 3, 2, &r), 0);
  ck_assert_uint_eq(r.predictions, 72);
  ck_assert_int_eq(kx_dec_forward(&t, s + 17, s + 18, 1, 24, &l2), 0);
  ck_assert_int_eq(kx_dec_forward(&t, s + 35, s + 36, 1, 24, &l3), 0);
  want = (l1 + l2 + l3) / 3;
  ck_assert_msg(fabs(r.loss - want) <= 72 * 5.96e-8 * want, "%.9g vs %.9g", r.loss, want);
  kx_dec_free(&t);
}
END_TEST

int main(void) {
  kx_init_library();
  kx_dec_threads_init();
  Suite *s = kx_test_suite("decoder_convert");
  TCase *tc = kx_test_case(s, "convert");
  tcase_set_timeout(tc, 600);
  tcase_add_test(tc, test_convert_reuses_tensors);
  tcase_add_loop_test(tc, test_kind_gradient, 0, 2);
  tcase_add_test(tc, test_hedgehog_causal_and_quadratic);
  tcase_add_loop_test(tc, test_weights_gradient, 0, N_ROW_KINDS);
  tcase_add_loop_test(tc, test_transfer_lowers_kl, 0, N_ROW_KINDS);
  tcase_add_loop_test(tc, test_transfer_outputs, 0, sizeof output_cases / sizeof output_cases[0]);
  kx_test_add(tc, (const TTest *const[]){test_evaluate_windows, NULL});
  return kx_test_run(s);
}
