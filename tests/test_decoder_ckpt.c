/* Decoder checkpoints: save/load round trip to the last bit, exact resume
 * (N steps == N/2 steps + resume to N, bitwise), the DiJiang form in
 * /config/dijiang_form, and clear errors for truncated, foreign and
 * mismatched files. */
#include <check.h>
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/kx_error.h"
#include "core/kx_seed.h"
#include "experiments/model/dec_ckpt.h"
#include "experiments/model/dec_layers.h"
#include "experiments/model/dec_train.h"
#include "tests/test_support.h"

static char text_path[300];

static void path_in(char *buf, size_t n, const char *name) { snprintf(buf, n, "%s", kx_test_path(name)); }

/* A small deterministic text: 300 lines of words drawn by a fixed hash. */
static void setup(void) {
  ck_assert_int_eq(kx_test_tmpdir("dec_ckpt"), 0);
  path_in(text_path, sizeof text_path, "text.txt");
  FILE *f = fopen(text_path, "w");
  static const char *words[] = {"and", "the", "lord", "said", "unto", "moses", "behold", "earth", "light", "day"};
  for (int line = 0; line < 300; line++) {
    int n = 4 + (int)(kx_mix64((uint64_t)line) % 6);
    for (int w = 0; w < n; w++)
      fprintf(f, "%s%s", w ? " " : "", words[kx_mix64((uint64_t)(line * 31 + w)) % 10]);
    fputs(".\n", f);
  }
  fclose(f);
  kx_dec_threads_init();
}

static void teardown(void) { kx_test_rmtree(); }

static void tiny_opts(kx_dec_train_opts *o) {
  kx_dec_train_opts_init(o);
  o->layers = 2, o->heads = 2, o->width = 16, o->ctx = 16;
  o->batch = 4, o->steps = 8, o->warmup = 2, o->seed = 7, o->seed_given = 1;
  o->text = text_path, o->eval_every = 3, o->eval_batches = 2, o->final_eval = 0;
}

static void load_ok(const char *path, kx_decoder *m, kx_dec_vocab *v, kx_adamw *opt, kx_dec_train_state *st) {
  int rc = kx_dec_ckpt_load(path, m, v, opt, st);
  if (rc) fprintf(stderr, "%s\n", kx_error_message());
  ck_assert_int_eq(rc, 0);
}

/* Interrupted after `stop` of `steps` steps and resumed == uninterrupted,
 * bitwise.  performer-redraw redraws its features before steps 16, 32, ...:
 * stopping at 16 resumes exactly at a redraw, stopping at 10 crosses one
 * after the resume. */
static const struct {
  const char *kind;
  uint64_t steps, stop;
  const char *form; /* --dijiang-form, or NULL */
} resume_cases[] = {{"softmax", 8, 4, NULL},
                    {"performer-redraw", 20, 16, NULL},
                    {"performer-redraw", 20, 10, NULL},
                    {"dijiang", 8, 4, "softmax,gnd,gatexavier"},
                    {"dijiang-released", 8, 4, "exp,D,den,sq"}};

