#include "experiments/model/dec_ckpt.h"

#include <errno.h>
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/kx_error.h"
#include "core/kx_h5.h"
#include "core/kx_input.h"
#include "core/kx_sandbox.h"
#include "experiments/model/dec_dijiang_form.h"

#define FORMAT "kapprox-decoder"
/* Version 2 marks a checkpoint whose /config carries an attribute that
 * changes the model (softmax_layers, window; a DiJiang form other than
 * its kind's preset): a reader of version 1 would ignore it and build
 * another model, so it must refuse the file.  Checkpoints without such
 * attributes keep version 1 (a DiJiang preset's dijiang_form only restates
 * the kind), and this reader takes both. */
#define FORMAT_VERSION 1
#define FORMAT_VERSION_HYBRID 2


static int attr_u64(hid_t obj, const char *name, uint64_t v) {
  return kx_h5_write_scalar(obj, name, H5T_STD_U64LE, H5T_NATIVE_UINT64, &v);
}

static int attr_f64(hid_t obj, const char *name, double v) {
  return kx_h5_write_scalar(obj, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &v);
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

static int write_f32(hid_t file, hid_t lcpl, const char *path, const float *data, size_t rows, size_t cols) {
  hsize_t dims[2] = {rows, cols};
  hid_t s = H5Screate_simple(cols ? 2 : 1, dims, NULL);
  hid_t d = H5Dcreate2(file, path, H5T_IEEE_F32LE, s, lcpl, H5P_DEFAULT, H5P_DEFAULT);
  herr_t e = d < 0 ? -1 : H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, data);
  if (d >= 0) H5Dclose(d);
  H5Sclose(s);
  return e < 0 ? kx_fail(KX_EIO, "cannot write dataset %s", path) : 0;
}

int kx_dec_ckpt_save(const char *path, const kx_decoder *m, const kx_dec_vocab *vocab, const kx_adamw *opt,
                     const kx_dec_train_state *st) {
  /* a file the loader would refuse is not written */
  for (size_t i = 0; i < m->tab.n; i++)
    for (size_t j = 0; j < m->tab.t[i].size; j++)
      if (!isfinite(m->params[m->tab.t[i].offset + j]))
        return kx_fail(KX_ENUM, "checkpoint '%s' not written: parameter %s holds %g at index %zu", path,
                       m->tab.t[i].name, (double)m->params[m->tab.t[i].offset + j], j);
  hid_t f = kx_h5_create_in_memory();
  if (f < 0) return kx_fail_context(KX_ENOMEM, "writing checkpoint '%s': ", path);
  hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
  H5Pset_create_intermediate_group(lcpl, 1);
  const kx_dec_config *c = &m->cfg;
  int rc = attr_str(f, "format", FORMAT);
  if (!rc)
    rc = attr_u64(f, "format_version",
                  c->softmax_layers || c->window || c->dijiang_flips || c->arch || c->token_ids ? FORMAT_VERSION_HYBRID
                                                                                : FORMAT_VERSION);
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
  if (!rc && c->softmax_layers) rc = attr_u64(g, "softmax_layers", c->softmax_layers);
  /* only when set: a model without it writes the file it always did */
  if (!rc && c->window) rc = attr_u64(g, "window", c->window);
  const kx_dijiang_preset *pr = kx_dijiang_preset_of(c->attn_kind);
  if (!rc && pr) {
    char form[160];
    kx_dijiang_form_format(pr->form ^ c->dijiang_flips, ",", form, sizeof form);
    rc = attr_str(g, "dijiang_form", form);
  }
  if (!rc) rc = attr_u64(g, "parallel_residual", !kx_dec_llama(c));
  if (!rc) rc = attr_u64(g, "tied_embeddings", (uint64_t)c->tied);
  if (!rc && kx_dec_llama(c)) rc = attr_str(g, "architecture", "llama");
  if (!rc && c->token_ids) rc = attr_str(g, "tokens", "ids");
  if (!rc && kx_dec_llama(c)) rc = attr_u64(g, "kv_heads", kx_dec_kv_heads(c));
  if (!rc && kx_dec_llama(c)) rc = attr_u64(g, "ffn_hidden", kx_dec_ffn_hidden(c));
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
    if (!t->size) continue; /* an empty slot (dec_heads.h) */
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
      if (!t->size) continue;
      snprintf(name, sizeof name, "optim/m/%s", t->name);
      rc = write_f32(f, lcpl, name, opt->m + t->offset, t->rows, t->cols);
      snprintf(name, sizeof name, "optim/v/%s", t->name);
      if (!rc) rc = write_f32(f, lcpl, name, opt->v + t->offset, t->rows, t->cols);
    }
  }
  H5Pclose(lcpl);
  if (rc) {
    H5Fclose(f);
    kx_fail_context(rc, "writing checkpoint '%s': ", path);
  } else {
    rc = kx_h5_publish(f, path);
  }
  return rc;
}

