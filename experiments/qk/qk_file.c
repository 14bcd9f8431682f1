/* Reading and writing the Q/K HDF5 schema (see qk_file.h and docs/file-formats.md).
 *
 * Every read runs its HDF5 part in a child process (core/kx_sandbox.h):
 * libhdf5 can crash on a malformed file, and the caller must survive that
 * with a message.  The child checks the file's structure and declared sizes
 * and sends plain values; this process checks them again where it trusts
 * them (counts it allocates for) and tests every value for finiteness.
 * Every way a file can be wrong ends in a message naming the file, the
 * object and what was expected. */
#include "experiments/qk/qk_file.h"

#include <hdf5.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/kx_error.h"
#include "core/kx_h5.h"
#include "core/kx_input.h"
#include "core/kx_sandbox.h"

#define QK_FORMAT "kapprox-qk"
#define QK_MAX_LAYERS 4096
/* a dimension above this is a damaged header, not a tensor */
#define QK_MAX_DIM ((hsize_t)1 << 32)

struct kx_qk_file {
  char *path;
  int scaled, causal;
  size_t n_layers;
  int indices[QK_MAX_LAYERS];
};

/* ---- in the reading process ---------------------------------------- */

static hid_t open_file(const char *path) {
  kx_h5_quiet();
  if (access(path, R_OK) != 0) {
    kx_fail(KX_EIO, "%s: no such file or not readable", path);
    return -1;
  }
  if (H5Fis_hdf5(path) <= 0) {
    kx_fail(KX_EIO, "%s: not an HDF5 file, or truncated/corrupt", path);
    return -1;
  }
  hid_t file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
  if (file < 0) kx_fail(KX_EIO, "%s: cannot open as HDF5 (truncated or corrupt?)", path);
  return file;
}

static int read_flag(hid_t file, const char *path, const char *name, int *out) {
  long long v = -1;
  if (kx_h5_attr_scalar(file, name, H5T_NATIVE_LLONG, &v))
    return kx_fail_context(KX_EIO, "%s: root attribute (an integer 0 or 1): ", path);
  if (v != 0 && v != 1)
    return kx_fail(KX_EIO, "%s: attribute '%s' must be a single integer 0 or 1, got %lld", path, name, v);
  *out = (int)v;
  return 0;
}

static int check_format(hid_t file, const char *path) {
  if (H5Aexists(file, "format") <= 0)
    return kx_fail(KX_EIO,
                   "%s: not a kapprox Q/K file (no root attribute format = \"" QK_FORMAT
                   "\"; see docs/file-formats.md)", path);
  char buf[64];
  if (kx_h5_attr_string(file, "format", buf, sizeof buf))
    return kx_fail_context(KX_EIO, "%s: not a kapprox Q/K file: ", path);
  if (strcmp(buf, QK_FORMAT)) {
    for (char *c = buf; *c; c++)
      if ((unsigned char)*c < 32 || (unsigned char)*c == 127) *c = '?';
    return kx_fail(KX_EIO, "%s: attribute 'format' is \"%s\", expected \"" QK_FORMAT "\"", path, buf);
  }
  return 0;
}

typedef struct {
  const char *path;
  size_t n;
  int indices[QK_MAX_LAYERS];
  int failed;
} layer_list;

/* "layer" + decimal digits without sign or leading zero -> 1 and *index;
 * other names -> 0 (not a layer); digits beyond INT_MAX or a leading zero
 * -> -1 with a message. */
static int parse_layer_name(const char *path, const char *name, int *index) {
  if (strncmp(name, "layer", 5)) return 0;
  const char *s = name + 5;
  size_t len = strspn(s, "0123456789");
  if (len == 0 || s[len] != '\0') return 0;
  if (s[0] == '0' && len > 1) {
    kx_fail(KX_EIO, "%s: group '%s': layer names are layer<integer> without leading zeros", path, name);
    return -1;
  }
  long long v = 0;
  for (size_t i = 0; i < len; i++) {
    v = v * 10 + (s[i] - '0');
    if (v > INT_MAX) {
      kx_fail(KX_EIO, "%s: group '%.40s': layer index out of range (at most %d)", path, name, INT_MAX);
      return -1;
    }
  }
  *index = (int)v;
  return 1;
}

