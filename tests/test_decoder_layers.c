/* Gradient checks of every decoder layer against central finite
 * differences, plus the whole model.
 *
 * How the tolerance is derived.  Each check turns a layer into a scalar
 * f = sum_i R_i out_i (R random, summed in double), so the analytic gradient
 * is the layer's backward with dout = R.  The central difference
 * (f(x+h) - f(x-h)) / 2h has two errors:
 *   - truncation h^2/6 |f'''|: the inputs are O(1) and the layers smooth,
 *     so with h = 1e-2 this is ~1e-5 relative to the gradient; we allow
 *     2e-3 relative (the largest third derivatives, of LayerNorm and
 *     softmax, are a few times the gradient scale);
 *   - round-off: every output is a float32 value whose error is a sum of
 *     about K rounding errors of relative size u = 2^-24 (K = length of the
 *     longest sum behind it); these errors are uncorrelated, so the error of
 *     an output is about sqrt(K) u |out_i| and that of f about
 *     sqrt(K) u S with S = sqrt(sum_i (R_i out_i)^2).  The difference of two
 *     such values divided by 2h is at most about sqrt(K) u S / h; a factor
 *     10 covers the tail (the worst case K u sum|R_i out_i| / h is so loose
 *     that it would hide real bugs of a few percent).
 * The check passes when |fd - analytic| <= 10 sqrt(K) u S / h + 2e-3 |analytic| + 1e-6. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/kx_error.h"
#include "core/kx_seed.h"
#include "experiments/model/dec_attn.h"
#include "experiments/model/dec_layers.h"
#include "experiments/model/dec_model.h"
#include "tests/test_support.h"

static const double U = 5.96e-8; /* 2^-24 */
static const float H = 1e-2f;

/* Every test buffer is tracked (test_support.h) and freed after each test. */
static float *rvec(size_t n, float scale) {
  float *v = kx_test_track(malloc(n * sizeof *v));
  for (size_t i = 0; i < n; i++) v[i] = scale * (float)kx_test_nrand();
  return v;
}

/* A layer under test: forward(ctx) writes out; S and f from it. */
typedef struct {
  void (*fwd)(void *ctx);
  void *ctx;
  const float *out;
  const float *R;
  size_t n_out;
  double K;
} probe;

static double eval(const probe *p, double *S) {
  p->fwd(p->ctx);
  double f = 0.0, s = 0.0;
  for (size_t i = 0; i < p->n_out; i++) {
    f += (double)p->R[i] * p->out[i];
    s += ((double)p->R[i] * p->out[i]) * ((double)p->R[i] * p->out[i]);
  }
  if (S) *S = sqrt(s);
  return f;
}

/* Checks `count` entries of x (spread over the array) against grad. */
static int check_array(const probe *p, float *x, const float *grad, size_t n, size_t count, const char *what) {
  int bad = 0;
  for (size_t c = 0; c < count && c < n; c++) {
    size_t i = count >= n ? c : (size_t)((double)c * (double)n / (double)count + 0.5) % n;
    float x0 = x[i];
    double S;
    x[i] = x0 + H;
    double fp = eval(p, &S);
    x[i] = x0 - H;
    double fm = eval(p, NULL);
    x[i] = x0;
    /* the step actually taken in float */
    double h2 = (double)(x0 + H) - (double)(x0 - H);
    double fd = (fp - fm) / h2;
    double an = grad[i];
    double tol = 10.0 * sqrt(p->K) * U * S / (h2 / 2) + 2e-3 * fabs(an) + 1e-6;
    if (fabs(fd - an) > tol) {
      if (bad < 5)
        fprintf(stderr, "%s[%zu]: finite difference %.8g, backward %.8g, tol %.3g\n", what, i, fd, an, tol);
      bad++;
    }
  }
  eval(p, NULL);
  return bad;
}

/* ---- LayerNorm ---- */
typedef struct {
  float *out, *mean, *rstd, *inp, *w, *b;
  size_t N, C;
} ln_ctx;
static void ln_fwd(void *c) {
  ln_ctx *l = c;
  kx_layernorm_forward(l->out, l->mean, l->rstd, l->inp, l->w, l->b, l->N, l->C, 1e-5f);
}

