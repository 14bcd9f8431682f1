/* kapprox points: writes the points of any sampler (or the unit directions
 * made from them) to CSV or HDF5, for plots and for checking the samplers
 * from outside the library. */
#include <getopt.h>
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/kx_cli.h"
#include "core/kx_error.h"
#include "core/kx_h5.h"
#include "experiments/commands/commands.h"
#include "samplers/sequence.h"
#include "samplers/transforms.h"

static const char *const CMD = "points";

static void points_usage(FILE *out) {
  fprintf(out,
          "usage: kapprox points [--sequence NAME] [--dim S] [-n N] [--seed SEED]\n"
          "                      [--skip K] [--directions] [--out FILE.csv|FILE.h5]\n\n"
          "Writes N points of a sampler in [0,1)^S, one row per point.  With --directions\n"
          "each point u becomes the unit vector g/|g|, g = Phi^-1(u), on the sphere\n"
          "S^{S-1} in R^S (unscrambled sequences then skip the origin and any point\n"
          "mapping to g = 0).\n\n"
          "options:\n"
          "  --sequence NAME  sampler (default sobol-lms):\n");
  for (const kx_sequence_type *const *t = kx_sequence_types; *t; t++)
    fprintf(out, "                     %-18s s <= %-8zu %s\n", (*t)->name, (*t)->max_dim, (*t)->description);
  fprintf(out,
          "  --dim S          dimension (default 2)\n"
          "  -n, --count N    number of points (default 16)\n"
          "  --seed SEED      seed of the randomised samplers (default 0; ignored by the\n"
          "                   unscrambled ones)\n"
          "  --skip K         drop the first K points (default 0)\n"
          "  --directions     output unit directions instead of raw points\n"
          "  --out FILE       FILE.csv (header x1,x2,...) or FILE.h5 (dataset \"points\",\n"
          "                   N x S doubles, attributes \"sequence\" and \"seed\"); written\n"
          "                   atomically.  Without --out: CSV on standard output.\n"
          "  -h, --help       this text\n\n"
          "examples:\n"
          "  kapprox points --sequence sobol --dim 2 -n 8\n"
          "  kapprox points --sequence halton-perm --dim 5 -n 1024 --seed 7 --out h.csv\n"
          "  kapprox points --sequence sobol-lms --dim 64 -n 256 --directions --out dirs.h5\n");
}

static int write_csv(FILE *fp, const double *x, size_t n, size_t s) {
  for (size_t j = 0; j < s; j++) fprintf(fp, "%sx%zu", j ? "," : "", j + 1);
  fputc('\n', fp);
  for (size_t i = 0; i < n; i++) {
    for (size_t j = 0; j < s; j++) fprintf(fp, "%s%.17g", j ? "," : "", x[i * s + j]);
    fputc('\n', fp);
  }
  if (ferror(fp)) return kx_fail(KX_EIO, "write error");
  return 0;
}

