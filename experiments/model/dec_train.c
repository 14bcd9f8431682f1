#include "experiments/model/dec_train.h"

#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/kx_cli.h"
#include "core/kx_dp.h"
#include "core/kx_error.h"
#include "core/kx_h5.h"
#include "core/kx_lock.h"
#include "core/kx_seed.h"
#include "experiments/model/dec_adamw.h"
#include "experiments/model/dec_ckpt.h"
#include "experiments/model/dec_data.h"
#include "experiments/model/dec_dp_tree.h"
#include "experiments/model/dec_led.h"
#include "experiments/model/dec_layers.h"
#include "experiments/model/dec_model.h"
#include "experiments/model/dec_train_log.h"

/* Seed streams: every random choice descends from the user seed. */
enum { STREAM_INIT = 0, STREAM_BATCH = 1, STREAM_REDRAW = 2 };

void kx_dec_train_opts_init(kx_dec_train_opts *o) {
  memset(o, 0, sizeof *o);
  o->lr = o->lr_min = o->weight_decay = o->beta1 = o->beta2 = o->eps = o->clip = NAN;
  o->final_eval = 1;
}

/* The evaluations are shared by the processes of a data-parallel run (one
 * process alone: all of it).  The n items of an evaluation (batches of
 * windows) are cut into contiguous blocks of ceil(n / N), rank r
 * evaluating block r; the ranks gather every item's value and each adds
 * them in item order from 0, the sum one process makes alone, so the loss
 * does not depend on N.  An evaluation's items share one model and cost
 * about the same, hence equal blocks. */
typedef struct {
  size_t n, per_rank, lo, hi;
  double *mine, *all; /* this rank's values; every rank's, item order */
} eval_share;

static int eval_share_begin(eval_share *e, size_t n) {
  size_t N = (size_t)kx_dp_size(), r = (size_t)kx_dp_rank();
  e->n = n;
  e->per_rank = (n + N - 1) / N;
  e->lo = r * e->per_rank < n ? r * e->per_rank : n;
  e->hi = e->lo + e->per_rank < n ? e->lo + e->per_rank : n;
  size_t cap = e->per_rank ? e->per_rank : 1;
  e->mine = kx_calloc(cap, sizeof(double));
  e->all = kx_calloc(N * cap, sizeof(double));
  return e->mine && e->all ? 0 : KX_ENOMEM;
}

/* rc: this rank's status; *sum: the items' values added in item order. */
static int eval_share_end(eval_share *e, int rc, double *sum) {
  rc = kx_dp_agree(rc); /* every rank gathers, or none does */
  if (!rc) rc = kx_dp_allgather_d(e->mine, e->per_rank ? e->per_rank : 1, e->all);
  if (!rc) {
    double total = 0.0;
    for (size_t i = 0; i < e->n; i++) total += e->all[i]; /* blocks of per_rank: item i is all[i] */
    *sum = total;
  }
  free(e->mine), free(e->all);
  return rc;
}

/* Mean loss over `nb` evaluation batches at evenly spaced, fixed positions
 * of the validation stream (the same windows at every evaluation). */
static int eval_loss(kx_decoder *m, const int *stream, size_t n, size_t B, size_t T, size_t nb, int *x, int *y,
                     double *out) {
  if (n < T + 1) return kx_fail(KX_EINVAL, "validation text has %zu characters, fewer than --ctx + 1", n);
  size_t windows = nb * B, span = n - T - 1;
  eval_share e;
  int rc = eval_share_begin(&e, nb);
  for (size_t k = e.lo; !rc && k < e.hi; k++) {
    for (size_t b = 0; b < B; b++) {
      size_t w = k * B + b;
      size_t start = windows > 1 ? (size_t)((double)w * (double)span / (double)(windows - 1)) : 0;
      start = kx_dec_window_start(stream, start, m->cfg.token_ids);
      memcpy(x + b * T, stream + start, T * sizeof(int));
      memcpy(y + b * T, stream + start + 1, T * sizeof(int));
    }
    rc = kx_dec_forward(m, x, y, B, T, &e.mine[k - e.lo]);
  }
  double total = 0.0;
  if ((rc = eval_share_end(&e, rc, &total))) return rc;
  *out = total / (double)nb;
  return 0;
}