static herr_t collect_layer(hid_t group, const char *name, const H5L_info_t *info, void *data) {
  (void)group;
  (void)info;
  layer_list *l = data;
  int idx, r = parse_layer_name(l->path, name, &idx);
  if (r < 0 || (r > 0 && l->n >= QK_MAX_LAYERS)) {
    if (r > 0) kx_fail(KX_EIO, "%s: more than %d layer groups", l->path, QK_MAX_LAYERS);
    l->failed = 1;
    return -1;
  }
  if (r > 0) l->indices[l->n++] = idx;
  return 0;
}

static int compare_int(const void *a, const void *b) {
  int x = *(const int *)a, y = *(const int *)b;
  return (x > y) - (x < y);
}

/* Sends scaled, causal, the number of layers and their sorted indices. */
static int read_header(const void *arg, kx_channel *ch) {
  const char *path = arg;
  hid_t file = open_file(path);
  if (file < 0) return KX_EIO;
  int head[2];
  layer_list *l = kx_calloc(1, sizeof *l);
  int rc = l ? 0 : KX_ENOMEM;
  if (!rc) rc = check_format(file, path);
  if (!rc) rc = read_flag(file, path, "scaled", &head[0]);
  if (!rc) rc = read_flag(file, path, "causal", &head[1]);
  if (!rc) {
    l->path = path;
    if (H5Literate(file, H5_INDEX_NAME, H5_ITER_NATIVE, NULL, collect_layer, l) < 0 && !l->failed)
      rc = kx_fail(KX_EIO, "%s: cannot list the file's groups (corrupt?)", path);
    else if (l->failed) rc = KX_EIO;
  }
  if (!rc && l->n == 0) rc = kx_fail(KX_EIO, "%s: no groups named layer0, layer1, ... holding q and k", path);
  if (!rc) {
    qsort(l->indices, l->n, sizeof l->indices[0], compare_int);
    for (size_t i = 1; i < l->n && !rc; i++)
      if (l->indices[i] == l->indices[i - 1])
        rc = kx_fail(KX_EIO, "%s: layer index %d appears twice", path, l->indices[i]);
  }
  uint64_t n = l ? l->n : 0;
  if (!rc) rc = kx_channel_send(ch, head, sizeof head);
  if (!rc) rc = kx_channel_send(ch, &n, sizeof n);
  if (!rc) rc = kx_channel_send(ch, l->indices, l->n * sizeof l->indices[0]);
  free(l);
  H5Fclose(file);
  return rc;
}

/* What the caller asks of one layer: the shape only, or the heads
 * [head_first, head_first + head_count) (count 0: all) and the first
 * max_tokens tokens (0: all). */
typedef struct {
  const char *path;
  int index;
  int shape_only;
  size_t head_first, head_count, max_tokens;
} layer_request;

/* Shape of the stored layer: heads, tokens, d, dv (0: no v). */
typedef struct {
  uint64_t heads, tokens, d, dv;
} layer_shape;

/* Opens group/name as a rank-3 float dataset whose declared size is
 * really stored; -1 (with a message) otherwise, -2 if absent and optional. */