/* ---- loading: HDF5 in a child process (core/kx_sandbox.h), checks here ---- */

typedef struct {
  const char *path;
  int want_state, want_moments;
} load_request;

/* Reads float dataset `name` of shape (rows, cols) ((rows,) when cols is 0),
 * refusing a declared size the file does not really store. */
static int read_f32(hid_t file, unsigned long long file_bytes, const char *name, float *data, size_t rows,
                    size_t cols) {
  if (H5Lexists(file, name, H5P_DEFAULT) <= 0) return kx_fail(KX_EIO, "dataset %s is missing", name);
  hid_t d = H5Dopen2(file, name, H5P_DEFAULT);
  if (d < 0) return kx_fail(KX_EIO, "cannot open dataset %s", name);
  hid_t s = H5Dget_space(d), t = H5Dget_type(d);
  int rank = s >= 0 ? H5Sget_simple_extent_ndims(s) : -1;
  hsize_t dims[2] = {0, 0};
  if (rank == 1 || rank == 2) H5Sget_simple_extent_dims(s, dims, NULL);
  int is_float = t >= 0 && H5Tget_class(t) == H5T_FLOAT;
  if (t >= 0) H5Tclose(t);
  if (s >= 0) H5Sclose(s);
  int want_rank = cols ? 2 : 1, rc = 0;
  if (rank != want_rank || dims[0] != rows || (cols && dims[1] != cols))
    rc = kx_fail(KX_EIO, "dataset %s has shape (%llu%s%llu) of rank %d, expected (%zu%s%zu)", name,
                 (unsigned long long)dims[0], rank == 2 ? ", " : "", (unsigned long long)dims[1], rank, rows,
                 cols ? ", " : "", cols);
  else if (!is_float) rc = kx_fail(KX_EIO, "dataset %s must hold floating-point values", name);
  else rc = kx_h5_check_stored(d, name, file_bytes);
  if (!rc && H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0)
    rc = kx_fail(KX_EIO, "cannot read dataset %s (truncated file?)", name);
  H5Dclose(d);
  return rc;
}

