/* kapprox eval: validation loss, bits per character and next-character
 * accuracy of a decoder checkpoint (e.g. a converted model before any
 * fine-tuning: the zero-shot loss), and its attention KL against a teacher. */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/kx_cli.h"
#include "core/kx_error.h"
#include "experiments/commands/commands.h"
#include "experiments/commands/decoder_cli.h"
#include "experiments/model/dec_attn_eval.h"
#include "experiments/model/dec_ckpt.h"
#include "experiments/model/dec_eval.h"
#include "experiments/model/dec_layers.h"

static const char cmd[] = "eval";

static void usage(FILE *out) {
  fprintf(out,
          "usage: kapprox eval --checkpoint FILE.h5 [options]\n\n"
          "Scores a decoder checkpoint on the validation text (every 20th line) in\n"
          "consecutive windows of its context: cross-entropy in nats and bits per\n"
          "character and next-character accuracy; with --teacher, also the attention KL\n"
          "against that softmax model (mean over layers, heads and query rows of\n"
          "KL(teacher row || model row), on evenly spaced validation windows).\n\n"
          "  --checkpoint FILE    model to score (required)\n"
          "  --text FILE          the text (default: the KJV corpus); its characters must\n"
          "                       be in the model's vocabulary\n"
          "  --windows N          score N evenly spaced context-length windows instead of\n"
          "                       the whole validation text (kapprox train's estimate)\n"
          "  --batch N            windows per forward pass [16]\n"
          "  --teacher FILE       softmax checkpoint for the attention KL\n"
          "  --kl-windows N       validation windows of the attention KL [16]\n");
}

int cmd_eval(int argc, char **argv) {
  enum { O_CK = 256, O_TEXT, O_WINDOWS, O_BATCH, O_TEACHER, O_KLW };
  static const struct option lo[] = {{"checkpoint", 1, 0, O_CK}, {"text", 1, 0, O_TEXT},
                                     {"windows", 1, 0, O_WINDOWS},   {"batch", 1, 0, O_BATCH},
                                     {"teacher", 1, 0, O_TEACHER}, {"kl-windows", 1, 0, O_KLW},
                                     {"help", 0, 0, 'h'},        {0, 0, 0, 0}};
  const char *ck = NULL, *text = NULL, *teacher_path = NULL;
  size_t windows = 0, batch = 16, klw = 16;
  int c, bad = 0;
  optind = 1;
  opterr = 0;
  while ((c = getopt_long(argc, argv, ":h", lo, NULL)) != -1) {
    switch (c) {
      case O_CK: ck = optarg; break;
      case O_TEXT: text = optarg; break;
      case O_WINDOWS: bad = kx_parse_size(optarg, "--windows", 1, 1u << 24, &windows); break;
      case O_BATCH: bad = kx_parse_size(optarg, "--batch", 1, 4096, &batch); break;
      case O_TEACHER: teacher_path = optarg; break;
      case O_KLW: bad = kx_parse_size(optarg, "--kl-windows", 1, 1u << 20, &klw); break;
      case 'h': usage(stdout); return 0;
      default: return kx_cli_option_error(cmd, c, argv);
    }
    if (bad) return kx_cli_value_error(cmd, "see kapprox eval --help");
  }
  if (optind < argc || !ck) {
    kx_cli_error(cmd, optind < argc ? "unexpected argument (see kapprox eval --help)"
                                    : "--checkpoint FILE is required (see kapprox eval --help)");
    return 2;
  }
  kx_decoder m, t;
  kx_dec_vocab vocab, tvocab;
  kx_dec_data data;
  memset(&t, 0, sizeof t);
  memset(&tvocab, 0, sizeof tvocab);
  memset(&data, 0, sizeof data);
  char *path = NULL;
  int generated = 0;
  if (kx_cli_load_decoder(cmd, ck, &m, &vocab)) return 1;
  int rc = 0;
  if (text) path = strdup(text);
  rc = text ? (path ? 0 : KX_ENOMEM) : kx_dec_default_corpus(&path, &generated);
  if (!rc) rc = kx_dec_data_load(path, &vocab, &data);
  kx_dec_eval_result r;
  if (!rc) rc = kx_dec_evaluate(&m, data.val, data.n_val, windows, batch, &r);
  if (!rc) {
    printf("%s (attention %s) on %zu validation characters of %s:\n", ck, m.cfg.attn_kind, r.predictions, path);
    printf("  loss %.4f nats/char = %.4f bits/char, next-character accuracy %.4f\n", r.loss, r.loss / log(2.0),
           r.accuracy);
  }
  if (!rc && teacher_path) {
    double kl;
    rc = kx_dec_ckpt_load(teacher_path, &t, &tvocab, NULL, NULL);
    if (!rc && (tvocab.V != vocab.V || memcmp(tvocab.vocab, vocab.vocab, vocab.V * sizeof *vocab.vocab)))
      rc = kx_fail(KX_EINVAL, "--teacher %s has another vocabulary than %s", teacher_path, ck);
    if (!rc && strcmp(t.cfg.attn_kind, "softmax"))
      rc = kx_fail(KX_EINVAL, "--teacher %s has attention '%s', not softmax", teacher_path, t.cfg.attn_kind);
    if (!rc) rc = kx_dec_attn_kl(&t, &m, data.val, data.n_val, klw, &kl);
    if (!rc) printf("  attention KL against %s: %.4f nats per query row (%zu windows)\n", teacher_path, kl, klw);
  }
  if (rc) kx_cli_error(cmd, "%s", kx_error_message());
  kx_dec_free(&m);
  kx_dec_free(&t);
  kx_dec_vocab_free(&vocab);
  kx_dec_vocab_free(&tvocab);
  kx_dec_data_free(&data);
  free(path);
  return rc ? 1 : 0;
}
