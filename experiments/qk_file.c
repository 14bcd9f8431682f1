/* Reading and writing the Q/K HDF5 schema (see qk_file.h and the README).
 * Every way a file can be wrong ends in a message naming the file, the
 * object and what was expected; HDF5's own error stack printing is
 * silenced so the user sees one line, not a library trace. */
#include "experiments/qk_file.h"

#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/kx_atomic.h"
#include "core/kx_error.h"

#define QK_FORMAT "kapprox-qk"
#define QK_MAX_LAYERS 4096

struct kx_qk_file {
  hid_t file;
  char *path;
  int scaled, causal;
  size_t n_layers;
  int indices[QK_MAX_LAYERS];
};

static void silence_hdf5(void) { H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }

static int read_int_attr(hid_t obj, const char *path, const char *name, int *out) {
  if (H5Aexists(obj, name) <= 0)
    return kx_fail(KX_EIO, "%s: missing root attribute '%s' (an integer 0 or 1)", path, name);
  hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
  if (a < 0) return kx_fail(KX_EIO, "%s: cannot open attribute '%s'", path, name);
  hid_t space = H5Aget_space(a);
  hid_t type = H5Aget_type(a);
  long long v = 0;
  int ok = H5Sget_simple_extent_npoints(space) == 1 &&
           (H5Tget_class(type) == H5T_INTEGER || H5Tget_class(type) == H5T_ENUM) &&
           H5Aread(a, H5T_NATIVE_LLONG, &v) >= 0;
  H5Tclose(type);
  H5Sclose(space);
  H5Aclose(a);
  if (!ok || (v != 0 && v != 1))
    return kx_fail(KX_EIO, "%s: attribute '%s' must be a single integer 0 or 1", path, name);
  *out = (int)v;
  return 0;
}

static int check_format(hid_t file, const char *path) {
  if (H5Aexists(file, "format") <= 0)
    return kx_fail(KX_EIO,
                   "%s: not a kapprox Q/K file (no root attribute format = \"" QK_FORMAT
                   "\"; see the README's Q/K file schema)", path);
  hid_t a = H5Aopen(file, "format", H5P_DEFAULT);
  hid_t type = H5Aget_type(a);
  char buf[64] = {0};
  int ok = 0;
  if (H5Tget_class(type) == H5T_STRING) {
    if (H5Tis_variable_str(type) > 0) {
      char *s = NULL;
      hid_t mt = H5Tcopy(H5T_C_S1);
      H5Tset_size(mt, H5T_VARIABLE);
      if (H5Aread(a, mt, &s) >= 0 && s) {
        snprintf(buf, sizeof buf, "%s", s);
        H5free_memory(s);
        ok = 1;
      }
      H5Tclose(mt);
    } else {
      size_t sz = H5Tget_size(type);
      if (sz < sizeof buf) {
        hid_t mt = H5Tcopy(H5T_C_S1);
        H5Tset_size(mt, sz);
        ok = H5Aread(a, mt, buf) >= 0;
        H5Tclose(mt);
      }
    }
  }
  H5Tclose(type);
  H5Aclose(a);
  if (!ok || strcmp(buf, QK_FORMAT))
    return kx_fail(KX_EIO, "%s: attribute 'format' is \"%s\", expected \"" QK_FORMAT "\"", path, buf);
  return 0;
}

static herr_t collect_layer(hid_t group, const char *name, const H5L_info_t *info, void *data) {
  (void)group;
  (void)info;
  kx_qk_file *f = data;
  int idx;
  char tail;
  if (sscanf(name, "layer%d%c", &idx, &tail) == 1 && idx >= 0) {
    if (f->n_layers >= QK_MAX_LAYERS) return -1;
    f->indices[f->n_layers++] = idx;
  }
  return 0;
}

static int compare_int(const void *a, const void *b) {
  int x = *(const int *)a, y = *(const int *)b;
  return (x > y) - (x < y);
}

kx_qk_file *kx_qk_open(const char *path) {
  silence_hdf5();
  if (access(path, R_OK) != 0) {
    kx_fail(KX_EIO, "%s: no such file or not readable", path);
    return NULL;
  }
  if (H5Fis_hdf5(path) <= 0) {
    kx_fail(KX_EIO, "%s: not an HDF5 file, or truncated/corrupt", path);
    return NULL;
  }
  kx_qk_file *f = kx_calloc(1, sizeof *f);
  if (!f) return NULL;
  f->path = strdup(path);
  f->file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
  if (f->file < 0) {
    kx_fail(KX_EIO, "%s: cannot open as HDF5 (truncated or corrupt?)", path);
    goto fail;
  }
  if (check_format(f->file, path) || read_int_attr(f->file, path, "scaled", &f->scaled) ||
      read_int_attr(f->file, path, "causal", &f->causal))
    goto fail;
  if (H5Literate(f->file, H5_INDEX_NAME, H5_ITER_NATIVE, NULL, collect_layer, f) < 0) {
    kx_fail(KX_EIO, "%s: cannot list the file's groups (corrupt, or more than %d layers)", path,
            QK_MAX_LAYERS);
    goto fail;
  }
  if (f->n_layers == 0) {
    kx_fail(KX_EIO, "%s: no groups named layer0, layer1, ... holding q and k", path);
    goto fail;
  }
  qsort(f->indices, f->n_layers, sizeof f->indices[0], compare_int);
  for (size_t i = 1; i < f->n_layers; i++)
    if (f->indices[i] == f->indices[i - 1]) {
      kx_fail(KX_EIO, "%s: layer index %d appears twice (e.g. layer1 and layer01)", path, f->indices[i]);
      goto fail;
    }
  return f;
fail:
  kx_qk_close(f);
  return NULL;
}