START_TEST(test_resume_bitwise) {
  const char *kind = resume_cases[_i].kind;
  uint64_t steps = resume_cases[_i].steps, stop = resume_cases[_i].stop;
  char full[300], half[300], resumed[300];
  path_in(full, sizeof full, "full.h5");
  path_in(half, sizeof half, "half.h5");
  path_in(resumed, sizeof resumed, "resumed.h5");
  kx_dec_train_opts o;
  tiny_opts(&o);
  snprintf(o.attn_kind, sizeof o.attn_kind, "%s", kind);
  o.dijiang_form = resume_cases[_i].form;
  o.steps = steps;
  o.out = full;
  ck_assert_int_eq(kx_dec_train(&o, NULL, NULL), 0);
  tiny_opts(&o);
  snprintf(o.attn_kind, sizeof o.attn_kind, "%s", kind);
  o.dijiang_form = resume_cases[_i].form;
  o.steps = steps;
  o.out = half;
  o.stop_after = stop;
  ck_assert_int_eq(kx_dec_train(&o, NULL, NULL), 0);
  /* resume with only the data and the checkpoint: everything else from it */
  kx_dec_train_opts_init(&o);
  o.text = text_path;
  o.resume = half;
  o.out = resumed;
  o.final_eval = 0;
  o.eval_every = 3;
  o.eval_batches = 2;
  int rc = kx_dec_train(&o, NULL, NULL);
  if (rc) fprintf(stderr, "%s\n", kx_error_message());
  ck_assert_int_eq(rc, 0);

  kx_decoder a, b, h;
  kx_dec_vocab va, vb, vh;
  kx_adamw oa, ob, oh;
  kx_dec_train_state sa, sb, sh;
  load_ok(full, &a, &va, &oa, &sa);
  load_ok(resumed, &b, &vb, &ob, &sb);
  load_ok(half, &h, &vh, &oh, &sh);
  ck_assert_uint_eq(sh.step, stop);
  ck_assert_uint_eq(sa.step, steps);
  ck_assert_uint_eq(sb.step, steps);
  ck_assert_uint_eq(oa.t, ob.t);
  ck_assert_uint_eq(a.tab.total, b.tab.total);
  ck_assert_int_eq(memcmp(a.params, b.params, a.tab.total * sizeof(float)), 0);
  ck_assert_int_eq(memcmp(oa.m, ob.m, a.tab.total * sizeof(float)), 0);
  ck_assert_int_eq(memcmp(oa.v, ob.v, a.tab.total * sizeof(float)), 0);
  /* and the halfway state really is different (the test is not vacuous) */
  ck_assert_int_ne(memcmp(a.params, h.params, a.tab.total * sizeof(float)), 0);
  long w = kx_ptable_find(&a.tab, "layer1/feat_w");
  ck_assert_uint_eq(a.cfg.dijiang_flips, h.cfg.dijiang_flips);
  ck_assert_int_eq(!a.cfg.dijiang_flips, !resume_cases[_i].form);
  if (!strcmp(kind, "performer-redraw")) { /* the features were redrawn between the halfway and the end */
    ck_assert(w >= 0);
    size_t bytes = a.tab.t[w].size * sizeof(float);
    ck_assert_int_ne(memcmp(kx_dec_param(&a, (size_t)w), kx_dec_param(&h, (size_t)w), bytes), 0);
  }
  kx_dec_free(&a), kx_dec_free(&b), kx_dec_free(&h);
  kx_dec_vocab_free(&va), kx_dec_vocab_free(&vb), kx_dec_vocab_free(&vh);
  kx_adamw_free(&oa), kx_adamw_free(&ob), kx_adamw_free(&oh);
}
END_TEST

START_TEST(test_roundtrip_same_loss) {
  kx_dec_config c;
  kx_test_config(&c, "softmax", 9, 10, 16, 4);
  kx_decoder m, m2;
  kx_test_model(&m, &c, 3);
  uint32_t cps[9] = {'\n', ' ', 'a', 'b', 'c', 'd', 'e', 0xE9, 0x2014};
  kx_dec_vocab v = {cps, 9, 0}, v2;
  char path[300];
  path_in(path, sizeof path, "rt.h5");
  ck_assert_int_eq(kx_dec_ckpt_save(path, &m, &v, NULL, NULL), 0);
  ck_assert_int_eq(access(path, F_OK), 0);
  load_ok(path, &m2, &v2, NULL, NULL);
  ck_assert_uint_eq(v2.V, 9);
  ck_assert_int_eq(memcmp(v2.vocab, cps, sizeof cps), 0);
  ck_assert_int_eq(memcmp(m.params, m2.params, m.tab.total * sizeof(float)), 0);
  int x[20], y[20];
  for (int i = 0; i < 20; i++) x[i] = (i * 4 + 1) % 9, y[i] = (i * 7 + 2) % 9;
  double l1, l2;
  ck_assert_int_eq(kx_dec_forward(&m, x, y, 2, 10, &l1), 0);
  ck_assert_int_eq(kx_dec_forward(&m2, x, y, 2, 10, &l2), 0);
  ck_assert(memcmp(&l1, &l2, sizeof l1) == 0);
  /* weights-only checkpoints cannot be resumed */
  kx_decoder m3;
  kx_dec_vocab v3;
  kx_adamw o3;
  kx_dec_train_state s3;
  ck_assert_int_ne(kx_dec_ckpt_load(path, &m3, &v3, &o3, &s3), 0);
  ck_assert_ptr_nonnull(strstr(kx_error_message(), "optimizer"));
  kx_dec_free(&m), kx_dec_free(&m2);
  kx_dec_vocab_free(&v2);
}
END_TEST

