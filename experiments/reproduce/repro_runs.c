/* Teacher, runs and progress shared by kapprox reproduce table1 and table2
 * (repro_runs.h). */
#include "experiments/reproduce/repro_runs.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/kx_cli.h"
#include "core/kx_error.h"
#include "core/kx_fs.h"
#include "core/kx_seed.h"
#include "experiments/model/dec_adamw.h"
#include "experiments/model/dec_attn_eval.h"
#include "experiments/model/dec_ckpt.h"
#include "experiments/model/dec_convert.h"
#include "experiments/model/dec_dijiang_form.h"
#include "experiments/model/dec_eval.h"
#include "experiments/model/dec_train.h"
#include "experiments/model/dec_transfer.h"

/* Fine-tuning's peak learning rate (kapprox finetune's default); a model
 * trained from scratch gets pre-training's. */
#define FT_LR 1e-3
#define SCRATCH_LR 2e-3
#define TRANSFER_LR 1e-2
/* Batches of each validation estimate on the fine-tuning curves. */
#define CURVE_BATCHES 4
#define PATH_CAP KX_REPRO_PATH_CAP

/* ---------- progress ---------- */

void kx_repro_progress_init(kx_repro_progress *pg, const char *name, int quiet) {
  memset(pg, 0, sizeof *pg);
  pg->name = name;
  pg->quiet = quiet;
  pg->tty = kx_stderr_is_tty();
  pg->t0 = kx_now_seconds();
}

void kx_repro_say(const kx_repro_progress *pg, const char *fmt, ...) {
  if (pg->quiet) return;
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  long el = (long)(kx_now_seconds() - pg->t0);
  char count[96] = "";
  if (pg->job) {
    int n = snprintf(count, sizeof count, "[%zu/%zu", pg->job, pg->jobs);
    if (!pg->no_eta && pg->fresh_units > 0 && pg->units_total > pg->units_done) {
      long left = (long)(pg->fresh_seconds / pg->fresh_units * (pg->units_total - pg->units_done));
      n += snprintf(count + n, sizeof count - (size_t)n, ", about %ld:%02ld left", left / 60, left % 60);
    }
    snprintf(count + n, sizeof count - (size_t)n, "] ");
  }
  fprintf(stderr, "%s%s %02ld:%02ld %s%s%s", pg->tty ? "\r\033[K" : "", pg->name, el / 60, el % 60, count, msg,
          pg->tty ? "" : "\n");
  fflush(stderr);
}

void kx_repro_say_done(const kx_repro_progress *pg) {
  if (!pg->quiet && pg->tty) fprintf(stderr, "\n");
}

void kx_repro_job_begin(kx_repro_progress *pg, double units) {
  pg->job++;
  pg->job_units = units;
  pg->job_t0 = kx_now_seconds();
}

void kx_repro_job_end(kx_repro_progress *pg, int fresh) {
  if (fresh) pg->fresh_units += pg->job_units, pg->fresh_seconds += kx_now_seconds() - pg->job_t0;
  pg->units_done += pg->job_units;
}

void kx_repro_progress_restart(kx_repro_progress *pg) {
  pg->job = 0;
  pg->no_eta = 1;
  pg->units_done = pg->fresh_units = pg->fresh_seconds = 0.0;
}

/* ---------- files ---------- */

/* Length of the shortest prefix of `path` (cut at a '/') that does not
 * exist: what kx_mkdir_p creates; 0 if the whole path exists. */
static size_t missing_from(const char *path) {
  char buf[PATH_CAP];
  size_t n = strlen(path);
  if (n >= sizeof buf) return 0;
  for (size_t i = 1; i <= n; i++) {
    if (i < n && path[i] != '/') continue;
    memcpy(buf, path, i);
    buf[i] = '\0';
    struct stat st;
    if (stat(buf, &st) != 0) return i;
  }
  return 0;
}

/* Removes `dir` if it holds nothing but empty folders (never a file). */
static int remove_if_empty(const char *dir) {
  DIR *d = opendir(dir);
  if (!d) return -1;
  struct dirent *e;
  while ((e = readdir(d))) {
    if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
    char sub[PATH_CAP];
    struct stat st;
    if (snprintf(sub, sizeof sub, "%s/%s", dir, e->d_name) >= (int)sizeof sub || lstat(sub, &st) != 0 ||
        !S_ISDIR(st.st_mode) || remove_if_empty(sub) != 0)
      break;
  }
  closedir(d);
  return rmdir(dir);
}