static int read_config(hid_t f, unsigned long long file_bytes, kx_dec_config *c) {
  kx_dec_config_default(c);
  if (H5Lexists(f, "config", H5P_DEFAULT) <= 0) return kx_fail(KX_EIO, "group /config is missing");
  hid_t g = H5Gopen2(f, "config", H5P_DEFAULT);
  if (g < 0) return kx_fail(KX_EIO, "cannot open group /config");
  uint64_t u[6];
  const char *names[6] = {"vocab", "ctx", "layers", "heads", "width", "rotary_dims"};
  int rc = 0;
  for (int i = 0; !rc && i < 6; i++) rc = kx_h5_attr_scalar(g, names[i], H5T_NATIVE_UINT64, &u[i]);
  if (!rc) rc = kx_h5_attr_scalar(g, "rope_base", H5T_NATIVE_DOUBLE, &c->rope_base);
  if (!rc) rc = kx_h5_attr_scalar(g, "ln_eps", H5T_NATIVE_DOUBLE, &c->ln_eps);
  if (!rc) rc = kx_h5_attr_string(g, "attention", c->attn_kind, sizeof c->attn_kind);
  /* absent: every layer has `attention` (checkpoints before layer hybrids) */
  if (!rc && H5Aexists(g, "softmax_layers") > 0)
    rc = kx_h5_attr_scalar(g, "softmax_layers", H5T_NATIVE_UINT64, &c->softmax_layers);
  uint64_t window = 0; /* absent: no sliding window (every older checkpoint) */
  if (!rc && H5Aexists(g, "window") > 0) rc = kx_h5_attr_scalar(g, "window", H5T_NATIVE_UINT64, &window);
  /* absent: the kind's preset (checkpoints before the form switches) */
  char form[256] = "";
  if (!rc && H5Aexists(g, "dijiang_form") > 0) rc = kx_h5_attr_string(g, "dijiang_form", form, sizeof form);
  /* absent: the Pythia-like block (every checkpoint before llama) */
  char arch[32] = "pythia";
  uint64_t kv = 0, hidden = 0, tied = 0;
  char tokens[16] = "characters"; /* absent: /vocab holds code points */
  if (!rc && H5Aexists(g, "tokens") > 0) rc = kx_h5_attr_string(g, "tokens", tokens, sizeof tokens);
  if (!rc && H5Aexists(g, "architecture") > 0) rc = kx_h5_attr_string(g, "architecture", arch, sizeof arch);
  if (!rc && H5Aexists(g, "kv_heads") > 0) rc = kx_h5_attr_scalar(g, "kv_heads", H5T_NATIVE_UINT64, &kv);
  if (!rc && H5Aexists(g, "ffn_hidden") > 0) rc = kx_h5_attr_scalar(g, "ffn_hidden", H5T_NATIVE_UINT64, &hidden);
  if (!rc && H5Aexists(g, "tied_embeddings") > 0) rc = kx_h5_attr_scalar(g, "tied_embeddings", H5T_NATIVE_UINT64, &tied);
  H5Gclose(g);
  if (rc) return kx_fail_context(rc, "/config: ");
  if (!strcmp(arch, "llama")) c->arch = KX_ARCH_LLAMA;
  else if (strcmp(arch, "pythia"))
    return kx_fail(KX_EIO, "/config: architecture '%s' is not one this program knows (pythia, llama)", arch);
  if (kv > 1u << 20 || hidden > 1u << 21 || tied > 1)
    return kx_fail(KX_EIO, "/config: kv_heads = %llu, ffn_hidden = %llu, tied_embeddings = %llu out of range",
                   (unsigned long long)kv, (unsigned long long)hidden, (unsigned long long)tied);
  c->kv_heads = (size_t)kv, c->ffn_hidden = (size_t)hidden, c->tied = (int)tied;
  if (!strcmp(tokens, "ids")) c->token_ids = 1;
  else if (strcmp(tokens, "characters"))
    return kx_fail(KX_EIO, "/config: tokens = '%s'; known are ids and characters", tokens);
  if (form[0]) {
    const kx_dijiang_preset *pr = kx_dijiang_preset_of(c->attn_kind);
    kx_dijiang_form f;
    if (!pr)
      return kx_fail(KX_EIO, "/config: attention '%s' with a dijiang_form attribute, which only the DiJiang kinds "
                     "have", c->attn_kind);
    if ((rc = kx_dijiang_form_parse_full(form, "/config/dijiang_form", &f))) return rc;
    c->dijiang_flips = f ^ pr->form;
  }
  c->vocab = u[0], c->ctx = u[1], c->layers = u[2], c->heads = u[3], c->width = u[4], c->rotary_dims = u[5];
  c->window = window;
  if (!isfinite(c->rope_base) || !isfinite(c->ln_eps))
    return kx_fail(KX_EIO, "/config: rope_base = %g, ln_eps = %g; both must be finite", c->rope_base, c->ln_eps);
  if ((rc = kx_dec_config_check(c))) return kx_fail_context(KX_EIO, "/config: ");
  /* Before allocating the model: every model has at least its embedding and
   * unembedding (V x C each) and per layer the MLP (2 x 4C x C) */
  double floats = 2.0 * (double)c->vocab * (double)c->width + 8.0 * (double)c->layers * (double)c->width * (double)c->width;
  /* llama: the embedding (and a classifier of its own), per layer W1, W2, W3 */
  if (kx_dec_llama(c))
    floats = (2.0 - c->tied) * (double)c->vocab * (double)c->width +
             3.0 * (double)c->layers * (double)kx_dec_ffn_hidden(c) * (double)c->width;
  double bytes = 4.0 * floats;
  int compressed = 0;
  hid_t e = H5Lexists(f, "param/embed", H5P_DEFAULT) > 0 ? H5Dopen2(f, "param/embed", H5P_DEFAULT) : -1;
  if (e >= 0) {
    hid_t dcpl = H5Dget_create_plist(e);
    compressed = dcpl >= 0 && H5Pget_nfilters(dcpl) > 0;
    if (dcpl >= 0) H5Pclose(dcpl);
    H5Dclose(e);
  }
  if (!compressed && bytes > (double)file_bytes)
    return kx_fail(KX_EIO, "/config declares a model of at least %.0f parameters (%.3g MB of float32) but the file "
                   "has only %llu bytes (damaged)", floats, bytes / 1e6, file_bytes);
  /* parameters and gradients here, and the same in the reading process */
  return kx_check_memory(4.0 * bytes, "the model declared by /config");
}

