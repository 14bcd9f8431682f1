/* The Q/K HDF5 loader: round trips, and every malformed file it must
 * refuse with a message instead of crashing or returning garbage. */
#include <check.h>
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/kx_error.h"
#include "core/kx_h5.h"
#include "core/kx_sandbox.h"
#include "experiments/qk/qk_file.h"
#include "tests/test_support.h"


static kx_qk_layer make_layer(int index, size_t h, size_t t, size_t d, size_t dv) {
  kx_qk_layer l = {.index = index, .heads = h, .tokens = t, .d = d, .dv = dv};
  l.q = malloc(h * t * d * sizeof(double));
  l.k = malloc(h * t * d * sizeof(double));
  l.v = dv ? malloc(h * t * dv * sizeof(double)) : NULL;
  for (size_t i = 0; i < h * t * d; i++) {
    l.q[i] = sin(0.1 * (double)i + index);
    l.k[i] = cos(0.37 * (double)i - index) / 3.0;
  }
  for (size_t i = 0; dv && i < h * t * dv; i++) l.v[i] = 0.5 * (double)i;
  return l;
}

START_TEST(round_trip_float64_and_float32) {
  kx_qk_layer layers[2] = {make_layer(3, 2, 5, 4, 3), make_layer(0, 2, 5, 4, 0)};
  for (int single = 0; single <= 1; single++) {
    const char *p = kx_test_path(single ? "rt32.h5" : "rt64.h5");
    ck_assert_int_eq(kx_qk_write(p, 0, 1, 2, layers, single), 0);
    kx_qk_file *f = kx_qk_open(p);
    ck_assert_msg(f != NULL, "%s", kx_error_message());
    ck_assert_int_eq(kx_qk_n_layers(f), 2);
    ck_assert_int_eq(kx_qk_layer_index(f, 0), 0); /* sorted by index */
    ck_assert_int_eq(kx_qk_layer_index(f, 1), 3);
    ck_assert_int_eq(kx_qk_scaled(f), 0);
    ck_assert_int_eq(kx_qk_causal(f), 1);
    kx_qk_layer l;
    ck_assert_int_eq(kx_qk_read_layer(f, 1, &l), 0);
    ck_assert_int_eq(l.heads, 2);
    ck_assert_int_eq(l.tokens, 5);
    ck_assert_int_eq(l.d, 4);
    ck_assert_int_eq(l.dv, 3);
    /* float32 storage rounds to 2^-24 relative */
    double tol = single ? 6e-8 : 0;
    for (size_t i = 0; i < 40; i++) {
      ck_assert_double_le(fabs(l.q[i] - layers[0].q[i]), tol * fabs(layers[0].q[i]));
      ck_assert_double_le(fabs(l.k[i] - layers[0].k[i]), tol * fabs(layers[0].k[i]));
    }
    kx_qk_layer_free(&l);
    ck_assert_int_eq(kx_qk_read_layer(f, 0, &l), 0);
    ck_assert_ptr_null(l.v);
    kx_qk_layer_free(&l);
    kx_qk_close(f);
  }
  for (int i = 0; i < 2; i++) kx_qk_layer_free(&layers[i]);
}
END_TEST

static void expect_open_error(const char *p, const char *needle) {
  kx_qk_file *f = kx_qk_open(p);
  ck_assert_msg(f == NULL, "opening %s should fail", p);
  ck_assert_msg(strstr(kx_error_message(), needle), "message '%s' lacks '%s'", kx_error_message(), needle);
}

static void expect_read_error(const char *p, const char *needle) {
  kx_qk_file *f = kx_qk_open(p);
  ck_assert_msg(f != NULL, "%s", kx_error_message());
  kx_qk_layer l;
  ck_assert_int_ne(kx_qk_read_layer(f, 0, &l), 0);
  ck_assert_msg(strstr(kx_error_message(), needle), "message '%s' lacks '%s'", kx_error_message(), needle);
  ck_assert_ptr_null(l.q);
  kx_qk_close(f);
}

