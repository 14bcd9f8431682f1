/* kapprox attn-maps: dumps the n x n attention maps of one head (exact and
 * per scheme) for figures like the paper's Fig. 3. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/kx_cli.h"
#include "core/kx_error.h"
#include "experiments/attn_maps.h"
#include "commands.h"
#include "experiments/grid.h"
#include "experiments/sweep.h"

static const char cmd[] = "attn-maps";

static void usage(FILE *out) {
  fprintf(out,
          "usage: kapprox attn-maps --out MAPS.h5 [options]\n\n"
          "Writes the attention weights of one head, exact and as approximated by each\n"
          "scheme's feature map, as n x n matrices (row i = query i; 0 where masked):\n"
          "HDF5 datasets /exact, /approx/<scheme>, /diff/<scheme> (approx - exact), and\n"
          "with --text DIR also gnuplot matrix files exact.txt, <scheme>.txt, diff-<scheme>.txt.\n\n"
          "  --out FILE.h5       HDF5 output (written atomically)\n"
          "  --text DIR          also write gnuplot matrix text files into DIR (must exist)\n"
          "  --schemes LIST      default: the sweep's default schemes\n"
          "  --m M               features (default 64)\n"
          "  --seed S            feature-map seed (default 0)\n"
          "  --kernel K          softmax (default) or gauss\n"
          "  --input FILE.h5     Q/K file; with --layer L (default 0) and --head H (default 0)\n"
          "  --max-tokens N      first N tokens of the head (default all)\n"
          "  --tokens N          synthetic tokens (default 64)\n"
          "  --dim D             synthetic head dimension (default 16)\n"
          "  --norm SPEC         synthetic norm of q and k (default 2)\n"
          "  --data-seed S       synthetic data seed (default 0)\n"
          "  --causal / --no-causal  (default: the file's attribute; synthetic: causal)\n"
          "  -h, --help          this text\n");
}

int cmd_attn_maps(int argc, char **argv) {
  enum { O_OUT = 256, O_TEXT, O_SCHEMES, O_M, O_SEED, O_KERNEL, O_INPUT, O_LAYER, O_HEAD, O_MAXTOK,
         O_TOKENS, O_DIM, O_NORM, O_DSEED, O_CAUSAL, O_NOCAUSAL };
  static const struct option opts[] = {
      {"out", required_argument, 0, O_OUT},       {"text", required_argument, 0, O_TEXT},
      {"schemes", required_argument, 0, O_SCHEMES}, {"m", required_argument, 0, O_M},
      {"seed", required_argument, 0, O_SEED},     {"kernel", required_argument, 0, O_KERNEL},
      {"input", required_argument, 0, O_INPUT},   {"layer", required_argument, 0, O_LAYER},
      {"head", required_argument, 0, O_HEAD},     {"max-tokens", required_argument, 0, O_MAXTOK},
      {"tokens", required_argument, 0, O_TOKENS}, {"dim", required_argument, 0, O_DIM},
      {"norm", required_argument, 0, O_NORM},     {"data-seed", required_argument, 0, O_DSEED},
      {"causal", no_argument, 0, O_CAUSAL},       {"no-causal", no_argument, 0, O_NOCAUSAL},
      {"help", no_argument, 0, 'h'},              {0, 0, 0, 0}};
  kx_head_source src;
  kx_head_source_defaults(&src);
  kx_fmap_options fo;
  kx_fmap_default_options(&fo);
  const char *out = NULL, *text = NULL, *schemes = NULL;
  size_t m = 64, layer = 0, head = 0;
  uint64_t seed = 0;
  int rc = 0, c;
  optind = 1;
  opterr = 0;
  while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
    switch (c) {
    case 'h': usage(stdout); return 0;
    case O_OUT: rc = kx_check_output_path(optarg, "--out"); out = optarg; break;
    case O_TEXT: rc = kx_check_output_dir(optarg, "--text"); text = optarg; break;
    case O_SCHEMES: schemes = optarg; break;
    case O_M: rc = kx_parse_size(optarg, "--m", 1, 1u << 20, &m); break;
    case O_SEED: rc = kx_parse_u64(optarg, "--seed", &seed); break;
    case O_KERNEL:
      rc = kx_parse_kernel(optarg, &fo.kernel);
      break;
    case O_INPUT: src.qk_path = optarg; break;
    case O_LAYER: rc = kx_parse_size(optarg, "--layer", 0, 1u << 30, &layer); break;
    case O_HEAD: rc = kx_parse_size(optarg, "--head", 0, 1u << 30, &head); break;
    case O_MAXTOK: rc = kx_parse_size(optarg, "--max-tokens", 1, 1u << 16, &src.max_tokens); break;
    case O_TOKENS: rc = kx_parse_size(optarg, "--tokens", 1, 1u << 14, &src.tokens); break;
    case O_DIM: rc = kx_parse_size(optarg, "--dim", 1, 21200, &src.d); break;
    case O_NORM: rc = kx_parse_norm_spec(optarg, &src.norm); break;
    case O_DSEED: rc = kx_parse_u64(optarg, "--data-seed", &src.data_seed); break;
    case O_CAUSAL: src.causal = 1; break;
    case O_NOCAUSAL: src.causal = 0; break;
    default:
      kx_cli_error(cmd, "unknown or incomplete option '%s' (see kapprox attn-maps --help)", argv[optind - 1]);
      return 2;
    }
    if (rc) {
      kx_cli_error(cmd, "%s", kx_error_message());
      return 2;
    }
  }
  if (optind < argc) {
    kx_cli_error(cmd, "unexpected argument '%s'", argv[optind]);
    return 2;
  }
  if (!out) {
    kx_cli_error(cmd, "--out FILE.h5 is required (see kapprox attn-maps --help)");
    return 2;
  }
  src.layer = (int)layer;
  src.head = (int)head;
  char **names = NULL;
  size_t n_names = 0;
  rc = schemes ? kx_grid_parse_schemes(schemes, &names, &n_names) : kx_sweep_default_schemes(&names, &n_names);
  if (rc) {
    kx_cli_error(cmd, "%s", kx_error_message());
    kx_free_strings(names, n_names);
    return 2;
  }
  kx_loaded_head h;
  rc = kx_head_load(&src, fo.kernel, &h);
  size_t n = rc ? 0 : h.ref.n;
  double *exact = NULL, **approx = kx_calloc(n_names, sizeof *approx);
  if (!rc) {
    exact = kx_malloc(n * n * sizeof *exact);
    rc = exact && approx ? kx_attention_map_exact(&h.ref, exact) : KX_ENOMEM;
  }
  for (size_t s = 0; s < n_names && !rc; s++) {
    approx[s] = kx_malloc(n * n * sizeof *approx[s]);
    rc = approx[s] ? kx_attention_map_approx(&h.ref, &fo, names[s], m, seed, approx[s]) : KX_ENOMEM;
  }
  if (!rc) rc = kx_attention_maps_write_h5(out, n, exact, n_names, names, (const double *const *)approx, m, seed,
                                           h.ref.causal);
  if (!rc && text) {
    size_t len = strlen(text) + 64;
    char *path = kx_malloc(len);
    double *diff = kx_malloc(n * n * sizeof *diff);
    if (!path || !diff) rc = KX_ENOMEM;
    if (!rc) {
      snprintf(path, len, "%s/exact.txt", text);
      rc = kx_matrix_write_text(path, n, n, exact);
    }
    for (size_t s = 0; s < n_names && !rc; s++) {
      snprintf(path, len, "%s/%s.txt", text, names[s]);
      rc = kx_matrix_write_text(path, n, n, approx[s]);
      for (size_t i = 0; i < n * n; i++) diff[i] = approx[s][i] - exact[i];
      snprintf(path, len, "%s/diff-%s.txt", text, names[s]);
      if (!rc) rc = kx_matrix_write_text(path, n, n, diff);
    }
    free(path);
    free(diff);
  }
  if (rc) kx_cli_error(cmd, "%s", kx_error_message());
  for (size_t s = 0; approx && s < n_names; s++) free(approx[s]);
  free(approx);
  free(exact);
  if (n) kx_loaded_head_free(&h);
  kx_free_strings(names, n_names);
  return rc ? 1 : 0;
}