START_TEST(test_layernorm) {
  size_t N = 6, C = 24;
  ln_ctx l = {kx_test_zeros(N * C), kx_test_zeros(N), kx_test_zeros(N), rvec(N * C, 1.0f), rvec(C, 1.0f), rvec(C, 1.0f), N, C};
  float *R = rvec(N * C, 1.0f);
  probe p = {ln_fwd, &l, l.out, R, N * C, 2.0 * C};
  float *di = kx_test_zeros(N * C), *dw = kx_test_zeros(C), *db = kx_test_zeros(C);
  eval(&p, NULL);
  kx_layernorm_backward(di, dw, db, R, l.inp, l.w, l.mean, l.rstd, N, C);
  ck_assert_int_eq(check_array(&p, l.inp, di, N * C, N * C, "ln dinp"), 0);
  ck_assert_int_eq(check_array(&p, l.w, dw, C, C, "ln dw"), 0);
  ck_assert_int_eq(check_array(&p, l.b, db, C, C, "ln db"), 0);
}
END_TEST

/* ---- matmul ---- */
typedef struct {
  float *out, *inp, *W, *b;
  size_t N, C, OC;
} mm_ctx;
static void mm_fwd(void *c) {
  mm_ctx *m = c;
  kx_matmul_forward(m->out, m->inp, m->W, m->b, m->N, m->C, m->OC);
}

START_TEST(test_matmul) {
  /* Sizes not multiples of 8 exercise the uneven thread split. */
  size_t N = 13, C = 11, OC = 19;
  mm_ctx m = {kx_test_zeros(N * OC), rvec(N * C, 1.0f), rvec(OC * C, 1.0f), rvec(OC, 1.0f), N, C, OC};
  float *R = rvec(N * OC, 1.0f);
  probe p = {mm_fwd, &m, m.out, R, N * OC, (double)C + 1};
  float *di = kx_test_zeros(N * C), *dW = kx_test_zeros(OC * C), *db = kx_test_zeros(OC);
  eval(&p, NULL);
  kx_matmul_backward(di, dW, db, R, m.inp, m.W, N, C, OC);
  ck_assert_int_eq(check_array(&p, m.inp, di, N * C, N * C, "mm dinp"), 0);
  ck_assert_int_eq(check_array(&p, m.W, dW, OC * C, OC * C, "mm dW"), 0);
  ck_assert_int_eq(check_array(&p, m.b, db, OC, OC, "mm db"), 0);
  /* and the narrow shape (OC < C) that splits dW by columns */
  mm_ctx m2 = {kx_test_zeros(N * 5), rvec(N * 40, 1.0f), rvec(5 * 40, 1.0f), NULL, N, 40, 5};
  float *R2 = rvec(N * 5, 1.0f);
  probe p2 = {mm_fwd, &m2, m2.out, R2, N * 5, 41};
  float *di2 = kx_test_zeros(N * 40), *dW2 = kx_test_zeros(5 * 40);
  eval(&p2, NULL);
  kx_matmul_backward(di2, dW2, NULL, R2, m2.inp, m2.W, N, 40, 5);
  ck_assert_int_eq(check_array(&p2, m2.inp, di2, N * 40, N * 40, "mm2 dinp"), 0);
  ck_assert_int_eq(check_array(&p2, m2.W, dW2, 200, 200, "mm2 dW"), 0);
}
END_TEST

/* ---- GELU ---- */
typedef struct {
  float *out, *inp;
  size_t n;
} gelu_ctx;
static void gelu_fwd(void *c) {
  gelu_ctx *g = c;
  kx_gelu_forward(g->out, g->inp, g->n);
}

START_TEST(test_gelu) {
  size_t n = 200;
  gelu_ctx g = {kx_test_zeros(n), rvec(n, 2.0f), n};
  float *R = rvec(n, 1.0f), *di = kx_test_zeros(n);
  probe p = {gelu_fwd, &g, g.out, R, n, 4};
  eval(&p, NULL);
  kx_gelu_backward(di, g.inp, R, n);
  ck_assert_int_eq(check_array(&p, g.inp, di, n, n, "gelu"), 0);
}
END_TEST