/* Whole validation text in consecutive windows of T: batches of B windows
 * (the last one with fewer), then the tail shorter than T as one item. */
static int eval_full(kx_decoder *m, const int *stream, size_t n, size_t B, size_t T, int *x, int *y,
                     double *out) {
  size_t preds = n - 1, windows = preds / T, batches = (windows + B - 1) / B, tail = preds - windows * T;
  eval_share e;
  int rc = eval_share_begin(&e, batches + (tail > 0));
  for (size_t j = e.lo; !rc && j < e.hi; j++) {
    double l;
    if (j < batches) {
      size_t b = windows - j * B < B ? windows - j * B : B;
      for (size_t i = 0; i < b; i++) {
        size_t pos = (j * B + i) * T;
        memcpy(x + i * T, stream + pos, T * sizeof(int));
        memcpy(y + i * T, stream + pos + 1, T * sizeof(int));
      }
      if (!(rc = kx_dec_forward(m, x, y, b, T, &l))) e.mine[j - e.lo] = l * (double)(b * T);
    } else {
      size_t pos = windows * T;
      if (!(rc = kx_dec_forward(m, stream + pos, stream + pos + 1, 1, tail, &l))) e.mine[j - e.lo] = l * (double)tail;
    }
  }
  double total = 0.0;
  if ((rc = eval_share_end(&e, rc, &total))) return rc;
  *out = total / (double)preds;
  return 0;
}

int kx_dec_dump_grads(const char *path, kx_decoder *m, const int *x, const int *y, size_t B, size_t T,
                      double loss) {
  hid_t f = kx_h5_create_in_memory(); /* published whole (core/kx_h5.h) */
  if (f < 0) return KX_ENOMEM;
  hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
  H5Pset_create_intermediate_group(lcpl, 1);
  int rc = 0;
  hsize_t d2[2] = {B, T};
  hid_t s = H5Screate_simple(2, d2, NULL);
  const char *nm[2] = {"tokens", "targets"};
  const int *src[2] = {x, y};
  for (int i = 0; i < 2 && !rc; i++) {
    hid_t d = H5Dcreate2(f, nm[i], H5T_STD_I32LE, s, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (d < 0 || H5Dwrite(d, H5T_NATIVE_INT, H5S_ALL, H5S_ALL, H5P_DEFAULT, src[i]) < 0)
      rc = kx_fail(KX_EIO, "cannot write /%s", nm[i]);
    if (d >= 0) H5Dclose(d);
  }
  H5Sclose(s);
  if (kx_h5_write_scalar(f, "loss", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &loss)) rc = KX_EIO;
  char name[96];
  for (size_t i = 0; !rc && i < m->tab.n; i++) {
    const kx_tensor_info *t = &m->tab.t[i];
    if (!t->size) continue; /* an empty slot (dec_heads.h) */
    hsize_t dims[2] = {t->rows, t->cols};
    hid_t sp = H5Screate_simple(t->cols ? 2 : 1, dims, NULL);
    snprintf(name, sizeof name, "grad/%s", t->name);
    hid_t d = H5Dcreate2(f, name, H5T_IEEE_F32LE, sp, lcpl, H5P_DEFAULT, H5P_DEFAULT);
    if (d < 0 || H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, m->grads + t->offset) < 0)
      rc = kx_fail(KX_EIO, "cannot write %s", name);
    if (d >= 0) H5Dclose(d);
    H5Sclose(sp);
  }
  H5Pclose(lcpl);
  if (rc) H5Fclose(f);
  else rc = kx_h5_publish(f, path);
  return rc;
}

/* The message of a diverged run: what went non-finite, and which
 * checkpoint still holds good parameters. */
