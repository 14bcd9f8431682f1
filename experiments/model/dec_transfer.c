#include "experiments/model/dec_transfer.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/kx_dp.h"
#include "core/kx_error.h"
#include "core/kx_seed.h"
#include "experiments/model/dec_adamw.h"
#include "experiments/model/dec_attn_eval.h"
#include "experiments/model/dec_dp_tree.h"
#include "experiments/model/dec_led.h"
#include "experiments/model/dec_train.h"

enum { STREAM_TRANSFER_BATCH = 7 };

int kx_dec_transfer_supported(const kx_attn_kind *kind) {
  return kind->transfer_tensors && kind->transfer_tensors[0];
}

int kx_dec_transfer_target(const kx_attn_kind *kind, kx_transfer_target *target) {
  if (!kx_dec_transfer_supported(kind))
    return kx_fail(KX_EINVAL, "attention kind '%s' has no trainable feature map: attention transfer has nothing to train",
                   kind->name);
  *target = kind->attn_weights && kind->attn_weights_backward ? KX_TRANSFER_KL : KX_TRANSFER_MSE;
  return 0;
}

/* 1 if tensor `name` ("layer<l>/<suffix>") is one of the kind's map tensors
 * (with a sliding window, its weight win_beta too). */
static int is_map_tensor(const kx_dec_config *cfg, const kx_attn_kind *kind, const char *name) {
  const char *slash = strchr(name, '/');
  if (!slash || strncmp(name, "layer", 5)) return 0;
  if (cfg->window && !strcmp(slash + 1, "win_beta")) return 1;
  for (const char *const *s = kind->transfer_tensors; *s; s++)
    if (!strcmp(slash + 1, *s)) return 1;
  return 0;
}

/* The row target trains every listed tensor, also those the table freezes
 * for fine-tuning (a fixed projection that only transfer adapts): the
 * kind's attn_weights_backward gives their gradient.  The output target
 * goes through the block's backward, which leaves frozen tensors at zero
 * gradient, so it trains only the listed tensors that are not frozen. */