size_t kx_qk_n_layers(const kx_qk_file *f) { return f->n_layers; }
int kx_qk_layer_index(const kx_qk_file *f, size_t i) { return f->indices[i]; }
int kx_qk_scaled(const kx_qk_file *f) { return f->scaled; }
int kx_qk_causal(const kx_qk_file *f) { return f->causal; }

/* Reads group/name as a rank-3 float dataset into a new double array. */
static int read_tensor(hid_t group, const char *path, const char *gname, const char *name,
                       int required, size_t dims_out[3], double **out) {
  *out = NULL;
  if (H5Lexists(group, name, H5P_DEFAULT) <= 0) {
    if (!required) return 0;
    return kx_fail(KX_EIO, "%s: /%s has no dataset '%s'", path, gname, name);
  }
  hid_t ds = H5Dopen2(group, name, H5P_DEFAULT);
  if (ds < 0) return kx_fail(KX_EIO, "%s: /%s/%s is not a dataset", path, gname, name);
  hid_t space = H5Dget_space(ds), type = H5Dget_type(ds);
  int rc = 0;
  hsize_t dims[3];
  int rank = H5Sget_simple_extent_ndims(space);
  if (H5Tget_class(type) != H5T_FLOAT) {
    rc = kx_fail(KX_EIO, "%s: /%s/%s must hold floating-point values (float32 or float64)", path,
                 gname, name);
  } else if (rank != 3) {
    rc = kx_fail(KX_EIO, "%s: /%s/%s has rank %d; expected 3: (heads, tokens, d)", path, gname,
                 name, rank);
  } else {
    H5Sget_simple_extent_dims(space, dims, NULL);
    size_t count = 1;
    for (int r = 0; r < 3; r++) {
      if (dims[r] == 0 || dims[r] > ((size_t)1 << 32)) {
        rc = kx_fail(KX_EIO, "%s: /%s/%s has an empty or absurd dimension %d (%llu)", path, gname,
                     name, r, (unsigned long long)dims[r]);
        break;
      }
      dims_out[r] = (size_t)dims[r];
      if (count > ((size_t)1 << 34) / dims_out[r]) {
        rc = kx_fail(KX_EIO, "%s: /%s/%s is too large to load (%llu x %llu x %llu)", path, gname,
                     name, (unsigned long long)dims[0], (unsigned long long)dims[1],
                     (unsigned long long)dims[2]);
        break;
      }
      count *= dims_out[r];
    }
    if (!rc) {
      *out = kx_malloc(count * sizeof **out);
      if (!*out) rc = KX_ENOMEM;
      else if (H5Dread(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, *out) < 0)
        rc = kx_fail(KX_EIO, "%s: cannot read /%s/%s (truncated file?)", path, gname, name);
      else {
        char what[160];
        snprintf(what, sizeof what, "%s: /%s/%s", path, gname, name);
        if (!kx_all_finite(*out, count, what)) rc = KX_EINVAL;
      }
      if (rc) {
        free(*out);
        *out = NULL;
      }
    }
  }
  H5Tclose(type);
  H5Sclose(space);
  H5Dclose(ds);
  return rc;
}