/* A valid header with hand-made datasets under /layer0. */
static hid_t start_file(const char *p, int with_format) {
  hid_t f = H5Fcreate(p, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  hid_t sp = H5Screate(H5S_SCALAR);
  if (with_format) {
    hid_t st = H5Tcopy(H5T_C_S1);
    H5Tset_size(st, 10);
    hid_t a = H5Acreate2(f, "format", st, sp, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, st, "kapprox-qk");
    H5Aclose(a);
    H5Tclose(st);
  }
  int one = 1;
  const char *names[2] = {"scaled", "causal"};
  for (int i = 0; i < 2; i++) {
    hid_t a = H5Acreate2(f, names[i], H5T_NATIVE_INT, sp, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, H5T_NATIVE_INT, &one);
    H5Aclose(a);
  }
  H5Sclose(sp);
  return f;
}

static void add_dataset(hid_t g, const char *name, int rank, const hsize_t *dims, double fill) {
  hid_t sp = H5Screate_simple(rank, dims, NULL);
  hid_t ds = H5Dcreate2(g, name, H5T_IEEE_F64LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  size_t n = 1;
  for (int r = 0; r < rank; r++) n *= dims[r];
  double *x = malloc(n * sizeof *x);
  for (size_t i = 0; i < n; i++) x[i] = 0.01 * (double)i;
  x[n / 2] = fill;
  H5Dwrite(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, x);
  free(x);
  H5Dclose(ds);
  H5Sclose(sp);
}

static void make_bad(const char *name, int with_format, const hsize_t *qdims, int qrank,
                     const hsize_t *kdims, int krank, double fill) {
  hid_t f = start_file(kx_test_path(name), with_format);
  hid_t g = H5Gcreate2(f, "layer0", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  if (qdims) add_dataset(g, "q", qrank, qdims, fill);
  if (kdims) add_dataset(g, "k", krank, kdims, 0.5);
  H5Gclose(g);
  H5Fclose(f);
}

START_TEST(malformed_files_are_refused) {
  hsize_t good[3] = {2, 4, 3}, rank2[2] = {4, 3}, other_d[3] = {2, 4, 5}, other_t[3] = {2, 6, 3};
  expect_open_error(kx_test_path("does-not-exist.h5"), "no such file");

  FILE *fp = fopen(kx_test_path("text.h5"), "w");
  fputs("q,k\n1,2\n", fp);
  fclose(fp);
  expect_open_error(kx_test_path("text.h5"), "not an HDF5 file");

  /* a valid file cut in half */
  kx_qk_layer l = make_layer(0, 4, 64, 16, 0);
  ck_assert_int_eq(kx_qk_write(kx_test_path("whole.h5"), 1, 1, 1, &l, 0), 0);
  kx_qk_layer_free(&l);
  FILE *in = fopen(kx_test_path("whole.h5"), "rb"), *out = fopen(kx_test_path("cut.h5"), "wb");
  fseek(in, 0, SEEK_END);
  long size = ftell(in);
  fseek(in, 0, SEEK_SET);
  char *buf = malloc((size_t)size);
  ck_assert_int_eq(fread(buf, 1, (size_t)size, in), (size_t)size);
  fwrite(buf, 1, (size_t)size / 2, out);
  free(buf);
  fclose(in);
  fclose(out);
  kx_qk_file *cut = kx_qk_open(kx_test_path("cut.h5"));
  if (cut) { /* the header may survive; the data must not load */
    kx_qk_layer t;
    ck_assert_int_ne(kx_qk_read_layer(cut, 0, &t), 0);
    kx_qk_close(cut);
  }

  make_bad("foreign.h5", 0, good, 3, good, 3, 1.0);
  expect_open_error(kx_test_path("foreign.h5"), "not a kapprox Q/K file");

  make_bad("no-k.h5", 1, good, 3, NULL, 0, 1.0);
  expect_read_error(kx_test_path("no-k.h5"), "no dataset 'k'");

  make_bad("rank2.h5", 1, rank2, 2, good, 3, 1.0);
  expect_read_error(kx_test_path("rank2.h5"), "rank 2");

  make_bad("mismatch-d.h5", 1, good, 3, other_d, 3, 1.0);
  expect_read_error(kx_test_path("mismatch-d.h5"), "d = 3 but k has d = 5");

  make_bad("mismatch-t.h5", 1, good, 3, other_t, 3, 1.0);
  expect_read_error(kx_test_path("mismatch-t.h5"), "must match");

  make_bad("nan.h5", 1, good, 3, good, 3, NAN);
  expect_read_error(kx_test_path("nan.h5"), "non-finite");

  make_bad("inf.h5", 1, good, 3, good, 3, INFINITY);
  expect_read_error(kx_test_path("inf.h5"), "non-finite");

  hid_t f = start_file(kx_test_path("empty.h5"), 1);
  H5Fclose(f);
  expect_open_error(kx_test_path("empty.h5"), "no groups named layer0");
}
END_TEST


/* Heads [1, 3) and the first 5 tokens of a 4 x 9 x 3 layer with v: the
 * same values as the corresponding slice of a whole read, in and out of the
 * child process. */
START_TEST(partial_reads_are_slices_of_the_whole) {
  kx_qk_layer l = make_layer(2, 4, 9, 3, 2);
  ck_assert_int_eq(kx_qk_write(kx_test_path("part.h5"), 1, 0, 1, &l, 0), 0);
  for (int isolated = 0; isolated < 2; isolated++) {
    kx_sandbox_set_isolation(isolated);
    kx_qk_file *f = kx_qk_open(kx_test_path("part.h5"));
    ck_assert_msg(f != NULL, "%s", kx_error_message());
    kx_qk_layer shape, p;
    ck_assert_int_eq(kx_qk_layer_shape(f, 0, &shape), 0);
    ck_assert_uint_eq(shape.heads, 4);
    ck_assert_uint_eq(shape.tokens, 9);
    ck_assert_uint_eq(shape.dv, 2);
    ck_assert_ptr_null(shape.q);
    ck_assert_int_eq(kx_qk_read_heads(f, 0, 1, 2, 5, &p), 0);
    ck_assert_uint_eq(p.heads, 2);
    ck_assert_uint_eq(p.tokens, 5);
    ck_assert_uint_eq(p.head_first, 1);
    for (size_t h = 0; h < 2; h++)
      for (size_t t = 0; t < 5; t++) {
        for (size_t j = 0; j < 3; j++) {
          ck_assert_double_eq(p.q[(h * 5 + t) * 3 + j], l.q[((h + 1) * 9 + t) * 3 + j]);
          ck_assert_double_eq(p.k[(h * 5 + t) * 3 + j], l.k[((h + 1) * 9 + t) * 3 + j]);
        }
        for (size_t j = 0; j < 2; j++) ck_assert_double_eq(p.v[(h * 5 + t) * 2 + j], l.v[((h + 1) * 9 + t) * 2 + j]);
      }
    kx_qk_layer_free(&p);
    /* heads beyond the stored ones */
    ck_assert_int_ne(kx_qk_read_heads(f, 0, 3, 2, 0, &p), 0);
    ck_assert_msg(strstr(kx_error_message(), "do not exist"), "%s", kx_error_message());
    kx_qk_close(f);
  }
  kx_sandbox_set_isolation(1);
  kx_qk_layer_free(&l);
}
END_TEST

/* Group names: the index is range-checked, never wrapped around. */
START_TEST(layer_names_are_range_checked) {
  const char *bad[] = {"layer99999999999", "layer2147483648", "layer01"};
  const char *why[] = {"out of range", "out of range", "leading zeros"};
  for (int i = 0; i < 3; i++) {
    hid_t f = start_file(kx_test_path("names.h5"), 1);
    hid_t g = H5Gcreate2(f, bad[i], H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Gclose(g);
    H5Fclose(f);
    expect_open_error(kx_test_path("names.h5"), why[i]);
    ck_assert_msg(strstr(kx_error_message(), bad[i]), "%s", kx_error_message());
  }
  /* the largest index, and names that are not layers at all (ignored) */
  hid_t f = start_file(kx_test_path("names.h5"), 1);
  hsize_t dims[3] = {1, 2, 2};
  hid_t g = H5Gcreate2(f, "layer2147483647", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  add_dataset(g, "q", 3, dims, 0.5);
  add_dataset(g, "k", 3, dims, 0.5);
  H5Gclose(g);
  const char *others[] = {"layer", "layer-1", "layer+1", "layer1x", "layers"};
  for (int i = 0; i < 5; i++) H5Gclose(H5Gcreate2(f, others[i], H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
  H5Fclose(f);
  kx_qk_file *q = kx_qk_open(kx_test_path("names.h5"));
  ck_assert_msg(q != NULL, "%s", kx_error_message());
  ck_assert_uint_eq(kx_qk_n_layers(q), 1);
  ck_assert_int_eq(kx_qk_layer_index(q, 0), 2147483647);
  kx_qk_layer l;
  ck_assert_int_eq(kx_qk_read_layer(q, 0, &l), 0);
  kx_qk_layer_free(&l);
  kx_qk_close(q);
}
END_TEST

/* kx_h5_attr_string on attributes written by the C API in each storage. */
static void string_attr(hid_t obj, const char *name, size_t size, H5T_str_t pad, H5T_cset_t cset,
                        const char *bytes, hsize_t count) {
  hid_t t = H5Tcopy(H5T_C_S1);
  if (size) H5Tset_size(t, size);
  else H5Tset_size(t, H5T_VARIABLE);
  H5Tset_strpad(t, pad);
  H5Tset_cset(t, cset);
  hid_t sp = count ? H5Screate_simple(1, &count, NULL) : H5Screate(H5S_SCALAR);
  hid_t a = H5Acreate2(obj, name, t, sp, H5P_DEFAULT, H5P_DEFAULT);
  if (size) {
    H5Awrite(a, t, bytes);
  } else {
    const char *p[2] = {bytes, bytes};
    H5Awrite(a, t, p);
  }
  H5Aclose(a);
  H5Sclose(sp);
  H5Tclose(t);
}

START_TEST(string_attributes_in_every_storage) {
  hid_t f = H5Fcreate(kx_test_path("strings.h5"), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  string_attr(f, "nullterm", 8, H5T_STR_NULLTERM, H5T_CSET_ASCII, "abcdefg", 0);
  string_attr(f, "full-nullterm", 7, H5T_STR_NULLTERM, H5T_CSET_ASCII, "abcdefg", 0); /* no room for NUL */
  string_attr(f, "nullpad", 12, H5T_STR_NULLPAD, H5T_CSET_ASCII, "abcdefg\0\0\0\0\0", 0);
  string_attr(f, "exact", 7, H5T_STR_NULLPAD, H5T_CSET_ASCII, "abcdefg", 0);
  string_attr(f, "spacepad", 10, H5T_STR_SPACEPAD, H5T_CSET_ASCII, "abcdefg   ", 0);
  string_attr(f, "utf8", 9, H5T_STR_NULLPAD, H5T_CSET_UTF8, "abcdefg\xc3\xa9", 0);
  string_attr(f, "vlen", 0, H5T_STR_NULLTERM, H5T_CSET_ASCII, "abcdefg", 0);
  string_attr(f, "vlen-utf8", 0, H5T_STR_NULLTERM, H5T_CSET_UTF8, "abcdefg", 0);
  string_attr(f, "two", 0, H5T_STR_NULLTERM, H5T_CSET_ASCII, "abcdefg", 2);
  string_attr(f, "long", 40, H5T_STR_NULLPAD, H5T_CSET_ASCII, "0123456789012345678901234567890123456789", 0);
  int one = 1;
  hid_t sp = H5Screate(H5S_SCALAR);
  hid_t a = H5Acreate2(f, "number", H5T_NATIVE_INT, sp, H5P_DEFAULT, H5P_DEFAULT);
  H5Awrite(a, H5T_NATIVE_INT, &one);
  H5Aclose(a);
  H5Sclose(sp);
  char out[32];
  const char *same[] = {"nullterm", "full-nullterm", "nullpad", "exact", "spacepad", "vlen", "vlen-utf8"};
  for (size_t i = 0; i < sizeof same / sizeof same[0]; i++) {
    ck_assert_msg(kx_h5_attr_string(f, same[i], out, sizeof out) == 0, "%s: %s", same[i], kx_error_message());
    ck_assert_msg(!strcmp(out, "abcdefg"), "%s read as '%s'", same[i], out);
  }
  ck_assert_int_eq(kx_h5_attr_string(f, "utf8", out, sizeof out), 0);
  ck_assert_str_eq(out, "abcdefg\xc3\xa9");
  /* refused: not one value, too long for the caller, not a string, absent */
  ck_assert_int_ne(kx_h5_attr_string(f, "two", out, sizeof out), 0);
  ck_assert_msg(strstr(kx_error_message(), "holds 2 values"), "%s", kx_error_message());
  ck_assert_int_ne(kx_h5_attr_string(f, "long", out, sizeof out), 0);
  ck_assert_msg(strstr(kx_error_message(), "at most 31"), "%s", kx_error_message());
  ck_assert_int_ne(kx_h5_attr_string(f, "number", out, sizeof out), 0);
  ck_assert_msg(strstr(kx_error_message(), "not a string"), "%s", kx_error_message());
  ck_assert_int_ne(kx_h5_attr_string(f, "absent", out, sizeof out), 0);
  ck_assert_msg(strstr(kx_error_message(), "missing"), "%s", kx_error_message());
  H5Fclose(f);
}
END_TEST

int main(void) {
  if (kx_test_tmpdir("qk")) return 1;
  Suite *s = kx_test_suite("qk_file");
  TCase *tc = kx_test_case(s, "io");
  kx_test_add(tc, (const TTest *const[]){round_trip_float64_and_float32, malformed_files_are_refused,
                                         partial_reads_are_slices_of_the_whole, layer_names_are_range_checked,
                                         string_attributes_in_every_storage, NULL});
  int status = kx_test_run(s);
  if (kx_test_rmtree()) fprintf(stderr, "could not remove %s\n", kx_test_dir());
  return status;
}