static hid_t open_tensor(hid_t group, const char *path, const char *gname, const char *name, int required,
                         hsize_t dims[3]) {
  if (H5Lexists(group, name, H5P_DEFAULT) <= 0) {
    if (!required) return -2;
    kx_fail(KX_EIO, "%s: /%s has no dataset '%s'", path, gname, name);
    return -1;
  }
  hid_t ds = H5Dopen2(group, name, H5P_DEFAULT);
  if (ds < 0) {
    kx_fail(KX_EIO, "%s: /%s/%s is not a dataset", path, gname, name);
    return -1;
  }
  hid_t space = H5Dget_space(ds), type = H5Dget_type(ds);
  int rank = space >= 0 ? H5Sget_simple_extent_ndims(space) : -1;
  int rc = 0;
  if (type < 0 || H5Tget_class(type) != H5T_FLOAT) {
    rc = kx_fail(KX_EIO, "%s: /%s/%s must hold floating-point values (float32 or float64)", path, gname, name);
  } else if (rank != 3) {
    rc = kx_fail(KX_EIO, "%s: /%s/%s has rank %d; expected 3: (heads, tokens, d)", path, gname, name, rank);
  } else {
    H5Sget_simple_extent_dims(space, dims, NULL);
    for (int r = 0; r < 3 && !rc; r++)
      if (dims[r] == 0 || dims[r] > QK_MAX_DIM)
        rc = kx_fail(KX_EIO, "%s: /%s/%s has an empty or absurd dimension %d (%llu)", path, gname, name, r,
                     (unsigned long long)dims[r]);
    if (!rc) {
      char what[300];
      snprintf(what, sizeof what, "%s: /%s/%s (%llu x %llu x %llu)", path, gname, name,
               (unsigned long long)dims[0], (unsigned long long)dims[1], (unsigned long long)dims[2]);
      rc = kx_h5_check_stored(ds, what, kx_file_bytes(path));
    }
  }
  if (type >= 0) H5Tclose(type);
  if (space >= 0) H5Sclose(space);
  if (rc) {
    H5Dclose(ds);
    return -1;
  }
  return ds;
}

/* Sends heads [h0, h0 + hc) x tokens [0, n) of ds, head by head, as doubles. */
static int send_heads(hid_t ds, const char *what, size_t h0, size_t hc, size_t n, size_t d, kx_channel *ch) {
  if (kx_check_memory((double)n * (double)d * sizeof(double), what)) return KX_ENOMEM;
  double *buf = kx_malloc(n * d * sizeof *buf);
  if (!buf) return KX_ENOMEM;
  hid_t fspace = H5Dget_space(ds);
  hsize_t mdim = (hsize_t)(n * d);
  hid_t mspace = H5Screate_simple(1, &mdim, NULL);
  int rc = fspace < 0 || mspace < 0 ? kx_fail(KX_EIO, "%s: cannot select its values", what) : 0;
  for (size_t h = h0; h < h0 + hc && !rc; h++) {
    hsize_t start[3] = {h, 0, 0}, count[3] = {1, n, d};
    if (H5Sselect_hyperslab(fspace, H5S_SELECT_SET, start, NULL, count, NULL) < 0 ||
        H5Dread(ds, H5T_NATIVE_DOUBLE, mspace, fspace, H5P_DEFAULT, buf) < 0)
      rc = kx_fail(KX_EIO, "%s: cannot read head %zu (truncated file?)", what, h);
    else rc = kx_channel_send(ch, buf, n * d * sizeof *buf);
  }
  if (mspace >= 0) H5Sclose(mspace);
  if (fspace >= 0) H5Sclose(fspace);
  free(buf);
  return rc;
}

/* Sends the layer's shape, then (unless shape_only) q, k and v of the
 * requested heads and tokens. */