static void copy_prefix(const char *src, const char *dst, long keep) {
  FILE *in = fopen(src, "rb"), *out = fopen(dst, "wb");
  ck_assert_ptr_nonnull(in);
  ck_assert_ptr_nonnull(out);
  fseek(in, 0, SEEK_END);
  long n = ftell(in);
  fseek(in, 0, SEEK_SET);
  if (keep < 0) keep = n / 2;
  if (keep > n) keep = n; /* a whole copy */
  char *buf = malloc((size_t)n);
  ck_assert_int_eq((long)fread(buf, 1, (size_t)n, in), n);
  fwrite(buf, 1, (size_t)keep, out);
  free(buf);
  fclose(in);
  fclose(out);
}

/* A 2-step checkpoint at good.h5, and the path bad.h5 for damaged copies. */
static void train_good(char good[300], char bad[300]) {
  path_in(good, 300, "good.h5");
  path_in(bad, 300, "bad.h5");
  kx_dec_train_opts o;
  tiny_opts(&o);
  o.out = good;
  o.steps = 2;
  ck_assert_int_eq(kx_dec_train(&o, NULL, NULL), 0);
}

START_TEST(test_bad_files) {
  char good[300], bad[300];
  train_good(good, bad);
  kx_decoder m;
  kx_dec_vocab v;
  /* missing */
  ck_assert_int_eq(kx_dec_ckpt_load("/nonexistent/x.h5", &m, &v, NULL, NULL), KX_EIO);
  ck_assert_ptr_nonnull(strstr(kx_error_message(), "/nonexistent/x.h5"));
  /* truncated at several lengths: never a crash, always a message */
  long cuts[] = {0, 100, 2000, -1};
  for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
    copy_prefix(good, bad, cuts[i]);
    int rc = kx_dec_ckpt_load(bad, &m, &v, NULL, NULL);
    ck_assert_int_eq(rc, KX_EIO);
    ck_assert_ptr_nonnull(strstr(kx_error_message(), "bad.h5"));
  }
  /* foreign: a text file, and an HDF5 file of another kind */
  ck_assert_int_eq(kx_dec_ckpt_load(text_path, &m, &v, NULL, NULL), KX_EIO);
  ck_assert_ptr_nonnull(strstr(kx_error_message(), "not an HDF5 file"));
  H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
  hid_t f = H5Fcreate(bad, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  H5Fclose(f);
  ck_assert_int_eq(kx_dec_ckpt_load(bad, &m, &v, NULL, NULL), KX_EIO);
  ck_assert_ptr_nonnull(strstr(kx_error_message(), "not a kapprox decoder checkpoint"));
  /* a parameter with the wrong shape (a whole copy, then one dataset replaced) */
  {
    FILE *in = fopen(good, "rb"), *out = fopen(bad, "wb");
    int ch;
    while ((ch = fgetc(in)) != EOF) fputc(ch, out);
    fclose(in), fclose(out);
  }
  f = H5Fopen(bad, H5F_ACC_RDWR, H5P_DEFAULT);
  ck_assert_int_ge(H5Ldelete(f, "param/layer1/fc_b", H5P_DEFAULT), 0);
  hsize_t d = 3;
  hid_t s = H5Screate_simple(1, &d, NULL);
  hid_t ds = H5Dcreate2(f, "param/layer1/fc_b", H5T_IEEE_F32LE, s, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  H5Dclose(ds), H5Sclose(s), H5Fclose(f);
  ck_assert_int_eq(kx_dec_ckpt_load(bad, &m, &v, NULL, NULL), KX_EIO);
  ck_assert_ptr_nonnull(strstr(kx_error_message(), "param/layer1/fc_b has shape"));
}
END_TEST


/* A copy of `good` with element `index` of dataset `name` set to `value`
 * (float or uint32 datasets, by `as_u32`). */
static void poke(const char *good, const char *bad, const char *name, hsize_t index, double value, int as_u32) {
  copy_prefix(good, bad, 1L << 40);
  H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
  hid_t f = H5Fopen(bad, H5F_ACC_RDWR, H5P_DEFAULT);
  hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
  hid_t fs = H5Dget_space(d);
  hsize_t one = 1, dims[2] = {0, 0};
  int rank = H5Sget_simple_extent_dims(fs, dims, NULL);
  hsize_t start[2] = {rank == 2 ? index / dims[1] : index, rank == 2 ? index % dims[1] : 0}, count[2] = {1, 1};
  H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, count, NULL);
  hid_t ms = H5Screate_simple(1, &one, NULL);
  float x = (float)value;
  uint32_t u = (uint32_t)value;
  herr_t e = as_u32 ? H5Dwrite(d, H5T_NATIVE_UINT32, ms, fs, H5P_DEFAULT, &u)
                    : H5Dwrite(d, H5T_NATIVE_FLOAT, ms, fs, H5P_DEFAULT, &x);
  ck_assert_int_ge(e, 0);
  H5Sclose(ms), H5Sclose(fs), H5Dclose(d), H5Fclose(f);
}

