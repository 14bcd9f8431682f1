/* kapprox finetune: fine-tunes a converted model.  It is `kapprox train`
 * started from the converted parameters (--init-from), so options,
 * progress, log, atomic checkpoints and exact --resume are train's; this
 * front end adds the budget, fine-tuning defaults and the checks that a
 * resumed fine-tuning belongs to the given model. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/kx_cli.h"
#include "core/kx_error.h"
#include "experiments/commands/commands.h"
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
          "  every other option of kapprox train (--text, --batch, --warmup, --seed,\n"
          "  --log, --save-every, --eval-every, --stop-after, --quiet, ...)\n",
          PRETRAIN_STEPS_DEFAULT, FINETUNE_LR_DEFAULT);
}

/* kapprox train's options that take no value. */
static int is_flag(const char *name) {
  return !strcmp(name, "quiet") || !strcmp(name, "no-final-eval") || !strcmp(name, "help");
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
  int same = !strcmp(x->attn_kind, y->attn_kind) && x->softmax_layers == y->softmax_layers &&
             x->vocab == y->vocab && x->ctx == y->ctx &&
             x->layers == y->layers && x->heads == y->heads && x->width == y->width &&
             x->rotary_dims == y->rotary_dims && va.V == vb.V &&
             !memcmp(va.vocab, vb.vocab, va.V * sizeof *va.vocab);
  char lx[KX_DEC_NAME_MAX + 256], ly[KX_DEC_NAME_MAX + 256];
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

static int same_file(const char *a, const char *b) {
  struct stat sa, sb;
  return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

int cmd_finetune(int argc, char **argv) {
  const char *from = NULL, *resume = NULL, *out = NULL;
  double budget = NAN;
  size_t pretrain = PRETRAIN_STEPS_DEFAULT;
  int have_steps = 0, have_lr = 0;
  /* train's argv: the passed-through options plus at most 6 added words */
  char **targv = kx_calloc((size_t)argc + 8, sizeof *targv);
  if (!targv) return 1;
  int targc = 0, rc = 0;
  targv[targc++] = (char *)cmd;
  for (int i = 1; i < argc && !rc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
      usage(stdout);
      free(targv);
      return 0;
    }
    if (strncmp(a, "--", 2)) { /* a stray word: train reports it */
      targv[targc++] = argv[i];
      continue;
    }
    char name[64];
    const char *eq = strchr(a, '=');
    size_t len = eq ? (size_t)(eq - a - 2) : strlen(a + 2);
    snprintf(name, sizeof name, "%.*s", (int)(len < sizeof name ? len : sizeof name - 1), a + 2);
    const char *val = eq ? eq + 1 : NULL;
    if (!eq && !is_flag(name)) {
      if (i + 1 >= argc) break; /* train reports the missing value */
      val = argv[i + 1];
    }
    int mine = 1;
    if (!strcmp(name, "from")) from = val;
    else if (!strcmp(name, "budget")) rc = kx_parse_double(val, "--budget", &budget);
    else if (!strcmp(name, "pretrain-steps")) rc = kx_parse_size(val, "--pretrain-steps", 1, (size_t)1 << 40, &pretrain);
    else if (!strcmp(name, "init-from")) rc = kx_fail(KX_EINVAL, "use --from with kapprox finetune");
    else mine = 0;
    if (!strcmp(name, "resume")) resume = val;
    if (!strcmp(name, "out")) out = val;
    have_steps |= !strcmp(name, "steps");
    have_lr |= !strcmp(name, "lr");
    if (!mine) {
      targv[targc++] = argv[i];
      if (!eq && !is_flag(name)) targv[targc++] = argv[i + 1];
    }
    if (!eq && !is_flag(name)) i++;
  }
  if (!rc && !isnan(budget) && !(budget > 0 && budget <= 1e6))
    rc = kx_fail(KX_EINVAL, "--budget must be > 0 (a fraction of the pre-training steps), got %g", budget);
  if (!rc && !isnan(budget) && have_steps) rc = kx_fail(KX_EINVAL, "give --steps or --budget, not both");
  if (!rc && !from && !resume) rc = kx_fail(KX_EINVAL, "--from STUDENT.h5 (or --resume FT.h5) is required");
  if (!rc && !out) rc = kx_fail(KX_EINVAL, "--out FILE is required (the fine-tuning checkpoint)");
  if (!rc && from && same_file(from, out))
    rc = kx_fail(KX_EINVAL, "--out %s is the model to fine-tune itself; give another file name", out);
  if (rc) {
    kx_cli_error(cmd, "%s (see kapprox finetune --help)", kx_error_message());
    free(targv);
    return 2;
  }
  if (resume && from && (rc = same_configuration(from, resume))) {
    kx_cli_error(cmd, "%s", kx_error_message());
    free(targv);
    return 1;
  }
  char steps_buf[32];
  /* the fine-tuning defaults; a resumed run takes its checkpoint's (and
   * train refuses a --budget that disagrees with them) */
  if (!have_steps && (!resume || !isnan(budget))) {
    double steps = floor((isnan(budget) ? 1.0 / 16.0 : budget) * (double)pretrain + 0.5);
    snprintf(steps_buf, sizeof steps_buf, "%.0f", steps < 1 ? 1.0 : steps);
    targv[targc++] = "--steps";
    targv[targc++] = steps_buf;
  }
  if (!resume) {
    targv[targc++] = "--init-from";
    targv[targc++] = (char *)from;
    if (!have_lr) {
      targv[targc++] = "--lr";
      targv[targc++] = FINETUNE_LR_DEFAULT;
    }
  }
  targv[targc] = NULL;
  rc = cmd_train(targc, targv);
  free(targv);
  return rc;
}
