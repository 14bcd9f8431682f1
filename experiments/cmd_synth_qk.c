/* kapprox synth-qk: writes synthetic Q/K/V in the Q/K file schema, so the
 * file path of every experiment can be exercised and shared without a
 * model. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/kx_cli.h"
#include "core/kx_error.h"
#include "core/kx_seed.h"
#include "commands.h"
#include "experiments/qk_file.h"
#include "experiments/spec.h"
#include "experiments/synthetic.h"

static void usage(FILE *out) {
  fprintf(out,
          "usage: kapprox synth-qk --out FILE.h5 [options]\n\n"
          "Writes synthetic Q, K, V (directions uniform on the sphere, norms as given)\n"
          "in the Q/K file schema (scaled = 1: q.k is the logit).\n\n"
          "  --out FILE.h5     output file (required; written atomically)\n"
          "  --layers L        number of layers (default 2)\n"
          "  --heads H         heads per layer (default 4)\n"
          "  --tokens N        tokens per head (default 256)\n"
          "  --dim D           head dimension (default 64)\n"
          "  --norm SPEC       norm of each q and k: '1.0' or uniform 'lo:hi' (default 0.5:1.5)\n"
          "  --causal          mark the attention as causal (default not)\n"
          "  --float32         store float32 (default float64)\n"
          "  --seed S          (default 0)\n");
}

int cmd_synth_qk(int argc, char **argv) {
  static const struct option opts[] = {
      {"out", required_argument, 0, 'o'},    {"layers", required_argument, 0, 'L'},
      {"heads", required_argument, 0, 'H'},  {"tokens", required_argument, 0, 'n'},
      {"dim", required_argument, 0, 'd'},    {"norm", required_argument, 0, 'r'},
      {"causal", no_argument, 0, 'c'},       {"float32", no_argument, 0, 'f'},
      {"seed", required_argument, 0, 's'},   {"help", no_argument, 0, 'h'},
      {0, 0, 0, 0}};
  const char *out = NULL;
  size_t layers = 2, heads = 4, tokens = 256, d = 64;
  kx_norm_spec norm = {0.5, 1.5};
  uint64_t seed = 0;
  int causal = 0, single = 0, rc = 0, c;
  optind = 1;
  opterr = 0;
  while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
    switch (c) {
    case 'h': usage(stdout); return 0;
    case 'o': out = optarg; break;
    case 'L': rc = kx_parse_size(optarg, "--layers", 1, 4096, &layers); break;
    case 'H': rc = kx_parse_size(optarg, "--heads", 1, 4096, &heads); break;
    case 'n': rc = kx_parse_size(optarg, "--tokens", 1, KX_SPEC_MAX_FILE_TOKENS, &tokens); break;
    case 'd': rc = kx_parse_size(optarg, "--dim", 1, KX_SPEC_MAX_DIM, &d); break;
    case 'r': rc = kx_parse_norm_spec(optarg, "--norm", &norm); break;
    case 'c': causal = 1; break;
    case 'f': single = 1; break;
    case 's': rc = kx_parse_u64(optarg, "--seed", &seed); break;
    default:
      kx_cli_error("synth-qk", "unknown or incomplete option '%s' (see --help)", argv[optind - 1]);
      return 2;
    }
    if (rc) {
      kx_cli_error("synth-qk", "%s", kx_error_message());
      return 2;
    }
  }
  if (!out) {
    kx_cli_error("synth-qk", "--out FILE.h5 is required");
    return 2;
  }
  if (heads * tokens * d > ((size_t)1 << 28)) {
    kx_cli_error("synth-qk", "%zu x %zu x %zu values per layer is too large", heads, tokens, d);
    return 2;
  }
  kx_qk_layer *ls = kx_calloc(layers, sizeof *ls);
  if (!ls) rc = KX_ENOMEM;
  for (size_t l = 0; l < layers && !rc; l++) {
    ls[l] = (kx_qk_layer){.index = (int)l, .heads = heads, .tokens = tokens, .d = d, .dv = d};
    size_t per = tokens * d;
    ls[l].q = kx_malloc(heads * per * sizeof(double));
    ls[l].k = kx_malloc(heads * per * sizeof(double));
    ls[l].v = kx_malloc(heads * per * sizeof(double));
    if (!ls[l].q || !ls[l].k || !ls[l].v) rc = KX_ENOMEM;
    for (size_t h = 0; h < heads && !rc; h++)
      rc = kx_synthetic_qkv(tokens, d, d, norm, kx_seed_derive(seed, l * 4096 + h), ls[l].q + h * per,
                            ls[l].k + h * per, ls[l].v + h * per);
  }
  if (!rc) rc = kx_qk_write(out, 1, causal, layers, ls, single);
  for (size_t l = 0; ls && l < layers; l++) kx_qk_layer_free(&ls[l]);
  free(ls);
  if (rc) {
    kx_cli_error("synth-qk", "%s", kx_error_message());
    return 1;
  }
  fprintf(stderr, "wrote %zu layers x %zu heads x %zu tokens x d = %zu to %s\n", layers, heads, tokens, d, out);
  return 0;
}
