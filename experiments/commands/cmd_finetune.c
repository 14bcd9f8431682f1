/* kapprox finetune: fine-tunes a converted model.  It is kapprox train
 * started from the converted parameters (kx_dec_train_opts.init_from), so
 * options, progress, log, atomic checkpoints and exact --resume are
 * train's (decoder_cli.h); this front end adds the budget, fine-tuning
 * defaults and the checks that a resumed fine-tuning belongs to the given
 * model. */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/kx_cli.h"
#include "core/kx_error.h"
#include "core/kx_fs.h"
#include "experiments/commands/commands.h"
#include "experiments/commands/decoder_cli.h"
#include "experiments/model/dec_ckpt.h"

static const char cmd[] = "finetune";

/* Pre-training steps of kapprox train's default schedule: the reference of --budget. */
#define PRETRAIN_STEPS_DEFAULT 2500
#define FINETUNE_LR_DEFAULT "1e-3"

static void usage(FILE *out) {
  fprintf(out,
          "usage: kapprox finetune --from STUDENT.h5 --out FT.h5 [options]\n"
          "       kapprox finetune --resume FT.h5 --out FT.h5 [--from STUDENT.h5]\n\n"
          "Fine-tunes a model written by kapprox convert (any decoder checkpoint works) on\n"
          "the text, with the options, progress output, --log, atomic checkpoints and\n"
          "exact --resume of kapprox train (see kapprox train --help), starting from the\n"
          "checkpoint's parameters with a fresh optimizer and schedule.  Score a model\n"
          "before fine-tuning (the zero-shot loss) with kapprox eval.\n\n"
          "  --from FILE          converted model to start from\n"
          "  --out FILE           fine-tuning checkpoint to write (required)\n"
          "  --resume FILE        continue an interrupted fine-tuning; with --from, the\n"
          "                       checkpoint must have the same configuration\n"
          "  --steps N            fine-tuning steps, or\n"
          "  --budget F           F times the pre-training steps (default 1/16 = 0.0625,\n"
          "                       the paper's cost ratio)\n"
          "  --pretrain-steps N   pre-training steps --budget refers to [%d]\n"
          "  --lr X               peak learning rate [%s]\n"
          "  --window W           must be the model's sliding window (kapprox convert\n"
          "                       --window sets it); normally omitted\n"
          "  every other option of kapprox train (--text, --batch, --warmup, --seed,\n"
          "  --log, --save-every, --eval-every, --stop-after, --quiet, ...)\n",
          PRETRAIN_STEPS_DEFAULT, FINETUNE_LR_DEFAULT);
}

/* Refuses a fine-tuning checkpoint whose model is not the one of --from. */
static int same_configuration(const char *from, const char *resume) {
  kx_decoder a, b;
  kx_dec_vocab va, vb;
  int rc = kx_dec_ckpt_load(from, &a, &va, NULL, NULL);
  if (rc) return rc;
  if ((rc = kx_dec_ckpt_load(resume, &b, &vb, NULL, NULL))) {
    kx_dec_free(&a);
    kx_dec_vocab_free(&va);
    return rc;
  }
  const kx_dec_config *x = &a.cfg, *y = &b.cfg;
  int same = !strcmp(x->attn_kind, y->attn_kind) && x->softmax_layers == y->softmax_layers && x->window == y->window &&
             x->dijiang_flips == y->dijiang_flips &&
             x->vocab == y->vocab && x->ctx == y->ctx &&
             x->layers == y->layers && x->heads == y->heads && x->width == y->width &&
             x->rotary_dims == y->rotary_dims && va.V == vb.V &&
             !memcmp(va.vocab, vb.vocab, va.V * sizeof *va.vocab);
  char lx[KX_DEC_LABEL_MAX], ly[KX_DEC_LABEL_MAX];
  kx_dec_config_label(x, lx, sizeof lx);
  kx_dec_config_label(y, ly, sizeof ly);
  if (!same)
    rc = kx_fail(KX_EINVAL,
                 "fine-tuning checkpoint '%s' (attention %s, %zu layers, %zu heads, width %zu, context %zu, "
                 "vocabulary %zu) is not a fine-tuning of '%s' (attention %s, %zu layers, %zu heads, width %zu, "
                 "context %zu, vocabulary %zu); give the matching --from or another --out",
                 resume, ly, y->layers, y->heads, y->width, y->ctx, y->vocab, from, lx,
                 x->layers, x->heads, x->width, x->ctx, x->vocab);
  kx_dec_free(&a);
  kx_dec_free(&b);
  kx_dec_vocab_free(&va);
  kx_dec_vocab_free(&vb);
  return rc;
}

