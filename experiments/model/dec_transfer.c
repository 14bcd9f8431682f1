#include "experiments/model/dec_transfer.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/kx_error.h"
#include "core/kx_seed.h"
#include "experiments/model/dec_adamw.h"
#include "experiments/model/dec_attn_eval.h"

enum { STREAM_TRANSFER_BATCH = 7 };

int kx_dec_transfer_target(const kx_attn_kind *kind, kx_transfer_target *target) {
  if (!kind->transfer_tensors || !kind->transfer_tensors[0])
    return kx_fail(KX_EINVAL, "attention kind '%s' has no feature-map tensors to train by attention transfer",
                   kind->name);
  *target = kind->attn_weights && kind->attn_weights_backward ? KX_TRANSFER_KL : KX_TRANSFER_MSE;
  return 0;
}

/* 1 if tensor `name` ("layer<l>/<suffix>") is one of the kind's map tensors. */
static int is_map_tensor(const kx_attn_kind *kind, const char *name) {
  const char *slash = strchr(name, '/');
  if (!slash || strncmp(name, "layer", 5)) return 0;
  for (const char *const *s = kind->transfer_tensors; *s; s++)
    if (!strcmp(slash + 1, *s)) return 1;
  return 0;
}

typedef struct {
  float *acts, *y, *dy, *dx, *scratch, *A, *S, *dA;
} buffers;

/* Loss of block l on the teacher's current activations; gradients of the
 * student's tensors of that block accumulate (+=), scaled by `scale`. */
static double block_loss(kx_decoder *t, kx_decoder *s, size_t l, kx_transfer_target target, buffers *w,
                         double scale) {
  size_t B = t->B, T = t->T, N = B * T, C = s->cfg.width, H = s->cfg.heads;
  kx_attn_ctx cs = {&s->cfg, B, T, s->rope_cos, s->rope_sin, 0, 0, NULL};
  kx_attn_ctx ct = {&t->cfg, B, T, t->rope_cos, t->rope_sin, 0, 0, NULL};
  float *const *p = kx_dec_attn_p(s, l), *const *dp = kx_dec_attn_dp(s, l);
  const kx_attn_kind *sk = s->li[l].attn, *tk = t->li[l].attn;
  sk->forward(&cs, p, t->blk[l].ln1, w->y, w->acts);
  double loss = 0.0;
  if (target == KX_TRANSFER_MSE) {
    const float *yt = t->blk[l].attn_y;
    for (size_t k = 0; k < N * C; k++) {
      double e = (double)w->y[k] - (double)yt[k];
      loss += e * e;
      w->dy[k] = (float)(2.0 * e * scale);
    }
    memset(w->dx, 0, N * C * sizeof(float));
    sk->backward(&cs, p, dp, t->blk[l].ln1, w->dy, w->acts, w->dx, w->scratch);
    return loss / (double)(N * C);
  }
  for (size_t b = 0; b < B; b++)
    for (size_t h = 0; h < H; h++) {
      tk->attn_weights(&ct, kx_dec_attn_p(t, l), t->blk[l].attn_acts, b, h, w->A);
      sk->attn_weights(&cs, p, w->acts, b, h, w->S);
      memset(w->dA, 0, T * T * sizeof(float));
      for (size_t i = 0; i < T; i++)
        for (size_t j = 0; j <= i; j++) {
          double a = w->A[i * T + j], sh = w->S[i * T + j];
          if (!(a > 0)) continue;
          double sf = sh > KX_ATTN_KL_FLOOR ? sh : KX_ATTN_KL_FLOOR;
          loss += a * (log(a) - log(sf));
          /* at the floor the loss no longer depends on sh */
          if (sh > KX_ATTN_KL_FLOOR) w->dA[i * T + j] = (float)(-a / sh * scale);
        }
      sk->attn_weights_backward(&cs, p, dp, w->acts, b, h, w->dA, w->scratch);
    }
  return loss / (double)(B * H * T);
}