static void expect_refused(const char *bad, int with_optimizer, const char *needle) {
  kx_decoder m;
  kx_dec_vocab v;
  kx_adamw o;
  kx_dec_train_state st;
  int rc = kx_dec_ckpt_load(bad, &m, &v, with_optimizer ? &o : NULL, with_optimizer ? &st : NULL);
  ck_assert_int_ne(rc, 0);
  ck_assert_msg(strstr(kx_error_message(), needle), "message '%s' lacks '%s'", kx_error_message(), needle);
  ck_assert_ptr_null(m.params);
  ck_assert_ptr_null(v.vocab);
}

/* The vocabulary size of a loadable checkpoint. */
static size_t vocab_of(const char *path) {
  kx_decoder m;
  kx_dec_vocab v;
  load_ok(path, &m, &v, NULL, NULL);
  size_t n = v.V;
  kx_dec_free(&m);
  kx_dec_vocab_free(&v);
  return n;
}

/* Non-finite parameters or moments, negative second moments and code
 * points that are not characters: refused on load, naming the tensor. */
START_TEST(test_bad_values) {
  char good[300], bad[300];
  train_good(good, bad);
  hsize_t last = vocab_of(good) - 1;
  poke(good, bad, "param/layer0/ln1_w", 3, NAN, 0);
  expect_refused(bad, 0, "parameter layer0/ln1_w holds nan at index 3");
  poke(good, bad, "param/embed", 17, INFINITY, 0);
  expect_refused(bad, 0, "parameter embed holds inf at index 17");
  poke(good, bad, "optim/m/unembed", 5, -INFINITY, 0);
  expect_refused(bad, 1, "first moment of unembed holds -inf");
  poke(good, bad, "optim/v/layer1/fc_w", 2, -1.0, 0);
  expect_refused(bad, 1, "second moment of layer1/fc_w holds -1");
  poke(good, bad, "vocab", last, 0xD800, 1);
  expect_refused(bad, 0, "U+D800 is not a Unicode character");
  poke(good, bad, "vocab", last, 0x110000, 1);
  expect_refused(bad, 0, "U+110000 is not a Unicode character");
}
END_TEST

/* A copy of `good` whose /config attribute "window" is `value` (created
 * when the file has none). */
static void poke_window(const char *good, const char *bad, uint64_t value) {
  copy_prefix(good, bad, 1L << 40);
  H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
  hid_t f = H5Fopen(bad, H5F_ACC_RDWR, H5P_DEFAULT), g = H5Gopen2(f, "config", H5P_DEFAULT);
  if (H5Aexists(g, "window") > 0) H5Adelete(g, "window");
  hid_t sp = H5Screate(H5S_SCALAR), a = H5Acreate2(g, "window", H5T_STD_U64LE, sp, H5P_DEFAULT, H5P_DEFAULT);
  ck_assert_int_ge(H5Awrite(a, H5T_NATIVE_UINT64, &value), 0);
  H5Aclose(a), H5Sclose(sp), H5Gclose(g), H5Fclose(f);
}

/* 1 if /config has the attribute "window"; *version: the root's format_version. */
static int has_window_attribute(const char *path, uint64_t *version) {
  hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT), g = H5Gopen2(f, "config", H5P_DEFAULT);
  int has = H5Aexists(g, "window") > 0;
  hid_t a = H5Aopen(f, "format_version", H5P_DEFAULT);
  ck_assert_int_ge(H5Aread(a, H5T_NATIVE_UINT64, version), 0);
  H5Aclose(a), H5Gclose(g), H5Fclose(f);
  return has;
}

/* The sliding window in checkpoints: an attribute of /config written only
 * when set, with format_version 2 (a model without one writes the file it
 * always did, version 1, and such files load with no window); a hybrid
 * resumes bitwise; a window the model cannot take (beyond the context, or
 * on softmax) is refused on load. */
