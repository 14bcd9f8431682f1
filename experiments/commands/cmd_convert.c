/* kapprox convert: a softmax checkpoint into another attention kind,
 * optionally followed by attention transfer (stage 1). */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/kx_cli.h"
#include "core/kx_error.h"
#include "core/kx_fs.h"
#include "core/kx_lock.h"
#include "experiments/commands/commands.h"
#include "experiments/commands/decoder_cli.h"
#include "experiments/model/dec_ckpt.h"
#include "experiments/model/dec_convert.h"
#include "experiments/model/dec_layers.h"
#include "experiments/model/dec_transfer.h"

static const char cmd[] = "convert";

static void usage(FILE *out) {
  fprintf(out,
          "usage: kapprox convert --from TEACHER.h5 --attention KIND --out STUDENT.h5 [options]\n\n"
          "Turns a softmax decoder checkpoint (kapprox train) into one with attention KIND:\n"
          "every tensor the two share by name and shape is copied (embedding, LayerNorms,\n"
          "MLPs, unembedding and, for most kinds, the q/k/v and output projections); only\n"
          "the kind's new tensors are initialised, from --seed.  The result has no\n"
          "optimizer state: fine-tune it with kapprox finetune, or score it as it is\n"
          "(the zero-shot loss) with kapprox eval.\n\n"
          "  --from FILE          softmax teacher checkpoint (required)\n"
          "  --attention KIND     one of: %s (required)\n"
          "  --dijiang-form LIST  a DiJiang kind's switches, comma-separated, e.g.\n"
          "                       softmax,noden (docs/dijiang-factors.md) [the kind's own]\n"
          "  --out FILE           student checkpoint to write (required; atomically)\n"
          "  --seed N             seed of the new tensors and of transfer batches [0]\n"
          "  --softmax-layers LIST  layer hybrid: keep these layers (0-based, comma-\n"
          "                       separated, e.g. 0,3) softmax, exactly the teacher's,\n"
          "                       and convert only the others (at least one)\n"
          "  --window W           sliding-window hybrid: exact softmax over the last W\n"
          "                       positions (W <= the context; 16 is a good start), KIND's\n"
          "                       linear attention before them, one normalisation; for the\n"
          "                       normalised linear kinds (docs/conversion.md) [none]\n"
          "attention transfer (stage 1), for the kinds with a trainable feature map:\n"
          "  %s\n"
          "(the others have nothing to train and convert without it):\n"
          "  --transfer-steps N   train the feature maps to reproduce the teacher's\n"
          "                       attention rows for N steps, teacher frozen [0: none]\n"
          "  --transfer-batch N   sequences per step [8]\n"
          "  --transfer-lr X      peak learning rate [1e-2]\n"
          "  --text FILE          training text of the transfer (default: the KJV corpus)\n"
          "  --quiet              no progress output\n",
          kx_dec_attn_names(), kx_dec_attn_transfer_names());
}

/* Tensor names without their "layer<l>/" prefix, each once, comma-separated. */
static void print_names(const char *label, const kx_param_table *tab, const unsigned char *pick) {
  printf("  %s:", label);
  int any = 0;
  for (size_t i = 0; i < tab->n; i++) {
    if (!pick[i]) continue;
    const char *n = tab->t[i].name, *slash = strchr(n, '/');
    const char *shown = !strncmp(n, "layer", 5) && slash ? slash + 1 : n;
    int seen = 0;
    for (size_t k = 0; k < i && !seen; k++) {
      const char *m = tab->t[k].name, *ms = strchr(m, '/');
      seen = pick[k] && !strcmp(!strncmp(m, "layer", 5) && ms ? ms + 1 : m, shown);
    }
    if (seen) continue;
    printf("%s %s%s", any ? "," : "", shown != n ? "layer<l>/" : "", shown);
    any = 1;
  }
  printf("%s\n", any ? "" : " (none)");
}

static void transfer_progress(uint64_t step, uint64_t steps, double loss, void *user) {
  int tty = *(int *)user;
  if (tty)
    fprintf(stderr, "\r\033[Kattention transfer %llu/%llu  loss %.4f", (unsigned long long)step,
            (unsigned long long)steps, loss);
  else if (step == steps || step % 50 == 0)
    fprintf(stderr, "attention transfer step %llu/%llu  loss %.4f\n", (unsigned long long)step,
            (unsigned long long)steps, loss);
  if (tty && step == steps) fprintf(stderr, "\n");
}