int kx_qk_read_layer(kx_qk_file *f, size_t i, kx_qk_layer *out) {
  memset(out, 0, sizeof *out);
  if (i >= f->n_layers) return kx_fail(KX_EINVAL, "%s: no layer at position %zu", f->path, i);
  char gname[32];
  snprintf(gname, sizeof gname, "layer%d", f->indices[i]);
  hid_t g = H5Gopen2(f->file, gname, H5P_DEFAULT);
  if (g < 0) {
    /* names like layer01 parse to index 1; find the actual link name */
    return kx_fail(KX_EIO, "%s: cannot open group /%s (layer names must be layer<integer> without "
                   "leading zeros)", f->path, gname);
  }
  size_t dq[3], dk[3], dv[3];
  int rc = read_tensor(g, f->path, gname, "q", 1, dq, &out->q);
  if (!rc) rc = read_tensor(g, f->path, gname, "k", 1, dk, &out->k);
  if (!rc) rc = read_tensor(g, f->path, gname, "v", 0, dv, &out->v);
  H5Gclose(g);
  if (!rc && (dq[0] != dk[0] || dq[1] != dk[1]))
    rc = kx_fail(KX_EINVAL, "%s: /%s: q is %zu x %zu x %zu but k is %zu x %zu x %zu "
                 "(heads and tokens must match)", f->path, gname, dq[0], dq[1], dq[2], dk[0], dk[1], dk[2]);
  if (!rc && dq[2] != dk[2])
    rc = kx_fail(KX_EINVAL, "%s: /%s: q has d = %zu but k has d = %zu", f->path, gname, dq[2], dk[2]);
  if (!rc && out->v && (dv[0] != dq[0] || dv[1] != dq[1]))
    rc = kx_fail(KX_EINVAL, "%s: /%s: v is %zu x %zu x %zu but q is %zu x %zu x %zu "
                 "(heads and tokens must match)", f->path, gname, dv[0], dv[1], dv[2], dq[0], dq[1], dq[2]);
  if (rc) {
    kx_qk_layer_free(out);
    return rc;
  }
  out->index = f->indices[i];
  out->heads = dq[0];
  out->tokens = dq[1];
  out->d = dq[2];
  out->dv = out->v ? dv[2] : 0;
  return 0;
}

void kx_qk_close(kx_qk_file *f) {
  if (!f) return;
  if (f->file > 0) H5Fclose(f->file);
  free(f->path);
  free(f);
}

void kx_qk_layer_free(kx_qk_layer *l) {
  free(l->q);
  free(l->k);
  free(l->v);
  l->q = l->k = l->v = NULL;
}

static int write_int_attr(hid_t obj, const char *name, int v) {
  hid_t space = H5Screate(H5S_SCALAR);
  hid_t a = H5Acreate2(obj, name, H5T_STD_I32LE, space, H5P_DEFAULT, H5P_DEFAULT);
  int ok = a >= 0 && H5Awrite(a, H5T_NATIVE_INT, &v) >= 0;
  if (a >= 0) H5Aclose(a);
  H5Sclose(space);
  return ok ? 0 : -1;
}

static int write_tensor(hid_t g, const char *name, size_t h, size_t t, size_t d, const double *x,
                        int single) {
  hsize_t dims[3] = {h, t, d};
  hid_t space = H5Screate_simple(3, dims, NULL);
  hid_t ds = H5Dcreate2(g, name, single ? H5T_IEEE_F32LE : H5T_IEEE_F64LE, space, H5P_DEFAULT,
                        H5P_DEFAULT, H5P_DEFAULT);
  int ok = ds >= 0 && H5Dwrite(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, x) >= 0;
  if (ds >= 0) H5Dclose(ds);
  H5Sclose(space);
  return ok ? 0 : -1;
}

int kx_qk_write(const char *path, int scaled, int causal, size_t n_layers,
                const kx_qk_layer *layers, int single) {
  silence_hdf5();
  kx_atomic_file af;
  int begun = kx_atomic_begin(&af, path);
  if (begun) return begun;
  hid_t file = H5Fcreate(af.tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  if (file < 0) {
    kx_atomic_abort(&af);
    return kx_fail(KX_EIO, "cannot create '%s' (directory missing or not writable?)", path);
  }
  int ok = 1;
  hid_t st = H5Tcopy(H5T_C_S1);
  H5Tset_size(st, strlen(QK_FORMAT));
  hid_t space = H5Screate(H5S_SCALAR);
  hid_t a = H5Acreate2(file, "format", st, space, H5P_DEFAULT, H5P_DEFAULT);
  ok = a >= 0 && H5Awrite(a, st, QK_FORMAT) >= 0;
  if (a >= 0) H5Aclose(a);
  H5Sclose(space);
  H5Tclose(st);
  ok = ok && !write_int_attr(file, "scaled", scaled ? 1 : 0) && !write_int_attr(file, "causal", causal ? 1 : 0);
  for (size_t i = 0; ok && i < n_layers; i++) {
    const kx_qk_layer *l = layers + i;
    char gname[32];
    snprintf(gname, sizeof gname, "layer%d", l->index);
    hid_t g = H5Gcreate2(file, gname, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    ok = g >= 0 && !write_tensor(g, "q", l->heads, l->tokens, l->d, l->q, single) &&
         !write_tensor(g, "k", l->heads, l->tokens, l->d, l->k, single) &&
         (!l->v || !write_tensor(g, "v", l->heads, l->tokens, l->dv, l->v, single));
    if (g >= 0) H5Gclose(g);
  }
  if (H5Fclose(file) < 0) ok = 0;
  if (!ok) {
    kx_atomic_abort(&af);
    return kx_fail(KX_EIO, "writing '%s' failed (disk full?)", path);
  }
  return kx_atomic_commit(&af);
}
