/* kapprox attn-maps: dumps the n x n attention maps of one head (exact and
 * per scheme) for figures like the paper's Fig. 3. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/kx_cli.h"
#include "core/kx_error.h"
#include "experiments/eval/attn_maps.h"
#include "experiments/commands/commands.h"
#include "experiments/eval/inputs.h"
#include "experiments/eval/spec_options.h"

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
          "  --radii MODE        sequence (default) or stratified radii for PFF-type maps\n"
          "  --calib-pairs P     calibration pairs for fitted weights (default max(4m, 2048))\n"
          "  --ridge R           pull of fitted weights toward D = 1 (default 1e-3)\n"
          "  -h, --help          this text\n\n"
          "Exit status: 0 success, 1 runtime error, 2 usage error, 3 some scheme's map\n"
          "failed (named with its reason; the other schemes' maps are written).\n");
}

typedef struct {
  const char *out, *text;
} maps_cli;

enum { O_OUT, O_TEXT };

static int on_option(void *ctx, int id, const char *arg) {
  maps_cli *c = ctx;
  if (id == O_TEXT) {
    c->text = arg;
    return kx_check_output_dir(arg, "--text");
  }
  c->out = arg;
  return kx_check_output_path(arg, "--out");
}

static void usage_of(FILE *out, void *ctx) {
  (void)ctx;
  usage(out);
}

static const kx_cli_option own_options[] = {{"out", 1, O_OUT}, {"text", 1, O_TEXT}, {NULL, 0, 0}};

/* The spec of one head: synthetic 64 tokens, d = 16, norm 2, causal; or
 * layer 0 head 0 of a file; m = 64, seed 0.  0 to go on, else the exit
 * status (-1: --help shown). */
static int parse(int argc, char **argv, maps_cli *c, kx_spec_args *a) {
  kx_cli_command command = {cmd, KX_OPT_INPUT | KX_OPT_LAYER_HEAD | KX_OPT_MAX_TOKENS | KX_OPT_SYNTHETIC |
                                     KX_OPT_NORM | KX_OPT_CAUSAL | KX_OPT_SCHEMES | KX_OPT_M_ONE | KX_OPT_SEED |
                                     KX_OPT_KERNEL | KX_OPT_MAP,
                            "", own_options, on_option, c, usage_of};
  kx_spec *s = &a->spec;
  kx_attention_map_spec_defaults(s);
  int rc = kx_spec_parse_cli(&command, argc, argv, a);
  if (rc) return rc;
  if (!c->out) {
    kx_cli_error(cmd, "--out FILE.h5 is required (see kapprox attn-maps --help)");
    return 2;
  }
  if (a->inputs_given) s->n_norms = 0;
  return kx_spec_args_finish(&command, a, KX_SCHEMES_COMPARISON, NULL, NULL);
}

/* exact.txt, <scheme>.txt and diff-<scheme>.txt of the maps computed. */
static int write_text(const char *dir, size_t n, const double *exact, char **names, double **approx, size_t k) {
  size_t len = strlen(dir) + 64;
  char *path = kx_malloc(len);
  double *diff = kx_malloc(n * n * sizeof *diff);
  int rc = path && diff ? 0 : KX_ENOMEM;
  if (!rc) {
    snprintf(path, len, "%s/exact.txt", dir);
    rc = kx_matrix_write_text(path, n, n, exact);
  }
  for (size_t s = 0; s < k && !rc; s++) {
    snprintf(path, len, "%s/%s.txt", dir, names[s]);
    rc = kx_matrix_write_text(path, n, n, approx[s]);
    for (size_t i = 0; i < n * n; i++) diff[i] = approx[s][i] - exact[i];
    snprintf(path, len, "%s/diff-%s.txt", dir, names[s]);
    if (!rc) rc = kx_matrix_write_text(path, n, n, diff);
  }
  free(path);
  free(diff);
  return rc;
}

/* Each scheme's map; a scheme whose map fails is reported and left out
 * (names and approx are compacted to the *k that succeeded). */
static int approximate(const kx_spec *s, const kx_head_reference *ref, char **names, double **approx, size_t *k,
                       size_t *failed) {
  const size_t n = ref->n;
  *k = *failed = 0;
  for (size_t i = 0; i < s->n_schemes; i++) {
    double *A = kx_malloc(n * n * sizeof *A);
    if (!A) return KX_ENOMEM;
    int rc = kx_attention_map_approx(ref, &s->fmap, s->schemes[i], s->m[0], s->seeds[0], A);
    if (rc == KX_ENOMEM) {
      free(A);
      return rc;
    }
    if (rc) {
      fprintf(stderr, "kapprox %s: scheme '%s' failed: %s\n", cmd, s->schemes[i], kx_error_message());
      free(A);
      ++*failed;
      continue;
    }
    names[*k] = s->schemes[i];
    approx[(*k)++] = A;
  }
  return 0;
}

int cmd_attn_maps(int argc, char **argv) {
  maps_cli c = {0};
  kx_spec_args a = {0};
  int rc = parse(argc, argv, &c, &a);
  if (rc) return rc < 0 ? 0 : rc;
  const kx_spec *s = &a.spec;
  kx_loaded_head h;
  rc = kx_heads_load_first(s, &h);
  size_t n = h.ref.n, k = 0, failed = 0;
  double *exact = rc ? NULL : kx_malloc(n * n * sizeof *exact), **approx = kx_calloc(s->n_schemes, sizeof *approx);
  char **names = kx_calloc(s->n_schemes, sizeof *names);
  if (!rc) rc = exact && approx && names ? kx_attention_map_exact(&h.ref, exact) : KX_ENOMEM;
  if (!rc) rc = approximate(s, &h.ref, names, approx, &k, &failed);
  if (!rc)
    rc = kx_attention_maps_write_h5(c.out, n, exact, k, names, (const double *const *)approx, s->m[0], s->seeds[0],
                                    h.ref.causal);
  if (!rc && c.text) rc = write_text(c.text, n, exact, names, approx, k);
  if (rc) kx_cli_error(cmd, "%s", kx_error_message());
  else if (failed)
    fprintf(stderr, "kapprox %s: %zu of %zu scheme(s) failed (named above) and are not in %s; the others "
            "were written (exit status %d)\n", cmd, failed, s->n_schemes, c.out, KX_EXIT_SOME_FAILED);
  for (size_t i = 0; approx && i < k; i++) free(approx[i]);
  free(approx);
  free(names);
  free(exact);
  kx_loaded_head_free(&h);
  kx_spec_free(&a.spec);
  return rc ? 1 : failed ? KX_EXIT_SOME_FAILED : 0;
}