START_TEST(test_window_checkpoints) {
  char full[300], half[300], resumed[300], bad[300], plain[300];
  path_in(full, sizeof full, "wfull.h5");
  path_in(half, sizeof half, "whalf.h5");
  path_in(resumed, sizeof resumed, "wresumed.h5");
  path_in(bad, sizeof bad, "wbad.h5");
  path_in(plain, sizeof plain, "plain.h5");
  kx_dec_train_opts o;
  for (int run = 0; run < 2; run++) {
    tiny_opts(&o);
    snprintf(o.attn_kind, sizeof o.attn_kind, "dijiang");
    o.window = 5, o.steps = 6, o.out = run ? half : full, o.stop_after = run ? 3 : 0;
    ck_assert_int_eq(kx_dec_train(&o, NULL, NULL), 0);
  }
  kx_dec_train_opts_init(&o);
  o.text = text_path, o.resume = half, o.out = resumed, o.final_eval = 0, o.eval_every = 3, o.eval_batches = 2;
  ck_assert_int_eq(kx_dec_train(&o, NULL, NULL), 0);
  kx_decoder a, b;
  kx_dec_vocab va, vb;
  load_ok(full, &a, &va, NULL, NULL);
  load_ok(resumed, &b, &vb, NULL, NULL);
  ck_assert_uint_eq(a.cfg.window, 5);
  ck_assert_uint_eq(b.cfg.window, 5);
  uint64_t version = 0;
  ck_assert_int_eq(has_window_attribute(full, &version), 1);
  ck_assert_uint_eq(version, 2); /* older readers, which would build the plain kind, refuse it */
  ck_assert_int_eq(memcmp(a.params, b.params, a.tab.total * sizeof(float)), 0);
  long beta = kx_ptable_find(&a.tab, "layer1/win_beta");
  ck_assert(beta >= 0 && kx_dec_param(&a, (size_t)beta)[0] != 0.0f); /* trained, and saved */
  kx_dec_free(&a), kx_dec_free(&b);
  kx_dec_vocab_free(&va), kx_dec_vocab_free(&vb);
  /* no window: no attribute, loads as such */
  tiny_opts(&o);
  o.steps = 2, o.out = plain;
  ck_assert_int_eq(kx_dec_train(&o, NULL, NULL), 0);
  ck_assert_int_eq(has_window_attribute(plain, &version), 0);
  ck_assert_uint_eq(version, 1);
  load_ok(plain, &a, &va, NULL, NULL);
  ck_assert_uint_eq(a.cfg.window, 0);
  kx_dec_free(&a);
  kx_dec_vocab_free(&va);
  poke_window(full, bad, 17);
  expect_refused(bad, 0, "--window 17 is beyond the context 16");
  poke_window(plain, bad, 4);
  expect_refused(bad, 0, "'softmax' cannot take a sliding window");
  /* resuming with another window is refused, naming both */
  kx_dec_train_opts_init(&o);
  o.text = text_path, o.resume = half, o.out = bad, o.window = 6;
  ck_assert_int_eq(kx_dec_train(&o, NULL, NULL), KX_EINVAL);
  ck_assert_ptr_nonnull(strstr(kx_error_message(), "--window 6 differs from the checkpoint's 5"));
}
END_TEST

/* Parameters that are finite but absurd: the loader's probe run refuses
 * them, naming the tensor of the largest parameter; a LayerNorm whose
 * variance overflows (outputs finite but blind) is refused too, whatever
 * token brings it (the probe feeds every token); and a model with a
 * non-finite parameter is not saved at all. */
static void save_altered(const char *good, const char *bad, const char *tensor, size_t row) {
  kx_decoder m;
  kx_dec_vocab v;
  load_ok(good, &m, &v, NULL, NULL);
  for (size_t i = 0; i < m.tab.n; i++) {
    const kx_tensor_info *t = &m.tab.t[i];
    if (strcmp(t->name, tensor)) continue;
    size_t from = row == SIZE_MAX ? 0 : row * t->cols, to = row == SIZE_MAX ? t->size : from + t->cols;
    for (size_t j = from; j < to; j++) m.params[t->offset + j] = j % 2 ? -3e38f : 3e38f;
  }
  ck_assert_int_eq(kx_dec_ckpt_save(bad, &m, &v, NULL, NULL), 0);
  kx_dec_free(&m);
  kx_dec_vocab_free(&v);
}