static const char *optim_u64[] = {"step", "steps", "warmup", "batch", "seed", "data_hash", "adam_t"};
static const char *optim_f64[] = {"lr", "lr_min", "weight_decay", "beta1", "beta2", "eps", "clip", "elapsed"};
#define N_OPTIM_U64 (sizeof optim_u64 / sizeof optim_u64[0])
#define N_OPTIM_F64 (sizeof optim_f64 / sizeof optim_f64[0])

/* Sends: config, V, vocab, total, params [, u64 and f64 optimizer
 * attributes [, moments m, v]]. */
static int read_checkpoint_file(const load_request *rq, hid_t f, kx_channel *ch) {
  unsigned long long file_bytes = kx_file_bytes(rq->path);
  char fmt[64];
  uint64_t ver = 0;
  if (kx_h5_attr_string(f, "format", fmt, sizeof fmt) || strcmp(fmt, FORMAT))
    return kx_fail(KX_EIO, "not a kapprox decoder checkpoint (root attribute format != \"%s\")", FORMAT);
  int rc = kx_h5_attr_scalar(f, "format_version", H5T_NATIVE_UINT64, &ver);
  if (rc) return rc;
  if (ver != FORMAT_VERSION && ver != FORMAT_VERSION_HYBRID)
    return kx_fail(KX_EIO, "checkpoint format version %llu, this program reads %d and %d", (unsigned long long)ver,
                   FORMAT_VERSION, FORMAT_VERSION_HYBRID);
  kx_dec_config c;
  if ((rc = read_config(f, file_bytes, &c))) return rc;
  if ((rc = kx_channel_send(ch, &c, sizeof c))) return rc;
  /* the table of tensors and a buffer for them; nothing here may start
   * OpenMP threads (libgomp does not survive fork in the child) */
  kx_decoder m;
  if ((rc = kx_dec_create(&m, &c))) return rc;
  hid_t d = H5Lexists(f, "vocab", H5P_DEFAULT) > 0 ? H5Dopen2(f, "vocab", H5P_DEFAULT) : -1;
  uint32_t *vocab = NULL;
  uint64_t n = 0;
  if (d < 0) {
    rc = kx_fail(KX_EIO, "dataset /vocab is missing");
  } else {
    hid_t s = H5Dget_space(d);
    hsize_t dim = 0;
    if (s >= 0 && H5Sget_simple_extent_ndims(s) == 1) H5Sget_simple_extent_dims(s, &dim, NULL);
    if (s >= 0) H5Sclose(s);
    n = dim;
    if (n != c.vocab)
      rc = kx_fail(KX_EIO, "/vocab has %llu entries but /config says vocab = %zu", (unsigned long long)n, c.vocab);
    else if (!(rc = kx_h5_check_stored(d, "/vocab", file_bytes)) && !(vocab = kx_malloc(n * sizeof *vocab)))
      rc = KX_ENOMEM;
    else if (!rc && H5Dread(d, H5T_NATIVE_UINT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, vocab) < 0)
      rc = kx_fail(KX_EIO, "cannot read /vocab");
    H5Dclose(d);
  }
  if (!rc) rc = kx_channel_send(ch, &n, sizeof n);
  if (!rc) rc = kx_channel_send(ch, vocab, n * sizeof *vocab);
  free(vocab);
  char name[96];
  for (size_t i = 0; !rc && i < m.tab.n; i++) {
    const kx_tensor_info *t = &m.tab.t[i];
    if (!t->size) continue;
    snprintf(name, sizeof name, "param/%s", t->name);
    rc = read_f32(f, file_bytes, name, m.params + t->offset, t->rows, t->cols);
  }
  uint64_t total = m.tab.total;
  if (!rc) rc = kx_channel_send(ch, &total, sizeof total);
  if (!rc) rc = kx_channel_send(ch, m.params, total * sizeof *m.params);
  if (!rc && rq->want_state) {
    hid_t o = H5Lexists(f, "optim", H5P_DEFAULT) > 0 ? H5Gopen2(f, "optim", H5P_DEFAULT) : -1;
    if (o < 0) {
      rc = kx_fail(KX_EIO, "it has no optimizer state (/optim); it cannot be resumed");
    } else {
      uint64_t u[N_OPTIM_U64];
      double x[N_OPTIM_F64];
      for (size_t i = 0; !rc && i < N_OPTIM_U64; i++) rc = kx_h5_attr_scalar(o, optim_u64[i], H5T_NATIVE_UINT64, &u[i]);
      for (size_t i = 0; !rc && i < N_OPTIM_F64; i++) rc = kx_h5_attr_scalar(o, optim_f64[i], H5T_NATIVE_DOUBLE, &x[i]);
      H5Gclose(o);
      if (rc) kx_fail_context(rc, "/optim: ");
      if (!rc) rc = kx_channel_send(ch, u, sizeof u);
      if (!rc) rc = kx_channel_send(ch, x, sizeof x);
    }
    /* the moments pass through the (unused here) gradient buffer */
    for (int mv = 0; !rc && rq->want_moments && mv < 2; mv++) {
      for (size_t i = 0; !rc && i < m.tab.n; i++) {
        const kx_tensor_info *t = &m.tab.t[i];
        if (!t->size) continue;
        snprintf(name, sizeof name, "optim/%s/%s", mv ? "v" : "m", t->name);
        rc = read_f32(f, file_bytes, name, m.grads + t->offset, t->rows, t->cols);
      }
      if (!rc) rc = kx_channel_send(ch, m.grads, total * sizeof *m.grads);
    }
  }
  kx_dec_free(&m);
  return rc;
}