/* ---- embedding ---- */
typedef struct {
  float *out, *wte;
  int *tok;
  size_t N, C;
} emb_ctx;
static void emb_fwd(void *c) {
  emb_ctx *e = c;
  kx_embed_forward(e->out, e->tok, e->wte, e->N, e->C);
}

START_TEST(test_embedding) {
  size_t N = 17, C = 9, V = 5;
  int tok[17];
  for (size_t i = 0; i < N; i++) tok[i] = (int)((i * 7) % V);
  emb_ctx e = {kx_test_zeros(N * C), rvec(V * C, 1.0f), tok, N, C};
  float *R = rvec(N * C, 1.0f), *dw = kx_test_zeros(V * C);
  probe p = {emb_fwd, &e, e.out, R, N * C, 1};
  eval(&p, NULL);
  kx_embed_backward(dw, R, tok, N, C, V);
  ck_assert_int_eq(check_array(&p, e.wte, dw, V * C, V * C, "embed"), 0);
}
END_TEST

/* ---- rotary ---- */
typedef struct {
  float *out, *inp, *cs, *sn;
  size_t T, d, r;
} rope_ctx;
static void rope_fwd(void *c) {
  rope_ctx *q = c;
  memcpy(q->out, q->inp, q->T * q->d * sizeof(float));
  for (size_t t = 0; t < q->T; t++) kx_rope_forward(q->out + t * q->d, q->cs, q->sn, t, q->r);
}

START_TEST(test_rope) {
  size_t T = 7, d = 12, r = 6;
  rope_ctx q = {kx_test_zeros(T * d), rvec(T * d, 1.0f), kx_test_zeros(T * r / 2), kx_test_zeros(T * r / 2), T, d, r};
  for (size_t t = 0; t < T; t++)
    for (size_t i = 0; i < r / 2; i++) {
      double a = (double)t * pow(10000.0, -2.0 * (double)i / (double)r);
      q.cs[t * r / 2 + i] = (float)cos(a);
      q.sn[t * r / 2 + i] = (float)sin(a);
    }
  float *R = rvec(T * d, 1.0f), *dx = kx_test_track(malloc(T * d * sizeof(float)));
  probe p = {rope_fwd, &q, q.out, R, T * d, 2};
  eval(&p, NULL);
  memcpy(dx, R, T * d * sizeof(float));
  for (size_t t = 0; t < T; t++) kx_rope_backward(dx + t * d, q.cs, q.sn, t, r);
  ck_assert_int_eq(check_array(&p, q.inp, dx, T * d, T * d, "rope"), 0);
  /* the rotation keeps norms: a rotation, not just any linear map */
  for (size_t t = 0; t < T; t++) {
    double a = 0, b = 0;
    for (size_t e = 0; e < d; e++) {
      a += (double)q.inp[t * d + e] * q.inp[t * d + e];
      b += (double)q.out[t * d + e] * q.out[t * d + e];
    }
    ck_assert_double_eq_tol(a, b, 1e-5 * a);
  }
}
END_TEST

/* ---- cross-entropy: f = mean loss, no R ---- */
typedef struct {
  float *losses, *probs, *logits;
  int *tg;
  size_t N, V;
  float mean_out;
} ce_ctx;
static void ce_fwd(void *c) {
  ce_ctx *e = c;
  e->mean_out = (float)kx_crossentropy_forward(e->losses, e->probs, e->logits, e->tg, e->N, e->V);
}

START_TEST(test_crossentropy) {
  size_t N = 9, V = 13;
  int tg[9];
  for (size_t i = 0; i < N; i++) tg[i] = (int)((i * 5 + 1) % V);
  ce_ctx e = {kx_test_zeros(N), kx_test_zeros(N * V), rvec(N * V, 2.0f), tg, N, V, 0};
  float one = 1.0f;
  probe p = {ce_fwd, &e, &e.mean_out, &one, 1, 2.0 * V};
  float *dl = kx_test_zeros(N * V);
  eval(&p, NULL);
  kx_crossentropy_backward(dl, e.probs, tg, N, V, 1.0f / (float)N);
  ck_assert_int_eq(check_array(&p, e.logits, dl, N * V, N * V, "crossentropy"), 0);
}
END_TEST

