#include "experiments/eval/attn_maps.h"

#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "approx/attention.h"
#include "approx/kernel.h"
#include "core/kx_cli.h"
#include "core/kx_error.h"
#include "core/kx_h5.h"
#include "experiments/eval/runner.h"

void kx_attention_map_spec_defaults(kx_spec *s) {
  kx_spec_defaults(s);
  s->tokens = 64;
  s->d = 16;
  s->norms[0] = (kx_norm_spec){2.0, 2.0};
  s->synthetic_causal = 1;
  s->n_layers = s->n_heads = s->n_m = s->n_seeds = 1;
  s->m[0] = 64;
}

int kx_attention_map_exact(const kx_head_reference *ref, double *A) {
  for (size_t i = 0; i < ref->n * ref->n; i++) A[i] = exp(ref->logA[i]);
  return 0;
}

int kx_attention_map_approx(const kx_head_reference *ref, const kx_fmap_options *base,
                            const char *scheme, size_t m, uint64_t seed, double *A) {
  int rc;
  kx_fmap *f = kx_point_map(base, ref, scheme, m, seed, &rc);
  if (!f) return rc;
  const size_t n = ref->n;
  double *lq = kx_malloc(n * m * sizeof *lq), *lk = kx_malloc(n * m * sizeof *lk);
  rc = (!lq || !lk) ? KX_ENOMEM : 0;
  if (!rc) rc = kx_fmap_apply_log(f, n, ref->q, lq);
  if (!rc) rc = kx_fmap_apply_log(f, n, ref->k, lk);
  if (!rc) rc = kx_log_kernel_estimate(n, n, m, lq, lk, A);
  if (!rc) rc = kx_attention_log_weights(n, ref->causal, A);
  if (!rc)
    for (size_t i = 0; i < n * n; i++) A[i] = exp(A[i]);
  free(lq);
  free(lk);
  kx_fmap_free(f);
  return rc;
}

int kx_matrix_write_text(const char *path, size_t rows, size_t cols, const double *A) {
  kx_atomic_file f;
  int rc = kx_atomic_open(&f, path);
  if (rc) return rc;
  for (size_t i = 0; i < rows; i++)
    for (size_t j = 0; j < cols; j++) fprintf(f.fp, "%.6g%c", A[i * cols + j], j + 1 == cols ? '\n' : ' ');
  if (ferror(f.fp)) {
    kx_atomic_abort(&f);
    return kx_fail(KX_EIO, "writing '%s' failed", path);
  }
  return kx_atomic_commit(&f);
}

static int write_matrix(hid_t loc, const char *name, size_t n, const double *A) {
  hsize_t dims[2] = {n, n};
  hid_t space = H5Screate_simple(2, dims, NULL);
  hid_t ds = H5Dcreate2(loc, name, H5T_IEEE_F64LE, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  int ok = ds >= 0 && H5Dwrite(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, A) >= 0;
  if (ds >= 0) H5Dclose(ds);
  H5Sclose(space);
  return ok;
}

static int write_attr(hid_t loc, const char *name, long long v) {
  return !kx_h5_write_scalar(loc, name, H5T_STD_I64LE, H5T_NATIVE_LLONG, &v);
}

int kx_attention_maps_write_h5(const char *path, size_t n, const double *exact, size_t n_schemes,
                               char *const *schemes, const double *const *approx, size_t m,
                               uint64_t seed, int causal) {
  double *diff = kx_malloc(n * n * sizeof *diff);
  if (!diff) return KX_ENOMEM;
  /* built in memory, published whole: a full disk cannot leave libhdf5
   * with a half-closed file (core/kx_h5.h) */
  hid_t file = kx_h5_create_in_memory();
  int ok = file >= 0;
  if (ok) ok = write_matrix(file, "exact", n, exact) && write_attr(file, "m", (long long)m) &&
               write_attr(file, "seed", (long long)seed) && write_attr(file, "causal", causal);
  hid_t ga = ok ? H5Gcreate2(file, "approx", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT) : -1;
  hid_t gd = ok ? H5Gcreate2(file, "diff", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT) : -1;
  ok = ok && ga >= 0 && gd >= 0;
  for (size_t s = 0; s < n_schemes && ok; s++) {
    for (size_t i = 0; i < n * n; i++) diff[i] = approx[s][i] - exact[i];
    ok = write_matrix(ga, schemes[s], n, approx[s]) && write_matrix(gd, schemes[s], n, diff);
  }
  if (ga >= 0) H5Gclose(ga);
  if (gd >= 0) H5Gclose(gd);
  int rc = 0;
  if (!ok) {
    if (file >= 0) H5Fclose(file);
    rc = kx_fail(KX_EIO, "cannot write '%s' (out of memory?)", path);
  } else {
    rc = kx_h5_publish(file, path);
  }
  free(diff);
  return rc;
}