static int diverged(uint64_t step, const char *what, double value, const char *good, uint64_t good_step) {
  char kept[4200];
  if (good)
    snprintf(kept, sizeof kept, "checkpoint '%s' (step %llu) is kept", good, (unsigned long long)good_step);
  else
    snprintf(kept, sizeof kept, "no checkpoint was written");
  return kx_fail(KX_ENUM,
                 "training diverged at step %llu: the %s is %s; %s; train again with a lower --lr (it cannot "
                 "change on --resume)",
                 (unsigned long long)step, what, isnan(value) ? "NaN" : value > 0 ? "+inf" : "-inf", kept);
}

/* Kinds that redraw random features during training (kx_attn_kind.redraw)
 * refill them before the step; the layer's seed descends from the run's,
 * so the draws depend only on (seed, layer, step) and --resume redraws
 * exactly as an uninterrupted run. */
static int redraw_features(kx_decoder *m, uint64_t run_seed, uint64_t step) {
  uint64_t s = kx_seed_derive(run_seed, STREAM_REDRAW);
  int rc = 0;
  for (size_t l = 0; l < m->cfg.layers && !rc; l++)
    if (m->li[l].attn->redraw) rc = m->li[l].attn->redraw(&m->cfg, l, kx_dec_attn_p(m, l), kx_seed_derive(s, l), step);
  return rc;
}

#define GIVEN(x) (!isnan(x))

/* Refuses a given option that differs from the checkpoint's value. */
static int same_u64(const char *opt, uint64_t given, uint64_t have) {
  if (given && given != have)
    return kx_fail(KX_EINVAL, "%s %llu differs from the checkpoint's %llu; omit it", opt,
                   (unsigned long long)given, (unsigned long long)have);
  return 0;
}
static int same_f64(const char *opt, double given, double have) {
  if (GIVEN(given) && given != have)
    return kx_fail(KX_EINVAL, "%s %g differs from the checkpoint's %g; omit it", opt, given, have);
  return 0;
}

void kx_dec_train_state_init(kx_dec_train_state *st, const kx_dec_train_opts *o, uint64_t data_hash) {
  memset(st, 0, sizeof *st);
  st->steps = o->steps ? o->steps : KX_DEC_DEFAULT_STEPS;
  st->warmup = o->warmup ? o->warmup : (st->steps / 20 < 100 ? st->steps / 20 : 100);
  st->batch = o->batch ? o->batch : 16;
  st->seed = o->seed;
  st->lr = GIVEN(o->lr) ? o->lr : 2e-3;
  st->lr_min = GIVEN(o->lr_min) ? o->lr_min : st->lr / 10;
  st->weight_decay = GIVEN(o->weight_decay) ? o->weight_decay : 0.1;
  st->beta1 = GIVEN(o->beta1) ? o->beta1 : 0.9;
  st->beta2 = GIVEN(o->beta2) ? o->beta2 : 0.95;
  st->eps = GIVEN(o->eps) ? o->eps : 1e-8;
  st->clip = GIVEN(o->clip) ? o->clip : 1.0;
  st->data_hash = data_hash;
}

int kx_dec_train_same_run(const kx_dec_train_state *a, const kx_dec_train_state *b) {
  return a->steps == b->steps && a->warmup == b->warmup && a->batch == b->batch && a->seed == b->seed &&
         a->lr == b->lr && a->lr_min == b->lr_min && a->weight_decay == b->weight_decay && a->beta1 == b->beta1 &&
         a->beta2 == b->beta2 && a->eps == b->eps && a->clip == b->clip && a->data_hash == b->data_hash;
}

