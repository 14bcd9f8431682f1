/* kapprox dump-qk: the queries, keys and values a trained decoder computes
 * on validation text, as a Q/K file for the kernel experiments. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/kx_cli.h"
#include "core/kx_error.h"
#include "experiments/commands/commands.h"
#include "experiments/commands/decoder_cli.h"
#include "experiments/model/dec_ckpt.h"
#include "experiments/model/dec_layers.h"
#include "experiments/model/dec_sample.h"
#include "experiments/qk/qk_file.h"

static void usage(FILE *out) {
  fprintf(out,
          "usage: kapprox dump-qk --out FILE.h5 [--checkpoint FILE] [options]\n\n"
          "Runs a trained decoder over one window of the validation text (every 20th\n"
          "line of the training text) and writes, for every layer and head, the queries\n"
          "and keys after rotary embedding and the values, in the Q/K file schema\n"
          "(/layer<L>/q, k, v: heads x tokens x d, float32; causal = 1; scaled = 0: the\n"
          "attention logit is q.k/sqrt(d), except for the retnet and linformer kinds,\n"
          "whose q already carries 1/sqrt(d): scaled = 1).\n\n"
          "  --checkpoint FILE    checkpoint (default decoder.h5)\n"
          "  --out FILE.h5        output Q/K file (required)\n"
          "  --text FILE          the text the model was trained on (default: KJV corpus)\n"
          "  --tokens N           window length, at most the model's context [context]\n"
          "  --offset N           start of the window in the validation text [0]\n");
}

int cmd_dump_qk(int argc, char **argv) {
  const char *cmd = "dump-qk", *ck = "decoder.h5", *out = NULL, *text = NULL;
  size_t tokens = 0, offset = 0;
  static const struct option lo[] = {{"checkpoint", 1, 0, 'c'}, {"out", 1, 0, 'o'}, {"text", 1, 0, 't'},
                                     {"tokens", 1, 0, 'n'},     {"offset", 1, 0, 'f'}, {"help", 0, 0, 'h'},
                                     {0, 0, 0, 0}};
  optind = 1;
  opterr = 0;
  int c;
  while ((c = getopt_long(argc, argv, ":h", lo, NULL)) != -1) {
    int bad = 0;
    switch (c) {
      case 'c': ck = optarg; break;
      case 'o': out = optarg; break;
      case 't': text = optarg; break;
      case 'n': bad = kx_parse_size(optarg, "--tokens", 1, 1u << 20, &tokens); break;
      case 'f': bad = kx_parse_size(optarg, "--offset", 0, (size_t)1 << 40, &offset); break;
      case 'h': usage(stdout); return 0;
      default: return kx_cli_option_error(cmd, c, argv);
    }
    if (bad) return kx_cli_value_error(cmd, NULL);
  }
  if (optind < argc) return kx_cli_extra_operand(cmd, argv[optind], "see kapprox dump-qk --help");
  if (!out) {
    kx_cli_error(cmd, "--out FILE.h5 is required");
    return 2;
  }
  kx_decoder m;
  kx_dec_vocab v;
  if (kx_cli_load_decoder(cmd, ck, &m, &v)) return 1;
  int rc = 1;
  char *path = NULL;
  kx_dec_data d;
  memset(&d, 0, sizeof d);
  kx_qk_layer *layers = NULL;
  if (!tokens) tokens = m.cfg.ctx;
  if (tokens > m.cfg.ctx) {
    kx_cli_error(cmd, "--tokens %zu exceeds the model's context %zu", tokens, m.cfg.ctx);
    rc = 2;
    goto done;
  }
  int generated;
  if (text) {
    path = strdup(text);
  } else if (kx_dec_default_corpus(&path, &generated)) {
    kx_cli_error(cmd, "%s", kx_error_message());
    goto done;
  }
  if (!path || kx_dec_data_load(path, &v, &d)) {
    kx_cli_error(cmd, "%s", kx_error_message());
    goto done;
  }
  if (offset + tokens > d.n_val) {
    kx_cli_error(cmd, "the validation text has %zu characters; --offset %zu + --tokens %zu does not fit", d.n_val,
                 offset, tokens);
    rc = 2;
    goto done;
  }
  layers = kx_calloc(m.cfg.layers, sizeof *layers);
  int scaled = 0;
  if (!layers || kx_dec_extract_qk(&m, d.val + offset, tokens, layers, &scaled) ||
      kx_qk_write(out, scaled, 1, m.cfg.layers, layers, 1)) {
    kx_cli_error(cmd, "%s", kx_error_message());
    goto done;
  }
  printf("wrote %s: %zu layers x %zu heads x %zu tokens x d = %zu (after rotary; scaled = %d, causal = 1)\n", out,
         m.cfg.layers, m.cfg.heads, tokens, m.cfg.width / m.cfg.heads, scaled);
  rc = 0;
done:
  if (layers)
    for (size_t l = 0; l < m.cfg.layers; l++) kx_qk_layer_free(&layers[l]);
  free(layers);
  free(path);
  kx_dec_data_free(&d);
  kx_dec_free(&m);
  kx_dec_vocab_free(&v);
  return rc;
}