int cmd_finetune(int argc, char **argv) {
  enum { O_FROM = KX_TRAIN_O_END, O_BUDGET, O_PRETRAIN };
  static const struct option lo[] = {KX_TRAIN_LONG_OPTIONS,
                                     {"from", 1, 0, O_FROM},
                                     {"budget", 1, 0, O_BUDGET},
                                     {"pretrain-steps", 1, 0, O_PRETRAIN},
                                     {0, 0, 0, 0}};
  const char *from = NULL;
  double budget = NAN;
  size_t pretrain = PRETRAIN_STEPS_DEFAULT;
  kx_train_cli t;
  kx_train_cli_init(&t);
  t.o.out = NULL;
  int c, rc = 0;
  while ((c = getopt_long(argc, argv, ":h", lo, NULL)) != -1) {
    if (kx_train_cli_option(cmd, c, optarg, &t, &rc)) {
      if (rc) return rc;
      continue;
    }
    switch (c) {
      case O_FROM: from = optarg; break;
      case O_BUDGET: rc = kx_parse_double(optarg, "--budget", &budget); break;
      case O_PRETRAIN: rc = kx_parse_size(optarg, "--pretrain-steps", 1, (size_t)1 << 40, &pretrain); break;
      case 'h':
      case KX_TRAIN_O_HELP: usage(stdout); return 0;
      default: return kx_cli_option_error(cmd, c, argv);
    }
    if (rc) return kx_cli_value_error(cmd, "see kapprox finetune --help");
  }
  const char *resume = t.o.resume, *out = t.o.out;
  if (optind < argc) return kx_cli_extra_operand(cmd, argv[optind], "see kapprox finetune --help");
  if (t.o.init_from) rc = kx_fail(KX_EINVAL, "use --from with kapprox finetune");
  if (!rc && !isnan(budget) && !(budget > 0 && budget <= 1e6))
    rc = kx_fail(KX_EINVAL, "--budget must be > 0 (a fraction of the pre-training steps), got %g", budget);
  if (!rc && !isnan(budget) && t.steps_given) rc = kx_fail(KX_EINVAL, "give --steps or --budget, not both");
  if (!rc && !isnan(budget) && budget * (double)pretrain < 1)
    rc = kx_fail(KX_EINVAL, "--budget %g of %zu pre-training steps is %.3g steps, less than one; give a larger "
                 "--budget or --steps", budget, pretrain, budget * (double)pretrain);
  if (!rc && !from && !resume) rc = kx_fail(KX_EINVAL, "--from STUDENT.h5 (or --resume FT.h5) is required");
  if (!rc && !out) rc = kx_fail(KX_EINVAL, "--out FILE is required (the fine-tuning checkpoint)");
  if (!rc && from && kx_same_file(from, out))
    rc = kx_fail(KX_EINVAL, "--out %s is the model to fine-tune itself; give another file name", out);
  if (rc) return kx_cli_value_error(cmd, "see kapprox finetune --help");
  if (resume && from && (rc = same_configuration(from, resume))) {
    kx_cli_error(cmd, "%s", kx_error_message());
    return 1;
  }
  /* the fine-tuning defaults; a resumed run takes its checkpoint's (and
   * kx_dec_train refuses a --budget that disagrees with them) */
  if (!t.steps_given && (!resume || !isnan(budget))) {
    double steps = floor((isnan(budget) ? 1.0 / 16.0 : budget) * (double)pretrain + 0.5);
    if (steps > (double)((uint64_t)1 << 40)) {
      kx_cli_error(cmd, "--steps must be in [1, %llu], got %.0f (see kapprox finetune --help)",
                   (unsigned long long)1 << 40, steps);
      return 2;
    }
    t.o.steps = steps < 1 ? 1 : (uint64_t)steps;
  }
  if (!resume) {
    t.o.init_from = from;
    if (!t.lr_given) t.o.lr = strtod(FINETUNE_LR_DEFAULT, NULL);
  }
  return kx_train_cli_run(cmd, &t);
}
