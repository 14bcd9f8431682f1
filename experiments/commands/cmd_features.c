/* kapprox features: writes the features of one head's queries and keys
 * under a feature map, for checking the maps (and the Python module, which
 * must give the same bits) from outside the library.  The rows and the map
 * are those kernel-error evaluates for that head and (scheme, m, seed). */
#include <getopt.h>
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/kx_cli.h"
#include "core/kx_error.h"
#include "core/kx_h5.h"
#include "experiments/commands/commands.h"
#include "experiments/eval/inputs.h"
#include "experiments/eval/runner.h"

static const char *const CMD = "features";

static void features_usage(FILE *out) {
  fprintf(out,
          "usage: kapprox features --input FILE.h5 --scheme NAME --m M --out OUT.h5\n"
          "                        [--layer L] [--head H] [--max-tokens N] [--seed S]\n"
          "                        [--kernel K] [--radii MODE] [--calib-pairs P] [--ridge R] [--log]\n\n"
          "Writes the features phi(q_t), phi(k_t) of every token t of one head of a Q/K\n"
          "file: the rows kernel-error evaluates (q / d^(1/4) when the file's scaled = 0)\n"
          "through the map kernel-error builds for the same scheme, m and seed (fitted\n"
          "weights calibrated on this head's q and k).\n\n"
          "options:\n"
          "  --input FILE.h5   Q/K file (docs/file-formats.md)\n"
          "  --layer L         layer index L of group layer<L> (default: the first layer)\n"
          "  --head H          head (default 0)\n"
          "  --max-tokens N    the first N tokens only (default all)\n"
          "  --scheme NAME     feature map: %s\n"
          "  --m M             number of features\n"
          "  --seed S          feature-map seed (default 0)\n"
          "  --kernel K        softmax (exp(q.k), default) or gauss\n"
          "  --radii MODE      sequence (default) or stratified radii for PFF-type maps\n"
          "  --calib-pairs P   calibration pairs for fitted weights (default max(4m, 2048))\n"
          "  --ridge R         pull of fitted weights toward D = 1 (default 1e-3)\n"
          "  --log             write log phi instead of phi\n"
          "  --out OUT.h5      datasets q, k (tokens x d: the rows mapped) and q_features,\n"
          "                    k_features (tokens x m doubles); attributes scheme, m, seed,\n"
          "                    log; written atomically\n"
          "  -h, --help        this text\n\n"
          "example:\n"
          "  kapprox synth-qk --out qk.h5 && kapprox features --input qk.h5 --scheme prf --m 64 --out f.h5\n",
          kx_fmap_names());
}