static int read_layer(const void *arg, kx_channel *ch) {
  const layer_request *rq = arg;
  const char *path = rq->path;
  hid_t file = open_file(path);
  if (file < 0) return KX_EIO;
  char gname[32];
  snprintf(gname, sizeof gname, "layer%d", rq->index);
  hid_t g = H5Gopen2(file, gname, H5P_DEFAULT);
  if (g < 0) {
    H5Fclose(file);
    return kx_fail(KX_EIO, "%s: cannot open group /%s", path, gname);
  }
  hsize_t dq[3], dk[3], dv[3];
  hid_t q = open_tensor(g, path, gname, "q", 1, dq);
  hid_t k = q >= 0 ? open_tensor(g, path, gname, "k", 1, dk) : -1;
  hid_t v = k >= 0 ? open_tensor(g, path, gname, "v", 0, dv) : -1;
  int rc = q < 0 || k < 0 || v == -1 ? KX_EIO : 0;
  if (!rc && (dq[0] != dk[0] || dq[1] != dk[1]))
    rc = kx_fail(KX_EINVAL, "%s: /%s: q is %llu x %llu x %llu but k is %llu x %llu x %llu "
                 "(heads and tokens must match)", path, gname, (unsigned long long)dq[0], (unsigned long long)dq[1],
                 (unsigned long long)dq[2], (unsigned long long)dk[0], (unsigned long long)dk[1],
                 (unsigned long long)dk[2]);
  if (!rc && dq[2] != dk[2])
    rc = kx_fail(KX_EINVAL, "%s: /%s: q has d = %llu but k has d = %llu", path, gname, (unsigned long long)dq[2],
                 (unsigned long long)dk[2]);
  if (!rc && v >= 0 && (dv[0] != dq[0] || dv[1] != dq[1]))
    rc = kx_fail(KX_EINVAL, "%s: /%s: v is %llu x %llu x %llu but q is %llu x %llu x %llu "
                 "(heads and tokens must match)", path, gname, (unsigned long long)dv[0], (unsigned long long)dv[1],
                 (unsigned long long)dv[2], (unsigned long long)dq[0], (unsigned long long)dq[1],
                 (unsigned long long)dq[2]);
  layer_shape s = {dq[0], dq[1], dq[2], v >= 0 ? dv[2] : 0};
  if (!rc) rc = kx_channel_send(ch, &s, sizeof s);
  if (!rc && !rq->shape_only) {
    size_t hc = rq->head_count ? rq->head_count : (size_t)s.heads;
    size_t n = rq->max_tokens && rq->max_tokens < s.tokens ? rq->max_tokens : (size_t)s.tokens;
    if (rq->head_first >= s.heads || hc > s.heads - rq->head_first)
      rc = kx_fail(KX_EINVAL, "%s layer %d has heads 0..%llu; heads %zu..%zu do not exist", path, rq->index,
                   (unsigned long long)s.heads - 1, rq->head_first, rq->head_first + hc - 1);
    char what[300];
    snprintf(what, sizeof what, "%s: /%s/q", path, gname);
    if (!rc) rc = send_heads(q, what, rq->head_first, hc, n, s.d, ch);
    what[strlen(what) - 1] = 'k';
    if (!rc) rc = send_heads(k, what, rq->head_first, hc, n, s.d, ch);
    what[strlen(what) - 1] = 'v';
    if (!rc && v >= 0) rc = send_heads(v, what, rq->head_first, hc, n, s.dv, ch);
  }
  if (v >= 0) H5Dclose(v);
  if (k >= 0) H5Dclose(k);
  if (q >= 0) H5Dclose(q);
  H5Gclose(g);
  H5Fclose(file);
  return rc;
}

/* ---- in the caller's process --------------------------------------- */

static int receive_header(void *arg, kx_channel *ch) {
  kx_qk_file *f = arg;
  int head[2];
  uint64_t n;
  int rc = kx_channel_recv(ch, head, sizeof head);
  if (!rc) rc = kx_channel_recv(ch, &n, sizeof n);
  if (rc) return rc;
  if (n == 0 || n > QK_MAX_LAYERS) return kx_fail(KX_EIO, "%s: reader sent %llu layers", f->path, (unsigned long long)n);
  f->scaled = head[0];
  f->causal = head[1];
  f->n_layers = (size_t)n;
  return kx_channel_recv(ch, f->indices, f->n_layers * sizeof f->indices[0]);
}

kx_qk_file *kx_qk_open(const char *path) {
  if (kx_input_check(path, "Q/K file")) return NULL;
  kx_h5_quiet(); /* the library initialised once here, not in every child */
  kx_qk_file *f = kx_calloc(1, sizeof *f);
  if (!f) return NULL;
  f->path = strdup(path);
  if (!f->path || kx_sandbox_run(path, read_header, path, receive_header, f)) {
    if (!f->path) kx_fail(KX_ENOMEM, "out of memory");
    kx_qk_close(f);
    return NULL;
  }
  return f;
}

size_t kx_qk_n_layers(const kx_qk_file *f) { return f->n_layers; }
int kx_qk_layer_index(const kx_qk_file *f, size_t i) { return f->indices[i]; }
int kx_qk_scaled(const kx_qk_file *f) { return f->scaled; }
int kx_qk_causal(const kx_qk_file *f) { return f->causal; }

typedef struct {
  const layer_request *rq;
  kx_qk_layer *out;
} layer_receipt;

