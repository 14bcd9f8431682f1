#include "experiments/decoder/dec_ckpt.h"

#include <errno.h>
#include <fcntl.h>
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/kx_atomic.h"
#include "core/kx_error.h"

#define FORMAT "kapprox-decoder"
#define FORMAT_VERSION 1

static void quiet_hdf5(void) { H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }

static int attr_u64(hid_t obj, const char *name, uint64_t v) {
  hid_t s = H5Screate(H5S_SCALAR);
  hid_t a = H5Acreate2(obj, name, H5T_STD_U64LE, s, H5P_DEFAULT, H5P_DEFAULT);
  herr_t e = a < 0 ? -1 : H5Awrite(a, H5T_NATIVE_UINT64, &v);
  if (a >= 0) H5Aclose(a);
  H5Sclose(s);
  return e < 0 ? kx_fail(KX_EIO, "cannot write attribute %s", name) : 0;
}

static int attr_f64(hid_t obj, const char *name, double v) {
  hid_t s = H5Screate(H5S_SCALAR);
  hid_t a = H5Acreate2(obj, name, H5T_IEEE_F64LE, s, H5P_DEFAULT, H5P_DEFAULT);
  herr_t e = a < 0 ? -1 : H5Awrite(a, H5T_NATIVE_DOUBLE, &v);
  if (a >= 0) H5Aclose(a);
  H5Sclose(s);
  return e < 0 ? kx_fail(KX_EIO, "cannot write attribute %s", name) : 0;
}

static int attr_str(hid_t obj, const char *name, const char *v) {
  hid_t t = H5Tcopy(H5T_C_S1);
  H5Tset_size(t, strlen(v) + 1);
  H5Tset_strpad(t, H5T_STR_NULLTERM);
  hid_t s = H5Screate(H5S_SCALAR);
  hid_t a = H5Acreate2(obj, name, t, s, H5P_DEFAULT, H5P_DEFAULT);
  herr_t e = a < 0 ? -1 : H5Awrite(a, t, v);
  if (a >= 0) H5Aclose(a);
  H5Sclose(s);
  H5Tclose(t);
  return e < 0 ? kx_fail(KX_EIO, "cannot write attribute %s", name) : 0;
}

static int read_attr(hid_t obj, const char *where, const char *name, hid_t mem, void *out) {
  if (H5Aexists(obj, name) <= 0) return kx_fail(KX_EIO, "attribute %s of %s is missing", name, where);
  hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
  herr_t e = a < 0 ? -1 : H5Aread(a, mem, out);
  if (a >= 0) H5Aclose(a);
  return e < 0 ? kx_fail(KX_EIO, "cannot read attribute %s of %s", name, where) : 0;
}

static int read_attr_str(hid_t obj, const char *where, const char *name, char *out, size_t cap) {
  if (H5Aexists(obj, name) <= 0) return kx_fail(KX_EIO, "attribute %s of %s is missing", name, where);
  hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
  hid_t ft = a >= 0 ? H5Aget_type(a) : -1;
  int rc = 0;
  if (a < 0 || ft < 0 || H5Tget_class(ft) != H5T_STRING || H5Tis_variable_str(ft) > 0 ||
      H5Tget_size(ft) >= cap) {
    rc = kx_fail(KX_EIO, "attribute %s of %s is not a short fixed-length string", name, where);
  } else {
    hid_t mt = H5Tcopy(H5T_C_S1);
    H5Tset_size(mt, cap);
    H5Tset_strpad(mt, H5T_STR_NULLTERM);
    memset(out, 0, cap);
    if (H5Aread(a, mt, out) < 0) rc = kx_fail(KX_EIO, "cannot read attribute %s of %s", name, where);
    H5Tclose(mt);
  }
  if (ft >= 0) H5Tclose(ft);
  if (a >= 0) H5Aclose(a);
  return rc;
}

static int write_f32(hid_t file, hid_t lcpl, const char *path, const float *data, size_t rows, size_t cols) {
  hsize_t dims[2] = {rows, cols};
  hid_t s = H5Screate_simple(cols ? 2 : 1, dims, NULL);
  hid_t d = H5Dcreate2(file, path, H5T_IEEE_F32LE, s, lcpl, H5P_DEFAULT, H5P_DEFAULT);
  herr_t e = d < 0 ? -1 : H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, data);
  if (d >= 0) H5Dclose(d);
  H5Sclose(s);
  return e < 0 ? kx_fail(KX_EIO, "cannot write dataset %s", path) : 0;
}

