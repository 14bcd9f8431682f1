#include "tests/test_support.h"

#include <ftw.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "core/kx_error.h"
#include "core/kx_seed.h"

Suite *kx_test_suite(const char *name) {
  kx_init_library();
  return suite_create(name);
}

TCase *kx_test_case(Suite *s, const char *name) {
  TCase *tc = tcase_create(name);
  suite_add_tcase(s, tc);
  return tc;
}

TCase *kx_test_tracked_case(Suite *s, const char *name) {
  TCase *tc = kx_test_case(s, name);
  tcase_add_checked_fixture(tc, NULL, kx_test_free_all);
  return tc;
}

void kx_test_add(TCase *tc, const TTest *const *tests) {
  for (; *tests; tests++) tcase_add_test(tc, *tests);
}

int kx_test_run(Suite *s) {
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

static char scratch[64];

int kx_test_tmpdir(const char *name) {
  snprintf(scratch, sizeof scratch, "/tmp/kx_%s_XXXXXX", name);
  return mkdtemp(scratch) ? 0 : -1;
}

const char *kx_test_dir(void) { return scratch; }

const char *kx_test_path(const char *name) {
  static char buf[4][512];
  static int k;
  k = (k + 1) % 4;
  snprintf(buf[k], sizeof buf[k], "%s/%s", scratch, name);
  return buf[k];
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
  (void)st, (void)flag, (void)ftw;
  return remove(path);
}

int kx_test_rmtree(void) { return nftw(scratch, remove_entry, 16, FTW_DEPTH | FTW_PHYS); }

static uint64_t rng_state = 1;

double kx_test_urand(void) { return (double)(kx_mix64(rng_state++) >> 11) * 0x1.0p-53; }

double kx_test_nrand(void) {
  double u1 = kx_test_urand(), u2 = kx_test_urand();
  return sqrt(-2.0 * log(u1 + 1e-300)) * cos(2.0 * M_PI * u2);
}

#define MAX_TRACKED 4096
static void *tracked[MAX_TRACKED];
static size_t n_tracked;

void *kx_test_track(void *p) {
  ck_assert_ptr_nonnull(p);
  ck_assert_uint_lt(n_tracked, MAX_TRACKED);
  tracked[n_tracked++] = p;
  return p;
}

void kx_test_free_all(void) {
  while (n_tracked) free(tracked[--n_tracked]);
}

float *kx_test_zeros(size_t n) { return kx_test_track(calloc(n ? n : 1, sizeof(float))); }

void kx_test_config(kx_dec_config *c, const char *kind, size_t vocab, size_t ctx, size_t width,
                    size_t rotary_dims) {
  kx_dec_config_default(c);
  c->vocab = vocab;
  c->ctx = ctx;
  c->layers = 2;
  c->heads = 2;
  c->width = width;
  c->rotary_dims = rotary_dims;
  ck_assert_msg(kx_dec_config_set_attention(c, kind) == 0, "%s: %s", kind, kx_error_message());
}

void kx_test_model(kx_decoder *m, const kx_dec_config *c, uint64_t seed) {
  ck_assert_msg(kx_dec_create(m, c) == 0, "%s: %s", c->attn_kind, kx_error_message());
  ck_assert_msg(kx_dec_init_params(m, seed) == 0, "%s: %s", c->attn_kind, kx_error_message());
}