static int write_matrix(hid_t file, const char *name, const double *x, size_t rows, size_t cols) {
  hsize_t dims[2] = {rows, cols};
  hid_t space = H5Screate_simple(2, dims, NULL), dset = -1;
  if (space >= 0) dset = H5Dcreate2(file, name, H5T_NATIVE_DOUBLE, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  int rc = dset < 0 || H5Dwrite(dset, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, x) < 0
               ? kx_fail(KX_EIO, "writing dataset '%s'", name)
               : 0;
  if (dset >= 0) H5Dclose(dset);
  if (space >= 0) H5Sclose(space);
  return rc;
}

static int write_string_attr(hid_t file, const char *name, const char *value) {
  hid_t space = H5Screate(H5S_SCALAR), type = H5Tcopy(H5T_C_S1), attr = -1;
  int rc = space < 0 || type < 0 || H5Tset_size(type, strlen(value) + 1) < 0 ||
                   (attr = H5Acreate2(file, name, type, space, H5P_DEFAULT, H5P_DEFAULT)) < 0 ||
                   H5Awrite(attr, type, value) < 0
               ? kx_fail(KX_EIO, "writing attribute '%s'", name)
               : 0;
  if (attr >= 0) H5Aclose(attr);
  if (type >= 0) H5Tclose(type);
  if (space >= 0) H5Sclose(space);
  return rc;
}

static int write_features(const char *path, size_t n, size_t d, size_t m, const double *q, const double *k,
                          const double *fq, const double *fk, const char *scheme, uint64_t seed, int log) {
  hid_t file = kx_h5_create_in_memory();
  if (file < 0) return KX_ENOMEM;
  unsigned long long mm = m;
  int rc = write_matrix(file, "q", q, n, d);
  if (!rc) rc = write_matrix(file, "k", k, n, d);
  if (!rc) rc = write_matrix(file, "q_features", fq, n, m);
  if (!rc) rc = write_matrix(file, "k_features", fk, n, m);
  if (!rc) rc = write_string_attr(file, "scheme", scheme);
  if (!rc) rc = kx_h5_write_scalar(file, "m", H5T_STD_U64LE, H5T_NATIVE_ULLONG, &mm);
  if (!rc) rc = kx_h5_write_scalar(file, "seed", H5T_STD_U64LE, H5T_NATIVE_UINT64, &seed);
  if (!rc) rc = kx_h5_write_scalar(file, "log", H5T_STD_I32LE, H5T_NATIVE_INT, &log);
  if (rc) {
    H5Fclose(file);
    return kx_fail_context(rc, "'%s': ", path);
  }
  return kx_h5_publish(file, path);
}

int cmd_features(int argc, char **argv) {
  const char *input = NULL, *scheme = NULL, *out = NULL, *kernel = "softmax";
  size_t m = 0, head = 0, max_tokens = 0, layer = 0;
  int have_layer = 0, log = 0;
  uint64_t seed = 0;
  kx_fmap_options opt;
  kx_fmap_default_options(&opt);
  enum { O_INPUT = 256, O_LAYER, O_HEAD, O_MAX_TOKENS, O_SCHEME, O_M, O_SEED, O_KERNEL, O_RADII, O_PAIRS,
         O_RIDGE, O_LOG, O_OUT };
  static const struct option options[] = {
      {"input", required_argument, NULL, O_INPUT},   {"layer", required_argument, NULL, O_LAYER},
      {"head", required_argument, NULL, O_HEAD},     {"max-tokens", required_argument, NULL, O_MAX_TOKENS},
      {"scheme", required_argument, NULL, O_SCHEME}, {"m", required_argument, NULL, O_M},
      {"seed", required_argument, NULL, O_SEED},     {"kernel", required_argument, NULL, O_KERNEL},
      {"radii", required_argument, NULL, O_RADII},   {"calib-pairs", required_argument, NULL, O_PAIRS},
      {"ridge", required_argument, NULL, O_RIDGE},   {"log", no_argument, NULL, O_LOG},
      {"out", required_argument, NULL, O_OUT},       {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0}};
  optind = 1;
  opterr = 0;
  int c;
  while ((c = getopt_long(argc, argv, ":h", options, NULL)) != -1) {
    int bad = 0;
    switch (c) {
    case O_INPUT: input = optarg; break;
    case O_LAYER: bad = kx_parse_size(optarg, "--layer", 0, 2147483647, &layer); have_layer = 1; break;
    case O_HEAD: bad = kx_parse_size(optarg, "--head", 0, (size_t)1 << 31, &head); break;
    case O_MAX_TOKENS: bad = kx_parse_size(optarg, "--max-tokens", 1, (size_t)1 << 31, &max_tokens); break;
    case O_SCHEME: scheme = optarg; break;
    case O_M: bad = kx_parse_size(optarg, "--m", 1, (size_t)1 << 24, &m); break;
    case O_SEED: bad = kx_parse_u64(optarg, "--seed", &seed); break;
    case O_KERNEL: kernel = optarg; break;
    case O_RADII: opt.radii = optarg; break;
    case O_PAIRS: bad = kx_parse_size(optarg, "--calib-pairs", 1, (size_t)1 << 31, &opt.n_calib_pairs); break;
    case O_RIDGE: bad = kx_parse_nonneg_double(optarg, "--ridge", &opt.ridge); break;
    case O_LOG: log = 1; break;
    case O_OUT: out = optarg; break;
    case 'h': features_usage(stdout); return 0;
    case ':':
      kx_cli_error(CMD, "option '%s' needs a value (see kapprox features --help)", argv[optind - 1]);
      return 2;
    default:
      kx_cli_error(CMD, "unknown option '%s' (see kapprox features --help)", argv[optind - 1]);
      return 2;
    }
    if (bad) return kx_cli_value_error(CMD, NULL);
  }
  if (optind < argc) return kx_cli_extra_operand(CMD, argv[optind], "see kapprox features --help");
  if (!input || !scheme || !m || !out) {
    kx_cli_error(CMD, "--input, --scheme, --m and --out are required (see kapprox features --help)");
    return 2;
  }
  if (!kx_has_suffix(out, ".h5")) {
    kx_cli_error(CMD, "--out '%s': the file name must end in .h5", out);
    return 2;
  }
  if (kx_parse_kernel(kernel, "--kernel", &opt.kernel)) return kx_cli_value_error(CMD, NULL);
  if (!kx_fmap_lookup(scheme)) {
    kx_cli_error(CMD, "--scheme: unknown feature-map scheme '%s' (known: %s)", scheme, kx_fmap_names());
    return 2;
  }

  kx_qk_file *f = kx_qk_open(input);
  kx_qk_layer L = {0};
  double *buf = NULL, *fq = NULL, *fk = NULL;
  kx_fmap *map = NULL;
  int rc = f ? 0 : KX_EIO, usage_error = 0;
  size_t pos = 0;
  if (!rc && have_layer) {
    while (pos < kx_qk_n_layers(f) && (size_t)kx_qk_layer_index(f, pos) != layer) pos++;
    if (pos == kx_qk_n_layers(f)) rc = kx_fail(KX_EINVAL, "'%s' has no group layer%zu", input, layer), usage_error = 1;
  }
  if (!rc) rc = kx_qk_layer_shape(f, pos, &L);
  if (!rc && head >= L.heads) rc = kx_fail(KX_EINVAL, "--head %zu: layer %d has %zu heads", head, L.index, L.heads),
                             usage_error = 1;
  if (!rc) rc = kx_qk_read_heads(f, pos, head, 1, max_tokens, &L);
  size_t n = 0, dv = 0;
  const size_t d = L.d;
  if (!rc) {
    size_t dv_max = L.v ? L.dv : d;
    buf = kx_malloc((2 * L.tokens * d + L.tokens * dv_max) * sizeof *buf);
    rc = buf ? kx_head_from_layer(&L, head, max_tokens, kx_qk_scaled(f), 0, buf, buf + L.tokens * d,
                                  buf + 2 * L.tokens * d, &n, &dv)
             : KX_ENOMEM;
  }
  if (!rc) {
    /* the map of kernel-error's point (scheme, m, seed) on this head */
    kx_head_reference ref = {.n = n, .d = d, .q = buf, .k = buf + n * d};
    int status;
    map = kx_point_map(&opt, &ref, scheme, m, seed, &status);
    rc = map ? 0 : status;
  }
  if (!rc) {
    fq = kx_malloc(n * m * sizeof *fq);
    fk = kx_malloc(n * m * sizeof *fk);
    rc = !fq || !fk ? KX_ENOMEM
         : log      ? kx_fmap_apply_log(map, n, buf, fq)
                    : kx_fmap_apply(map, n, buf, fq);
    if (!rc) rc = log ? kx_fmap_apply_log(map, n, buf + n * d, fk) : kx_fmap_apply(map, n, buf + n * d, fk);
  }
  if (!rc) rc = write_features(out, n, d, m, buf, buf + n * d, fq, fk, scheme, seed, log);
  if (rc) kx_cli_error(CMD, "%s", kx_error_message());
  kx_fmap_free(map);
  free(fq);
  free(fk);
  free(buf);
  kx_qk_layer_free(&L);
  if (f) kx_qk_close(f);
  return rc ? (usage_error ? 2 : 1) : 0;
}
