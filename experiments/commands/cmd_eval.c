/* kapprox eval: validation loss, bits per character and next-character
 * accuracy of a decoder checkpoint (e.g. a converted model before any
 * fine-tuning: the zero-shot loss), the in-context recall probe, and its
 * attention KL against a teacher. */
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
#include "experiments/model/dec_recall.h"

static const char cmd[] = "eval";

static void usage(FILE *out) {
  fprintf(out,
          "usage: kapprox eval --checkpoint FILE.h5 [options]\n\n"
          "Scores a decoder checkpoint on the validation text (every 20th line) in\n"
          "consecutive windows of its context: cross-entropy in nats and bits per\n"
          "character and next-character accuracy (a model of token ids: per token, on\n"
          "a token file, each story scored from its BOS); then the in-context recall probe:\n"
          "random strings of the vocabulary's characters, each shown twice in a row,\n"
          "scored on the second copy (an exact look-back predicts it perfectly) and on\n"
          "the first (nothing to look back at: what a model that recalls nothing scores\n"
          "on both); with --teacher, also the attention KL against that softmax model\n"
          "(mean over layers, heads and query rows of KL(teacher row || model row), on\n"
          "evenly spaced validation windows) and the teacher's recall.\n\n"
          "  --checkpoint FILE    model to score (required)\n"
          "  --text FILE          the text (default: the KJV corpus); its characters must\n"
          "                       be in the model's vocabulary\n"
          "  --windows N          score N evenly spaced context-length windows instead of\n"
          "                       the whole validation text (kapprox train's estimate;\n"
          "                       token data: each from the BOS of its story)\n"
          "  --batch N            windows per forward pass [16]\n"
          "  --teacher FILE       softmax checkpoint for the attention KL\n"
          "  --kl-windows N       validation windows of the attention KL [16]\n"
          "  --recall-length N    characters of each recall string [half the context\n"
          "                       minus one; at most (context + 1) / 2]\n"
          "  --recall-strings N   recall strings [%d]; 0: no recall probe\n"
          "  --recall-seed N      seed of the strings [0]\n"
          "  --out FILE.csv       also write the numbers as one CSV row (header first;\n"
          "                       nan where not computed)\n",
          KX_DEC_RECALL_STRINGS);
}

/* One line of the recall probe. */
static void print_recall(const char *who, const kx_dec_vocab *v, const kx_dec_recall_result *r) {
  const char *unit = kx_dec_unit(v);
  printf("  recall%s: %zu random strings of %zu %ss, each repeated once: second copy loss %.4f nats/%s, "
         "accuracy %.4f; first copy %.4f nats/%s, accuracy %.4f\n",
         who, r->strings, r->length, v->ids ? "token" : "character", r->loss, unit, r->accuracy, r->first_loss, unit,
         r->first_accuracy);
}