static int trained(const kx_dec_config *cfg, const kx_attn_kind *kind, const kx_tensor_info *t,
                   kx_transfer_target target) {
  return is_map_tensor(cfg, kind, t->name) && (target == KX_TRANSFER_KL || !t->frozen);
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

/* The mean loss over the converted blocks of batch x (B, T) into *loss,
 * and its gradient with respect to the trained tensors (`tab`'s unfrozen
 * ones) in the student's gradient buffer, every other entry zero. */
static int batch_loss(kx_decoder *t, kx_decoder *s, const kx_param_table *tab, const int *x, size_t B, size_t T,
                      kx_transfer_target target, size_t converted, buffers *w, double *loss) {
  size_t L = s->cfg.layers, H = s->cfg.heads, C = s->cfg.width;
  int rc = kx_dec_forward(t, x, NULL, B, T, NULL);
  if (rc) return rc;
  double scale = target == KX_TRANSFER_KL ? 1.0 / (double)(B * H * T * converted)
                                          : 1.0 / (double)(B * T * C * converted);
  memset(s->grads, 0, tab->total * sizeof(float));
  *loss = 0.0;
  for (size_t l = 0; l < L; l++)
    if (s->li[l].attn == s->attn) *loss += block_loss(t, s, l, target, w, scale) / (double)converted;
  for (size_t i = 0; i < tab->n; i++)
    if (tab->t[i].frozen) memset(s->grads + tab->t[i].offset, 0, tab->t[i].size * sizeof(float));
  return 0;
}

/* batch_loss over the data-parallel world: each rank its leaves of the
 * batch (dec_dp_tree.h), the mean gradient and loss on every rank. */
static int dp_batch_loss(kx_dp_tree *tree, kx_decoder *t, kx_decoder *s, const kx_param_table *tab, const int *x,
                         size_t B, size_t T, kx_transfer_target target, size_t converted, buffers *w, double *loss) {
  size_t g = B / tree->leaves;
  float *own = s->grads;
  int rc = 0, any;
  for (size_t k = 0; !rc && k < tree->mine; k++) {
    double l;
    s->grads = kx_dp_tree_leaf(tree);
    rc = batch_loss(t, s, tab, x + (tree->first + k) * g * T, g, T, target, converted, w, &l);
    if (!rc) kx_dp_tree_push(tree, l);
  }
  s->grads = own;
  return kx_dp_tree_reduce(tree, rc, 0, s->grads, loss, &any);
}

int kx_dec_transfer(kx_decoder *teacher, kx_decoder *student, const kx_dec_data *data, const kx_transfer_opts *o,
                    kx_transfer_callback cb, void *user) {
  /* under mpirun every rank does its share; rank 0 of a led command
   * (dec_led.h) first brings the others in */
  int dp = kx_dp_active();
  if (dp && o->dump) return kx_fail(KX_EINVAL, "the transfer's gradient dump is not available under mpirun");
  int rc = kx_dec_lead_transfer(teacher, student, data, o);
  if (rc) return rc;
  kx_transfer_target target;
  if ((rc = kx_dec_transfer_target(student->attn, &target))) return rc;
  if (o->match_outputs) target = KX_TRANSFER_MSE;
  const kx_dec_config *c = &student->cfg;
  if (strcmp(teacher->cfg.attn_kind, "softmax") || teacher->cfg.softmax_layers || teacher->cfg.layers != c->layers ||
      teacher->cfg.width != c->width || teacher->cfg.heads != c->heads || teacher->cfg.ctx != c->ctx)
    return kx_fail(KX_EINVAL, "attention transfer needs the softmax teacher the student was converted from");
  size_t B = o->batch ? o->batch : 8, T = c->ctx, N = B * T, C = c->width, L = c->layers;
  if (data->n_train < T + 2)
    return kx_fail(KX_EINVAL, "the training text has %zu characters; attention transfer needs more than %zu",
                   data->n_train, T + 1);
  /* the optimiser sees a copy of the table in which every other tensor is frozen */
  kx_param_table tab = student->tab;
  tab.t = kx_malloc(tab.n * sizeof *tab.t);
  buffers w = {0};
  kx_adamw opt = {0};
  kx_dp_tree tree = {0};
  int *x = kx_malloc(N * sizeof(int)), *y = kx_malloc(N * sizeof(int));
  size_t n_map = 0, converted = 0;
  if (!tab.t || !x || !y) {
    rc = KX_ENOMEM;
    goto ready;
  }
  /* a hybrid's softmax layers are the teacher's own: nothing to transfer */
  for (size_t i = 0; i < tab.n; i++) {
    tab.t[i] = student->tab.t[i];
    tab.t[i].frozen = 1;
  }
  for (size_t l = 0; l < L; l++) {
    const kx_dec_layer_index *li = &student->li[l];
    if (li->attn != student->attn) continue;
    converted++;
    for (size_t i = li->attn_first; i < li->attn_first + li->attn_n; i++) {
      tab.t[i].frozen = !trained(c, student->attn, &student->tab.t[i], target);
      n_map += !tab.t[i].frozen;
    }
  }
  if (!n_map) {
    rc = target == KX_TRANSFER_MSE
             ? kx_fail(KX_EINVAL, "attention kind '%s': the output target reaches none of its transfer tensors "
                                  "(they are fixed in fine-tuning); use the row target",
                       c->attn_kind)
             : kx_fail(KX_EINVAL, "attention kind '%s' declares no tensor named in its transfer list", c->attn_kind);
    goto ready;
  }
  if (dp && (rc = kx_dp_tree_setup(&tree, B, tab.total)) == KX_EINVAL) {
    rc = kx_fail(KX_EINVAL,
                 "%d processes cannot share attention transfer's batch of %zu sequences: it is cut into %zu equal "
                 "parts (the largest power of two dividing it, at most %d), and the number of processes must "
                 "divide that",
                 kx_dp_size(), B, tree.leaves, KX_DP_LEAVES_MAX);
    goto ready;
  }
  if (rc) goto ready;
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
    goto ready;
  }
  rc = kx_adamw_create(&opt, tab.total, 0.9, 0.95, 1e-8, 0.0);
ready:
  if (dp) rc = kx_dp_agree(rc); /* every rank goes on, or none */
  if (rc) goto out;
  uint64_t seed = kx_seed_derive(o->seed, STREAM_TRANSFER_BATCH);
  uint64_t warmup = o->steps / 10 ? o->steps / 10 : 1;
  for (uint64_t step = 0; step < o->steps; step++) {
    double loss;
    kx_dec_batch(data->train, data->n_train, B, T, seed, step, teacher->cfg.token_ids, x, y);
    rc = dp ? dp_batch_loss(&tree, teacher, student, &tab, x, B, T, target, converted, &w, &loss)
            : batch_loss(teacher, student, &tab, x, B, T, target, converted, &w, &loss);
    if (rc) goto out;
    if (!isfinite(loss) || !isfinite(kx_grad_clip(student->grads, tab.total, 1.0))) {
      rc = kx_fail(KX_ENUM, "attention transfer diverged at step %llu (loss %g); lower --transfer-lr",
                   (unsigned long long)step + 1, loss);
      goto out;
    }
    double lr = kx_lr_schedule(step, o->steps, warmup, o->lr, o->lr / 10);
    kx_adamw_step(&opt, &tab, student->params, student->grads, lr);
    if (cb) cb(step + 1, o->steps, loss, user);
  }
  if (o->dump) {
    /* The next batch at the final tensors, unclipped (what the reference recomputes). */
    double loss;
    kx_dec_batch(data->train, data->n_train, B, T, seed, o->steps, teacher->cfg.token_ids, x, y);
    if (!(rc = batch_loss(teacher, student, &tab, x, B, T, target, converted, &w, &loss)))
      rc = kx_dec_dump_grads(o->dump, student, x, y, B, T, loss);
  }
out:
  kx_dp_tree_free(&tree);
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
