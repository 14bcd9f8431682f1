/* kapprox sample: continue a prompt with a trained decoder. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/kx_cli.h"
#include "core/kx_error.h"
#include "experiments/commands/commands.h"
#include "experiments/commands/decoder_cli.h"
#include "experiments/model/dec_ckpt.h"
#include "experiments/model/dec_infer.h"
#include "experiments/model/dec_layers.h"
#include "experiments/model/dec_sample.h"

static void usage(FILE *out) {
  fprintf(out,
          "usage: kapprox sample [--checkpoint FILE] [options]\n\n"
          "Continues a prompt with a decoder trained by `kapprox train` and prints the\n"
          "prompt followed by the generated text.  The prompt is prefilled with the\n"
          "parallel form, then each token is one recurrent step: a KV cache for softmax,\n"
          "a fixed-size state per head for the linear kinds.  Kinds whose weights depend\n"
          "on the absolute position (cosformer, linformer) stop at the training context\n"
          "(prompt + length <= ctx); a length whose state would not fit in memory is\n"
          "refused up front.\n\n"
          "  --checkpoint FILE    checkpoint (default decoder.h5)\n"
          "  --prompt TEXT        text to continue (default: a newline, i.e. a new verse);\n"
          "                       every character must be in the model's vocabulary\n"
          "  --length N           characters to generate [500]\n"
          "  --temperature X      softmax temperature; 0 = always the most likely [0.8]\n"
          "  --top-k N            sample only among the N most likely characters; 0 = all [0]\n"
          "  --seed N             seed of the sampling [0]\n");
}

int cmd_sample(int argc, char **argv) {
  const char *cmd = "sample", *ck = "decoder.h5", *prompt = "\n";
  size_t length = 500, top_k = 0;
  double temperature = 0.8;
  uint64_t seed = 0;
  static const struct option lo[] = {{"checkpoint", 1, 0, 'c'}, {"prompt", 1, 0, 'p'}, {"length", 1, 0, 'n'},
                                     {"temperature", 1, 0, 't'}, {"top-k", 1, 0, 'k'},  {"seed", 1, 0, 's'},
                                     {"help", 0, 0, 'h'},       {0, 0, 0, 0}};
  optind = 1;
  opterr = 0;
  int c;
  while ((c = getopt_long(argc, argv, ":h", lo, NULL)) != -1) {
    int bad = 0;
    switch (c) {
      case 'c': ck = optarg; break;
      case 'p': prompt = optarg; break;
      case 'n': bad = kx_parse_size(optarg, "--length", 0, (size_t)1 << 40, &length); break;
      case 't':
        bad = kx_parse_double(optarg, "--temperature", &temperature);
        if (!bad && temperature < 0) bad = kx_fail(KX_EINVAL, "--temperature must be >= 0, got %s", optarg);
        break;
      case 'k': bad = kx_parse_size(optarg, "--top-k", 0, 1u << 20, &top_k); break;
      case 's': bad = kx_parse_u64(optarg, "--seed", &seed); break;
      case 'h': usage(stdout); return 0;
      default: return kx_cli_option_error(cmd, c, argv);
    }
    if (bad) return kx_cli_value_error(cmd, NULL);
  }
  if (optind < argc) return kx_cli_extra_operand(cmd, argv[optind], "give the checkpoint with --checkpoint");
  kx_decoder m;
  kx_dec_vocab v;
  if (kx_cli_load_decoder(cmd, ck, &m, &v)) return 1;
  int *ids = NULL, *out = NULL;
  size_t n = 0;
  int rc = 1;
  if (!*prompt) {
    kx_cli_error(cmd, "--prompt must not be empty");
    rc = 2;
    goto done;
  }
  if (kx_dec_encode(&v, prompt, &ids, &n)) {
    kx_cli_error(cmd, "--prompt: %s", kx_error_message());
    rc = 2;
    goto done;
  }
  if (kx_dec_infer_check(&m, n + length)) {
    kx_cli_error(cmd, "%s", kx_error_message());
    rc = 2;
    goto done;
  }
  out = kx_malloc((length ? length : 1) * sizeof(int));
  if (!out || kx_dec_infer_generate(&m, ids, n, length, temperature, top_k, seed, out)) {
    kx_cli_error(cmd, "%s", kx_error_message());
    goto done;
  }
  fputs(prompt, stdout);
  char buf[8];
  for (size_t i = 0; i < length; i++) fwrite(buf, 1, kx_dec_decode(&v, out[i], buf), stdout);
  fputc('\n', stdout);
  rc = 0;
done:
  free(ids);
  free(out);
  kx_dec_free(&m);
  kx_dec_vocab_free(&v);
  return rc;
}