START_TEST(test_absurd_values) {
  char good[300], bad[300];
  train_good(good, bad);
  save_altered(good, bad, "unembed", SIZE_MAX);
  expect_refused(bad, 0, "in the logits");
  expect_refused(bad, 0, "the largest parameter is 3e+38, in unembed");
  save_altered(good, bad, "embed", vocab_of(good) - 1);
  expect_refused(bad, 0, "the variance in block 0's first LayerNorm overflows");
  kx_decoder m;
  kx_dec_vocab v;
  load_ok(good, &m, &v, NULL, NULL);
  m.params[m.tab.t[m.unembed].offset + 3] = NAN;
  unlink(bad);
  ck_assert_int_eq(kx_dec_ckpt_save(bad, &m, &v, NULL, NULL), KX_ENUM);
  ck_assert_ptr_nonnull(strstr(kx_error_message(), "parameter unembed holds nan at index 3"));
  ck_assert_int_ne(access(bad, F_OK), 0);
  kx_dec_free(&m);
  kx_dec_vocab_free(&v);
}
END_TEST

/* A copy of `good` with string attribute /config/<name> set to `value`. */
static void set_config_string(const char *good, const char *bad, const char *name, const char *value) {
  copy_prefix(good, bad, 1L << 40);
  H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
  hid_t f = H5Fopen(bad, H5F_ACC_RDWR, H5P_DEFAULT), g = H5Gopen2(f, "config", H5P_DEFAULT);
  if (H5Aexists(g, name) > 0) H5Adelete(g, name);
  hid_t t = H5Tcopy(H5T_C_S1), sp = H5Screate(H5S_SCALAR);
  H5Tset_size(t, strlen(value) + 1);
  hid_t a = H5Acreate2(g, name, t, sp, H5P_DEFAULT, H5P_DEFAULT);
  ck_assert_int_ge(H5Awrite(a, t, value), 0);
  H5Aclose(a), H5Sclose(sp), H5Tclose(t), H5Gclose(g), H5Fclose(f);
}

static void read_form(const char *path, char *form, size_t cap, uint64_t *version) {
  H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
  hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT), g = H5Gopen2(f, "config", H5P_DEFAULT);
  hid_t a = H5Aopen(g, "dijiang_form", H5P_DEFAULT), t = H5Aget_type(a), mt = H5Tcopy(H5T_C_S1);
  ck_assert_uint_lt(H5Tget_size(t), cap);
  H5Tset_size(mt, cap);
  ck_assert_int_ge(H5Aread(a, mt, form), 0);
  hid_t v = H5Aopen(f, "format_version", H5P_DEFAULT);
  ck_assert_int_ge(H5Aread(v, H5T_NATIVE_UINT64, version), 0);
  H5Aclose(v), H5Tclose(mt), H5Tclose(t), H5Aclose(a), H5Gclose(g), H5Fclose(f);
}

/* /config/dijiang_form lists the form's nine values; a preset's file keeps
 * format version 1 (an older reader builds the same model from the kind),
 * a flipped form's is version 2; the form reads back; a damaged attribute
 * is refused with a message, and so is one on a kind without switches. */