/* ---- attention kind (softmax): the whole part, through its vtable ---- */
typedef struct {
  const kx_attn_kind *kind;
  kx_attn_ctx ac;
  float **p;
  float *x, *y, *acts;
} attn_ctx_t;
static void attn_fwd(void *c) {
  attn_ctx_t *a = c;
  a->kind->forward(&a->ac, a->p, a->x, a->y, a->acts);
}

START_TEST(test_attention_softmax) {
  kx_dec_config cfg;
  kx_test_config(&cfg, "softmax", 5, 9, 16, 4);
  cfg.layers = 1;
  size_t B = 2, T = 9, C = cfg.width, N = B * T;
  const kx_attn_kind *k = kx_dec_attn_find("softmax");
  ck_assert_ptr_nonnull(k);
  kx_param_table tab = {0};
  size_t nt;
  ck_assert_int_eq(k->declare(&cfg, 0, &tab, &nt), 0);
  float *params = rvec(tab.total, 0.4f), *grads = kx_test_zeros(tab.total);
  float *pp[KX_ATTN_MAX_TENSORS], *dp[KX_ATTN_MAX_TENSORS];
  for (size_t i = 0; i < nt; i++) pp[i] = params + tab.t[i].offset, dp[i] = grads + tab.t[i].offset;
  size_t half = cfg.rotary_dims / 2;
  float *cs = kx_test_zeros(cfg.ctx * half), *sn = kx_test_zeros(cfg.ctx * half);
  for (size_t t = 0; t < cfg.ctx; t++)
    for (size_t i = 0; i < half; i++) {
      double a = (double)t * pow(10000.0, -2.0 * (double)i / (double)cfg.rotary_dims);
      cs[t * half + i] = (float)cos(a), sn[t * half + i] = (float)sin(a);
    }
  attn_ctx_t a = {k, {&cfg, B, T, cs, sn, 0, 0, NULL}, pp, rvec(N * C, 1.0f), kx_test_zeros(N * C), kx_test_zeros(k->act_floats(&cfg, B, T))};
  float *R = rvec(N * C, 1.0f), *dx = kx_test_zeros(N * C), *scratch = kx_test_zeros(k->scratch_floats(&cfg, B, T));
  /* Sums behind an output: C (qkv) + T (probabilities) + C (proj), times a
   * growth factor of a few for the softmax. */
  probe p = {attn_fwd, &a, a.y, R, N * C, 4.0 * (2 * C + T)};
  eval(&p, NULL);
  k->backward(&a.ac, pp, dp, a.x, R, a.acts, dx, scratch);
  ck_assert_int_eq(check_array(&p, a.x, dx, N * C, 120, "attn dx"), 0);
  for (size_t i = 0; i < nt; i++)
    ck_assert_int_eq(check_array(&p, pp[i], dp[i], tab.t[i].size, 60, tab.t[i].name), 0);
  /* causality: changing the last token must not change earlier outputs */
  float *y0 = kx_test_track(malloc(N * C * sizeof(float)));
  memcpy(y0, a.y, N * C * sizeof(float));
  for (size_t c = 0; c < C; c++) a.x[(T - 1) * C + c] += 1.0f;
  attn_fwd(&a);
  for (size_t i = 0; i < (T - 1) * C; i++) ck_assert_float_eq(a.y[i], y0[i]);
  kx_ptable_free(&tab);
}
END_TEST

int main(void) {
  kx_dec_threads_init();
  Suite *s = kx_test_suite("decoder_layers");
  TCase *tc = kx_test_tracked_case(s, "layers");
  kx_test_add(tc, (const TTest *const[]){test_layernorm, test_matmul, test_gelu, test_embedding, test_rope,
                                         test_crossentropy, test_attention_softmax, NULL});
  return kx_test_run(s);
}
