/* The whole decoder: its gradient against finite differences, a tiny
 * model overfitting a tiny text, and a training step's bits independent of
 * the thread count for every attention kind. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <omp.h>

#include "core/kx_error.h"
#include "experiments/model/dec_adamw.h"
#include "experiments/model/dec_attn.h"
#include "experiments/model/dec_layers.h"
#include "experiments/model/dec_model.h"
#include "tests/test_support.h"

static void tiny_config(kx_dec_config *c, size_t V) { kx_test_config(c, "softmax", V, 12, 16, 4); }

static double model_loss(kx_decoder *m, const int *x, const int *y, size_t B, size_t T) {
  double loss;
  ck_assert_int_eq(kx_dec_forward(m, x, y, B, T, &loss), 0);
  return loss;
}

/* +-1 pattern for a direction; fixed so failures reproduce. */
static double dir(size_t k) { return ((k * 2654435761u) >> 7) & 1 ? 1.0 : -1.0; }

/* Loss at p0 + s (entries of the tensor moved along dir/sqrt(size), or only
 * entry `only` when only < size). */
static double moved_loss(kx_decoder *m, const kx_tensor_info *t, const float *p0, double s, size_t only,
                         const int *x, const int *y, size_t B, size_t T) {
  float *p = m->params + t->offset;
  double vn = 1.0 / sqrt((double)t->size);
  for (size_t k = 0; k < t->size; k++)
    p[k] = only < t->size ? (k == only ? (float)(p0[k] + s) : p0[k]) : (float)(p0[k] + s * dir(k) * vn);
  double l = model_loss(m, x, y, B, T);
  memcpy(p, p0, t->size * sizeof(float));
  return l;
}

/* Whole-model gradient: per tensor one directional derivative along a
 * +-1 direction over all its entries (every entry contributes) and three
 * single entries, by central differences with h = 1e-2.
 *
 * Tolerance: the loss is a mean of float32 per-token losses, each with a
 * relative round-off of about sqrt(K) u (u = 2^-24, K ~ 400 operations on
 * the longest path: two blocks of sums over C, 4C and T, and the
 * log-sum-exp over V; the errors of different tokens are uncorrelated, so
 * averaging does not add), so a central difference carries about
 * sqrt(K) u loss / h ~ 3e-5 here; we allow twice that plus 0.2% of the
 * derivative for the truncation h^2 |f'''| / 6 (LayerNorm and softmax
 * curvature).  The float64 PyTorch reference checks the same gradients
 * against an independent implementation. */