/* Refuses a given size or kind that differs from a checkpoint's model. */
static int same_model(const kx_dec_train_opts *o, const kx_dec_config *c) {
  int rc = same_u64("--ctx", o->ctx, c->ctx);
  if (!rc) rc = same_u64("--layers", o->layers, c->layers);
  if (!rc) rc = same_u64("--heads", o->heads, c->heads);
  if (!rc) rc = same_u64("--width", o->width, c->width);
  if (!rc) rc = same_u64("--rotary", o->rotary_dims, c->rotary_dims);
  if (!rc && o->llama && !kx_dec_llama(c)) rc = kx_fail(KX_EINVAL, "--arch llama differs from the checkpoint's architecture; omit it");
  if (!rc) rc = same_u64("--kv-heads", o->kv_heads, kx_dec_kv_heads(c));
  if (!rc) rc = same_u64("--ffn-hidden", o->ffn_hidden, kx_dec_ffn_hidden(c));
  if (!rc && o->attn_kind[0] && strcmp(o->attn_kind, c->attn_kind))
    rc = kx_fail(KX_EINVAL, "--attention %s differs from the checkpoint's %s; omit it", o->attn_kind, c->attn_kind);
  if (!rc && o->window && o->window != c->window)
    rc = kx_fail(KX_EINVAL, "--window %zu differs from the checkpoint's %zu (0: none); omit it, or convert the "
                 "teacher again with kapprox convert --window", o->window, c->window);
  if (!rc && o->dijiang_form) {
    kx_dec_config want = *c;
    rc = kx_dec_config_set_form(&want, o->dijiang_form, "--dijiang-form");
    if (!rc && want.dijiang_flips != c->dijiang_flips) {
      char have[KX_DEC_LABEL_MAX];
      kx_dec_config_label(c, have, sizeof have);
      rc = kx_fail(KX_EINVAL, "--dijiang-form %s differs from the checkpoint's form (%s); omit it", o->dijiang_form,
                   have);
    }
  }
  return rc;
}

/* The model of a fine-tuning run: parameters and configuration of
 * o->init_from (no optimizer state: fine-tuning starts its own); size
 * options, when given, must agree with it. */
static int load_initial(const kx_dec_train_opts *o, kx_decoder *m, kx_dec_vocab *vocab) {
  int rc = kx_dec_ckpt_load(o->init_from, m, vocab, NULL, NULL);
  if (rc) return rc;
  if ((rc = same_model(o, &m->cfg))) kx_fail_context(rc, "starting from '%s': ", o->init_from);
  return rc;
}


/* ---------- data parallelism (dec_train.h) ---------- */

typedef struct {
  kx_dp_tree tree;
} dp_state;

static void dp_free(dp_state *d) { kx_dp_tree_free(&d->tree); }

/* FNV-1a of n bytes, continuing h. */
static uint64_t fnv(uint64_t h, const void *p, size_t n) {
  const unsigned char *c = p;
  for (size_t i = 0; i < n; i++) h = (h ^ c[i]) * 0x100000001b3ull;
  return h;
}

/* The leaves of batch B and this rank's share; the ranks' options, text,
 * model and starting point compared. */
static int dp_setup(dp_state *d, const kx_dec_train_opts *o, const kx_dec_train_state *st, const kx_decoder *m,
                    uint64_t data_hash) {
  int N = kx_dp_size();
  /* what makes two ranks' runs the same run: compared first, so that every
   * later check fails on every rank alike */
  char label[KX_DEC_LABEL_MAX], text[768];
  kx_dec_config_label(&m->cfg, label, sizeof label);
  snprintf(text, sizeof text, "%s|%zu %zu %zu %zu %zu %zu|%llu %llu %llu %llu %llu|%.17g %.17g %.17g %.17g %.17g "
           "%.17g %.17g|%llu|%s|%llu %llu %llu %zu %d",
           label, m->cfg.layers, m->cfg.heads, m->cfg.width, m->cfg.ctx, m->cfg.vocab, m->cfg.rotary_dims,
           (unsigned long long)st->steps, (unsigned long long)st->step, (unsigned long long)st->warmup,
           (unsigned long long)st->batch, (unsigned long long)st->seed, st->lr, st->lr_min, st->weight_decay,
           st->beta1, st->beta2, st->eps, st->clip, (unsigned long long)data_hash, o->out ? o->out : "",
           (unsigned long long)o->eval_every, (unsigned long long)o->save_every, (unsigned long long)o->stop_after,
           o->eval_batches, o->dump_grads != NULL);
  uint64_t h = fnv(0xcbf29ce484222325ull, text, strlen(text));
  h = fnv(h, m->params, m->tab.total * sizeof(float));
  int rc = kx_dp_same(h, "options, text or starting model");
  if (rc) return rc;
  if (o->dump_grads) return kx_fail(KX_EINVAL, "--dump-grads is not available under mpirun");
  rc = kx_dp_tree_setup(&d->tree, st->batch, m->tab.total);
  if (rc == KX_EINVAL)
    return kx_fail(KX_EINVAL,
                   "%d processes cannot share the batch of %llu sequences: it is cut into %zu equal parts (the largest "
                   "power of two dividing it, at most %d), and the number of processes must divide that (1, 2, 4, "
                   "..., %zu); change -np or --batch",
                   N, (unsigned long long)st->batch, d->tree.leaves, KX_DP_LEAVES_MAX, d->tree.leaves);
  return kx_dp_agree(rc);
}