int kx_dec_transfer(kx_decoder *teacher, kx_decoder *student, const kx_dec_data *data, const kx_transfer_opts *o,
                    kx_transfer_callback cb, void *user) {
  kx_transfer_target target;
  int rc = kx_dec_transfer_target(student->attn, &target);
  if (rc) return rc;
  if (o->match_outputs) target = KX_TRANSFER_MSE;
  const kx_dec_config *c = &student->cfg;
  if (strcmp(teacher->cfg.attn_kind, "softmax") || teacher->cfg.softmax_layers || teacher->cfg.layers != c->layers ||
      teacher->cfg.width != c->width || teacher->cfg.heads != c->heads || teacher->cfg.ctx != c->ctx)
    return kx_fail(KX_EINVAL, "attention transfer needs the softmax teacher the student was converted from");
  size_t B = o->batch ? o->batch : 8, T = c->ctx, N = B * T, C = c->width, L = c->layers, H = c->heads;
  if (data->n_train < T + 2)
    return kx_fail(KX_EINVAL, "the training text has %zu characters; attention transfer needs more than %zu",
                   data->n_train, T + 1);
  /* the optimiser sees a copy of the table in which every other tensor is frozen */
  kx_param_table tab = student->tab;
  tab.t = kx_malloc(tab.n * sizeof *tab.t);
  buffers w = {0};
  kx_adamw opt = {0};
  int *x = kx_malloc(N * sizeof(int)), *y = kx_malloc(N * sizeof(int));
  if (!tab.t || !x || !y) {
    rc = KX_ENOMEM;
    goto out;
  }
  /* a hybrid's softmax layers are the teacher's own: nothing to transfer */
  size_t n_map = 0, converted = 0;
  for (size_t i = 0; i < tab.n; i++) {
    tab.t[i] = student->tab.t[i];
    tab.t[i].frozen = 1;
  }
  for (size_t l = 0; l < L; l++) {
    const kx_dec_layer_index *li = &student->li[l];
    if (li->attn != student->attn) continue;
    converted++;
    for (size_t i = li->attn_first; i < li->attn_first + li->attn_n; i++) {
      tab.t[i].frozen = !is_map_tensor(student->attn, tab.t[i].name) || student->tab.t[i].frozen;
      n_map += !tab.t[i].frozen;
    }
  }
  if (!n_map) {
    rc = kx_fail(KX_EINVAL, "attention kind '%s' declares no tensor named in its transfer list", c->attn_kind);
    goto out;
  }
  w.acts = kx_malloc(student->attn->act_floats(c, B, T) * sizeof(float));
  w.scratch = kx_malloc((student->attn->scratch_floats(c, B, T) + 1) * sizeof(float));
  w.y = kx_malloc(N * C * sizeof(float));
  w.dy = kx_malloc(N * C * sizeof(float));
  w.dx = kx_malloc(N * C * sizeof(float));
  w.A = kx_malloc(T * T * sizeof(float));
  w.S = kx_malloc(T * T * sizeof(float));
  w.dA = kx_malloc(T * T * sizeof(float));
  if (!w.acts || !w.scratch || !w.y || !w.dy || !w.dx || !w.A || !w.S || !w.dA) {
    rc = KX_ENOMEM;
    goto out;
  }
  if ((rc = kx_adamw_create(&opt, tab.total, 0.9, 0.95, 1e-8, 0.0))) goto out;
  uint64_t seed = kx_seed_derive(o->seed, STREAM_TRANSFER_BATCH);
  uint64_t warmup = o->steps / 10 ? o->steps / 10 : 1;
  double scale = target == KX_TRANSFER_KL ? 1.0 / (double)(B * H * T * converted) : 1.0 / (double)(N * C * converted);
  for (uint64_t step = 0; step < o->steps; step++) {
    kx_dec_batch(data->train, data->n_train, B, T, seed, step, x, y);
    if ((rc = kx_dec_forward(teacher, x, NULL, B, T, NULL))) goto out;
    memset(student->grads, 0, tab.total * sizeof(float));
    double loss = 0.0;
    for (size_t l = 0; l < L; l++)
      if (student->li[l].attn == student->attn)
        loss += block_loss(teacher, student, l, target, &w, scale) / (double)converted;
    for (size_t i = 0; i < tab.n; i++)
      if (tab.t[i].frozen) memset(student->grads + tab.t[i].offset, 0, tab.t[i].size * sizeof(float));
    if (!isfinite(loss) || !isfinite(kx_grad_clip(student->grads, tab.total, 1.0))) {
      rc = kx_fail(KX_ENUM, "attention transfer diverged at step %llu (loss %g); lower --transfer-lr",
                   (unsigned long long)step + 1, loss);
      goto out;
    }
    double lr = kx_lr_schedule(step, o->steps, warmup, o->lr, o->lr / 10);
    kx_adamw_step(&opt, &tab, student->params, student->grads, lr);
    if (cb) cb(step + 1, o->steps, loss, user);
  }
out:
  free(tab.t);
  free(x);
  free(y);
  free(w.acts);
  free(w.scratch);
  free(w.y);
  free(w.dy);
  free(w.dx);
  free(w.A);
  free(w.S);
  free(w.dA);
  kx_adamw_free(&opt);
  return rc;
}
