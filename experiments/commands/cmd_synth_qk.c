/* kapprox synth-qk: writes synthetic Q/K/V in the Q/K file schema, so the
 * file path of every experiment can be exercised and shared without a
 * model. */
#include <stdio.h>
#include <stdlib.h>

#include "core/kx_cli.h"
#include "core/kx_error.h"
#include "core/kx_seed.h"
#include "experiments/commands/commands.h"
#include "experiments/qk/qk_file.h"
#include "experiments/eval/spec_options.h"
#include "experiments/qk/synthetic.h"

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
          "  --causal          mark the attention as causal (default not; --no-causal)\n"
          "  --float32         store float32 (default float64)\n"
          "  --seed S          (default 0)\n");
}

typedef struct {
  const char *out;
  size_t layers, heads, tokens;
  uint64_t seed;
  int single;
} synth_cli;

enum { O_OUT, O_LAYERS, O_HEADS, O_TOKENS, O_FLOAT32, O_SEED };

static int on_option(void *ctx, int id, const char *arg) {
  synth_cli *c = ctx;
  switch (id) {
  case O_OUT: c->out = arg; return 0;
  case O_LAYERS: return kx_parse_size(arg, "--layers", 1, 4096, &c->layers);
  case O_HEADS: return kx_parse_size(arg, "--heads", 1, 4096, &c->heads);
  /* a file's heads: the limit of --max-tokens, not of synthetic heads in memory */
  case O_TOKENS: return kx_parse_size(arg, "--tokens", 1, KX_SPEC_MAX_FILE_TOKENS, &c->tokens);
  case O_FLOAT32: c->single = 1; return 0;
  default: return kx_parse_u64(arg, "--seed", &c->seed);
  }
}

static void usage_of(FILE *out, void *ctx) {
  (void)ctx;
  usage(out);
}

static const kx_cli_option own_options[] = {{"out", 1, O_OUT},         {"layers", 1, O_LAYERS},
                                            {"heads", 1, O_HEADS},     {"tokens", 1, O_TOKENS},
                                            {"float32", 0, O_FLOAT32}, {"seed", 1, O_SEED},
                                            {NULL, 0, 0}};

int cmd_synth_qk(int argc, char **argv) {
  synth_cli cli = {.layers = 2, .heads = 4, .tokens = 256};
  kx_cli_command command = {"synth-qk", KX_OPT_DIM | KX_OPT_NORM | KX_OPT_CAUSAL, "", own_options, on_option, &cli,
                            usage_of};
  kx_spec_args a = {0};
  kx_spec_defaults(&a.spec);
  a.spec.norms[0] = (kx_norm_spec){0.5, 1.5};
  int rc = kx_spec_parse_cli(&command, argc, argv, &a);
  if (rc) return rc < 0 ? 0 : rc;
  const char *out = cli.out;
  const size_t layers = cli.layers, heads = cli.heads, tokens = cli.tokens, d = a.spec.d;
  const kx_norm_spec norm = a.spec.norms[0];
  const uint64_t seed = cli.seed;
  const int causal = a.spec.causal > 0, single = cli.single;
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