START_TEST(test_model_gradient) {
  kx_dec_config cfg;
  tiny_config(&cfg, 7);
  kx_decoder m;
  ck_assert_int_eq(kx_dec_create(&m, &cfg), 0);
  ck_assert_int_eq(kx_dec_init_params(&m, 42), 0);
  /* LayerNorm gains and biases away from 1/0 so every path is exercised. */
  for (size_t i = 0; i < m.tab.n; i++) {
    kx_tensor_info *t = &m.tab.t[i];
    float *p = m.params + t->offset;
    for (size_t k = 0; k < t->size; k++)
      if (t->init == KX_INIT_ONE)
        p[k] = 1.0f + 0.3f * sinf((float)(k * 7 + i));
      else if (t->init == KX_INIT_ZERO)
        p[k] = 0.1f * cosf((float)(k * 3 + i));
  }
  size_t B = 2, T = 10, N = B * T;
  int x[20], y[20];
  for (size_t n = 0; n < N; n++) x[n] = (int)((n * 5 + 2) % 7), y[n] = (int)((n * 3 + 1) % 7);
  double loss0 = model_loss(&m, x, y, B, T);
  ck_assert_int_eq(kx_dec_backward(&m), 0);
  float *g = malloc(m.tab.total * sizeof(float));
  memcpy(g, m.grads, m.tab.total * sizeof(float));
  const double u = 5.96e-8, K = 400, h = 1e-2;
  double noise = 2.0 * sqrt(K) * u * loss0 / h;
  int bad = 0;
  double worst = 0.0;
  for (size_t i = 0; i < m.tab.n; i++) {
    const kx_tensor_info *t = &m.tab.t[i];
    const float *gt = g + t->offset;
    float *p0 = malloc(t->size * sizeof(float));
    memcpy(p0, m.params + t->offset, t->size * sizeof(float));
    for (int probe = 0; probe < 4; probe++) {
      size_t only = probe == 0 ? t->size : (size_t)(probe - 1) * (t->size - 1) / 2;
      double an = 0.0;
      if (only < t->size)
        an = gt[only];
      else
        for (size_t k = 0; k < t->size; k++) an += dir(k) / sqrt((double)t->size) * gt[k];
      double fd = (moved_loss(&m, t, p0, h, only, x, y, B, T) - moved_loss(&m, t, p0, -h, only, x, y, B, T)) /
                  (2 * h);
      double tol = noise + 2e-3 * fabs(an);
      double err = fabs(fd - an);
      if (err / (tol) > worst) worst = err / tol;
      if (err > tol) {
        fprintf(stderr, "%s %s: finite difference %.7g, backward %.7g, tol %.3g\n", t->name,
                only < t->size ? "entry" : "direction", fd, an, tol);
        bad++;
      }
    }
    free(p0);
  }
  fprintf(stderr, "model gradient: worst error / tolerance = %.3f\n", worst);
  ck_assert_int_eq(bad, 0);
  free(g);
  kx_dec_free(&m);
}
END_TEST

/* A tiny model memorises a tiny text: the same window every step (so every
 * prediction is determined by its prefix) and AdamW drive the loss near 0. */
START_TEST(test_overfit) {
  const char *text = "in the beginning god created the heaven and the earth. ";
  size_t len = strlen(text);
  int map[256];
  memset(map, -1, sizeof map);
  size_t V = 0;
  for (size_t i = 0; i < len; i++)
    if (map[(unsigned char)text[i]] < 0) map[(unsigned char)text[i]] = (int)V++;
  kx_dec_config cfg;
  tiny_config(&cfg, V);
  cfg.ctx = 64;
  cfg.width = 32;
  kx_decoder m;
  ck_assert_int_eq(kx_dec_create(&m, &cfg), 0);
  ck_assert_int_eq(kx_dec_init_params(&m, 1), 0);
  kx_adamw opt;
  ck_assert_int_eq(kx_adamw_create(&opt, m.tab.total, 0.9, 0.95, 1e-8, 0.0), 0);
  size_t T = len - 1, B = 1;
  int *x = malloc(B * T * sizeof(int)), *y = malloc(B * T * sizeof(int));
  for (size_t t = 0; t < T; t++) {
    x[t] = map[(unsigned char)text[t]];
    y[t] = map[(unsigned char)text[t + 1]];
  }
  double loss = 0, first = 0;
  for (int step = 0; step < 300; step++) {
    ck_assert_int_eq(kx_dec_forward(&m, x, y, B, T, &loss), 0);
    if (step == 0) first = loss;
    ck_assert_int_eq(kx_dec_backward(&m), 0);
    kx_grad_clip(m.grads, m.tab.total, 1.0);
    kx_adamw_step(&opt, &m.tab, m.params, m.grads, kx_lr_schedule(step, 300, 20, 1e-2, 1e-3));
  }
  fprintf(stderr, "overfit: loss %.4f -> %.4f\n", first, loss);
  ck_assert(first > 2.0);
  ck_assert(loss < 0.02);
  free(x);
  free(y);
  kx_adamw_free(&opt);
  kx_dec_free(&m);
}
END_TEST