int cmd_convert(int argc, char **argv) {
  enum { O_FROM = 256, O_ATTN, O_OUT, O_SEED, O_TSTEPS, O_TBATCH, O_TLR, O_TEXT, O_QUIET, O_SMLAYERS, O_DUMP,
         O_WINDOW, O_DJFORM };
  static const struct option lo[] = {
      {"from", 1, 0, O_FROM},           {"attention", 1, 0, O_ATTN},    {"out", 1, 0, O_OUT},
      {"seed", 1, 0, O_SEED},           {"transfer-steps", 1, 0, O_TSTEPS}, {"transfer-batch", 1, 0, O_TBATCH},
      {"transfer-lr", 1, 0, O_TLR},     {"text", 1, 0, O_TEXT},         {"quiet", 0, 0, O_QUIET},
      {"softmax-layers", 1, 0, O_SMLAYERS}, {"dump-transfer", 1, 0, O_DUMP}, {"window", 1, 0, O_WINDOW},
      {"dijiang-form", 1, 0, O_DJFORM},
      {"help", 0, 0, 'h'},              {0, 0, 0, 0}};
  const char *from = NULL, *kind = NULL, *out = NULL, *text = NULL, *sm_layers = NULL, *form = NULL;
  kx_transfer_opts t = {.steps = 0, .batch = 8, .seed = 0, .lr = 1e-2};
  int quiet = 0, c, bad = 0;
  size_t sz, window = 0;
  optind = 1;
  opterr = 0;
  while ((c = getopt_long(argc, argv, ":h", lo, NULL)) != -1) {
    switch (c) {
      case O_FROM: from = optarg; break;
      case O_ATTN:
        if (!kx_dec_attn_find(optarg)) {
          kx_cli_error(cmd, "unknown --attention '%s' (known: %s)", optarg, kx_dec_attn_names());
          return 2;
        }
        kind = optarg;
        break;
      case O_OUT: out = optarg; break;
      case O_SEED: bad = kx_parse_u64(optarg, "--seed", &t.seed); break;
      case O_TSTEPS: bad = kx_parse_size(optarg, "--transfer-steps", 0, (size_t)1 << 40, &sz), t.steps = sz; break;
      case O_TBATCH: bad = kx_parse_size(optarg, "--transfer-batch", 1, 4096, &sz), t.batch = sz; break;
      case O_TLR:
        bad = kx_parse_double(optarg, "--transfer-lr", &t.lr);
        if (!bad && !(t.lr > 0 && t.lr <= 10)) bad = kx_fail(KX_EINVAL, "--transfer-lr must be in (0, 10], got %s", optarg);
        break;
      case O_TEXT: text = optarg; break;
      case O_SMLAYERS: sm_layers = optarg; break;
      case O_WINDOW: bad = kx_dec_parse_window(optarg, &window); break;
      case O_DJFORM: form = optarg; break;
      case O_QUIET: quiet = 1; break;
      case O_DUMP: t.dump = optarg; break; /* test hook (tests/torch_reference.py), not in --help */
      case 'h': usage(stdout); return 0;
      default: return kx_cli_option_error(cmd, c, argv);
    }
    if (bad) return kx_cli_value_error(cmd, "see kapprox convert --help");
  }
  if (optind < argc) return kx_cli_extra_operand(cmd, argv[optind], "see kapprox convert --help");
  if (!from || !kind || !out) {
    kx_cli_error(cmd, "--from, --attention and --out are required (see kapprox convert --help)");
    return 2;
  }
  if (kx_same_file(from, out)) {
    kx_cli_error(cmd, "--out %s is the teacher itself; give another file name", out);
    return 2;
  }
  /* the kind, its form switches and the window first (the sizes come with
   * the teacher), as one spec for the library ("dijiang+softmax+noden+w16") */
  kx_dec_config want;
  kx_dec_config_default(&want);
  snprintf(want.attn_kind, sizeof want.attn_kind, "%s", kind);
  if (form && kx_dec_config_set_form(&want, form, "--dijiang-form"))
    return kx_cli_value_error(cmd, "see kapprox convert --help");
  want.window = window;
  want.ctx = 8192;
  if (kx_dec_config_check_window(&want)) return kx_cli_value_error(cmd, "see kapprox convert --help");
  char spec[KX_DEC_LABEL_MAX];
  kx_dec_config_label(&want, spec, sizeof spec);
  uint32_t flips = want.dijiang_flips;
  kx_lock lock; /* the student is this run's until it is written */
  if (kx_lock_file(&lock, out)) {
    kx_cli_error(cmd, "%s", kx_error_message());
    return 1;
  }
  kx_decoder teacher, student;
  kx_dec_vocab vocab;
  kx_dec_data data;
  memset(&student, 0, sizeof student);
  memset(&data, 0, sizeof data);
  char *text_path = NULL;
  if (kx_cli_load_decoder(cmd, from, &teacher, &vocab)) {
    kx_lock_release(&lock);
    return 1;
  }
  int rc = 0;
  /* the layer list and the window need the teacher's depth and context; a
   * bad one is still a usage error */
  uint64_t mask = 0;
  want = teacher.cfg;
  snprintf(want.attn_kind, sizeof want.attn_kind, "%s", kind);
  want.window = window;
  want.dijiang_flips = flips;
  if ((sm_layers && kx_dec_parse_layers(sm_layers, "--softmax-layers", teacher.cfg.layers, &mask)) ||
      (want.softmax_layers = mask, kx_dec_config_check(&want))) {
    kx_cli_error(cmd, "%s (see kapprox convert --help)", kx_error_message());
    kx_dec_free(&teacher);
    kx_dec_vocab_free(&vocab);
    kx_lock_release(&lock);
    return 2;
  }
  rc = kx_dec_convert_hybrid(&teacher, spec, mask, t.seed, &student);
  if (rc) kx_fail_context(rc, "converting '%s': ", from);
  if (!rc && (t.steps || t.dump) && !kx_dec_transfer_supported(student.attn)) {
    fprintf(stderr,
            "%s: note: attention kind '%s' has nothing trainable in its feature map; converting without "
            "attention transfer (--transfer-steps ignored)\n",
            cmd, kind);
    t.steps = 0;
    t.dump = NULL;
  }
  if (!rc && (t.steps || t.dump)) {
    int generated = 0, tty = kx_stderr_is_tty() && !quiet;
    if (text) text_path = strdup(text);
    rc = text ? (text_path ? 0 : KX_ENOMEM) : kx_dec_default_corpus(&text_path, &generated);
    if (!rc) rc = kx_dec_data_load(text_path, &vocab, &data);
    if (!rc) rc = kx_dec_transfer(&teacher, &student, &data, &t, quiet ? NULL : transfer_progress, &tty);
  }
  if (!rc) rc = kx_dec_ckpt_save(out, &student, &vocab, NULL, NULL);
  if (!rc && !quiet) {
    unsigned char *reused = kx_calloc(student.tab.n + 1, 1), *dropped = kx_calloc(teacher.tab.n + 1, 1);
    unsigned char *fresh = kx_calloc(student.tab.n + 1, 1);
    if (reused && dropped && fresh) {
      size_t nr = 0;
      for (size_t i = 0; i < teacher.tab.n; i++) dropped[i] = 1;
      for (size_t i = 0; i < student.tab.n; i++) {
        long s = kx_dec_convert_source(&teacher, &student.tab.t[i]);
        reused[i] = s >= 0;
        fresh[i] = s < 0;
        nr += s >= 0;
        if (s >= 0) dropped[s] = 0;
      }
      char label[KX_DEC_LABEL_MAX], kept[256];
      kx_dec_config_label(&student.cfg, label, sizeof label);
      kx_dec_format_layers(mask, kept, sizeof kept);
      printf("%s (softmax) -> %s (%s): %zu tensors reused, %zu new (seed %llu)%s\n", from, out, label, nr,
             student.tab.n - nr, (unsigned long long)t.seed,
             t.steps ? ", feature maps trained by attention transfer" : "");
      if (mask)
        printf("  layer hybrid: layers %s keep the teacher's softmax attention, the others are %s\n", kept, spec);
      print_names("reused", &student.tab, reused);
      print_names("new", &student.tab, fresh);
      print_names("teacher tensors not used", &teacher.tab, dropped);
    }
    free(reused);
    free(dropped);
    free(fresh);
  }
  if (rc) kx_cli_error(cmd, "%s", kx_error_message());
  kx_dec_free(&teacher);
  kx_dec_free(&student);
  kx_dec_vocab_free(&vocab);
  kx_dec_data_free(&data);
  free(text_path);
  kx_lock_release(&lock);
  return rc ? 1 : 0;
}