static int write_h5_file(const char *path, const double *x, size_t n, size_t s, const char *seq,
                         uint64_t seed) {
  hid_t file = -1, space = -1, dset = -1, aspace = -1, attr = -1, stype = -1;
  int rc = 0;
  /* built in memory, published whole: a full disk cannot leave libhdf5
   * with a half-closed file (core/kx_h5.h) */
  file = kx_h5_create_in_memory();
  if (file < 0) return KX_ENOMEM;
  hsize_t dims[2] = {n, s};
  space = H5Screate_simple(2, dims, NULL);
  if (space >= 0) dset = H5Dcreate2(file, "points", H5T_NATIVE_DOUBLE, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  if (dset < 0 || H5Dwrite(dset, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, x) < 0)
    rc = kx_fail(KX_EIO, "writing dataset 'points' to '%s'", path);
  if (!rc) {
    aspace = H5Screate(H5S_SCALAR);
    stype = H5Tcopy(H5T_C_S1);
    if (aspace < 0 || stype < 0 || H5Tset_size(stype, strlen(seq) + 1) < 0 ||
        (attr = H5Acreate2(dset, "sequence", stype, aspace, H5P_DEFAULT, H5P_DEFAULT)) < 0 ||
        H5Awrite(attr, stype, seq) < 0)
      rc = kx_fail(KX_EIO, "writing attribute 'sequence' to '%s'", path);
    if (attr >= 0) H5Aclose(attr);
    attr = -1;
    if (!rc && ((attr = H5Acreate2(dset, "seed", H5T_NATIVE_UINT64, aspace, H5P_DEFAULT, H5P_DEFAULT)) < 0 ||
                H5Awrite(attr, H5T_NATIVE_UINT64, &seed) < 0))
      rc = kx_fail(KX_EIO, "writing attribute 'seed' to '%s'", path);
  }
  if (attr >= 0) H5Aclose(attr);
  if (stype >= 0) H5Tclose(stype);
  if (aspace >= 0) H5Sclose(aspace);
  if (dset >= 0) H5Dclose(dset);
  if (space >= 0) H5Sclose(space);
  if (rc) H5Fclose(file);
  else rc = kx_h5_publish(file, path);
  return rc;
}


int cmd_points(int argc, char **argv) {
  const char *sequence = "sobol-lms", *out = NULL;
  size_t dim = 2, count = 16, skip = 0;
  uint64_t seed = 0;
  int directions = 0;
  enum { OPT_SEQUENCE = 256, OPT_DIM, OPT_SEED, OPT_SKIP, OPT_DIRECTIONS, OPT_OUT };
  static const struct option options[] = {
      {"sequence", required_argument, NULL, OPT_SEQUENCE},
      {"dim", required_argument, NULL, OPT_DIM},
      {"count", required_argument, NULL, 'n'},
      {"seed", required_argument, NULL, OPT_SEED},
      {"skip", required_argument, NULL, OPT_SKIP},
      {"directions", no_argument, NULL, OPT_DIRECTIONS},
      {"out", required_argument, NULL, OPT_OUT},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0}};
  /* points are held in memory: cap n*s at 2^31 doubles (16 GiB) */
  const size_t max_values = (size_t)1 << 31;
  optind = 1;
  opterr = 0;
  int c;
  while ((c = getopt_long(argc, argv, ":n:h", options, NULL)) != -1) {
    int bad = 0;
    switch (c) {
    case OPT_SEQUENCE: sequence = optarg; break;
    case OPT_DIM: bad = kx_parse_size(optarg, "--dim", 1, max_values, &dim); break;
    case 'n': bad = kx_parse_size(optarg, "--count", 1, max_values, &count); break;
    case OPT_SEED: bad = kx_parse_u64(optarg, "--seed", &seed); break;
    case OPT_SKIP: bad = kx_parse_size(optarg, "--skip", 0, (size_t)1 << 52, &skip); break;
    case OPT_DIRECTIONS: directions = 1; break;
    case OPT_OUT: out = optarg; break;
    case 'h': points_usage(stdout); return 0;
    case ':':
      kx_cli_error(CMD, "option '%s' needs a value (see kapprox points --help)", argv[optind - 1]);
      return 2;
    default:
      kx_cli_error(CMD, "unknown option '%s' (see kapprox points --help)", argv[optind - 1]);
      return 2;
    }
    if (bad) return kx_cli_value_error(CMD, NULL);
  }
  if (optind < argc) return kx_cli_extra_operand(CMD, argv[optind], "see kapprox points --help");
  const kx_sequence_type *type = kx_sequence_lookup(sequence);
  if (!type || dim > type->max_dim) {
    kx_sequence *probe = kx_sequence_alloc(sequence, dim, seed); /* for its message */
    kx_sequence_free(probe);
    kx_cli_error(CMD, "%s", kx_error_message());
    return 2;
  }
  if (out && !kx_has_suffix(out, ".csv") && !kx_has_suffix(out, ".h5")) {
    kx_cli_error(CMD, "--out '%s': the file name must end in .csv or .h5", out);
    return 2;
  }
  if (count > max_values / dim || (directions && count + skip > max_values / dim)) {
    kx_cli_error(CMD, "%zu points of dimension %zu is more than this command holds in memory", count, dim);
    return 2;
  }

  double *x = NULL;
  int rc = 0;
  if (directions) {
    /* kx_sphere_directions has no skip: make skip + count and drop the first */
    double *all = kx_malloc((skip + count) * dim * sizeof *all);
    rc = all ? kx_sphere_directions(sequence, dim, skip + count, seed, all, NULL, NULL) : KX_ENOMEM;
    if (!rc) {
      x = all;
      memmove(all, all + skip * dim, count * dim * sizeof *all);
    } else {
      free(all);
    }
  } else {
    kx_sequence *q = kx_sequence_alloc(sequence, dim, seed);
    x = q ? kx_malloc(count * dim * sizeof *x) : NULL;
    rc = !q || !x ? 1 : kx_sequence_skip(q, skip);
    if (!rc) rc = kx_sequence_fill(q, count, x);
    kx_sequence_free(q);
  }
  if (rc) {
    kx_cli_error(CMD, "%s", kx_error_message());
    free(x);
    return 1;
  }

  if (!out) {
    rc = write_csv(stdout, x, count, dim);
    if (!rc && fflush(stdout) != 0) rc = kx_fail(KX_EIO, "writing standard output");
  } else if (kx_has_suffix(out, ".csv")) {
    kx_atomic_file f;
    rc = kx_atomic_open(&f, out);
    if (!rc) {
      rc = write_csv(f.fp, x, count, dim);
      if (rc) {
        kx_fail_context(rc, "'%s': ", out);
        kx_atomic_abort(&f);
      } else {
        rc = kx_atomic_commit(&f);
      }
    }
  } else {
    rc = write_h5_file(out, x, count, dim, sequence, seed);
  }
  free(x);
  if (rc) {
    kx_cli_error(CMD, "%s", kx_error_message());
    return 1;
  }
  return 0;
}