static int read_checkpoint(const void *arg, kx_channel *ch) {
  const load_request *rq = arg;
  kx_h5_quiet();
  if (access(rq->path, R_OK)) return kx_fail(KX_EIO, "cannot read checkpoint '%s': %s", rq->path, strerror(errno));
  if (H5Fis_hdf5(rq->path) <= 0)
    return kx_fail(KX_EIO, "'%s' is not an HDF5 file (truncated or foreign?); give a checkpoint written by "
                   "kapprox train --out", rq->path);
  hid_t f = H5Fopen(rq->path, H5F_ACC_RDONLY, H5P_DEFAULT);
  if (f < 0) return kx_fail(KX_EIO, "cannot open '%s' as HDF5 (truncated?)", rq->path);
  int rc = read_checkpoint_file(rq, f, ch);
  H5Fclose(f);
  if (rc) kx_fail_context(rc, "checkpoint '%s': ", rq->path);
  return rc;
}

typedef struct {
  const load_request *rq;
  kx_decoder *m;
  kx_dec_vocab *vocab;
  kx_adamw *opt;
  kx_dec_train_state *st;
} load_receipt;

/* Every value of every tensor finite (and >= 0 for second moments). */
static int check_values(const load_receipt *r, const float *x, const char *what, int nonnegative) {
  const kx_param_table *tab = &r->m->tab;
  for (size_t i = 0; i < tab->n; i++) {
    const float *p = x + tab->t[i].offset;
    for (size_t j = 0; j < tab->t[i].size; j++)
      if (!isfinite(p[j]) || (nonnegative && p[j] < 0))
        return kx_fail(KX_EINVAL, "checkpoint '%s': %s %s holds %g at index %zu; the file is damaged or the run "
                       "that wrote it diverged (use an earlier checkpoint)", r->rq->path, what, tab->t[i].name,
                       (double)p[j], j);
  }
  return 0;
}

