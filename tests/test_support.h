/* What the Check test programs share: building and running the suite of
 * main(), a scratch directory, a seeded stream of random numbers with
 * buffers freed after each test, and the small decoders of the model
 * tests. */
#ifndef KX_TEST_SUPPORT_H
#define KX_TEST_SUPPORT_H

#include <check.h>
#include <stddef.h>
#include <stdint.h>

#include "experiments/model/dec_model.h"

/* ---- the suite ---- */

/* kx_init_library (GSL errors come back as return codes), then a suite. */
Suite *kx_test_suite(const char *name);
/* A test case of s; its tests are added to the returned case afterwards. */
TCase *kx_test_case(Suite *s, const char *name);
/* kx_test_case whose tests' tracked buffers (kx_test_track) are freed after
 * each test. */
TCase *kx_test_tracked_case(Suite *s, const char *name);
/* Adds the tests of a NULL-terminated list to tc, in order. */
void kx_test_add(TCase *tc, const TTest *const *tests);
/* Runs every test of s and frees it; main's exit status (EXIT_SUCCESS when
 * every test passed). */
int kx_test_run(Suite *s);

/* ---- the scratch directory (one per program) ---- */

/* Makes a fresh /tmp/kx_<name>_XXXXXX; 0, or -1 if it cannot. */
int kx_test_tmpdir(const char *name);
const char *kx_test_dir(void);
/* "<dir>/<name>" in one of four rotating buffers (so up to four paths
 * may be held at once). */
const char *kx_test_path(const char *name);
/* Removes the directory and everything in it; 0 on success. */
int kx_test_rmtree(void);

/* ---- random numbers and tracked buffers ---- */

/* Uniform on [0, 1) and standard normal (Box-Muller) from a counter through
 * kx_mix64: the same sequence in every run of a program. */
double kx_test_urand(void);
double kx_test_nrand(void);
/* Registers p (the test fails on NULL) to be freed by kx_test_free_all, the
 * teardown of a checked fixture, so the sanitizer build sees no leaks. */
void *kx_test_track(void *p);
void kx_test_free_all(void);
/* n zero floats (at least one), tracked. */
float *kx_test_zeros(size_t n);

/* ---- small decoders ---- */

/* kx_dec_config_default with 2 layers of 2 heads and the given sizes;
 * kind "KIND" or "KIND+wN" (a sliding-window hybrid). */
void kx_test_config(kx_dec_config *c, const char *kind, size_t vocab, size_t ctx, size_t width,
                    size_t rotary_dims);
/* kx_dec_create and kx_dec_init_params(seed); the test fails with the
 * library's message if either does. */
void kx_test_model(kx_decoder *m, const kx_dec_config *c, uint64_t seed);

#endif
