#include "experiments/commands/decoder_cli.h"

#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/kx_cli.h"
#include "core/kx_dp.h"
#include "core/kx_error.h"
#include "experiments/model/dec_attn.h"
#include "experiments/model/dec_ckpt.h"
#include "experiments/model/dec_dijiang_form.h"
#include "experiments/model/dec_layers.h"

int kx_cli_load_decoder(const char *cmd, const char *path, kx_decoder *m, kx_dec_vocab *v) {
  kx_dec_threads_init();
  if (!kx_dec_ckpt_load(path, m, v, NULL, NULL)) return 0;
  kx_cli_error(cmd, "%s", kx_error_message());
  return 1;
}

/* A double in [lo, hi] (lo excluded when lo_open), with a message naming
 * the option otherwise. */
static int parse_in(const char *s, const char *what, double lo, double hi, int lo_open, double *out) {
  if (kx_parse_double(s, what, out)) return 1;
  if ((lo_open ? !(*out > lo) : !(*out >= lo)) || !(*out <= hi))
    return kx_fail(KX_EINVAL, "%s must be in %s%g, %g], got %s", what, lo_open ? "(" : "[", lo, hi, s);
  return 0;
}

void kx_train_cli_init(kx_train_cli *t) {
  *t = (kx_train_cli){0};
  kx_dec_train_opts_init(&t->o);
  t->o.out = "decoder.h5";
  optind = 1;
  opterr = 0;
}

int kx_train_cli_option(const char *cmd, int c, const char *arg, kx_train_cli *t, int *rc) {
  int bad = 0;
  size_t sz;
  *rc = 0;
  switch (c) {
    case KX_TRAIN_O_TEXT: t->o.text = arg; break;
    case KX_TRAIN_O_OUT: t->o.out = arg; break;
    case KX_TRAIN_O_LOG: t->o.log = arg; break;
    case KX_TRAIN_O_RESUME: t->o.resume = arg; break;
    case KX_TRAIN_O_LAYERS: bad = kx_parse_size(arg, "--layers", 1, 64, &t->o.layers); break;
    case KX_TRAIN_O_HEADS: bad = kx_parse_size(arg, "--heads", 1, 256, &t->o.heads); break;
    case KX_TRAIN_O_WIDTH: bad = kx_parse_size(arg, "--width", 2, 16384, &t->o.width); break;
    case KX_TRAIN_O_CTX: bad = kx_parse_size(arg, "--ctx", 2, 8192, &t->o.ctx); break;
    case KX_TRAIN_O_ROTARY: bad = kx_parse_size(arg, "--rotary", 2, 16384, &t->o.rotary_dims); break;
    case KX_TRAIN_O_ATTN:
      if (!kx_dec_attn_find(arg)) {
        kx_cli_error(cmd, "unknown --attention '%s' (known: %s)", arg, kx_dec_attn_names());
        *rc = 2;
        return 1;
      }
      snprintf(t->o.attn_kind, sizeof t->o.attn_kind, "%s", arg);
      break;
    case KX_TRAIN_O_STEPS:
      bad = kx_parse_size(arg, "--steps", 1, (size_t)1 << 40, &sz), t->o.steps = sz, t->steps_given = 1;
      break;
    case KX_TRAIN_O_BATCH: bad = kx_parse_size(arg, "--batch", 1, 4096, &sz), t->o.batch = sz; break;
    case KX_TRAIN_O_WARMUP: bad = kx_parse_size(arg, "--warmup", 1, (size_t)1 << 40, &sz), t->o.warmup = sz; break;
    case KX_TRAIN_O_LR: bad = parse_in(arg, "--lr", 0, 10, 1, &t->o.lr), t->lr_given = 1; break;
    case KX_TRAIN_O_LRMIN: bad = parse_in(arg, "--lr-min", 0, 10, 0, &t->o.lr_min); break;
    case KX_TRAIN_O_WD: bad = parse_in(arg, "--weight-decay", 0, 100, 0, &t->o.weight_decay); break;
    case KX_TRAIN_O_B1: bad = parse_in(arg, "--beta1", 0, 0.999999, 0, &t->o.beta1); break;
    case KX_TRAIN_O_B2: bad = parse_in(arg, "--beta2", 0, 0.999999, 0, &t->o.beta2); break;
    case KX_TRAIN_O_CLIP: bad = parse_in(arg, "--clip", 0, 1e30, 0, &t->o.clip); break;
    case KX_TRAIN_O_SEED: bad = kx_parse_u64(arg, "--seed", &t->o.seed), t->o.seed_given = 1; break;
    case KX_TRAIN_O_MAXMIN: bad = parse_in(arg, "--max-minutes", 0, 1e9, 1, &t->o.max_minutes); break;
    case KX_TRAIN_O_STOP: bad = kx_parse_size(arg, "--stop-after", 1, (size_t)1 << 40, &sz), t->o.stop_after = sz; break;
    case KX_TRAIN_O_EVERY: bad = kx_parse_size(arg, "--eval-every", 1, (size_t)1 << 40, &sz), t->o.eval_every = sz; break;
    case KX_TRAIN_O_EVALB: bad = kx_parse_size(arg, "--eval-batches", 1, 100000, &sz), t->o.eval_batches = sz; break;
    case KX_TRAIN_O_SAVE: bad = kx_parse_size(arg, "--save-every", 1, (size_t)1 << 40, &sz), t->o.save_every = sz; break;
    case KX_TRAIN_O_NOFINAL: t->o.final_eval = 0; break;
    case KX_TRAIN_O_QUIET: t->quiet = 1; break;
    case KX_TRAIN_O_DUMP: t->o.dump_grads = arg; break;
    case KX_TRAIN_O_INIT_FROM: t->o.init_from = arg; break;
    case KX_TRAIN_O_WINDOW: bad = kx_dec_parse_window(arg, &t->o.window); break;
    case KX_TRAIN_O_ARCH:
      if (strcmp(arg, "llama") && strcmp(arg, "pythia"))
        bad = kx_fail(KX_EINVAL, "--arch '%s': give pythia (the default) or llama", arg);
      t->o.llama = !strcmp(arg, "llama");
      break;
    case KX_TRAIN_O_KVHEADS: bad = kx_parse_size(arg, "--kv-heads", 1, 256, &t->o.kv_heads); break;
    case KX_TRAIN_O_FFN: bad = kx_parse_size(arg, "--ffn-hidden", 1, 1u << 20, &t->o.ffn_hidden); break;
    case KX_TRAIN_O_TIED: t->o.tied = 1; break;
    case KX_TRAIN_O_DJFORM: {
      kx_dijiang_form f; /* the list alone; the kind is checked when known */
      bad = kx_dijiang_form_apply(arg, "--dijiang-form", 0, &f);
      t->o.dijiang_form = arg;
      break;
    }
    default: return 0;
  }
  if (bad) {
    char see_help[64]; /* the commands' names are short */
    snprintf(see_help, sizeof see_help, "see kapprox %s --help", cmd);
    *rc = kx_cli_value_error(cmd, see_help);
  }
  kx_error_clear();
  return 1;
}