int kx_repro_claimed(const char *dir, const kx_repro_shard *sh, int (*run)(void *arg), void *arg) {
  if (sh && sh->dry) return run(arg);
  size_t created = missing_from(dir);
  kx_lock claim;
  kx_lock_init(&claim);
  int rc = kx_mkdir_p(dir);
  if (!rc && sh && sh->n) {
    char path[PATH_CAP];
    snprintf(path, sizeof path, "%s/.shard-%s-%zuof%zu.lock", dir, sh->table, sh->i, sh->n);
    rc = kx_lock_path(&claim, path, dir);
  } else if (!rc) {
    rc = kx_lock_dir(&claim, dir);
  }
  if (!rc) rc = run(arg);
  kx_lock_release(&claim);
  /* the folders made here, innermost first, each only if it holds no file */
  char buf[PATH_CAP];
  size_t n = (size_t)snprintf(buf, sizeof buf, "%s", dir);
  while (created && n >= created && n < sizeof buf) {
    while (n > 1 && buf[n - 1] == '/') buf[--n] = '\0';
    char *slash = strrchr(buf, '/');
    if (n < created || remove_if_empty(buf) != 0 || !slash) break;
    *slash = '\0';
    n = strlen(buf);
  }
  return rc;
}

int kx_repro_write_text(const char *path, const char *fmt, ...) {
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

/* ---------- claims waited for ---------- */

/* Claims lock file `path` (of `target`), waiting while another process
 * holds it (nowait: KX_EBUSY at once).  The holder is named at once and
 * then once a minute: a claim of a dead process on another host is never
 * released, and the message says how to remove it. */
static int claim_waiting(kx_repro *r, kx_lock *l, const char *path, const char *target, int nowait) {
  double t0 = kx_now_seconds(), said = -1e9;
  for (;;) {
    int rc = kx_lock_path(l, path, target);
    if (rc != KX_EBUSY || nowait) return rc;
    double now = kx_now_seconds();
    if (now - said >= 60) {
      kx_repro_say(r->pg, "waiting (%.0f s so far): %s", now - t0, kx_error_message());
      said = now;
    }
    kx_error_clear();
    sleep(now - t0 < 10 ? 1 : 5);
  }
}

/* ---------- the teacher ---------- */

/* Table 2's --quick teacher and kapprox train's default pre-training. */
enum { QUICK_LAYERS = 2, QUICK_HEADS = 2, QUICK_WIDTH = 32, QUICK_CTX = 32, QUICK_BATCH = 8, QUICK_STEPS = 320 };
#define DEFAULT_PRETRAIN_STEPS 2500

void kx_repro_table2_setup(kx_repro *r, int quick, kx_repro_shape *shape) {
  *shape = (kx_repro_shape){.name = "default", .run_name = "full"};
  if (quick)
    *shape = (kx_repro_shape){QUICK_LAYERS, QUICK_HEADS, QUICK_WIDTH, QUICK_CTX, QUICK_BATCH, QUICK_STEPS, 80,
                              "--quick", "--quick"};
  r->eval_windows = quick ? 32 : 256;
  r->kl_windows = quick ? 4 : 16;
}

uint64_t kx_repro_table2_pretrain_steps(int quick) { return quick ? QUICK_STEPS : DEFAULT_PRETRAIN_STEPS; }

int kx_repro_step_seconds(const kx_dec_config *cfg, const kx_dec_data *data, size_t B, int steps, double *seconds) {
  size_t T = cfg->ctx;
  kx_decoder m;
  kx_adamw opt = {0};
  if (steps < 1 || steps > 7) return kx_fail(KX_EINVAL, "time 1 to 7 steps, not %d", steps);
  if (data->n_train < T + 2) return kx_fail(KX_EINVAL, "the training text is shorter than context %zu", T);
  int rc = kx_dec_create(&m, cfg);
  if (rc) return rc;
  int *x = kx_malloc(B * T * sizeof(int)), *y = kx_malloc(B * T * sizeof(int));
  rc = x && y ? kx_dec_init_params(&m, 1) : KX_ENOMEM;
  if (!rc) rc = kx_adamw_create(&opt, m.tab.total, 0.9, 0.95, 1e-8, 0.1);
  double dt[8];
  for (int s = 0; !rc && s <= steps; s++) {
    double loss, t0 = kx_now_seconds();
    kx_dec_batch(data->train, data->n_train, B, T, 5, (uint64_t)s, cfg->token_ids, x, y);
    rc = kx_dec_forward(&m, x, y, B, T, &loss);
    if (!rc) rc = kx_dec_backward(&m);
    if (!rc) kx_adamw_step(&opt, &m.tab, m.params, m.grads, 1e-4);
    if (s) { /* insertion: dt[0 .. s-1] ascending */
      int k = s - 1;
      for (dt[k] = kx_now_seconds() - t0; k > 0 && dt[k - 1] > dt[k]; k--) {
        double t = dt[k];
        dt[k] = dt[k - 1], dt[k - 1] = t;
      }
    }
  }
  if (!rc) *seconds = dt[steps / 2];
  kx_adamw_free(&opt);
  free(x);
  free(y);
  kx_dec_free(&m);
  return rc;
}

typedef struct {
  kx_repro *r;
  const char *name;
} teacher_ctx;

static void teacher_progress(const kx_train_report *rep, void *user) {
  teacher_ctx *c = user;
  if (rep->kind == KX_TRAIN_STEP && (c->r->pg->tty || !isnan(rep->val_loss)))
    kx_repro_say(c->r->pg, "teacher %s: pre-training step %llu/%llu, loss %.4f, this teacher %ld:%02ld left", c->name,
                 (unsigned long long)rep->step, (unsigned long long)rep->steps, rep->train_loss, (long)rep->eta / 60,
                 (long)rep->eta % 60);
}

/* Pre-trains (or resumes) `path` unless it holds a finished teacher. */
static int train_teacher_claimed(kx_repro *r, const kx_repro_shape *s, const char *path) {
  kx_dec_train_state st;
  kx_adamw opt = {0};
  int rc = 0, complete = 0;
  if (kx_path_exists(path)) {
    if ((rc = kx_dec_ckpt_load(path, &r->teacher, &r->vocab, &opt, &st))) return rc;
    complete = st.step >= st.steps;
    kx_dec_free(&r->teacher);
    kx_dec_vocab_free(&r->vocab);
    kx_adamw_free(&opt);
  }
  if (complete) {
    kx_repro_say(r->pg, "teacher %s: finished earlier, kept", s->name);
    return 0;
  }
  r->teacher_trained = 1;
  kx_dec_train_opts o;
  kx_dec_train_opts_init(&o);
  o.text = r->text;
  o.out = path;
  o.resume = kx_path_exists(path) ? path : NULL;
  if (!o.resume) {
    if (s->layers) o.layers = s->layers;
    if (s->heads) o.heads = s->heads;
    if (s->width) o.width = s->width;
    if (s->ctx) o.ctx = s->ctx;
    if (s->batch) o.batch = s->batch;
    if (s->steps) o.steps = s->steps;
  }
  o.save_every = s->save_every ? s->save_every : 250;
  o.final_eval = 0;
  kx_repro_say(r->pg, "teacher %s: pre-training %s", s->name, o.resume ? "(resumed)" : "");
  teacher_ctx c = {r, s->name};
  if ((rc = kx_dec_train(&o, teacher_progress, &c))) return kx_fail_context(rc, "pre-training the teacher: ");
  return 0;
}

/* train_teacher_claimed with the teacher's training claimed, from the look
 * at the file on: two processes never both find it unfinished and train. */
static int train_teacher(kx_repro *r, const kx_repro_shape *s, const char *path) {
  char lock[PATH_CAP + 32];
  snprintf(lock, sizeof lock, "%s/.teacher.lock", r->dir);
  kx_lock claim;
  int rc = claim_waiting(r, &claim, lock, path, r->teacher_nowait);
  if (rc) return rc;
  rc = train_teacher_claimed(r, s, path);
  kx_lock_release(&claim);
  return rc;
}

/* Loads the teacher; a weights-only --teacher is taken as trained with
 * kapprox train's defaults. */
static int load_teacher(kx_repro *r, const char *use) {
  kx_dec_train_state st;
  kx_adamw opt = {0};
  int rc = kx_dec_ckpt_load(use, &r->teacher, &r->vocab, &opt, &st);
  if (rc == 0) {
    r->pretrain_steps = st.steps;
    r->batch = st.batch;
    r->teacher_elapsed = st.elapsed;
    r->teacher_state = st;
    r->teacher_state_known = st.step == st.steps;
    kx_adamw_free(&opt);
  } else if (r->teacher_in) {
    if ((rc = kx_dec_ckpt_load(use, &r->teacher, &r->vocab, NULL, NULL))) return rc;
    kx_error_clear();
    r->pretrain_steps = 2500;
    r->batch = 16;
    r->teacher_elapsed = NAN;
  }
  if (!rc) r->teacher_params = r->teacher.tab.total;
  snprintf(r->teacher_path, sizeof r->teacher_path, "%s", use);
  return rc;
}

int kx_repro_teacher(kx_repro *r, const kx_repro_shape *s) {
  char path[PATH_CAP];
  snprintf(path, sizeof path, "%s/teacher.h5", r->dir);
  const char *use = r->teacher_in ? r->teacher_in : path;
  int rc = r->teacher_in ? 0 : train_teacher(r, s, path);
  if (!rc) rc = load_teacher(r, use);
  if (rc) return rc;
  const kx_dec_config *tc = &r->teacher.cfg;
  kx_dec_config want;
  kx_dec_config_default(&want);
  if (s->layers) want.layers = s->layers;
  if (s->heads) want.heads = s->heads;
  if (s->width) want.width = s->width;
  if (s->ctx) want.ctx = s->ctx;
  if (!r->teacher_in &&
      (tc->layers != want.layers || tc->heads != want.heads || tc->width != want.width || tc->ctx != want.ctx))
    return kx_fail(KX_EINVAL,
                   "%s (%zu layers, width %zu, context %zu) is not the %s teacher; use another --outdir for a "
                   "%s run, or --teacher to choose a teacher",
                   use, tc->layers, tc->width, tc->ctx, s->name, s->run_name);
  if (strcmp(tc->attn_kind, "softmax"))
    return kx_fail(KX_EINVAL, "the teacher '%s' has attention '%s'; %s converts a softmax model", use, tc->attn_kind,
                   r->table);
  int generated = 0;
  if (r->text) r->text_path = strdup(r->text);
  rc = r->text ? (r->text_path ? 0 : KX_ENOMEM) : kx_dec_default_corpus(&r->text_path, &generated);
  if (!rc) rc = kx_dec_data_load(r->text_path, &r->vocab, &r->data);
  if (!rc && r->data.n_val < tc->ctx + 2)
    rc = kx_fail(KX_EINVAL, "the validation text is shorter than the teacher's context");
  return rc;
}

int kx_repro_final(const kx_repro *r) { return !r->shard; }

int kx_repro_teacher_plan(kx_repro *r, const kx_repro_shape *s) {
  kx_repro_shard *sh = r->shard;
  char path[PATH_CAP], state[160];
  snprintf(path, sizeof path, "%s/teacher.h5", r->dir);
  int rc = 0;
  if (r->teacher_in) {
    if ((rc = load_teacher(r, r->teacher_in))) return kx_fail_context(rc, "--teacher: ");
    snprintf(state, sizeof state, "given (--teacher), %llu pre-training steps", (unsigned long long)r->pretrain_steps);
  } else if (kx_path_exists(path)) {
    kx_dec_train_state st;
    kx_adamw opt = {0};
    if ((rc = kx_dec_ckpt_load(path, &r->teacher, &r->vocab, &opt, &st))) return rc;
    kx_adamw_free(&opt);
    r->pretrain_steps = st.steps, r->batch = st.batch;
    snprintf(state, sizeof state, st.step >= st.steps ? "finished, %llu steps" : "partial, step %llu of %llu",
             (unsigned long long)(st.step >= st.steps ? st.steps : st.step), (unsigned long long)st.steps);
  } else {
    r->pretrain_steps = s->steps ? s->steps : DEFAULT_PRETRAIN_STEPS;
    r->batch = s->batch ? s->batch : 16;
    snprintf(state, sizeof state, "to be pre-trained, %llu steps", (unsigned long long)r->pretrain_steps);
  }
  kx_dec_free(&r->teacher);
  kx_dec_vocab_free(&r->vocab);
  memset(&r->teacher, 0, sizeof r->teacher);
  memset(&r->vocab, 0, sizeof r->vocab);
  kx_repro_shard_header(sh);
  if (sh->dry) printf("teacher %s (%s): %s\n", s->name, r->teacher_in ? r->teacher_in : path, state);
  /* what makes two shards' runs the same runs besides their folders */
  char *text = r->text ? realpath(r->text, NULL) : NULL;
  size_t root = strlen(sh->root);
  const char *rel = !r->teacher_in && !strncmp(path, sh->root, root) ? path + root + 1 : path;
  kx_repro_shard_line(sh, "teacher %s", r->teacher_in ? r->teacher_in : rel);
  kx_repro_shard_line(sh, "text %s", text ? text : r->text ? r->text : "(the KJV corpus)");
  kx_repro_shard_line(sh, "scores %zu windows, attention KL %zu windows", r->eval_windows, r->kl_windows);
  free(text);
  return 0;
}

void kx_repro_set_budget(kx_repro *r, double budget) {
  double b = floor(budget * (double)r->pretrain_steps + 0.5);
  r->budget_steps = b < 1 ? 1 : (uint64_t)b;
}

void kx_repro_free(kx_repro *r) {
  kx_dec_free(&r->teacher);
  kx_dec_vocab_free(&r->vocab);
  kx_dec_data_free(&r->data);
  free(r->text_path);
  r->text_path = NULL;
}

/* ---------- variants ---------- */

/* The model's configuration of a variant: `base` (the teacher's) with the
 * variant's attention. */
static kx_dec_config variant_config(const kx_dec_config *base, const kx_repro_variant *v) {
  kx_dec_config c = *base;
  snprintf(c.attn_kind, sizeof c.attn_kind, "%s", v->kind->name);
  c.softmax_layers = v->softmax_layers;
  c.window = v->window;
  c.dijiang_flips = v->dijiang_flips;
  return c;
}

/* "<kind><switches><+wN><+sm...>" then "-scratch" or "+AT". */
static void variant_label(kx_repro_variant *v) {
  kx_dec_config c;
  kx_dec_config_default(&c);
  c = variant_config(&c, v);
  char model[KX_DEC_LABEL_MAX];
  kx_dec_config_label(&c, model, sizeof model);
  snprintf(v->label, sizeof v->label, "%s%s", model, v->scratch ? "-scratch" : v->transfer ? "+AT" : "");
}

void kx_repro_variant_set(kx_repro_variant *v, const kx_attn_kind *k, int scratch, int transfer) {
  v->kind = k;
  v->scratch = scratch;
  v->transfer = transfer;
  v->window = 0;
  v->softmax_layers = 0;
  v->dijiang_flips = 0;
  variant_label(v);
}

int kx_repro_variant_hybrid(kx_repro_variant *v, size_t window, uint64_t softmax_layers) {
  if (v->scratch)
    return kx_fail(KX_EINVAL, "%s: a hybrid is a converted model, not one trained from scratch", v->label);
  if (window) { /* the kind (a DiJiang form: its denominator) takes the window? */
    kx_dec_config c = variant_config(&(kx_dec_config){.ctx = SIZE_MAX}, v);
    c.window = window;
    char spec[KX_DEC_LABEL_MAX];
    kx_dec_config_label(&c, spec, sizeof spec);
    if (kx_dec_config_check_window(&c)) return kx_fail_context(KX_EINVAL, "%s: ", spec);
  }
  v->window = window;
  v->softmax_layers = softmax_layers;
  variant_label(v);
  return 0;
}

int kx_repro_variant_form(kx_repro_variant *v, uint32_t flips) {
  kx_dec_config c;
  kx_dec_config_default(&c);
  c.vocab = 2;
  snprintf(c.attn_kind, sizeof c.attn_kind, "%s", v->kind->name);
  c.dijiang_flips = flips;
  int rc = kx_dec_config_check(&c);
  if (rc) return kx_fail_context(rc, "%s: ", v->label);
  v->dijiang_flips = flips;
  variant_label(v);
  return 0;
}

void kx_repro_variant_spec(const kx_repro_variant *v, char *out, size_t cap) {
  kx_dec_config c = variant_config(&(kx_dec_config){0}, v);
  c.softmax_layers = 0; /* converted separately */
  kx_dec_config_label(&c, out, cap);
}

int kx_repro_variant_check(const kx_repro *r, const kx_repro_variant *v) {
  if (!v->softmax_layers && !v->window && !v->dijiang_flips) return 0;
  kx_dec_config c = variant_config(&r->teacher.cfg, v);
  int rc = kx_dec_config_check(&c);
  return rc ? kx_fail_context(rc, "%s: ", v->label) : 0;
}

uint64_t kx_repro_transfer_steps(const kx_repro *r, const kx_repro_variant *v) {
  return v->transfer ? (r->budget_steps + 3) / 4 : 0;
}

uint64_t kx_repro_train_steps(const kx_repro *r, const kx_repro_variant *v) {
  uint64_t s = r->budget_steps - kx_repro_transfer_steps(r, v);
  return s ? s : 1;
}

int kx_repro_budget_check(const kx_repro *r, const kx_repro_variant *v) {
  if (kx_repro_transfer_steps(r, v) < r->budget_steps) return 0;
  return kx_fail(KX_EINVAL,
                 "%s: a budget of %llu step%s cannot hold attention transfer and fine-tuning (transfer takes a "
                 "quarter of the steps, at least one, and fine-tuning the rest); give a budget of at least 2 steps",
                 v->label, (unsigned long long)r->budget_steps, r->budget_steps == 1 ? "" : "s");
}

void kx_repro_run_dir(const kx_repro *r, const kx_repro_variant *v, uint64_t seed, char *out, size_t cap) {
  char lr[48] = "";
  if (r->ft_lr > 0 && !v->scratch) snprintf(lr, sizeof lr, "-lr%g", r->ft_lr); /* scratch: pre-training's rate */
  snprintf(out, cap, "%s/runs/b%llu%s/%s-s%llu", r->dir, (unsigned long long)r->budget_steps, lr, v->label,
           (unsigned long long)seed);
}

size_t kx_repro_summarise(const kx_repro_result *res, size_t n, int f, double *mean, double *se) {
  double s = 0.0, ss = 0.0;
  size_t k = 0;
  for (size_t i = 0; i < n; i++)
    if (isfinite(res[i].f[KX_R_LOSS])) s += res[i].f[f], k++;
  const double m = k ? s / (double)k : NAN;
  for (size_t i = 0; i < n; i++)
    if (isfinite(res[i].f[KX_R_LOSS])) {
      const double d = res[i].f[f] - m;
      ss += d * d;
    }
  *mean = m;
  *se = k > 1 ? sqrt(ss / (double)(k - 1) / (double)k) : NAN;
  return k;
}

/* ---------- one run ---------- */

void kx_repro_diverged(const kx_repro *r, const kx_repro_variant *v, uint64_t seed, char *buf, size_t cap) {
  char dir[PATH_CAP], path[PATH_CAP + 32];
  kx_repro_run_dir(r, v, seed, dir, sizeof dir);
  snprintf(path, sizeof path, "%s/diverged.txt", dir);
  FILE *fp = fopen(path, "r");
  if (cap) buf[0] = '\0';
  if (!fp) return;
  if (!fgets(buf, (int)cap, fp)) buf[0] = '\0';
  buf[strcspn(buf, "\n")] = '\0';
  fclose(fp);
}

/* "result" and the fields; the first KX_R_FIELDS_V1 are required, the
 * later ones (recall) NaN when an older run did not write them. */
static int read_result(const char *path, kx_repro_result *r) {
  FILE *fp = fopen(path, "r");
  if (!fp) return -1;
  char key[32];
  int ok = fscanf(fp, "%31s", key) == 1 && !strcmp(key, "result");
  size_t n = 0;
  while (ok && n < KX_R_FIELDS && fscanf(fp, "%lf", &r->f[n]) == 1) n++;
  fclose(fp);
  for (size_t i = n; i < KX_R_FIELDS; i++) r->f[i] = NAN;
  return ok && n >= KX_R_FIELDS_V1 ? 0 : -1;
}

/* The result line, every field at full precision. */
static int write_result(const char *path, const kx_repro_result *r) {
  char line[KX_R_FIELDS * 32 + 16];
  size_t len = (size_t)snprintf(line, sizeof line, "result");
  for (int i = 0; i < KX_R_FIELDS; i++) len += (size_t)snprintf(line + len, sizeof line - len, " %.17g", r->f[i]);
  return kx_repro_write_text(path, "%s\n", line);
}

typedef struct {
  kx_repro *r;
  const kx_repro_variant *v;
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

static void run_report(const kx_train_report *rep, void *user) {
  run_ctx *c = user;
  if (rep->kind == KX_TRAIN_START) {
    truncate_curve(c->curve, rep->start_step + c->offset);
    return;
  }
  if (rep->kind == KX_TRAIN_FINAL) {
    c->elapsed = rep->elapsed;
    return;
  }
  if (!isnan(rep->val_loss)) {
    FILE *fp = fopen(c->curve, "a");
    if (fp) {
      fprintf(fp, "%llu %.9g\n", (unsigned long long)(rep->step + c->offset), rep->val_loss);
      fclose(fp);
    }
  }
  if (c->r->pg->tty || !isnan(rep->val_loss))
    kx_repro_say(c->r->pg, "%s seed %llu: %s step %llu/%llu, loss %.4f", c->v->label, (unsigned long long)c->seed,
                 c->v->scratch ? "training" : "fine-tuning", (unsigned long long)rep->step,
                 (unsigned long long)rep->steps, rep->train_loss);
}

static void transfer_report(uint64_t step, uint64_t steps, double loss, void *user) {
  run_ctx *c = user;
  if (c->r->pg->tty || step == steps)
    kx_repro_say(c->r->pg, "%s seed %llu: attention transfer step %llu/%llu, KL %.4f", c->v->label,
                 (unsigned long long)c->seed, (unsigned long long)step, (unsigned long long)steps, loss);
}

int kx_repro_score(kx_repro *r, kx_decoder *m, double *loss, double *acc, double *kl) {
  kx_dec_eval_result e;
  int rc = kx_dec_evaluate(m, r->data.val, r->data.n_val, r->eval_windows, r->batch, &e);
  if (rc) return rc;
  *loss = e.loss;
  if (acc) *acc = e.accuracy;
  if (!kl) return 0;
  *kl = NAN;
  if (!KX_DEC_KIND_LACKING(m, attn_weights)) rc = kx_dec_attn_kl(&r->teacher, m, r->data.val, r->data.n_val, r->kl_windows, kl);
  return rc;
}

int kx_repro_recall(kx_repro *r, kx_decoder *m, double out[3]) {
  kx_dec_recall_result rr;
  int rc = kx_dec_recall(m, &r->recall, &rr);
  if (rc) return rc;
  out[0] = rr.loss, out[1] = rr.accuracy, out[2] = rr.first_loss;
  return 0;
}

int kx_repro_write_map(kx_repro *r, kx_decoder *m, const char *path) {
  size_t T = m->cfg.ctx;
  float *map = kx_malloc(T * T * sizeof(float));
  if (!map) return KX_ENOMEM;
  int rc = kx_dec_attn_map(m, r->data.val, T, m->cfg.layers - 1, map);
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

/* Conversion (and attention transfer) into dir/student.h5, redone unless
 * both it and dir/convert.txt (its wall time) exist; then scores the
 * converted model. */
static int convert_stage(run_ctx *c, const char *dir, kx_repro_result *res, double *conv_s) {
  kx_repro *r = c->r;
  char student[PATH_CAP + 32], conv[PATH_CAP + 32];
  snprintf(student, sizeof student, "%s/student.h5", dir);
  snprintf(conv, sizeof conv, "%s/convert.txt", dir);
  kx_decoder m;
  kx_dec_vocab vocab;
  FILE *fp = kx_path_exists(student) ? fopen(conv, "r") : NULL;
  int rc = 0, have = fp && fscanf(fp, "%lf", conv_s) == 1;
  if (fp) fclose(fp);
  /* the run's own files: a model that computes non-finite values is a
   * diverged run (KX_ENUM), not a damaged file */
  if (have) {
    rc = kx_dec_ckpt_load_unprobed(student, &m, &vocab);
    kx_dec_vocab_free(&vocab);
    if (!rc && (rc = kx_dec_ckpt_probe(&m))) kx_dec_free(&m);
  } else {
    kx_repro_say(r->pg, "%s seed %llu: converting", c->v->label, (unsigned long long)c->seed);
    double t = kx_now_seconds();
    char spec[KX_DEC_LABEL_MAX];
    kx_repro_variant_spec(c->v, spec, sizeof spec);
    rc = kx_dec_convert_hybrid(&r->teacher, spec, c->v->softmax_layers, kx_seed_derive(c->seed, 11), &m);
    kx_transfer_opts o = {.steps = c->offset, .batch = r->batch / 2 ? r->batch / 2 : 1, .seed = c->seed,
                          .lr = TRANSFER_LR};
    if (!rc && c->v->transfer) rc = kx_dec_transfer(&r->teacher, &m, &r->data, &o, transfer_report, c);
    *conv_s = kx_now_seconds() - t;
    if (!rc) rc = kx_dec_ckpt_probe(&m); /* before the file: fine-tuning's load would refuse it */
    if (!rc) rc = kx_dec_ckpt_save(student, &m, &r->vocab, NULL, NULL);
    if (!rc) rc = kx_repro_write_text(conv, "%.6f\n", *conv_s);
    if (rc) kx_dec_free(&m);
  }
  if (rc) return rc;
  kx_repro_say(r->pg, "%s seed %llu: scoring the converted model", c->v->label, (unsigned long long)c->seed);
  rc = kx_repro_score(r, &m, &res->f[KX_R_CONV], NULL, &res->f[KX_R_KLC]);
  if (!rc) rc = kx_repro_recall(r, &m, &res->f[KX_R_RCL_CONV]);
  kx_dec_free(&m);
  return rc;
}

/* 1 if training softmax from scratch with options o (from the teacher's
 * sizes, as train_stage sets them) repeats the teacher's own pre-training:
 * the same options and text filled in as kx_dec_train would, so the same
 * initialisation, batches and schedule, on a teacher whose configuration
 * is the one such a run builds. */
static int repeats_teacher(const kx_repro *r, const kx_repro_variant *v, const kx_dec_train_opts *o) {
  if (!v->scratch || strcmp(v->kind->name, "softmax") || v->dijiang_flips || !r->teacher_state_known) return 0;
  const kx_dec_config *t = &r->teacher.cfg;
  kx_dec_config fresh;
  kx_dec_config_default(&fresh);
  if (t->softmax_layers || t->window || t->dijiang_flips || t->rope_base != fresh.rope_base ||
      t->ln_eps != fresh.ln_eps)
    return 0;
  kx_dec_train_state want;
  kx_dec_train_state_init(&want, o, r->data.hash);
  return kx_dec_train_same_run(&want, &r->teacher_state);
}

/* Fine-tuning (or training from scratch) into dir/ft.h5, resumed if it is there. */
static int train_stage(run_ctx *c, const char *dir) {
  kx_repro *r = c->r;
  const kx_repro_variant *v = c->v;
  char ft[PATH_CAP + 32], student[PATH_CAP + 32], form[256];
  snprintf(ft, sizeof ft, "%s/ft.h5", dir);
  snprintf(student, sizeof student, "%s/student.h5", dir);
  kx_dec_train_opts o;
  kx_dec_train_opts_init(&o);
  o.text = r->text;
  o.out = ft;
  if (kx_path_exists(ft)) {
    o.resume = ft;
  } else {
    o.steps = kx_repro_train_steps(r, v);
    o.batch = r->batch;
    o.seed = c->seed, o.seed_given = 1;
    o.lr = v->scratch ? SCRATCH_LR : r->ft_lr > 0 ? r->ft_lr : FT_LR;
    if (v->scratch) {
      const kx_dec_config *t = &r->teacher.cfg;
      o.ctx = t->ctx, o.layers = t->layers, o.heads = t->heads, o.width = t->width, o.rotary_dims = t->rotary_dims;
      if (kx_dec_llama(t)) /* the teacher's architecture; kv_heads and ffn_hidden 0 are the defaults */
        o.llama = 1, o.kv_heads = t->kv_heads, o.ffn_hidden = t->ffn_hidden, o.tied = t->tied;
      if (r->vocab.ids) o.vocab = &r->vocab; /* its token ids: the text is a token file */
      snprintf(o.attn_kind, sizeof o.attn_kind, "%s", v->kind->name);
      const kx_dijiang_preset *pr = kx_dijiang_preset_of(v->kind->name);
      if (pr && v->dijiang_flips) { /* "+a+b" -> "a,b" */
        kx_dijiang_flips_suffix(pr->form, v->dijiang_flips, form, sizeof form);
        for (char *p = form; *p; p++)
          if (*p == '+') *p = ',';
        o.dijiang_form = form + 1;
      }
    } else {
      o.init_from = student;
    }
    remove(c->curve);
    if (repeats_teacher(r, v, &o)) { /* the teacher's checkpoint is this run, finished */
      kx_repro_say(r->pg, "%s seed %llu: the teacher's own pre-training (same options and text), its checkpoint taken",
                   v->label, (unsigned long long)c->seed);
      kx_dec_train_opts_init(&o);
      o.text = r->text;
      o.out = ft;
      o.resume = r->teacher_path;
    }
  }
  /* 8 points per curve; a checkpoint every 2 (a resumed run drops and
   * recomputes the curve's points after its checkpoint) */
  uint64_t steps = kx_repro_train_steps(r, v), every = steps / 8 ? steps / 8 : 1;
  o.eval_every = every;
  o.eval_batches = CURVE_BATCHES;
  o.save_every = 2 * every;
  o.final_eval = 0;
  return kx_dec_train(&o, run_report, c);
}

/* The run of kx_repro_run in folder `dir`, claimed. */
static int compute_run(kx_repro *r, const kx_repro_variant *v, uint64_t seed, const char *dir, kx_repro_result *res) {
  char result[PATH_CAP + 32], ft[PATH_CAP + 32], map[PATH_CAP + 32];
  snprintf(result, sizeof result, "%s/result.txt", dir);
  snprintf(ft, sizeof ft, "%s/ft.h5", dir);
  snprintf(map, sizeof map, "%s/map.txt", dir);
  int rc = 0;
  run_ctx c = {.r = r, .v = v, .seed = seed, .offset = kx_repro_transfer_steps(r, v)};
  snprintf(c.curve, sizeof c.curve, "%s/curve.txt", dir);
  for (int i = 0; i < KX_R_FIELDS; i++) res->f[i] = NAN;
  double conv_s = 0.0;
  const char *stage = "conversion";
  if (!v->scratch) rc = convert_stage(&c, dir, res, &conv_s);
  if (!rc) stage = v->scratch ? "training" : "fine-tuning", rc = train_stage(&c, dir);
  if (!rc) {
    kx_repro_say(r->pg, "%s seed %llu: scoring", v->label, (unsigned long long)seed);
    stage = "scoring";
    kx_decoder m;
    kx_dec_vocab vocab;
    if ((rc = kx_dec_ckpt_load_unprobed(ft, &m, &vocab))) return rc;
    kx_dec_vocab_free(&vocab);
    rc = kx_dec_ckpt_probe(&m);
    if (!rc) rc = kx_repro_score(r, &m, &res->f[KX_R_LOSS], &res->f[KX_R_ACC], &res->f[KX_R_KLF]);
    if (!rc) rc = kx_repro_recall(r, &m, &res->f[KX_R_RCL]);
    if (!rc && !KX_DEC_KIND_LACKING(&m, attn_weights) && seed == 0) rc = kx_repro_write_map(r, &m, map);
    kx_dec_free(&m);
  }
  res->f[KX_R_WALL] = conv_s + c.elapsed;
  if (rc == KX_ENUM && r->keep_diverged) {
    /* a point of the study: the fields not reached stay NaN */
    char why[PATH_CAP + 32];
    snprintf(why, sizeof why, "%s/diverged.txt", dir);
    kx_repro_say(r->pg, "%s seed %llu: diverged in %s (%s), recorded", v->label, (unsigned long long)seed, stage,
                 kx_error_message());
    res->f[KX_R_LOSS] = res->f[KX_R_ACC] = res->f[KX_R_KLF] = NAN;
    res->f[KX_R_RCL] = res->f[KX_R_RACC] = res->f[KX_R_RFIRST] = NAN;
    rc = kx_repro_write_text(why, "diverged in %s: %s\n", stage, kx_error_message());
    kx_error_clear();
  } else if (rc) {
    return rc;
  }
  if (!rc) rc = write_result(result, res);
  if (!rc) {
    char student[PATH_CAP + 32];
    snprintf(student, sizeof student, "%s/student.h5", dir);
    remove(ft);
    remove(student);
  }
  return rc;
}

int kx_repro_run(kx_repro *r, const kx_repro_variant *v, uint64_t seed, kx_repro_result *res, int *fresh) {
  char dir[PATH_CAP], result[PATH_CAP + 32];
  kx_repro_run_dir(r, v, seed, dir, sizeof dir);
  snprintf(result, sizeof result, "%s/result.txt", dir);
  *fresh = 0;
  int rc = kx_repro_budget_check(r, v);
  if (rc) return rc;
  kx_repro_shard *sh = r->shard;
  if (sh) { /* a run not done here: NaN, never a table's value */
    for (int i = 0; i < KX_R_FIELDS; i++) res->f[i] = NAN;
    size_t j = sh->next++;
    if (sh->mode == KX_SHARD_PLAN) kx_repro_shard_record(sh, dir);
    if (sh->mode == KX_SHARD_PLAN || !kx_repro_shard_mine(sh, j)) return 0;
    sh->runs++;
  }
  if (read_result(result, res) == 0) {
    kx_repro_say(r->pg, "%s seed %llu: finished earlier, kept", v->label, (unsigned long long)seed);
    if (sh) sh->done++;
    return 0;
  }
  *fresh = 1;
  kx_lock claim;
  char lock[PATH_CAP + 32];
  snprintf(lock, sizeof lock, "%s/.lock", dir);
  rc = kx_mkdir_p(dir);
  if (!rc) rc = claim_waiting(r, &claim, lock, dir, sh != NULL);
  if (rc == KX_EBUSY && sh) { /* another process computes it: its result, not a second one */
    kx_repro_say(r->pg, "%s seed %llu: skipped, %s", v->label, (unsigned long long)seed, kx_error_message());
    kx_error_clear();
    sh->skipped++;
    *fresh = 0;
    return 0;
  }
  if (rc) return rc;
  /* finished by another process between the first look and the claim */
  if (read_result(result, res) == 0) {
    kx_lock_release(&claim);
    *fresh = 0;
    if (sh) sh->done++;
    return 0;
  }
  rc = compute_run(r, v, seed, dir, res);
  kx_lock_release(&claim);
  if (!rc && sh) sh->done++;
  return rc;
}
