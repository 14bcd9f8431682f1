/* kapprox reproduce table2: the paper's central experiment at this
 * toolkit's scale.  Pre-train (or reuse) the softmax teacher, convert it to
 * every attention kind of the table, fine-tune each with the same budget
 * over several seeds, train each kind from scratch with that budget too,
 * and write the comparison as Markdown, CSV and LaTeX, with Figure 2
 * (validation loss against step) and Figure 3 (head-averaged attention
 * maps after fine-tuning).
 *
 * Every stage writes its output atomically under --outdir, and a finished
 * run leaves runs/<variant>-s<seed>/result.txt, so a killed run, started
 * again with the same command, redoes no finished variant and resumes an
 * interrupted fine-tuning exactly (kapprox train's resume); the table it
 * ends with is the uninterrupted one except for the timing columns. */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/kx_cli.h"
#include "core/kx_error.h"
#include "core/kx_seed.h"
#include "experiments/commands.h"
#include "experiments/decoder/dec_adamw.h"
#include "experiments/decoder/dec_attn_eval.h"
#include "experiments/decoder/dec_ckpt.h"
#include "experiments/decoder/dec_convert.h"
#include "experiments/decoder/dec_eval.h"
#include "experiments/decoder/dec_layers.h"
#include "experiments/decoder/dec_train.h"
#include "experiments/decoder/dec_transfer.h"

#ifndef KX_PLOTS_SRCDIR
#define KX_PLOTS_SRCDIR ""
#endif

static const char cmd[] = "reproduce table2";

#define MAX_VARIANTS 64
#define MAX_SEEDS 32
#define PATH_CAP 4096
/* Fine-tuning's peak learning rate (kapprox finetune's default); a model
 * trained from scratch gets pre-training's. */
#define FT_LR 1e-3
#define SCRATCH_LR 2e-3
#define TRANSFER_LR 1e-2
/* Batches of each validation estimate on the fine-tuning curves (Figure 2). */
#define CURVE_BATCHES 4
/* The --quick teacher. */
enum { QUICK_LAYERS = 2, QUICK_HEADS = 2, QUICK_WIDTH = 32, QUICK_CTX = 32, QUICK_BATCH = 8, QUICK_STEPS = 320 };

static void usage(FILE *out) {
  fprintf(out,
          "usage: kapprox reproduce table2 [options]\n\n"
          "Table 2 of the paper at this scale: pre-trains the softmax teacher with kapprox\n"
          "train's defaults (or reuses OUTDIR/teacher.h5), converts it to every attention\n"
          "kind, fine-tunes each with the same budget for several seeds, trains each kind\n"
          "from scratch with the same budget, and writes OUTDIR/table2.{md,csv,tex} (mean\n"
          "± standard error over seeds) and Figures 2 and 3 (PNG and SVG).  Kinds with a\n"
          "trainable feature map also run with attention transfer first (label +AT): a\n"
          "quarter of the budget's steps distils the teacher's attention, the rest\n"
          "fine-tunes.  Interrupted, the same command resumes: finished runs are kept.\n\n"
          "  --quick             tiny teacher (2 layers, width 32, context 32, 320 steps),\n"
          "                      one seed: the whole pipeline in about a minute\n"
          "  --budget F          fine-tuning steps as a fraction of the pre-training steps\n"
          "                      [1/16 = 0.0625, the paper's cost ratio]\n"
          "  --seeds N           seeds 0..N-1 per variant [3; --quick: 1]\n"
          "  --outdir DIR        where everything goes [table2, --quick: table2-quick]\n"
          "  --teacher FILE      use this softmax checkpoint as the teacher\n"
          "  --text FILE         the text (default: the KJV corpus)\n"
          "  --kinds LIST        attention kinds to convert to [every kind of the\n"
          "                      attention table but the teacher's softmax:\n"
          "                      %s]\n"
          "  --maps LIST         variants in Figure 3 besides the teacher [performer,\n"
          "                      dijiang, dijiang-code, hedgehog+AT, those that exist]\n"
          "  --scratch-seeds N   seeds of the rows trained from scratch [1; 0: no such rows]\n"
          "  --no-figures        do not run gnuplot (the figures' data are still written)\n"
          "  --quiet             no progress output\n",
          strncmp(kx_dec_attn_names(), "softmax, ", 9) ? kx_dec_attn_names() : kx_dec_attn_names() + 9);
}

typedef struct {
  char label[64]; /* "performer", "hedgehog+AT", "performer-scratch" */
  const kx_attn_kind *kind;
  int scratch, transfer;
} variant;

typedef struct {
  double val_loss, accuracy, conv_loss, kl_conv, kl_ft, wall_s;
} run_result;

typedef struct {
  /* options */
  const char *outdir, *text, *teacher_in;
  int quick, quiet, figures, scratch_rows;
  double budget;
  size_t seeds, scratch_seeds;
  char **kinds, **maps;
  size_t n_kinds, n_maps;
  /* derived */
  variant v[MAX_VARIANTS];
  size_t nv;
  uint64_t pretrain_steps, budget_steps, batch;
  size_t eval_windows, kl_windows;
  kx_decoder teacher;
  kx_dec_vocab vocab;
  kx_dec_data data;
  char *text_path;
  double teacher_elapsed;
  /* progress */
  int tty;
  size_t run_i, run_n, fresh_runs; /* fresh: runs done by this invocation */
  double t0, fresh_seconds;
  char stage[160];
} table2;