typedef struct {
  int tty, quiet;
  double last_line;
  const char *unit; /* "char" or "token", from the start's report */
} ui;

static void fmt_time(double s, char *buf, size_t n) {
  if (!isfinite(s) || s < 0) s = 0;
  long t = (long)(s + 0.5);
  if (t >= 3600)
    snprintf(buf, n, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
  else
    snprintf(buf, n, "%02ld:%02ld", t / 60, t % 60);
}

static void report(const kx_train_report *r, void *user) {
  ui *u = user;
  const double ln2 = log(2.0);
  if (r->kind == KX_TRAIN_START) {
    const kx_dec_config *c = r->cfg;
    char label[KX_DEC_LABEL_MAX];
    kx_dec_config_label(c, label, sizeof label);
    u->unit = r->unit;
    printf("text: %s%s\n", r->text_path, r->corpus_generated ? " (generated now)" : "");
    int tokens = !strcmp(r->unit, "token");
    printf("%s: %zu train, %zu validation (every 20th %s); vocabulary %zu\n", tokens ? "tokens" : "characters",
           r->n_train, r->n_val, tokens ? "story" : "line", r->vocab);
    printf("model: %zu layers, %zu heads, width %zu (head dim %zu, rotary %zu), context %zu, attention %s, "
           "%zu parameters\n",
           c->layers, c->heads, c->width, c->width / c->heads, c->rotary_dims, c->ctx, label, r->n_params);
    printf("baselines on validation (add-one smoothing, fitted on train):\n");
    printf("  unigram %.4f nats/%s = %.4f bits/%s\n", r->unigram, r->unit, r->unigram / ln2, r->unit);
    printf("  bigram  %.4f nats/%s = %.4f bits/%s\n", r->bigram, r->unit, r->bigram / ln2, r->unit);
    if (r->start_step) printf("resuming at step %llu of %llu\n", (unsigned long long)r->start_step,
                              (unsigned long long)r->steps);
    fflush(stdout);
    return;
  }
  if (r->kind == KX_TRAIN_STEP) {
    if (u->quiet) return;
    char left[32], el[32];
    fmt_time(r->eta, left, sizeof left);
    fmt_time(r->elapsed, el, sizeof el);
    if (u->tty) {
      int width = 24, fill = (int)((double)width * (double)r->step / (double)r->steps);
      char bar[32];
      for (int i = 0; i < width; i++) bar[i] = i < fill ? '#' : '.';
      bar[width] = '\0';
      fprintf(stderr, "\r\033[K%6llu/%llu [%s] loss %.4f", (unsigned long long)r->step,
              (unsigned long long)r->steps, bar, r->train_loss);
      if (!isnan(r->val_loss)) fprintf(stderr, " val %.4f", r->val_loss);
      fprintf(stderr, " | %.0f tok/s | %s left", r->tokens_per_s, left);
      if (!isnan(r->val_loss)) {
        fprintf(stderr, "\n");
      }
      fflush(stderr);
    } else if (!isnan(r->val_loss)) {
      fprintf(stderr, "step %llu/%llu  lr %.3g  loss %.4f  val %.4f (%.4f bits)  %.0f tok/s  elapsed %s  left %s\n",
              (unsigned long long)r->step, (unsigned long long)r->steps, r->lr, r->train_loss, r->val_loss,
              r->val_loss / ln2, r->tokens_per_s, el, left);
    }
    return;
  }
  if (u->tty && !u->quiet) fprintf(stderr, "\r\033[K");
  if (r->stopped_early)
    printf("stopped at step %llu of %llu (resume with --resume)\n", (unsigned long long)r->step,
           (unsigned long long)r->steps);
  if (!isnan(r->final_val_loss))
    printf("validation loss (whole validation text): %.4f nats/%s = %.4f bits/%s\n", r->final_val_loss,
           u->unit ? u->unit : "char", r->final_val_loss / ln2, u->unit ? u->unit : "char");
  char el[32];
  fmt_time(r->elapsed, el, sizeof el);
  printf("training time: %s\n", el);
  if (kx_dp_active())
    printf("data parallel: %d process%s, %.0f training tokens/s, gradient reduction %.2f s (%.1f %% of %.1f s; "
           "%.2f s of it waiting for the slowest rank), optimizer steps %.2f s, evaluations %.2f s\n",
           r->dp_size, r->dp_size == 1 ? "" : "es", r->run_tokens_per_s, r->dp_reduce_s,
           r->elapsed > 0 ? 100.0 * r->dp_reduce_s / r->elapsed : 0.0, r->elapsed, r->dp_wait_s, r->optimizer_s,
           r->eval_s);
  fflush(stdout);
}

int kx_train_cli_run(const char *cmd, const kx_train_cli *t) {
  const kx_dec_train_opts *o = &t->o;
  uint64_t steps = o->steps ? o->steps : KX_DEC_DEFAULT_STEPS;
  if (!o->resume && o->warmup > steps) {
    kx_cli_error(cmd, "--warmup %llu is longer than the run's %llu steps: the learning rate would never reach its "
                 "peak; give a --warmup of at most the steps (see kapprox %s --help)",
                 (unsigned long long)o->warmup, (unsigned long long)steps, cmd);
    return 2;
  }
  if ((o->window || o->dijiang_form) && !o->resume && !o->init_from) { /* a fresh model: its kind is known now */
    kx_dec_config c;
    kx_dec_config_default(&c);
    if (o->attn_kind[0]) snprintf(c.attn_kind, sizeof c.attn_kind, "%s", o->attn_kind);
    if (o->ctx) c.ctx = o->ctx;
    c.window = o->window;
    if ((o->dijiang_form && kx_dec_config_set_form(&c, o->dijiang_form, "--dijiang-form")) ||
        kx_dec_config_check_window(&c)) {
      char see_help[64];
      snprintf(see_help, sizeof see_help, "see kapprox %s --help", cmd);
      return kx_cli_value_error(cmd, see_help);
    }
  }
  ui u = {kx_stderr_is_tty(), t->quiet, 0, NULL};
  int rc = kx_dec_train(&t->o, report, &u);
  if (rc) {
    if (u.tty && !t->quiet) fprintf(stderr, "\n");
    kx_cli_error(cmd, "%s", kx_error_message());
    return 1;
  }
  return 0;
}