static int read_f32(hid_t file, const char *path, float *data, size_t rows, size_t cols) {
  if (H5Lexists(file, path, H5P_DEFAULT) <= 0) return kx_fail(KX_EIO, "dataset %s is missing", path);
  hid_t d = H5Dopen2(file, path, H5P_DEFAULT);
  if (d < 0) return kx_fail(KX_EIO, "cannot open dataset %s", path);
  hid_t s = H5Dget_space(d);
  int rank = H5Sget_simple_extent_ndims(s);
  hsize_t dims[2] = {0, 0};
  if (rank == 1 || rank == 2) H5Sget_simple_extent_dims(s, dims, NULL);
  H5Sclose(s);
  int want_rank = cols ? 2 : 1;
  if (rank != want_rank || dims[0] != rows || (cols && dims[1] != cols)) {
    H5Dclose(d);
    return kx_fail(KX_EIO, "dataset %s has shape (%llu%s%llu) of rank %d, expected (%zu%s%zu)", path,
                   (unsigned long long)dims[0], rank == 2 ? ", " : "", (unsigned long long)dims[1], rank,
                   rows, cols ? ", " : "", cols);
  }
  herr_t e = H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, data);
  H5Dclose(d);
  return e < 0 ? kx_fail(KX_EIO, "cannot read dataset %s (truncated file?)", path) : 0;
}