static int write_csv(const char *path, const char *ck, const char *label, const kx_dec_eval_result *e, double kl,
                     size_t klw, const kx_dec_recall_result *r, const kx_dec_recall_result *tr) {
  kx_atomic_file f;
  int rc = kx_atomic_open(&f, path);
  if (rc) return rc;
  fprintf(f.fp, "checkpoint,attention,predictions,loss,bits,accuracy,attn_kl,kl_windows,recall_length,recall_strings,"
                "recall_loss,recall_accuracy,recall_first_loss,recall_first_accuracy,teacher_recall_loss,"
                "teacher_recall_accuracy,teacher_recall_first_loss\n");
  fprintf(f.fp, "%s,%s,%zu,%.9g,%.9g,%.9g,%.9g,%zu,%zu,%zu,%.9g,%.9g,%.9g,%.9g,%.9g,%.9g,%.9g\n", ck, label,
          e->predictions, e->loss, e->loss / log(2.0), e->accuracy, kl, isnan(kl) ? 0 : klw, r->length, r->strings,
          r->strings ? r->loss : NAN, r->strings ? r->accuracy : NAN, r->strings ? r->first_loss : NAN,
          r->strings ? r->first_accuracy : NAN, tr->strings ? tr->loss : NAN, tr->strings ? tr->accuracy : NAN,
          tr->strings ? tr->first_loss : NAN);
  return kx_atomic_commit(&f);
}
int cmd_eval(int argc, char **argv) {
  enum { O_CK = 256, O_TEXT, O_WINDOWS, O_BATCH, O_TEACHER, O_KLW, O_RLEN, O_RSTR, O_RSEED, O_OUT };
  static const struct option lo[] = {{"checkpoint", 1, 0, O_CK},         {"text", 1, 0, O_TEXT},
                                     {"windows", 1, 0, O_WINDOWS},       {"batch", 1, 0, O_BATCH},
                                     {"teacher", 1, 0, O_TEACHER},       {"kl-windows", 1, 0, O_KLW},
                                     {"recall-length", 1, 0, O_RLEN},    {"recall-strings", 1, 0, O_RSTR},
                                     {"recall-seed", 1, 0, O_RSEED},     {"out", 1, 0, O_OUT},
                                     {"help", 0, 0, 'h'},                {0, 0, 0, 0}};
  const char *ck = NULL, *text = NULL, *teacher_path = NULL, *csv = NULL;
  size_t windows = 0, batch = 16, klw = 16, rstrings = KX_DEC_RECALL_STRINGS;
  kx_dec_recall_opts ro = {0};
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
      case O_RLEN: bad = kx_parse_size(optarg, "--recall-length", 2, 1u << 20, &ro.length); break;
      case O_RSTR: bad = kx_parse_size(optarg, "--recall-strings", 0, 1u << 24, &rstrings); break;
      case O_RSEED: bad = kx_parse_u64(optarg, "--recall-seed", &ro.seed); break;
      case O_OUT: bad = kx_check_output_path(optarg, "--out"), csv = optarg; break;
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
  ro.strings = rstrings;
  ro.batch = batch;
  if (ro.length && 2 * ro.length - 1 > m.cfg.ctx) {
    kx_cli_error(cmd, "--recall-length %zu: the string and its copy (%zu input tokens) do not fit the context %zu of "
                 "%s; give at most %zu", ro.length, 2 * ro.length - 1, m.cfg.ctx, ck, (m.cfg.ctx + 1) / 2);
    kx_dec_free(&m);
    kx_dec_vocab_free(&vocab);
    return 2;
  }
  /* a context too short for the default length: no probe, said so */
  int recall = rstrings && (ro.length || kx_dec_recall_default_length(m.cfg.ctx));
  kx_dec_recall_result rr, tr;
  memset(&rr, 0, sizeof rr);
  memset(&tr, 0, sizeof tr);
  double kl = NAN;
  if (text) path = strdup(text);
  rc = text ? (path ? 0 : KX_ENOMEM) : kx_dec_default_corpus(&path, &generated);
  if (!rc) rc = kx_dec_data_load(path, &vocab, &data);
  kx_dec_eval_result r;
  char label[KX_DEC_LABEL_MAX];
  kx_dec_config_label(&m.cfg, label, sizeof label);
  if (!rc) rc = kx_dec_evaluate(&m, data.val, data.n_val, windows, batch, &r);
  if (!rc) {
    const char *u = kx_dec_unit(&vocab), *noun = vocab.ids ? "token" : "character";
    printf("%s (attention %s) on %zu validation %ss of %s:\n", ck, label, r.predictions, noun, path);
    printf("  loss %.4f nats/%s = %.4f bits/%s, next-%s accuracy %.4f\n", r.loss, u, r.loss / log(2.0), u, noun,
           r.accuracy);
  }
  if (!rc && recall) rc = kx_dec_recall(&m, &ro, &rr);
  if (!rc && recall) print_recall("", &vocab, &rr);
  if (!rc && rstrings && !recall)
    printf("  recall: no probe, the context %zu is too short for a string and its copy\n", m.cfg.ctx);
  if (!rc && teacher_path) {
    rc = kx_dec_ckpt_load(teacher_path, &t, &tvocab, NULL, NULL);
    if (!rc && (tvocab.V != vocab.V || memcmp(tvocab.vocab, vocab.vocab, vocab.V * sizeof *vocab.vocab)))
      rc = kx_fail(KX_EINVAL, "--teacher %s has another vocabulary than %s", teacher_path, ck);
    if (!rc && strcmp(t.cfg.attn_kind, "softmax"))
      rc = kx_fail(KX_EINVAL, "--teacher %s has attention '%s', not softmax", teacher_path, t.cfg.attn_kind);
    if (!rc) rc = kx_dec_attn_kl(&t, &m, data.val, data.n_val, klw, &kl);
    if (!rc) printf("  attention KL against %s: %.4f nats per query row (%zu windows)\n", teacher_path, kl, klw);
    if (!rc && recall) rc = kx_dec_recall(&t, &ro, &tr);
    if (!rc && recall) print_recall(" of the teacher", &vocab, &tr);
  }
  if (!rc && csv) rc = write_csv(csv, ck, label, &r, kl, klw, &rr, &tr);
  if (rc) kx_cli_error(cmd, "%s", kx_error_message());
  kx_dec_free(&m);
  kx_dec_free(&t);
  kx_dec_vocab_free(&vocab);
  kx_dec_vocab_free(&tvocab);
  kx_dec_data_free(&data);
  free(path);
  return rc ? 1 : 0;
}
