/* kapprox import: a llama2.c checkpoint into a kapprox checkpoint. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/kx_cli.h"
#include "core/kx_error.h"
#include "core/kx_lock.h"
#include "experiments/commands/commands.h"
#include "experiments/model/dec_ckpt.h"
#include "experiments/model/dec_layers.h"
#include "experiments/model/dec_llama2c.h"

static void usage(FILE *out) {
  fprintf(out,
          "usage: kapprox import --from MODEL.bin --out MODEL.h5 [--ctx N]\n\n"
          "Reads a llama2.c checkpoint, the legacy export (version 0) or the float32\n"
          "export (version 1), and writes a kapprox checkpoint of the llama architecture\n"
          "(docs/llama.md) whose vocabulary is the model's token ids.  The int8 export\n"
          "(version 2) is refused.\n\n"
          "  --from FILE    llama2.c checkpoint (.bin)\n"
          "  --out FILE     checkpoint to write (HDF5, atomically)\n"
          "  --ctx N        the model's context (default: the file's seq_len)\n");
}

int cmd_import(int argc, char **argv) {
  const char *cmd = "import", *from = NULL, *out = NULL;
  size_t ctx = 0;
  static const struct option lo[] = {
      {"from", 1, 0, 'f'}, {"out", 1, 0, 'o'}, {"ctx", 1, 0, 'c'}, {"help", 0, 0, 'h'}, {0, 0, 0, 0}};
  optind = 1;
  opterr = 0;
  int c;
  while ((c = getopt_long(argc, argv, ":h", lo, NULL)) != -1) {
    int bad = 0;
    switch (c) {
      case 'f': from = optarg; break;
      case 'o': out = optarg; break;
      case 'c': bad = kx_parse_size(optarg, "--ctx", 2, 8192, &ctx); break;
      case 'h': usage(stdout); return 0;
      default: return kx_cli_option_error(cmd, c, argv);
    }
    if (bad) return kx_cli_value_error(cmd, "see kapprox import --help");
  }
  if (optind < argc) return kx_cli_extra_operand(cmd, argv[optind], "see kapprox import --help");
  if (!from || !out) {
    kx_cli_error(cmd, "give --from MODEL.bin and --out MODEL.h5 (see kapprox import --help)");
    return 2;
  }
  kx_dec_threads_init();
  kx_decoder m;
  if (kx_llama2c_load(from, ctx, &m)) {
    kx_cli_error(cmd, "%s", kx_error_message());
    return 1;
  }
  kx_dec_vocab v = {0};
  v.V = m.cfg.vocab;
  v.vocab = malloc(v.V * sizeof *v.vocab);
  int rc = v.vocab ? 0 : KX_ENOMEM;
  for (size_t i = 0; !rc && i < v.V; i++) v.vocab[i] = (uint32_t)i;
  /* what the loader would refuse is not written */
  if (!rc) rc = kx_dec_ckpt_probe(&m);
  kx_lock lock;
  int locked = !rc && !kx_lock_file(&lock, out);
  if (!rc && !locked) rc = KX_EIO;
  if (!rc) rc = kx_dec_ckpt_save(out, &m, &v, NULL, NULL);
  if (locked) kx_lock_release(&lock);
  if (!rc) {
    size_t n = 0;
    for (size_t i = 0; i < m.tab.n; i++) n += m.tab.t[i].size;
    printf("imported %s: llama, %zu layers, %zu heads (%zu key/value), width %zu, SwiGLU %zu, vocabulary %zu token "
           "ids, context %zu, %s classifier, %zu parameters -> %s\n",
           from, m.cfg.layers, m.cfg.heads, kx_dec_kv_heads(&m.cfg), m.cfg.width, kx_dec_ffn_hidden(&m.cfg),
           m.cfg.vocab, m.cfg.ctx, m.cfg.tied ? "shared" : "separate", n, out);
  } else {
    kx_cli_error(cmd, "%s", kx_error_message());
  }
  free(v.vocab);
  kx_dec_free(&m);
  return rc ? 1 : 0;
}