static int check_state(const char *path, const kx_dec_train_state *s) {
  const double x[] = {s->lr, s->lr_min, s->weight_decay, s->beta1, s->beta2, s->eps, s->clip, s->elapsed};
  for (size_t i = 0; i < sizeof x / sizeof x[0]; i++)
    if (!isfinite(x[i]))
      return kx_fail(KX_EINVAL, "checkpoint '%s': /optim attribute %s is %g", path, optim_f64[i], x[i]);
  if (!(s->beta1 >= 0 && s->beta1 < 1 && s->beta2 >= 0 && s->beta2 < 1 && s->eps > 0 && s->lr > 0))
    return kx_fail(KX_EINVAL, "checkpoint '%s': /optim has beta1 = %g, beta2 = %g, eps = %g, lr = %g; expected "
                   "betas in [0, 1) and eps, lr > 0", path, s->beta1, s->beta2, s->eps, s->lr);
  if (s->batch == 0 || s->step > s->steps)
    return kx_fail(KX_EINVAL, "checkpoint '%s': /optim has step %llu of %llu with batch %llu", path,
                   (unsigned long long)s->step, (unsigned long long)s->steps, (unsigned long long)s->batch);
  return 0;
}

static int receive_checkpoint(void *arg, kx_channel *ch) {
  load_receipt *r = arg;
  const char *path = r->rq->path;
  kx_dec_config c;
  int rc = kx_channel_recv(ch, &c, sizeof c);
  if (rc) return rc;
  c.attn_kind[sizeof c.attn_kind - 1] = '\0';
  if ((rc = kx_dec_create(r->m, &c))) return kx_fail_context(rc, "checkpoint '%s': ", path);
  uint64_t n = 0;
  if ((rc = kx_channel_recv(ch, &n, sizeof n))) return rc;
  if (n != c.vocab) return kx_fail(KX_EIO, "checkpoint '%s': reader sent %llu vocabulary entries", path, (unsigned long long)n);
  r->vocab->vocab = kx_malloc(n * sizeof(uint32_t));
  r->vocab->V = n;
  r->vocab->ids = c.token_ids;
  if (!r->vocab->vocab) return KX_ENOMEM;
  if ((rc = kx_channel_recv(ch, r->vocab->vocab, n * sizeof(uint32_t)))) return rc;
  for (size_t i = 0; i < n; i++) {
    uint32_t cp = r->vocab->vocab[i];
    if (!c.token_ids && (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)))
      return kx_fail(KX_EINVAL, "checkpoint '%s': /vocab[%zu] = U+%04X is not a Unicode character (a surrogate "
                     "or beyond U+10FFFF); the file is damaged", path, i, (unsigned)cp);
    if (i && cp <= r->vocab->vocab[i - 1])
      return kx_fail(KX_EIO, "checkpoint '%s': /vocab is not strictly increasing", path);
  }
  uint64_t total = 0;
  if ((rc = kx_channel_recv(ch, &total, sizeof total))) return rc;
  if (total != r->m->tab.total) return kx_fail(KX_EIO, "checkpoint '%s': reader sent %llu parameters", path, (unsigned long long)total);
  if ((rc = kx_channel_recv(ch, r->m->params, total * sizeof(float)))) return rc;
  if ((rc = check_values(r, r->m->params, "parameter", 0))) return rc;
  if (!r->rq->want_state) return 0;
  uint64_t u[N_OPTIM_U64];
  double x[N_OPTIM_F64];
  if ((rc = kx_channel_recv(ch, u, sizeof u)) || (rc = kx_channel_recv(ch, x, sizeof x))) return rc;
  kx_dec_train_state s = {.step = u[0], .steps = u[1], .warmup = u[2], .batch = u[3], .seed = u[4], .data_hash = u[5],
                          .lr = x[0], .lr_min = x[1], .weight_decay = x[2], .beta1 = x[3], .beta2 = x[4], .eps = x[5],
                          .clip = x[6], .elapsed = x[7]};
  if ((rc = check_state(path, &s))) return rc;
  if (r->st) *r->st = s;
  if (!r->opt) return 0;
  if ((rc = kx_adamw_create(r->opt, total, s.beta1, s.beta2, s.eps, s.weight_decay))) return rc;
  r->opt->t = u[6];
  if ((rc = kx_channel_recv(ch, r->opt->m, total * sizeof(float)))) return rc;
  if ((rc = check_values(r, r->opt->m, "first moment of", 0))) return rc;
  if ((rc = kx_channel_recv(ch, r->opt->v, total * sizeof(float)))) return rc;
  return check_values(r, r->opt->v, "second moment of", 1);
}