/* Loss and every gradient of one forward/backward on 1 thread and on 2
 * threads, for each attention kind: bit-identical, so a training run does
 * not depend on how many cores ran it.  The sizes put every matmul above
 * the parallel threshold, and B T = 111 rows (not a multiple of OpenBLAS's
 * row panels) makes a row's place in its BLAS call matter, as it does for
 * rows near the end of a call. */
START_TEST(test_threads_do_not_change_bits) {
  enum { B = 3, T = 37, V = 29 };
  char names[512];
  /* every kind, and a sliding-window hybrid of each family of kinds */
  snprintf(names, sizeof names, "%s, performer+w5, dijiang+w9, hedgehog+w36", kx_dec_attn_names());
  int x[B * T], y[B * T];
  for (size_t i = 0; i < B * T; i++) x[i] = (int)((i * 7 + 3) % V), y[i] = (int)((i * 5 + 1) % V);
  int saved = omp_get_max_threads();
  for (char *kind = strtok(names, ", "); kind; kind = strtok(NULL, ", ")) {
    double loss[2];
    float *grads[2];
    size_t total = 0;
    for (int threads = 1; threads <= 2; threads++) {
      omp_set_num_threads(threads);
      kx_dec_config c;
      tiny_config(&c, V);
      c.ctx = T;
      c.width = 128; /* wide enough for every parallel threshold */
      c.rotary_dims = 16;
      ck_assert_int_eq(kx_dec_config_set_attention(&c, kind), 0);
      kx_decoder m;
      ck_assert_int_eq(kx_dec_create(&m, &c), 0);
      ck_assert_int_eq(kx_dec_init_params(&m, 11), 0);
      ck_assert_int_eq(kx_dec_forward(&m, x, y, B, T, &loss[threads - 1]), 0);
      ck_assert_int_eq(kx_dec_backward(&m), 0);
      total = m.tab.total;
      grads[threads - 1] = malloc(total * sizeof(float));
      ck_assert_ptr_nonnull(grads[threads - 1]);
      memcpy(grads[threads - 1], m.grads, total * sizeof(float));
      kx_dec_free(&m);
    }
    ck_assert_msg(memcmp(&loss[0], &loss[1], sizeof loss[0]) == 0, "%s: loss %.17g on 1 thread, %.17g on 2", kind,
                  loss[0], loss[1]);
    size_t differ = 0;
    for (size_t i = 0; i < total; i++) differ += memcmp(&grads[0][i], &grads[1][i], sizeof(float)) != 0;
    ck_assert_msg(differ == 0, "%s: %zu of %zu gradient entries differ between 1 and 2 threads", kind, differ, total);
    free(grads[0]), free(grads[1]);
  }
  omp_set_num_threads(saved);
}
END_TEST

START_TEST(test_schedule) {
  ck_assert_double_eq_tol(kx_lr_schedule(0, 100, 10, 1.0, 0.1), 0.1, 1e-12);
  ck_assert_double_eq_tol(kx_lr_schedule(9, 100, 10, 1.0, 0.1), 1.0, 1e-12);
  ck_assert_double_eq_tol(kx_lr_schedule(55, 100, 10, 1.0, 0.1), 0.55, 1e-12);
  ck_assert_double_eq_tol(kx_lr_schedule(100, 100, 10, 1.0, 0.1), 0.1, 1e-12);
  float g[3] = {3, 4, 0};
  ck_assert_double_eq_tol(kx_grad_clip(g, 3, 1.0), 5.0, 1e-12);
  ck_assert_float_eq_tol(g[0], 0.6f, 1e-7f);
}
END_TEST

int main(void) {
  kx_init_library();
  kx_dec_threads_init();
  Suite *s = kx_test_suite("decoder_model");
  TCase *tc = kx_test_case(s, "model");
  tcase_set_timeout(tc, 600);
  kx_test_add(tc, (const TTest *const[]){test_model_gradient, test_overfit, test_schedule,
                                         test_threads_do_not_change_bits, NULL});
  return kx_test_run(s);
}