static void progress(const table2 *tb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void progress(const table2 *tb, const char *fmt, ...) {
  if (tb->quiet) return;
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  long el = (long)(kx_now_seconds() - tb->t0);
  char eta[48] = "";
  if (tb->fresh_runs && tb->run_i <= tb->run_n) { /* the mean run so far, for every run not started */
    long left = (long)(tb->fresh_seconds / (double)tb->fresh_runs * (double)(tb->run_n - tb->run_i + 1));
    snprintf(eta, sizeof eta, ", about %ld:%02ld left", left / 60, left % 60);
  }
  fprintf(stderr, "%stable2 %02ld:%02ld [%zu/%zu%s] %s%s", tb->tty ? "\r\033[K" : "", el / 60, el % 60, tb->run_i,
          tb->run_n, eta, msg, tb->tty ? "" : "\n");
  fflush(stderr);
}

static void progress_done(const table2 *tb) {
  if (!tb->quiet && tb->tty) fprintf(stderr, "\n");
}

static int mkdir_p(const char *path) {
  char buf[PATH_CAP];
  if (strlen(path) >= sizeof buf) return kx_fail(KX_EINVAL, "path '%s' is too long", path);
  strcpy(buf, path);
  for (char *p = buf + 1;; p++)
    if (*p == '/' || !*p) {
      char c = *p;
      *p = '\0';
      if (mkdir(buf, 0755) && errno != EEXIST)
        return kx_fail(KX_EIO, "cannot create directory '%s': %s", buf, strerror(errno));
      if (!(*p = c)) break;
    }
  return 0;
}

static int exists(const char *path) { return access(path, F_OK) == 0; }

/* ---------- the teacher ---------- */

static void teacher_progress(const kx_train_report *r, void *user) {
  table2 *tb = user;
  if (r->kind == KX_TRAIN_STEP && (tb->tty || !isnan(r->val_loss)))
    progress(tb, "teacher: pre-training step %llu/%llu, loss %.4f", (unsigned long long)r->step,
             (unsigned long long)r->steps, r->train_loss);
}

/* Trains OUTDIR/teacher.h5 (resuming a partial one) unless it is complete
 * or --teacher gives one; then loads it and the text. */
static int prepare_teacher(table2 *tb) {
  char path[PATH_CAP];
  snprintf(path, sizeof path, "%s/teacher.h5", tb->outdir);
  const char *use = tb->teacher_in ? tb->teacher_in : path;
  kx_dec_train_state st;
  kx_adamw opt = {0};
  int rc = 0;
  if (!tb->teacher_in) {
    int complete = 0;
    if (exists(path)) {
      if ((rc = kx_dec_ckpt_load(path, &tb->teacher, &tb->vocab, &opt, &st))) return rc;
      complete = st.step >= st.steps;
      kx_dec_free(&tb->teacher);
      kx_dec_vocab_free(&tb->vocab);
      kx_adamw_free(&opt);
    }
    if (!complete) {
      kx_dec_train_opts o;
      kx_dec_train_opts_init(&o);
      o.text = tb->text;
      o.out = path;
      o.resume = exists(path) ? path : NULL;
      if (tb->quick && !o.resume) {
        o.layers = QUICK_LAYERS, o.heads = QUICK_HEADS, o.width = QUICK_WIDTH, o.ctx = QUICK_CTX;
        o.batch = QUICK_BATCH, o.steps = QUICK_STEPS;
      }
      o.save_every = tb->quick ? 80 : 250;
      o.final_eval = 0;
      progress(tb, "teacher: pre-training %s", o.resume ? "(resumed)" : "");
      if ((rc = kx_dec_train(&o, teacher_progress, tb))) return kx_fail_context(rc, "pre-training the teacher: ");
    }
  }
  rc = kx_dec_ckpt_load(use, &tb->teacher, &tb->vocab, &opt, &st);
  if (rc == 0) {
    tb->pretrain_steps = st.steps;
    tb->batch = st.batch;
    tb->teacher_elapsed = st.elapsed;
    kx_adamw_free(&opt);
  } else if (tb->teacher_in) { /* a weights-only teacher: train's defaults */
    if ((rc = kx_dec_ckpt_load(use, &tb->teacher, &tb->vocab, NULL, NULL))) return rc;
    kx_error_clear();
    tb->pretrain_steps = 2500;
    tb->batch = 16;
    tb->teacher_elapsed = NAN;
  } else {
    return rc;
  }
  const kx_dec_config *tc = &tb->teacher.cfg;
  kx_dec_config want;
  kx_dec_config_default(&want);
  if (tb->quick) want.layers = QUICK_LAYERS, want.heads = QUICK_HEADS, want.width = QUICK_WIDTH, want.ctx = QUICK_CTX;
  if (!tb->teacher_in &&
      (tc->layers != want.layers || tc->heads != want.heads || tc->width != want.width || tc->ctx != want.ctx))
    return kx_fail(KX_EINVAL,
                   "%s (%zu layers, width %zu, context %zu) is not the %s teacher; use another --outdir for a "
                   "%s run, or --teacher to choose a teacher",
                   use, tc->layers, tc->width, tc->ctx, tb->quick ? "--quick" : "default", tb->quick ? "--quick" : "full");
  if (strcmp(tb->teacher.cfg.attn_kind, "softmax"))
    return kx_fail(KX_EINVAL, "the teacher '%s' has attention '%s'; Table 2 converts a softmax model", use,
                   tb->teacher.cfg.attn_kind);
  int generated = 0;
  if (tb->text) tb->text_path = strdup(tb->text);
  rc = tb->text ? (tb->text_path ? 0 : KX_ENOMEM) : kx_dec_default_corpus(&tb->text_path, &generated);
  if (!rc) rc = kx_dec_data_load(tb->text_path, &tb->vocab, &tb->data);
  if (!rc && tb->data.n_val < tb->teacher.cfg.ctx + 2)
    rc = kx_fail(KX_EINVAL, "the validation text is shorter than the teacher's context");
  return rc;
}

/* ---------- variants ---------- */

static int listed(char **list, size_t n, const char *s) {
  for (size_t i = 0; i < n; i++)
    if (!strcmp(list[i], s)) return 1;
  return 0;
}

static int add_variant(table2 *tb, const kx_attn_kind *k, int scratch, int transfer) {
  if (tb->nv == MAX_VARIANTS) return kx_fail(KX_EINVAL, "more than %d variants", MAX_VARIANTS);
  variant *v = &tb->v[tb->nv++];
  v->kind = k;
  v->scratch = scratch;
  v->transfer = transfer;
  snprintf(v->label, sizeof v->label, "%s%s", k->name, scratch ? "-scratch" : transfer ? "+AT" : "");
  return 0;
}

/* The list comes from the attention table: every kind (or --kinds), each
 * converted; with a feature map also converted + attention transfer; then
 * every kind (softmax too) from scratch. */
static int make_variants(table2 *tb) {
  char **all = NULL;
  size_t n = 0;
  int rc = kx_split_list(kx_dec_attn_names(), "attention kinds", &all, &n);
  for (size_t i = 0; !rc && i < n; i++) {
    char *name = all[i] + strspn(all[i], " ");
    const kx_attn_kind *k = kx_dec_attn_find(name);
    if (!k || !strcmp(name, "softmax") || (tb->n_kinds && !listed(tb->kinds, tb->n_kinds, name))) continue;
    rc = add_variant(tb, k, 0, 0);
    if (!rc && k->transfer_tensors && k->transfer_tensors[0]) rc = add_variant(tb, k, 0, 1);
  }
  size_t converted = tb->nv;
  if (tb->scratch_rows) {
    if (!rc) rc = add_variant(tb, kx_dec_attn_find("softmax"), 1, 0);
    for (size_t i = 0; !rc && i < converted; i++)
      if (!tb->v[i].transfer) rc = add_variant(tb, tb->v[i].kind, 1, 0);
  }
  kx_free_strings(all, n);
  for (size_t i = 0; !rc && i < tb->n_kinds; i++)
    if (!kx_dec_attn_find(tb->kinds[i]) || !strcmp(tb->kinds[i], "softmax"))
      rc = kx_fail(KX_EINVAL, "--kinds: '%s' is not a kind to convert to (known: %s; softmax is the teacher)",
                   tb->kinds[i], kx_dec_attn_names());
  if (!rc && converted == 0) rc = kx_fail(KX_EINVAL, "no attention kind to convert to");
  return rc;
}

/* runs/b<budget steps>/<variant>-s<seed>: another --budget makes new runs
 * instead of reusing finished ones of a different budget. */
static void run_dir(const table2 *tb, const char *label, uint64_t seed, char *out, size_t cap) {
  snprintf(out, cap, "%s/runs/b%llu/%s-s%llu", tb->outdir, (unsigned long long)tb->budget_steps, label,
           (unsigned long long)seed);
}

static size_t seeds_of(const table2 *tb, const variant *v) { return v->scratch ? tb->scratch_seeds : tb->seeds; }

/* Steps of attention transfer and of fine-tuning of a variant: together the budget. */
static uint64_t transfer_steps(const table2 *tb, const variant *v) {
  return v->transfer ? (tb->budget_steps + 3) / 4 : 0;
}
static uint64_t train_steps(const table2 *tb, const variant *v) {
  uint64_t s = tb->budget_steps - transfer_steps(tb, v);
  return s ? s : 1;
}

/* ---------- one run ---------- */

static int write_text(const char *path, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int write_text(const char *path, const char *fmt, ...) {
  kx_atomic_file f;
  int rc = kx_atomic_open(&f, path);
  if (rc) return rc;
  va_list ap;
  va_start(ap, fmt);
  vfprintf(f.fp, fmt, ap);
  va_end(ap);
  if (ferror(f.fp)) {
    kx_atomic_abort(&f);
    return kx_fail(KX_EIO, "writing '%s' failed", path);
  }
  return kx_atomic_commit(&f);
}

static int read_result(const char *path, run_result *r) {
  FILE *fp = fopen(path, "r");
  if (!fp) return -1;
  char key[32];
  int n = fscanf(fp, "%31s %lf %lf %lf %lf %lf %lf", key, &r->val_loss, &r->accuracy, &r->conv_loss, &r->kl_conv,
                 &r->kl_ft, &r->wall_s);
  fclose(fp);
  return n == 7 && !strcmp(key, "result") ? 0 : -1;
}

typedef struct {
  table2 *tb;
  const variant *v;
  uint64_t seed, offset; /* offset: transfer steps before the fine-tuning's step 0 */
  char curve[PATH_CAP + 32];
  double elapsed;
} run_ctx;

/* Keeps the curve rows of steps <= `upto` (a resumed run continues after them). */
static int truncate_curve(const char *path, uint64_t upto) {
  FILE *fp = fopen(path, "r");
  if (!fp) return 0;
  kx_atomic_file f;
  int rc = kx_atomic_open(&f, path);
  if (!rc) {
    unsigned long long s;
    double l;
    while (fscanf(fp, "%llu %lf", &s, &l) == 2)
      if (s <= upto) fprintf(f.fp, "%llu %.9g\n", s, l);
    rc = kx_atomic_commit(&f);
  }
  fclose(fp);
  return rc;
}

static void run_report(const kx_train_report *r, void *user) {
  run_ctx *c = user;
  if (r->kind == KX_TRAIN_START) {
    truncate_curve(c->curve, r->start_step + c->offset);
    return;
  }
  if (r->kind == KX_TRAIN_FINAL) {
    c->elapsed = r->elapsed;
    return;
  }
  if (!isnan(r->val_loss)) {
    FILE *fp = fopen(c->curve, "a");
    if (fp) {
      fprintf(fp, "%llu %.9g\n", (unsigned long long)(r->step + c->offset), r->val_loss);
      fclose(fp);
    }
  }
  if (c->tb->tty || !isnan(r->val_loss))
    progress(c->tb, "%s seed %llu: %s step %llu/%llu, loss %.4f", c->v->label, (unsigned long long)c->seed,
             c->v->scratch ? "training" : "fine-tuning", (unsigned long long)r->step, (unsigned long long)r->steps,
             r->train_loss);
}

static void transfer_report(uint64_t step, uint64_t steps, double loss, void *user) {
  run_ctx *c = user;
  if (c->tb->tty || step == steps)
    progress(c->tb, "%s seed %llu: attention transfer step %llu/%llu, KL %.4f", c->v->label,
             (unsigned long long)c->seed, (unsigned long long)step, (unsigned long long)steps, loss);
}

/* Validation loss/accuracy and attention KL of a model (KL NaN when its
 * kind does not expose attention weights). */
static int score(table2 *tb, kx_decoder *m, double *loss, double *acc, double *kl) {
  kx_dec_eval_result r;
  int rc = kx_dec_evaluate(m, tb->data.val, tb->data.n_val, tb->eval_windows, tb->batch, &r);
  if (rc) return rc;
  *loss = r.loss;
  if (acc) *acc = r.accuracy;
  *kl = NAN;
  if (m->attn->attn_weights) rc = kx_dec_attn_kl(&tb->teacher, m, tb->data.val, tb->data.n_val, tb->kl_windows, kl);
  return rc;
}

/* Head-averaged attention map of the last block on the first validation
 * window, as a gnuplot matrix file. */
static int write_map(table2 *tb, kx_decoder *m, const char *path) {
  size_t T = m->cfg.ctx;
  float *map = kx_malloc(T * T * sizeof(float));
  if (!map) return KX_ENOMEM;
  int rc = kx_dec_attn_map(m, tb->data.val, T, m->cfg.layers - 1, map);
  kx_atomic_file f;
  if (!rc) rc = kx_atomic_open(&f, path);
  if (!rc) {
    for (size_t i = 0; i < T; i++)
      for (size_t j = 0; j < T; j++) fprintf(f.fp, "%.6g%c", map[i * T + j], j + 1 < T ? ' ' : '\n');
    rc = kx_atomic_commit(&f);
  }
  free(map);
  return rc;
}

static int run_one(table2 *tb, const variant *v, uint64_t seed) {
  char dir[PATH_CAP], result[PATH_CAP + 32], student[PATH_CAP + 32], conv[PATH_CAP + 32], ft[PATH_CAP + 32],
      map[PATH_CAP + 32];
  run_dir(tb, v->label, seed, dir, sizeof dir);
  snprintf(result, sizeof result, "%s/result.txt", dir);
  snprintf(student, sizeof student, "%s/student.h5", dir);
  snprintf(conv, sizeof conv, "%s/convert.txt", dir);
  snprintf(ft, sizeof ft, "%s/ft.h5", dir);
  snprintf(map, sizeof map, "%s/map.txt", dir);
  run_result res;
  if (read_result(result, &res) == 0) {
    progress(tb, "%s seed %llu: finished earlier, kept", v->label, (unsigned long long)seed);
    return 0;
  }
  int rc = mkdir_p(dir);
  if (rc) return rc;
  run_ctx c = {.tb = tb, .v = v, .seed = seed, .offset = transfer_steps(tb, v)};
  snprintf(c.curve, sizeof c.curve, "%s/curve.txt", dir);
  res.conv_loss = res.kl_conv = NAN;
  double conv_s = 0.0;
  kx_decoder m;
  kx_dec_vocab vocab;
  if (!v->scratch) {
    /* conversion (and transfer): redone unless both its outputs exist */
    FILE *fp = exists(student) ? fopen(conv, "r") : NULL;
    int have = fp && fscanf(fp, "%lf", &conv_s) == 1;
    if (fp) fclose(fp);
    if (have) {
      rc = kx_dec_ckpt_load(student, &m, &vocab, NULL, NULL);
      kx_dec_vocab_free(&vocab);
    } else {
      progress(tb, "%s seed %llu: converting", v->label, (unsigned long long)seed);
      double t = kx_now_seconds();
      rc = kx_dec_convert(&tb->teacher, v->kind->name, kx_seed_derive(seed, 11), &m);
      kx_transfer_opts o = {.steps = c.offset, .batch = tb->batch / 2 ? tb->batch / 2 : 1, .seed = seed,
                            .lr = TRANSFER_LR};
      if (!rc && v->transfer) rc = kx_dec_transfer(&tb->teacher, &m, &tb->data, &o, transfer_report, &c);
      conv_s = kx_now_seconds() - t;
      if (!rc) rc = kx_dec_ckpt_save(student, &m, &tb->vocab, NULL, NULL);
      if (!rc) rc = write_text(conv, "%.6f\n", conv_s);
      if (rc) kx_dec_free(&m);
    }
    if (rc) return rc;
    progress(tb, "%s seed %llu: scoring the converted model", v->label, (unsigned long long)seed);
    rc = score(tb, &m, &res.conv_loss, NULL, &res.kl_conv);
    kx_dec_free(&m);
    if (rc) return rc;
  }
  kx_dec_train_opts o;
  kx_dec_train_opts_init(&o);
  o.text = tb->text;
  o.out = ft;
  if (exists(ft)) {
    o.resume = ft;
  } else {
    o.steps = train_steps(tb, v);
    o.batch = tb->batch;
    o.seed = seed, o.seed_given = 1;
    o.lr = v->scratch ? SCRATCH_LR : FT_LR;
    if (v->scratch) {
      const kx_dec_config *t = &tb->teacher.cfg;
      o.ctx = t->ctx, o.layers = t->layers, o.heads = t->heads, o.width = t->width, o.rotary_dims = t->rotary_dims;
      snprintf(o.attn_kind, sizeof o.attn_kind, "%s", v->kind->name);
    } else {
      o.init_from = student;
    }
    remove(c.curve);
  }
  /* 8 points per curve; a checkpoint every 2 (a resumed run drops and
   * recomputes the curve's points after its checkpoint) */
  uint64_t every = train_steps(tb, v) / 8 ? train_steps(tb, v) / 8 : 1;
  o.eval_every = every;
  o.eval_batches = CURVE_BATCHES;
  o.save_every = 2 * every;
  o.final_eval = 0;
  if ((rc = kx_dec_train(&o, run_report, &c))) return rc;
  progress(tb, "%s seed %llu: scoring", v->label, (unsigned long long)seed);
  if ((rc = kx_dec_ckpt_load(ft, &m, &vocab, NULL, NULL))) return rc;
  kx_dec_vocab_free(&vocab);
  rc = score(tb, &m, &res.val_loss, &res.accuracy, &res.kl_ft);
  if (!rc && m.attn->attn_weights && seed == 0) rc = write_map(tb, &m, map);
  kx_dec_free(&m);
  res.wall_s = conv_s + c.elapsed;
  if (!rc)
    rc = write_text(result, "result %.17g %.17g %.17g %.17g %.17g %.17g\n", res.val_loss, res.accuracy, res.conv_loss,
                    res.kl_conv, res.kl_ft, res.wall_s);
  if (!rc) {
    remove(ft);
    remove(student);
  }
  return rc;
}

/* ---------- throughput ---------- */

/* Training tokens per second of `kind` at context T with the teacher's
 * sizes: forward, backward and AdamW on about as many tokens per step as
 * pre-training (batch x context), one untimed warm-up step, then the
 * median of 5 steps (--quick: 3). */
static int throughput(table2 *tb, const kx_attn_kind *kind, size_t T, double *tok_s) {
  kx_dec_config cfg = tb->teacher.cfg;
  cfg.ctx = T;
  snprintf(cfg.attn_kind, sizeof cfg.attn_kind, "%s", kind->name);
  size_t B = tb->batch * tb->teacher.cfg.ctx / T;
  if (B == 0) B = 1;
  int steps = tb->quick ? 3 : 5;
  kx_decoder m;
  kx_adamw opt;
  int rc = kx_dec_create(&m, &cfg);
  if (rc) return rc;
  int *x = kx_malloc(B * T * sizeof(int)), *y = kx_malloc(B * T * sizeof(int));
  rc = x && y ? kx_dec_init_params(&m, 1) : KX_ENOMEM;
  if (!rc) rc = kx_adamw_create(&opt, m.tab.total, 0.9, 0.95, 1e-8, 0.1);
  if (rc) goto out;
  if (tb->data.n_train < T + 2) {
    rc = kx_fail(KX_EINVAL, "the training text is shorter than context %zu", T);
    goto out_opt;
  }
  /* the median step: robust to a step slowed down by other processes */
  double dt[8];
  for (int s = 0; !rc && s <= steps; s++) {
    double loss, t0 = kx_now_seconds();
    kx_dec_batch(tb->data.train, tb->data.n_train, B, T, 5, (uint64_t)s, x, y);
    rc = kx_dec_forward(&m, x, y, B, T, &loss);
    if (!rc) rc = kx_dec_backward(&m);
    if (!rc) kx_adamw_step(&opt, &m.tab, m.params, m.grads, 1e-4);
    if (s) {
      int k = s - 1;
      for (dt[k] = kx_now_seconds() - t0; k > 0 && dt[k - 1] > dt[k]; k--) {
        double t = dt[k];
        dt[k] = dt[k - 1], dt[k - 1] = t;
      }
    }
  }
  if (!rc) *tok_s = (double)(B * T) / dt[steps / 2];
out_opt:
  kx_adamw_free(&opt);
out:
  free(x);
  free(y);
  kx_dec_free(&m);
  return rc;
}

/* Tokens/s of a kind at contexts 128 and 1024, measured once per output
 * directory (throughput/<kind>.txt). */
static int kind_throughput(table2 *tb, const kx_attn_kind *kind, double tok[2]) {
  char path[PATH_CAP];
  snprintf(path, sizeof path, "%s/throughput", tb->outdir);
  int rc = mkdir_p(path);
  if (rc) return rc;
  snprintf(path, sizeof path, "%s/throughput/%s.txt", tb->outdir, kind->name);
  FILE *fp = fopen(path, "r");
  int have = fp && fscanf(fp, "%lf %lf", &tok[0], &tok[1]) == 2;
  if (fp) fclose(fp);
  if (have) return 0;
  static const size_t ctx[2] = {128, 1024};
  for (int i = 0; !rc && i < 2; i++) {
    progress(tb, "%s: training throughput at context %zu", kind->name, ctx[i]);
    rc = throughput(tb, kind, ctx[i], &tok[i]);
  }
  return rc ? rc : write_text(path, "%.6g %.6g\n", tok[0], tok[1]);
}

/* ---------- the table ---------- */

typedef struct {
  char label[64], init[32];
  size_t n;
  double mean[6], se[6]; /* run_result fields in order */
  double tok[2];
} row;

static void summarise(const run_result *r, size_t n, row *out) {
  for (int f = 0; f < 6; f++) {
    double s = 0.0, ss = 0.0;
    for (size_t i = 0; i < n; i++) s += ((const double *)&r[i])[f];
    double mean = s / (double)n;
    for (size_t i = 0; i < n; i++) {
      double d = ((const double *)&r[i])[f] - mean;
      ss += d * d;
    }
    out->mean[f] = mean;
    out->se[f] = n > 1 ? sqrt(ss / (double)(n - 1) / (double)n) : NAN;
  }
  out->n = n;
}

enum { F_LOSS, F_ACC, F_CONV, F_KLC, F_KLF, F_WALL };

typedef struct {
  const char *head_md, *head_tex, *csv;
  int field;    /* run_result field, or -1 gap, -2 bits, -3/-4 tokens/s 128/1024 */
  int digits;
} column;

static const column columns[] = {
    {"val. loss (nats)", "loss (nats)", "val_loss", F_LOSS, 4},
    {"bits/char", "bits/char", "val_bits", -2, 4},
    {"accuracy", "accuracy", "accuracy", F_ACC, 4},
    {"gap to teacher", "gap", "gap", -1, 4},
    {"loss after conversion", "loss conv.", "conv_loss", F_CONV, 4},
    {"attn. KL after conversion", "KL conv.", "kl_conv", F_KLC, 3},
    {"attn. KL after fine-tuning", "KL ft.", "kl_ft", F_KLF, 3},
    {"wall time (s)", "time (s)", "wall_s", F_WALL, 1},
    {"tokens/s ctx 128", "tok/s 128", "tok_s_128", -3, 0},
    {"tokens/s ctx 1024", "tok/s 1024", "tok_s_1024", -4, 0},
};
#define N_COLUMNS (sizeof columns / sizeof columns[0])

static void cell_value(const row *r, const column *c, double teacher_loss, double *mean, double *se) {
  switch (c->field) {
    case -1: *mean = r->mean[F_LOSS] - teacher_loss, *se = r->se[F_LOSS]; break;
    case -2: *mean = r->mean[F_LOSS] / log(2.0), *se = r->se[F_LOSS] / log(2.0); break;
    case -3: *mean = r->tok[0], *se = NAN; break;
    case -4: *mean = r->tok[1], *se = NAN; break;
    default: *mean = r->mean[c->field], *se = r->se[c->field];
  }
}

static int write_tables(table2 *tb, const row *rows, size_t nr) {
  char path[PATH_CAP];
  double tl = rows[0].mean[F_LOSS];
  const char *ext[3] = {"md", "csv", "tex"};
  int rc = 0;
  for (int k = 0; k < 3 && !rc; k++) {
    snprintf(path, sizeof path, "%s/table2.%s", tb->outdir, ext[k]);
    kx_atomic_file f;
    if ((rc = kx_atomic_open(&f, path))) break;
    FILE *fp = f.fp;
    const kx_dec_config *c = &tb->teacher.cfg;
    char setup[512];
    snprintf(setup, sizeof setup,
             "teacher: %zu layers, %zu heads, width %zu, context %zu, %llu pre-training steps; budget %llu steps "
             "(%.4g of pre-training); %zu seed%s (scratch rows: %zu); validation: %zu windows, attention KL: %zu windows",
             c->layers, c->heads, c->width, c->ctx, (unsigned long long)tb->pretrain_steps,
             (unsigned long long)tb->budget_steps, tb->budget, tb->seeds, tb->seeds > 1 ? "s" : "", tb->scratch_seeds, tb->eval_windows,
             tb->kl_windows);
    if (k == 0) {
      fprintf(fp, "Table 2 (kapprox reproduce table2): mean ± standard error over seeds; %s\n\n| model | init", setup);
      for (size_t j = 0; j < N_COLUMNS; j++) fprintf(fp, " | %s", columns[j].head_md);
      fprintf(fp, " |\n|---|---");
      for (size_t j = 0; j < N_COLUMNS; j++) fprintf(fp, "|---:");
      fprintf(fp, "|\n");
    } else if (k == 1) {
      fprintf(fp, "model,init,seeds");
      for (size_t j = 0; j < N_COLUMNS; j++)
        fprintf(fp, columns[j].field <= -3 ? ",%s" : ",%s,%s_se", columns[j].csv, columns[j].csv);
      fprintf(fp, "\n");
    } else {
      fprintf(fp, "%% kapprox reproduce table2: %s\n\\begin{table*}[t]\n\\centering\n\\small\n", setup);
      fprintf(fp, "\\caption{Conversion of a softmax decoder to linear attention: mean $\\pm$ standard error over "
                  "%zu seed(s), rows from scratch %zu.}\n\\begin{tabular}{ll", tb->seeds, tb->scratch_seeds);
      for (size_t j = 0; j < N_COLUMNS; j++) fputc('r', fp);
      fprintf(fp, "}\n\\toprule\nmodel & init");
      for (size_t j = 0; j < N_COLUMNS; j++) fprintf(fp, " & %s", columns[j].head_tex);
      fprintf(fp, " \\\\\n\\midrule\n");
    }
    for (size_t i = 0; i < nr; i++) {
      const row *r = &rows[i];
      if (k == 1) fprintf(fp, "%s,%s,%zu", r->label, r->init, r->n);
      else if (k == 0) fprintf(fp, "| %s | %s", r->label, r->init);
      else {
        for (const char *s = r->label; *s; s++) fprintf(fp, *s == '_' ? "\\_" : "%c", *s);
        fprintf(fp, " & %s", r->init);
      }
      for (size_t j = 0; j < N_COLUMNS; j++) {
        double mean, se;
        cell_value(r, &columns[j], tl, &mean, &se);
        int dg = columns[j].digits;
        if (k == 1) {
          if (columns[j].field <= -3) fprintf(fp, ",%.6g", mean);
          else fprintf(fp, ",%.9g,%.9g", mean, se);
          continue;
        }
        char buf[96];
        if (isnan(mean)) snprintf(buf, sizeof buf, "n/a");
        else if (isnan(se)) snprintf(buf, sizeof buf, k == 2 ? "$%.*f$" : "%.*f", dg, mean);
        else snprintf(buf, sizeof buf, k == 2 ? "$%.*f \\pm %.*f$" : "%.*f ± %.*f", dg, mean, dg, se);
        fprintf(fp, k == 2 ? " & %s" : " | %s", buf);
      }
      fprintf(fp, k == 1 ? "\n" : k == 2 ? " \\\\\n" : " |\n");
      if (k == 2 && i == 0) fprintf(fp, "\\midrule\n");
    }
    if (k == 2) fprintf(fp, "\\bottomrule\n\\end{tabular}\n\\end{table*}\n");
    if (k == 0)
      fprintf(fp, "\nteacher: its own pre-training time and throughput; +AT: a quarter of the budget is attention "
                  "transfer; scratch: random initialisation, the same budget; n/a: not defined for the row or "
                  "the kind exposes no attention weights.\n");
    if (ferror(fp)) {
      kx_atomic_abort(&f);
      rc = kx_fail(KX_EIO, "writing '%s' failed", path);
    } else {
      rc = kx_atomic_commit(&f);
    }
  }
  return rc;
}

/* ---------- figures ---------- */

static int find_scripts(char *out, size_t cap) {
  const char *c[3] = {getenv("KAPPROX_PLOTS"), KX_PLOTS_SRCDIR, KX_DATADIR "/plots"};
  for (int i = 0; i < 3; i++) {
    char probe[PATH_CAP];
    if (!c[i] || !*c[i]) continue;
    snprintf(probe, sizeof probe, "%s/table2_curves.gp", c[i]);
    if (!access(probe, R_OK)) return snprintf(out, cap, "%s", c[i]) < 0;
  }
  return kx_fail(KX_EIO, "cannot find plots/table2_curves.gp (set KAPPROX_PLOTS to the plots folder)");
}

/* gnuplot -e "<variables>" SCRIPT, for PNG and SVG. */
static int gnuplot(const char *scripts, const char *script, const char *datadir, const char *out_base) {
  static const char *fmt[2] = {"png", "svg"};
  for (int f = 0; f < 2; f++) {
    char vars[3 * PATH_CAP + 256], sc[PATH_CAP + 64];
    snprintf(sc, sizeof sc, "%s/%s", scripts, script);
    snprintf(vars, sizeof vars, "datadir='%s'; scriptdir='%s'; out='%s.%s'; fmt='%s'", datadir, scripts, out_base,
             fmt[f], fmt[f]);
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) return kx_fail(KX_EIO, "cannot start gnuplot: %s", strerror(errno));
    if (pid == 0) {
      execlp("gnuplot", "gnuplot", "-e", vars, sc, (char *)NULL);
      _exit(127);
    }
    int st;
    while (waitpid(pid, &st, 0) < 0)
      if (errno != EINTR) return kx_fail(KX_EIO, "waiting for gnuplot: %s", strerror(errno));
    if (!WIFEXITED(st) || WEXITSTATUS(st))
      return kx_fail(KX_EIO, "gnuplot failed on %s (is gnuplot installed? --no-figures skips the figures)", script);
  }
  return 0;
}

/* Mean curve over seeds of variant v into `fp` ("step loss" lines). */
static int mean_curve(table2 *tb, const variant *v, FILE *fp) {
  unsigned long long steps[512];
  double sum[512];
  size_t n = 0, seeds = 0;
  for (uint64_t s = 0; s < tb->seeds; s++) {
    char path[PATH_CAP];
    run_dir(tb, v->label, s, path, sizeof path - 16);
    strcat(path, "/curve.txt");
    FILE *in = fopen(path, "r");
    if (!in) continue;
    unsigned long long st;
    double l;
    size_t k = 0;
    while (k < 512 && fscanf(in, "%llu %lf", &st, &l) == 2) {
      if (seeds == 0) steps[n++] = st, sum[k] = 0.0;
      if (k < n && steps[k] == st) sum[k] += l;
      k++;
    }
    fclose(in);
    seeds++;
  }
  for (size_t k = 0; k < n && seeds; k++) fprintf(fp, "%llu %.9g\n", steps[k], sum[k] / (double)seeds);
  return (int)n;
}

static int figures(table2 *tb, double teacher_curve_loss) {
  char datadir[PATH_CAP], path[PATH_CAP + 64], scripts[PATH_CAP];
  snprintf(datadir, sizeof datadir, "%s/figdata", tb->outdir);
  int rc = mkdir_p(datadir);
  if (rc) return rc;
  /* Figure 2: converted variants' mean curves, the teacher as a line */
  kx_atomic_file f;
  snprintf(path, sizeof path, "%s/fig2.vars", datadir);
  if ((rc = kx_atomic_open(&f, path))) return rc;
  size_t nc = 0;
  for (size_t i = 0; i < tb->nv; i++) nc += !tb->v[i].scratch;
  fprintf(f.fp, "# written by kapprox reproduce table2; read by table2_curves.gp\nn = %zu\nteacher = %.9g\n"
                "budget = %llu\narray label[%zu]\n",
          nc, teacher_curve_loss, (unsigned long long)tb->budget_steps, nc ? nc : 1);
  size_t k = 0;
  for (size_t i = 0; i < tb->nv && !rc; i++) {
    if (tb->v[i].scratch) continue;
    k++;
    fprintf(f.fp, "label[%zu] = \"%s\"\n", k, tb->v[i].label);
    kx_atomic_file c;
    snprintf(path, sizeof path, "%s/curve-%zu.txt", datadir, k);
    if ((rc = kx_atomic_open(&c, path))) break;
    mean_curve(tb, &tb->v[i], c.fp);
    rc = kx_atomic_commit(&c);
  }
  if (rc) {
    kx_atomic_abort(&f);
    return rc;
  }
  if ((rc = kx_atomic_commit(&f))) return rc;
  /* Figure 3: teacher and the chosen variants' seed-0 maps */
  snprintf(path, sizeof path, "%s/map-0.txt", datadir);
  if ((rc = write_map(tb, &tb->teacher, path))) return rc;
  snprintf(path, sizeof path, "%s/fig3.vars", datadir);
  if ((rc = kx_atomic_open(&f, path))) return rc;
  size_t nm = 0;
  char labels[16][64];
  for (size_t j = 0; j < tb->n_maps && nm < 16; j++) {
    char src[PATH_CAP], dst[PATH_CAP + 64];
    run_dir(tb, tb->maps[j], 0, src, sizeof src - 16);
    strcat(src, "/map.txt");
    FILE *in = fopen(src, "r");
    if (!in) continue;
    snprintf(dst, sizeof dst, "%s/map-%zu.txt", datadir, nm + 1);
    kx_atomic_file o;
    if ((rc = kx_atomic_open(&o, dst))) {
      fclose(in);
      break;
    }
    char buf[65536];
    size_t got;
    while ((got = fread(buf, 1, sizeof buf, in)) > 0) fwrite(buf, 1, got, o.fp);
    fclose(in);
    if ((rc = kx_atomic_commit(&o))) break;
    snprintf(labels[nm++], sizeof labels[0], "%s", tb->maps[j]);
  }
  fprintf(f.fp, "# written by kapprox reproduce table2; read by table2_maps.gp\nn = %zu\nntok = %zu\nlayer = %zu\n"
                "array label[%zu]\n",
          nm, tb->teacher.cfg.ctx, tb->teacher.cfg.layers - 1, nm ? nm : 1);
  for (size_t j = 0; j < nm; j++) fprintf(f.fp, "label[%zu] = \"%s\"\n", j + 1, labels[j]);
  if (rc) {
    kx_atomic_abort(&f);
    return rc;
  }
  if ((rc = kx_atomic_commit(&f)) || !tb->figures) return rc;
  if ((rc = find_scripts(scripts, sizeof scripts))) return rc;
  snprintf(path, sizeof path, "%s/fig2_curves", tb->outdir);
  if ((rc = gnuplot(scripts, "table2_curves.gp", datadir, path))) return rc;
  snprintf(path, sizeof path, "%s/fig3_attention_maps", tb->outdir);
  return gnuplot(scripts, "table2_maps.gp", datadir, path);
}

/* ---------- driver ---------- */

static int run_all(table2 *tb) {
  int rc = mkdir_p(tb->outdir);
  if (rc) return rc;
  if ((rc = make_variants(tb)) || (rc = prepare_teacher(tb))) return rc;
  double b = floor(tb->budget * (double)tb->pretrain_steps + 0.5);
  tb->budget_steps = b < 1 ? 1 : (uint64_t)b;
  for (size_t i = 0; i < tb->nv; i++) tb->run_n += seeds_of(tb, &tb->v[i]);
  row *rows = kx_calloc(tb->nv + 1, sizeof *rows);
  run_result *res = kx_calloc(tb->seeds > tb->scratch_seeds ? tb->seeds : tb->scratch_seeds, sizeof *res);
  if (!rows || !res) rc = KX_ENOMEM;
  /* the teacher's row */
  double tl = 0, ta = 0, tkl = 0, tcurve = 0;
  if (!rc) rc = score(tb, &tb->teacher, &tl, &ta, &tkl);
  if (!rc) {
    kx_dec_eval_result r; /* kapprox train's validation estimate: the curves' reference */
    rc = kx_dec_evaluate(&tb->teacher, tb->data.val, tb->data.n_val, CURVE_BATCHES * tb->batch, tb->batch, &r);
    tcurve = r.loss;
  }
  if (!rc) {
    run_result t = {tl, ta, NAN, NAN, tkl, tb->teacher_elapsed};
    summarise(&t, 1, &rows[0]);
    snprintf(rows[0].label, sizeof rows[0].label, "teacher (softmax)");
    snprintf(rows[0].init, sizeof rows[0].init, "pre-trained");
    rc = kind_throughput(tb, kx_dec_attn_find("softmax"), rows[0].tok);
  }
  for (size_t i = 0; !rc && i < tb->nv; i++) {
    const variant *v = &tb->v[i];
    for (uint64_t s = 0; !rc && s < seeds_of(tb, v); s++) {
      tb->run_i++;
      double t = kx_now_seconds();
      if (!(rc = run_one(tb, v, s))) {
        if (kx_now_seconds() - t > 1.0) tb->fresh_runs++, tb->fresh_seconds += kx_now_seconds() - t;
        char path[PATH_CAP];
        run_dir(tb, v->label, s, path, sizeof path - 16);
        strcat(path, "/result.txt");
        if (read_result(path, &res[s])) rc = kx_fail(KX_EIO, "cannot read '%s'", path);
      } else {
        kx_fail_context(rc, "%s, seed %llu: ", v->label, (unsigned long long)s);
      }
    }
    if (rc) break;
    row *r = &rows[i + 1];
    summarise(res, seeds_of(tb, v), r);
    snprintf(r->label, sizeof r->label, "%s", v->kind->name);
    snprintf(r->init, sizeof r->init, "%s", v->scratch ? "scratch" : v->transfer ? "converted + AT" : "converted");
    rc = kind_throughput(tb, v->kind, r->tok);
  }
  if (!rc) rc = write_tables(tb, rows, tb->nv + 1);
  if (!rc) {
    progress(tb, "figures");
    rc = figures(tb, tcurve);
  }
  if (!rc) progress(tb, "done: %s/table2.md, .csv, .tex; figures fig2_curves, fig3_attention_maps", tb->outdir);
  progress_done(tb);
  free(rows);
  free(res);
  return rc;
}

int cmd_reproduce_table2(int argc, char **argv) {
  enum { O_QUICK = 256, O_BUDGET, O_SEEDS, O_OUTDIR, O_TEACHER, O_TEXT, O_KINDS, O_MAPS, O_SCRATCH, O_NOFIG,
         O_QUIET };
  static const struct option lo[] = {
      {"quick", 0, 0, O_QUICK},   {"budget", 1, 0, O_BUDGET}, {"seeds", 1, 0, O_SEEDS},
      {"outdir", 1, 0, O_OUTDIR}, {"teacher", 1, 0, O_TEACHER}, {"text", 1, 0, O_TEXT},
      {"kinds", 1, 0, O_KINDS},   {"maps", 1, 0, O_MAPS},     {"scratch-seeds", 1, 0, O_SCRATCH},
      {"no-figures", 0, 0, O_NOFIG}, {"quiet", 0, 0, O_QUIET}, {"help", 0, 0, 'h'},
      {0, 0, 0, 0}};
  table2 *tb = kx_calloc(1, sizeof *tb);
  if (!tb) return 1;
  tb->budget = 1.0 / 16.0;
  tb->figures = tb->scratch_rows = 1;
  tb->scratch_seeds = 1;
  const char *kinds = NULL, *maps = "performer,dijiang,dijiang-code,hedgehog+AT";
  size_t seeds = 0;
  int c, rc = 0;
  optind = 1;
  opterr = 0;
  while (!rc && (c = getopt_long(argc, argv, ":h", lo, NULL)) != -1) {
    switch (c) {
      case O_QUICK: tb->quick = 1; break;
      case O_BUDGET:
        rc = kx_parse_double(optarg, "--budget", &tb->budget);
        if (!rc && !(tb->budget > 0 && tb->budget <= 100))
          rc = kx_fail(KX_EINVAL, "--budget must be > 0 (a fraction of the pre-training steps), got %s", optarg);
        break;
      case O_SEEDS: rc = kx_parse_size(optarg, "--seeds", 1, MAX_SEEDS, &seeds); break;
      case O_OUTDIR: tb->outdir = optarg; break;
      case O_TEACHER: tb->teacher_in = optarg; break;
      case O_TEXT: tb->text = optarg; break;
      case O_KINDS: kinds = optarg; break;
      case O_MAPS: maps = optarg; break;
      case O_SCRATCH:
        rc = kx_parse_size(optarg, "--scratch-seeds", 0, MAX_SEEDS, &tb->scratch_seeds);
        tb->scratch_rows = !rc && tb->scratch_seeds > 0;
        break;
      case O_NOFIG: tb->figures = 0; break;
      case O_QUIET: tb->quiet = 1; break;
      case 'h': usage(stdout); free(tb); return 0;
      case ':': rc = kx_fail(KX_EINVAL, "option %s needs a value", argv[optind - 1]); break;
      default: rc = kx_fail(KX_EINVAL, "unknown option '%s'", argv[optind - 1]);
    }
  }
  if (!rc && optind < argc) rc = kx_fail(KX_EINVAL, "unexpected argument '%s'", argv[optind]);
  if (!rc && kinds) rc = kx_split_list(kinds, "--kinds", &tb->kinds, &tb->n_kinds);
  if (!rc) rc = kx_split_list(maps, "--maps", &tb->maps, &tb->n_maps);
  if (rc) {
    kx_cli_error(cmd, "%s (see kapprox reproduce table2 --help)", kx_error_message());
    kx_free_strings(tb->kinds, tb->n_kinds);
    free(tb);
    return 2;
  }
  tb->seeds = seeds ? seeds : tb->quick ? 1 : 3;
  if (!tb->outdir) tb->outdir = tb->quick ? "table2-quick" : "table2";
  tb->eval_windows = tb->quick ? 32 : 256;
  tb->kl_windows = tb->quick ? 4 : 16;
  tb->tty = kx_stderr_is_tty();
  tb->t0 = kx_now_seconds();
  kx_dec_threads_init();
  rc = run_all(tb);
  if (rc) {
    progress_done(tb);
    kx_cli_error(cmd, "%s", kx_error_message());
  }
  kx_dec_free(&tb->teacher);
  kx_dec_vocab_free(&tb->vocab);
  kx_dec_data_free(&tb->data);
  free(tb->text_path);
  kx_free_strings(tb->kinds, tb->n_kinds);
  kx_free_strings(tb->maps, tb->n_maps);
  free(tb);
  return rc ? 1 : 0;
}