static int receive_values(kx_channel *ch, const char *path, int index, const char *name, size_t count,
                          double **out) {
  *out = kx_malloc(count * sizeof **out);
  if (!*out) return KX_ENOMEM;
  int rc = kx_channel_recv(ch, *out, count * sizeof **out);
  char what[300];
  snprintf(what, sizeof what, "%s: /layer%d/%s", path, index, name);
  if (!rc && !kx_all_finite(*out, count, what)) rc = KX_EINVAL;
  return rc;
}

static int receive_layer(void *arg, kx_channel *ch) {
  layer_receipt *r = arg;
  const layer_request *rq = r->rq;
  kx_qk_layer *out = r->out;
  layer_shape s;
  int rc = kx_channel_recv(ch, &s, sizeof s);
  if (rc) return rc;
  if (!s.heads || !s.tokens || !s.d || s.heads > QK_MAX_DIM || s.tokens > QK_MAX_DIM || s.d > QK_MAX_DIM ||
      s.dv > QK_MAX_DIM)
    return kx_fail(KX_EIO, "%s: reader sent an impossible shape", rq->path);
  out->index = rq->index;
  out->d = (size_t)s.d;
  out->dv = (size_t)s.dv;
  if (rq->shape_only) {
    out->heads = (size_t)s.heads;
    out->tokens = (size_t)s.tokens;
    return 0;
  }
  out->head_first = rq->head_first;
  out->heads = rq->head_count ? rq->head_count : (size_t)s.heads;
  out->tokens = rq->max_tokens && rq->max_tokens < s.tokens ? rq->max_tokens : (size_t)s.tokens;
  double per_head = (double)out->tokens * (double)(2 * s.d + s.dv);
  char what[300];
  snprintf(what, sizeof what, "%s: loading layer %d (%zu heads x %zu tokens)", rq->path, rq->index, out->heads,
           out->tokens);
  if ((rc = kx_check_memory(per_head * (double)out->heads * sizeof(double), what))) return rc;
  size_t nq = out->heads * out->tokens * out->d;
  rc = receive_values(ch, rq->path, rq->index, "q", nq, &out->q);
  if (!rc) rc = receive_values(ch, rq->path, rq->index, "k", nq, &out->k);
  if (!rc && s.dv) rc = receive_values(ch, rq->path, rq->index, "v", out->heads * out->tokens * out->dv, &out->v);
  return rc;
}

static int run_layer_request(kx_qk_file *f, size_t i, layer_request *rq, kx_qk_layer *out) {
  memset(out, 0, sizeof *out);
  if (i >= f->n_layers) return kx_fail(KX_EINVAL, "%s: no layer at position %zu", f->path, i);
  rq->path = f->path;
  rq->index = f->indices[i];
  layer_receipt r = {rq, out};
  int rc = kx_sandbox_run(f->path, read_layer, rq, receive_layer, &r);
  if (rc) kx_qk_layer_free(out);
  return rc;
}

int kx_qk_layer_shape(kx_qk_file *f, size_t i, kx_qk_layer *shape) {
  layer_request rq = {.shape_only = 1};
  return run_layer_request(f, i, &rq, shape);
}

int kx_qk_read_heads(kx_qk_file *f, size_t i, size_t head_first, size_t head_count, size_t max_tokens,
                     kx_qk_layer *out) {
  if (head_count == 0) return kx_fail(KX_EINVAL, "%s: no heads requested", f->path);
  layer_request rq = {.head_first = head_first, .head_count = head_count, .max_tokens = max_tokens};
  return run_layer_request(f, i, &rq, out);
}

int kx_qk_read_layer(kx_qk_file *f, size_t i, kx_qk_layer *out) {
  layer_request rq = {0};
  return run_layer_request(f, i, &rq, out);
}

void kx_qk_close(kx_qk_file *f) {
  if (!f) return;
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
  return kx_h5_write_scalar(obj, name, H5T_STD_I32LE, H5T_NATIVE_INT, &v);
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
  hid_t file = kx_h5_create_in_memory();
  if (file < 0) return KX_ENOMEM;
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
  if (!ok) {
    H5Fclose(file);
    return kx_fail(KX_EIO, "building '%s' failed (out of memory?)", path);
  }
  return kx_h5_publish(file, path);
}