/* Parameters that are finite but absurd (a damaged file, or one no
 * training run wrote: an unembedding of +-3e38) make the model compute inf
 * and NaN from the first token, and a command would carry on with them.
 * So the loaded model runs once on a probe input, every token of the
 * vocabulary in order in windows of up to 64 positions, and every
 * activation and logit must be finite. */
#define PROBE_TOKENS 64

int kx_dec_ckpt_probe(kx_decoder *m) {
  size_t T = m->cfg.ctx < PROBE_TOKENS ? m->cfg.ctx : PROBE_TOKENS, B = (m->cfg.vocab + T - 1) / T;
  int *tokens = kx_malloc(B * T * sizeof(int));
  if (!tokens) return KX_ENOMEM;
  for (size_t t = 0; t < B * T; t++) tokens[t] = (int)(t % m->cfg.vocab);
  int rc = kx_dec_forward(m, tokens, NULL, B, T, NULL);
  free(tokens);
  if (!rc) rc = kx_dec_check_finite(m);
  if (rc != KX_ENUM) return rc;
  char what[512];
  snprintf(what, sizeof what, "%s", kx_error_message());
  double big;
  const char *name = kx_dec_largest_param(m, &big);
  return kx_fail(KX_ENUM, "on a probe input (the vocabulary in order) %s; the largest parameter is %g, in %s", what,
                 big, name);
}

static int probe(const char *path, kx_decoder *m) {
  int rc = kx_dec_ckpt_probe(m);
  if (rc != KX_ENUM) return rc;
  char what[768];
  snprintf(what, sizeof what, "%s", kx_error_message());
  return kx_fail(KX_EINVAL, "checkpoint '%s': its parameters are finite, but %s: the file is damaged or was not "
                 "written by a training run", path, what);
}

static int load(const char *path, kx_decoder *m, kx_dec_vocab *vocab, kx_adamw *opt, kx_dec_train_state *st,
                int unprobed) {
  memset(m, 0, sizeof *m);
  memset(vocab, 0, sizeof *vocab);
  if (opt) memset(opt, 0, sizeof *opt);
  if (kx_input_check(path, "checkpoint")) return KX_EIO;
  kx_h5_quiet(); /* the library initialised once here, not in every child */
  load_request rq = {path, opt || st, opt != NULL};
  load_receipt r = {&rq, m, vocab, opt, st};
  int rc = kx_sandbox_run(path, read_checkpoint, &rq, receive_checkpoint, &r);
  if (!rc && !unprobed) rc = probe(path, m);
  if (rc) {
    kx_dec_free(m);
    kx_dec_vocab_free(vocab);
    if (opt) kx_adamw_free(opt);
  }
  return rc;
}

int kx_dec_ckpt_load(const char *path, kx_decoder *m, kx_dec_vocab *vocab, kx_adamw *opt,
                     kx_dec_train_state *st) {
  return load(path, m, vocab, opt, st, 0);
}

int kx_dec_ckpt_load_unprobed(const char *path, kx_decoder *m, kx_dec_vocab *vocab) {
  return load(path, m, vocab, NULL, NULL, 1);
}