/* One step's gradient (m->grads, of the whole batch's mean loss) and loss
 * over the data-parallel world; *bad_norm: some leaf's LayerNorm went
 * blind. */
static int dp_gradient(dp_state *d, kx_decoder *m, const int *x, const int *y, size_t B, size_t T, double *loss,
                       int *bad_norm) {
  kx_dp_tree *t = &d->tree;
  size_t g = B / t->leaves;
  int rc = 0, bad = 0;
  float *own = m->grads;
  for (size_t k = 0; !rc && k < t->mine; k++) {
    size_t off = (t->first + k) * g * T;
    double l;
    m->grads = kx_dp_tree_leaf(t); /* the backward writes the leaf where the tree keeps it */
    rc = kx_dec_forward(m, x + off, y + off, g, T, &l);
    if (!rc) bad |= kx_dec_check_norms(m) != 0;
    if (!rc) rc = kx_dec_backward(m);
    if (!rc) kx_dp_tree_push(t, l);
  }
  m->grads = own;
  return kx_dp_tree_reduce(t, rc, bad, m->grads, loss, bad_norm);
}

int kx_dec_train(const kx_dec_train_opts *o, kx_train_callback cb, void *user) {
  kx_dec_threads_init();
  int lead_rc = kx_dec_lead_train(o); /* the followers start the same run */
  if (lead_rc) return lead_rc;
  kx_decoder m;
  kx_adamw opt;
  kx_dec_data data;
  kx_dec_vocab ck_vocab = {0};
  kx_dec_train_state st;
  memset(&m, 0, sizeof m);
  memset(&opt, 0, sizeof opt);
  memset(&data, 0, sizeof data);
  memset(&st, 0, sizeof st);
  int *x = NULL, *y = NULL;
  char *text_path = NULL;
  int generated = 0, rc = 0;
  kx_train_log log = {0};
  const char *good_ckpt = NULL; /* newest checkpoint with finite parameters */
  uint64_t good_step = 0;
  kx_lock lock; /* the checkpoint is this run's until it ends */
  kx_lock_init(&lock);
  int dp = kx_dp_active(), rank0 = kx_dp_rank() == 0;
  size_t B = 0, T = 0;
  dp_state d = {0};
  if (o->out && rank0) rc = kx_lock_file(&lock, o->out); /* the writer's claim */
  if (dp) rc = kx_dp_agree(rc);
  if (rc) return rc;

  /* from here every failure goes through setup_end: the ranks agree */
  if (o->text) {
    text_path = strdup(o->text);
    if (!text_path) {
      rc = kx_fail(KX_ENOMEM, "out of memory");
      goto setup_end;
    }
  } else if ((rc = kx_dec_default_corpus(&text_path, &generated))) {
    goto setup_end;
  }

  if (o->resume) {
    if ((rc = kx_dec_ckpt_load(o->resume, &m, &ck_vocab, &opt, &st))) goto setup_end;
    rc = same_model(o, &m.cfg);
    if (!rc) rc = same_u64("--steps", o->steps, st.steps);
    if (!rc) rc = same_u64("--warmup", o->warmup, st.warmup);
    if (!rc) rc = same_u64("--batch", o->batch, st.batch);
    if (!rc && o->seed_given && o->seed != st.seed)
      rc = kx_fail(KX_EINVAL, "--seed %llu differs from the checkpoint's %llu; omit it when resuming",
                   (unsigned long long)o->seed, (unsigned long long)st.seed);
    if (!rc) rc = same_f64("--lr", o->lr, st.lr);
    if (!rc) rc = same_f64("--lr-min", o->lr_min, st.lr_min);
    if (!rc) rc = same_f64("--weight-decay", o->weight_decay, st.weight_decay);
    if (!rc) rc = same_f64("--beta1", o->beta1, st.beta1);
    if (!rc) rc = same_f64("--beta2", o->beta2, st.beta2);
    if (!rc) rc = same_f64("--clip", o->clip, st.clip);
    if (rc) {
      kx_fail_context(rc, "resuming from '%s': ", o->resume);
      goto setup_end;
    }
    good_ckpt = o->resume, good_step = st.step;
    if ((rc = kx_dec_data_load(text_path, &ck_vocab, &data))) goto setup_end;
    if (data.hash != st.data_hash) {
      rc = kx_fail(KX_EINVAL, "the text '%s' is not the one checkpoint '%s' was trained on; give the same --text",
                   text_path, o->resume);
      goto setup_end;
    }
  } else {
    if (o->init_from && (rc = load_initial(o, &m, &ck_vocab))) goto setup_end;
    if ((rc = kx_dec_data_load(text_path, o->init_from ? &ck_vocab : o->vocab, &data))) goto setup_end;
    if (data.vocab.V < 2) {
      rc = kx_fail(KX_EINVAL, "the text '%s' has a single distinct character; a model needs at least two", text_path);
      goto setup_end;
    }
    kx_dec_config c;
    kx_dec_config_default(&c);
    c.vocab = data.vocab.V;
    c.token_ids = data.vocab.ids;
    if (o->ctx) c.ctx = o->ctx;
    if (o->layers) c.layers = o->layers;
    if (o->heads) c.heads = o->heads;
    if (o->width) c.width = o->width;
    /* Pythia: rotary on 25% of each head's dimensions; llama: all of them. */
    c.rotary_dims = o->rotary_dims ? o->rotary_dims : ((c.width / (c.heads ? c.heads : 1)) / 4) & ~(size_t)1;
    if (o->llama) {
      c.arch = KX_ARCH_LLAMA;
      if (!o->rotary_dims) c.rotary_dims = (c.width / (c.heads ? c.heads : 1)) & ~(size_t)1;
      c.kv_heads = o->kv_heads, c.ffn_hidden = o->ffn_hidden, c.tied = o->tied;
    }
    if (o->attn_kind[0]) snprintf(c.attn_kind, sizeof c.attn_kind, "%s", o->attn_kind);
    c.window = o->window;
    if (!o->init_from && o->dijiang_form && (rc = kx_dec_config_set_form(&c, o->dijiang_form, "--dijiang-form")))
      goto setup_end;
    if (!o->init_from && (rc = kx_dec_create(&m, &c))) goto setup_end;
    kx_dec_train_state_init(&st, o, data.hash);
    if (!o->init_from && (rc = kx_dec_init_params(&m, kx_seed_derive(st.seed, STREAM_INIT)))) goto setup_end;
    if ((rc = kx_adamw_create(&opt, m.tab.total, st.beta1, st.beta2, st.eps, st.weight_decay))) goto setup_end;
  }
  B = st.batch, T = m.cfg.ctx;
  if (data.n_train < T + 2) {
    rc = kx_fail(KX_EINVAL, "the training text has %zu characters; it needs more than --ctx + 1 = %zu", data.n_train,
                 T + 1);
    goto setup_end;
  }
  if (data.n_val < T + 2) {
    rc = kx_fail(KX_EINVAL,
                 "the validation text (every %d-th line) has %zu characters; it needs more than --ctx + 1 = %zu "
                 "(use a longer text or a smaller --ctx)",
                 KX_DEC_VAL_EVERY, data.n_val, T + 1);
    goto setup_end;
  }
  x = kx_malloc(B * T * sizeof(int));
  y = kx_malloc(B * T * sizeof(int));
  if (!x || !y) {
    rc = KX_ENOMEM;
    goto setup_end;
  }
  /* an unwritable --out is found now, not after the training */
  if (o->out && rank0 && (rc = kx_atomic_check(o->out))) goto setup_end;
  if (o->log && rank0 && (rc = kx_train_log_open(&log, o->log, o->resume != NULL, st.step))) goto setup_end;
setup_end:
  if (dp) { /* every rank gets here, with its own status: all go on or all stop */
    rc = kx_dp_agree(rc);
    if (!rc) rc = dp_setup(&d, o, &st, &m, data.hash);
  }
  if (rc) goto out;
  kx_train_report r;
  memset(&r, 0, sizeof r);
  r.kind = KX_TRAIN_START;
  r.text_path = text_path;
  r.corpus_generated = generated;
  r.vocab = data.vocab.V;
  r.unit = kx_dec_unit(&data.vocab);
  r.n_train = data.n_train;
  r.n_val = data.n_val;
  r.n_params = 0;
  for (size_t i = 0; i < m.tab.n; i++) r.n_params += m.tab.t[i].size;
  kx_dec_baselines(&data, &r.unigram, &r.bigram);
  r.cfg = &m.cfg;
  r.batch = B;
  r.steps = st.steps;
  r.start_step = st.step;
  if (cb) cb(&r, user);

  uint64_t batch_seed = kx_seed_derive(st.seed, STREAM_BATCH);
  uint64_t eval_every = o->eval_every ? o->eval_every : 100;
  size_t eval_batches = o->eval_batches ? o->eval_batches : 8;
  double t_start = kx_now_seconds(), elapsed0 = st.elapsed;
  uint64_t step_last = st.step;
  int stopped = 0;
  while (st.step < st.steps) {
    if (o->stop_after && st.step >= o->stop_after) {
      stopped = 1;
      break;
    }
    if (o->max_minutes > 0 && kx_now_seconds() - t_start >= 60.0 * o->max_minutes) {
      stopped = 1;
      break;
    }
    double loss;
    kx_dec_batch(data.train, data.n_train, B, T, batch_seed, st.step, m.cfg.token_ids, x, y);
    if ((rc = redraw_features(&m, st.seed, st.step))) goto out;
    int bad_norm = 0;
    if (dp) rc = dp_gradient(&d, &m, x, y, B, T, &loss, &bad_norm);
    else if (!(rc = kx_dec_forward(&m, x, y, B, T, &loss))) bad_norm = kx_dec_check_norms(&m) != 0;
    if (rc) goto out;
    if (!isfinite(loss)) {
      rc = diverged(st.step + 1, "training loss", loss, good_ckpt, good_step);
      goto out;
    }
    if (bad_norm) { /* finite loss, but from a blind LayerNorm */
      rc = diverged(st.step + 1, "variance in a LayerNorm", INFINITY, good_ckpt, good_step);
      goto out;
    }
    if (!dp && (rc = kx_dec_backward(&m))) goto out;
    double t_opt = kx_now_seconds();
    double norm = kx_grad_clip(m.grads, m.tab.total, st.clip);
    if (!isfinite(norm)) {
      rc = diverged(st.step + 1, "gradient norm", norm, good_ckpt, good_step);
      goto out;
    }
    double lr = kx_lr_schedule(st.step, st.steps, st.warmup, st.lr, st.lr_min);
    kx_adamw_step(&opt, &m.tab, m.params, m.grads, lr);
    r.optimizer_s += kx_now_seconds() - t_opt; /* done whole by every rank */
    st.step++;
    double now = kx_now_seconds();
    st.elapsed = elapsed0 + (now - t_start);
    double optimizer_s = r.optimizer_s, eval_s = r.eval_s;
    memset(&r, 0, sizeof r);
    r.optimizer_s = optimizer_s, r.eval_s = eval_s;
    r.kind = KX_TRAIN_STEP;
    r.steps = st.steps;
    r.step = st.step;
    r.lr = lr;
    r.train_loss = loss;
    r.grad_norm = norm;
    r.val_loss = NAN;
    r.elapsed = st.elapsed;
    if (st.step % eval_every == 0 || st.step == st.steps) {
      double t_eval = kx_now_seconds();
      if ((rc = eval_loss(&m, data.val, data.n_val, B, T, eval_batches, x, y, &r.val_loss))) goto out;
      r.eval_s += kx_now_seconds() - t_eval;
      if (!isfinite(r.val_loss)) {
        rc = diverged(st.step, "validation loss", r.val_loss, good_ckpt, good_step);
        goto out;
      }
      now = kx_now_seconds();
    }
    double run_s = now - t_start;
    r.tokens_per_s = run_s > 0 ? (double)((st.step - step_last) * B * T) / run_s : 0.0;
    r.eta = st.step > step_last ? run_s / (double)(st.step - step_last) * (double)(st.steps - st.step) : 0.0;
    if (rank0)
      rc = kx_train_log_row(&log, r.step, r.lr, r.train_loss, r.val_loss, r.grad_norm, r.tokens_per_s, r.elapsed);
    if (!rc && cb) cb(&r, user);
    if (!rc && o->out && o->save_every && st.step % o->save_every == 0 && st.step < st.steps) {
      if (rank0) rc = kx_dec_ckpt_save(o->out, &m, &data.vocab, &opt, &st);
      good_ckpt = o->out, good_step = st.step;
    }
    if (dp) rc = kx_dp_agree(rc); /* rank 0's files: every rank stops if one failed */
    if (rc) goto out;
  }
  /* the training's throughput: its steps and evaluations, without the
   * setup before them and the final checkpoint write after them (fixed
   * costs of a run, whatever its length) */
  double run_s = kx_now_seconds() - t_start;
  if (o->out && rank0) rc = kx_dec_ckpt_save(o->out, &m, &data.vocab, &opt, &st);
  if (dp) rc = kx_dp_agree(rc);
  if (rc) goto out;
  if (o->dump_grads) {
    /* The next batch at the final parameters (what the reference recomputes). */
    double loss;
    kx_dec_batch(data.train, data.n_train, B, T, batch_seed, st.step, m.cfg.token_ids, x, y);
    if ((rc = kx_dec_forward(&m, x, y, B, T, &loss))) goto out;
    if ((rc = kx_dec_backward(&m))) goto out;
    if ((rc = kx_dec_dump_grads(o->dump_grads, &m, x, y, B, T, loss))) goto out;
  }
  double optimizer_s = r.optimizer_s, eval_s = r.eval_s;
  memset(&r, 0, sizeof r);
  r.optimizer_s = optimizer_s, r.eval_s = eval_s;
  r.kind = KX_TRAIN_FINAL;
  r.step = st.step;
  r.steps = st.steps;
  r.elapsed = st.elapsed;
  r.final_val_loss = NAN;
  r.stopped_early = stopped;
  r.dp_size = kx_dp_size();
  r.dp_reduce_s = d.tree.reduce_s;
  r.dp_wait_s = d.tree.wait_s;
  r.run_tokens_per_s = run_s > 0 ? (double)((st.step - step_last) * B * T) / run_s : 0.0;
  if (o->final_eval && !stopped && (rc = eval_full(&m, data.val, data.n_val, B, T, x, y, &r.final_val_loss)))
    goto out;
  if (cb) cb(&r, user);
out:
  dp_free(&d);
  if (kx_train_log_close(&log) && !rc) rc = KX_EIO;
  kx_lock_release(&lock);
  free(x);
  free(y);
  free(text_path);
  kx_dec_free(&m);
  kx_adamw_free(&opt);
  kx_dec_data_free(&data);
  kx_dec_vocab_free(&ck_vocab);
  return rc;
}