int kx_dec_ckpt_save(const char *path, const kx_decoder *m, const kx_dec_vocab *vocab, const kx_adamw *opt,
                     const kx_dec_train_state *st) {
  quiet_hdf5();
  kx_atomic_file af;
  int begun = kx_atomic_begin(&af, path);
  if (begun) return kx_fail_context(begun, "writing checkpoint: ");
  const char *tmp = af.tmp;
  hid_t f = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  if (f < 0) {
    kx_atomic_abort(&af);
    return kx_fail(KX_EIO, "cannot create '%s' (does the directory exist and is it writable?)", path);
  }
  hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
  H5Pset_create_intermediate_group(lcpl, 1);
  const kx_dec_config *c = &m->cfg;
  int rc = attr_str(f, "format", FORMAT);
  if (!rc) rc = attr_u64(f, "format_version", FORMAT_VERSION);
  hid_t g = H5Gcreate2(f, "config", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  if (g < 0 && !rc) rc = kx_fail(KX_EIO, "cannot create group /config");
  if (!rc) rc = attr_u64(g, "vocab", c->vocab);
  if (!rc) rc = attr_u64(g, "ctx", c->ctx);
  if (!rc) rc = attr_u64(g, "layers", c->layers);
  if (!rc) rc = attr_u64(g, "heads", c->heads);
  if (!rc) rc = attr_u64(g, "width", c->width);
  if (!rc) rc = attr_u64(g, "rotary_dims", c->rotary_dims);
  if (!rc) rc = attr_f64(g, "rope_base", c->rope_base);
  if (!rc) rc = attr_f64(g, "ln_eps", c->ln_eps);
  if (!rc) rc = attr_str(g, "attention", c->attn_kind);
  if (!rc) rc = attr_u64(g, "parallel_residual", 1);
  if (!rc) rc = attr_u64(g, "tied_embeddings", 0);
  if (g >= 0) H5Gclose(g);
  if (!rc) {
    hsize_t dv = vocab->V;
    hid_t s = H5Screate_simple(1, &dv, NULL);
    hid_t d = H5Dcreate2(f, "vocab", H5T_STD_U32LE, s, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (d < 0 || H5Dwrite(d, H5T_NATIVE_UINT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, vocab->vocab) < 0)
      rc = kx_fail(KX_EIO, "cannot write /vocab");
    if (d >= 0) H5Dclose(d);
    H5Sclose(s);
  }
  char name[96];
  for (size_t i = 0; !rc && i < m->tab.n; i++) {
    const kx_tensor_info *t = &m->tab.t[i];
    snprintf(name, sizeof name, "param/%s", t->name);
    rc = write_f32(f, lcpl, name, m->params + t->offset, t->rows, t->cols);
  }
  if (!rc && opt && st) {
    hid_t o = H5Gcreate2(f, "optim", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (o < 0) rc = kx_fail(KX_EIO, "cannot create group /optim");
    if (!rc) rc = attr_u64(o, "step", st->step);
    if (!rc) rc = attr_u64(o, "steps", st->steps);
    if (!rc) rc = attr_u64(o, "warmup", st->warmup);
    if (!rc) rc = attr_u64(o, "batch", st->batch);
    if (!rc) rc = attr_u64(o, "seed", st->seed);
    if (!rc) rc = attr_u64(o, "data_hash", st->data_hash);
    if (!rc) rc = attr_u64(o, "adam_t", opt->t);
    if (!rc) rc = attr_f64(o, "lr", st->lr);
    if (!rc) rc = attr_f64(o, "lr_min", st->lr_min);
    if (!rc) rc = attr_f64(o, "weight_decay", st->weight_decay);
    if (!rc) rc = attr_f64(o, "beta1", st->beta1);
    if (!rc) rc = attr_f64(o, "beta2", st->beta2);
    if (!rc) rc = attr_f64(o, "eps", st->eps);
    if (!rc) rc = attr_f64(o, "clip", st->clip);
    if (!rc) rc = attr_f64(o, "elapsed", st->elapsed);
    if (o >= 0) H5Gclose(o);
    for (size_t i = 0; !rc && i < m->tab.n; i++) {
      const kx_tensor_info *t = &m->tab.t[i];
      snprintf(name, sizeof name, "optim/m/%s", t->name);
      rc = write_f32(f, lcpl, name, opt->m + t->offset, t->rows, t->cols);
      snprintf(name, sizeof name, "optim/v/%s", t->name);
      if (!rc) rc = write_f32(f, lcpl, name, opt->v + t->offset, t->rows, t->cols);
    }
  }
  H5Pclose(lcpl);
  if (H5Fclose(f) < 0 && !rc) rc = kx_fail(KX_EIO, "cannot close '%s' (disk full?)", tmp);
  if (rc)
    kx_atomic_abort(&af);
  else
    rc = kx_atomic_commit(&af);
  if (rc) kx_fail_context(rc, "writing checkpoint '%s': ", path);
  return rc;
}

int kx_dec_ckpt_load(const char *path, kx_decoder *m, kx_dec_vocab *vocab, kx_adamw *opt,
                     kx_dec_train_state *st) {
  quiet_hdf5();
  memset(m, 0, sizeof *m);
  memset(vocab, 0, sizeof *vocab);
  if (opt) memset(opt, 0, sizeof *opt);
  if (access(path, R_OK)) return kx_fail(KX_EIO, "cannot read checkpoint '%s': %s", path, strerror(errno));
  if (H5Fis_hdf5(path) <= 0)
    return kx_fail(KX_EIO, "'%s' is not an HDF5 file (truncated or foreign?); give a checkpoint written by "
                           "kapprox train --out", path);
  hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
  if (f < 0) return kx_fail(KX_EIO, "cannot open '%s' as HDF5 (truncated?)", path);
  int rc = 0;
  char fmt[64];
  uint64_t ver = 0;
  if (read_attr_str(f, "/", "format", fmt, sizeof fmt) || strcmp(fmt, FORMAT)) {
    rc = kx_fail(KX_EIO, "not a kapprox decoder checkpoint (root attribute format != \"%s\")", FORMAT);
    goto out;
  }
  if ((rc = read_attr(f, "/", "format_version", H5T_NATIVE_UINT64, &ver))) goto out;
  if (ver != FORMAT_VERSION) {
    rc = kx_fail(KX_EIO, "checkpoint format version %llu, this program reads %d", (unsigned long long)ver,
                 FORMAT_VERSION);
    goto out;
  }
  kx_dec_config c;
  kx_dec_config_default(&c);
  hid_t g = H5Lexists(f, "config", H5P_DEFAULT) > 0 ? H5Gopen2(f, "config", H5P_DEFAULT) : -1;
  if (g < 0) {
    rc = kx_fail(KX_EIO, "group /config is missing");
    goto out;
  }
  uint64_t u[6];
  const char *names[6] = {"vocab", "ctx", "layers", "heads", "width", "rotary_dims"};
  for (int i = 0; !rc && i < 6; i++) rc = read_attr(g, "/config", names[i], H5T_NATIVE_UINT64, &u[i]);
  if (!rc) rc = read_attr(g, "/config", "rope_base", H5T_NATIVE_DOUBLE, &c.rope_base);
  if (!rc) rc = read_attr(g, "/config", "ln_eps", H5T_NATIVE_DOUBLE, &c.ln_eps);
  if (!rc) rc = read_attr_str(g, "/config", "attention", c.attn_kind, sizeof c.attn_kind);
  H5Gclose(g);
  if (rc) goto out;
  c.vocab = u[0], c.ctx = u[1], c.layers = u[2], c.heads = u[3], c.width = u[4], c.rotary_dims = u[5];
  if ((rc = kx_dec_create(m, &c))) goto out;
  {
    hid_t d = H5Lexists(f, "vocab", H5P_DEFAULT) > 0 ? H5Dopen2(f, "vocab", H5P_DEFAULT) : -1;
    if (d < 0) {
      rc = kx_fail(KX_EIO, "dataset /vocab is missing");
      goto out;
    }
    hid_t s = H5Dget_space(d);
    hsize_t n = 0;
    if (H5Sget_simple_extent_ndims(s) == 1) H5Sget_simple_extent_dims(s, &n, NULL);
    H5Sclose(s);
    if (n != c.vocab) {
      H5Dclose(d);
      rc = kx_fail(KX_EIO, "/vocab has %llu entries but /config says vocab = %zu", (unsigned long long)n, c.vocab);
      goto out;
    }
    vocab->vocab = kx_malloc(n * sizeof(uint32_t));
    vocab->V = n;
    if (!vocab->vocab || H5Dread(d, H5T_NATIVE_UINT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, vocab->vocab) < 0)
      rc = kx_fail(KX_EIO, "cannot read /vocab");
    H5Dclose(d);
    for (size_t i = 1; !rc && i < n; i++)
      if (vocab->vocab[i] <= vocab->vocab[i - 1]) rc = kx_fail(KX_EIO, "/vocab is not strictly increasing");
    if (rc) goto out;
  }
  char name[96];
  for (size_t i = 0; !rc && i < m->tab.n; i++) {
    const kx_tensor_info *t = &m->tab.t[i];
    snprintf(name, sizeof name, "param/%s", t->name);
    rc = read_f32(f, name, m->params + t->offset, t->rows, t->cols);
  }
  if (rc) goto out;
  if (opt || st) {
    if (H5Lexists(f, "optim", H5P_DEFAULT) <= 0) {
      rc = kx_fail(KX_EIO, "it has no optimizer state (/optim); it cannot be resumed");
      goto out;
    }
    hid_t o = H5Gopen2(f, "optim", H5P_DEFAULT);
    kx_dec_train_state s;
    memset(&s, 0, sizeof s);
    uint64_t adam_t = 0;
    rc = read_attr(o, "/optim", "step", H5T_NATIVE_UINT64, &s.step);
    if (!rc) rc = read_attr(o, "/optim", "steps", H5T_NATIVE_UINT64, &s.steps);
    if (!rc) rc = read_attr(o, "/optim", "warmup", H5T_NATIVE_UINT64, &s.warmup);
    if (!rc) rc = read_attr(o, "/optim", "batch", H5T_NATIVE_UINT64, &s.batch);
    if (!rc) rc = read_attr(o, "/optim", "seed", H5T_NATIVE_UINT64, &s.seed);
    if (!rc) rc = read_attr(o, "/optim", "data_hash", H5T_NATIVE_UINT64, &s.data_hash);
    if (!rc) rc = read_attr(o, "/optim", "adam_t", H5T_NATIVE_UINT64, &adam_t);
    if (!rc) rc = read_attr(o, "/optim", "lr", H5T_NATIVE_DOUBLE, &s.lr);
    if (!rc) rc = read_attr(o, "/optim", "lr_min", H5T_NATIVE_DOUBLE, &s.lr_min);
    if (!rc) rc = read_attr(o, "/optim", "weight_decay", H5T_NATIVE_DOUBLE, &s.weight_decay);
    if (!rc) rc = read_attr(o, "/optim", "beta1", H5T_NATIVE_DOUBLE, &s.beta1);
    if (!rc) rc = read_attr(o, "/optim", "beta2", H5T_NATIVE_DOUBLE, &s.beta2);
    if (!rc) rc = read_attr(o, "/optim", "eps", H5T_NATIVE_DOUBLE, &s.eps);
    if (!rc) rc = read_attr(o, "/optim", "clip", H5T_NATIVE_DOUBLE, &s.clip);
    if (!rc) rc = read_attr(o, "/optim", "elapsed", H5T_NATIVE_DOUBLE, &s.elapsed);
    H5Gclose(o);
    if (rc) goto out;
    if (st) *st = s;
    if (opt) {
      if ((rc = kx_adamw_create(opt, m->tab.total, s.beta1, s.beta2, s.eps, s.weight_decay))) goto out;
      opt->t = adam_t;
      for (size_t i = 0; !rc && i < m->tab.n; i++) {
        const kx_tensor_info *t = &m->tab.t[i];
        snprintf(name, sizeof name, "optim/m/%s", t->name);
        rc = read_f32(f, name, opt->m + t->offset, t->rows, t->cols);
        snprintf(name, sizeof name, "optim/v/%s", t->name);
        if (!rc) rc = read_f32(f, name, opt->v + t->offset, t->rows, t->cols);
      }
    }
  }
out:
  H5Fclose(f);
  if (rc) {
    kx_dec_free(m);
    kx_dec_vocab_free(vocab);
    if (opt) kx_adamw_free(opt);
    kx_fail_context(rc, "checkpoint '%s': ", path);
  }
  return rc;
}