START_TEST(test_dijiang_form_attribute) {
  char good[300], bad[300], form[256];
  uint64_t version = 0;
  path_in(good, sizeof good, "form.h5");
  path_in(bad, sizeof bad, "bad.h5");
  kx_dec_train_opts o;
  tiny_opts(&o);
  o.out = good, o.steps = 2;
  snprintf(o.attn_kind, sizeof o.attn_kind, "dijiang-code");
  ck_assert_int_eq(kx_dec_train(&o, NULL, NULL), 0);
  read_form(good, form, sizeof form, &version);
  ck_assert_str_eq(form, "softmax,normal,dct3,noD,nosq,noprescale,noden,gnhead,gatenormal");
  ck_assert_uint_eq(version, 1);
  o.dijiang_form = "exp,gnd";
  ck_assert_int_eq(kx_dec_train(&o, NULL, NULL), 0);
  read_form(good, form, sizeof form, &version);
  ck_assert_str_eq(form, "exp,normal,dct3,noD,nosq,noprescale,noden,gnd,gatenormal");
  ck_assert_uint_eq(version, 2);
  kx_decoder m;
  kx_dec_vocab v;
  load_ok(good, &m, &v, NULL, NULL);
  ck_assert_uint_eq(m.cfg.dijiang_flips, 1u << 0 | 1u << 7);
  kx_dec_free(&m), kx_dec_vocab_free(&v);
  /* resuming with another form is refused, the same form is not */
  tiny_opts(&o);
  o.resume = good, o.out = bad, o.steps = 2, o.dijiang_form = "softmax";
  ck_assert_int_eq(kx_dec_train(&o, NULL, NULL), KX_EINVAL);
  ck_assert_ptr_nonnull(strstr(kx_error_message(), "--dijiang-form softmax differs from the checkpoint's form"));
  set_config_string(good, bad, "dijiang_form", "exp,normal");
  expect_refused(bad, 0, "gives no value of factor dct");
  set_config_string(good, bad, "dijiang_form", "exp,normal,dct3,noD,nosq,noprescale,noden,gnd,bogus");
  expect_refused(bad, 0, "'bogus' is not a DiJiang form switch");
  /* with tensors of another form than the file's (gnhead has no gn_w) */
  set_config_string(good, bad, "dijiang_form", "exp,normal,dct3,noD,nosq,noprescale,noden,gnhead,gatenormal");
  kx_decoder m2;
  kx_dec_vocab v2;
  load_ok(bad, &m2, &v2, NULL, NULL); /* a valid form: the extra tensors are simply not read */
  ck_assert_int_lt(kx_ptable_find(&m2.tab, "layer0/gn_w"), 0);
  kx_dec_free(&m2), kx_dec_vocab_free(&v2);
  set_config_string(good, bad, "dijiang_form", "exp,normal,dct3,D,nosq,noprescale,noden,gnd,gatenormal");
  expect_refused(bad, 0, "feat_d is missing");
  char plain[300];
  train_good(plain, bad);
  set_config_string(plain, bad, "dijiang_form", "exp,chi,dct2,D,sq,prescale,den,gnhead,gatenormal");
  expect_refused(bad, 0, "attention 'softmax' with a dijiang_form attribute");
}
END_TEST

START_TEST(test_resume_mismatch) {
  char ck[300], out[300];
  path_in(ck, sizeof ck, "m.h5");
  path_in(out, sizeof out, "m2.h5");
  kx_dec_train_opts o;
  tiny_opts(&o);
  o.out = ck;
  o.steps = 4;
  o.stop_after = 2;
  ck_assert_int_eq(kx_dec_train(&o, NULL, NULL), 0);
  /* a different model size */
  tiny_opts(&o);
  o.resume = ck, o.out = out, o.steps = 4, o.layers = 3;
  ck_assert_int_eq(kx_dec_train(&o, NULL, NULL), KX_EINVAL);
  ck_assert_ptr_nonnull(strstr(kx_error_message(), "--layers 3 differs from the checkpoint's 2"));
  /* a different schedule */
  tiny_opts(&o);
  o.resume = ck, o.out = out, o.steps = 5;
  ck_assert_int_eq(kx_dec_train(&o, NULL, NULL), KX_EINVAL);
  ck_assert_ptr_nonnull(strstr(kx_error_message(), "--steps"));
  /* a different text */
  char other[300];
  path_in(other, sizeof other, "other.txt");
  FILE *f = fopen(other, "w");
  for (int i = 0; i < 300; i++) fputs("the lord said unto moses and the day.\n", f);
  fclose(f);
  tiny_opts(&o);
  o.resume = ck, o.out = out, o.steps = 4, o.text = other;
  ck_assert_int_eq(kx_dec_train(&o, NULL, NULL), KX_EINVAL);
  ck_assert_ptr_nonnull(strstr(kx_error_message(), "not the one"));
  ck_assert_int_ne(access(out, F_OK), 0);
}
END_TEST

int main(void) {
  Suite *s = kx_test_suite("decoder_ckpt");
  TCase *tc = kx_test_case(s, "ckpt");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 600);
  tcase_add_loop_test(tc, test_resume_bitwise, 0, sizeof resume_cases / sizeof resume_cases[0]);
  kx_test_add(tc, (const TTest *const[]){test_roundtrip_same_loss, test_bad_files, test_bad_values,
                                         test_absurd_values, test_resume_mismatch, test_window_checkpoints,
                                         test_dijiang_form_attribute, NULL});
  return kx_test_run(s);
}
