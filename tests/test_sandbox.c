/* Readers in a child process (core/kx_sandbox.h): values arrive intact in
 * both modes, a reader's error arrives with its message, a reader that dies
 * (as libhdf5 does on some malformed files) becomes KX_EIO with "malformed
 * HDF5 file", one that loops forever (as libhdf5 does on others) is stopped,
 * and a receiver that stops early does not hang. */
#include <check.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/kx_error.h"
#include "core/kx_sandbox.h"
#include "tests/test_support.h"

enum { N_VALUES = 300000 }; /* > a pipe's buffer: the two sides must overlap */

typedef struct {
  int behaviour; /* 0 send all, 1 fail after half, 2 die by SIGSEGV after half, 3 abort, 4 loop */
} reader_arg;

static int reader(const void *arg, kx_channel *ch) {
  const reader_arg *a = arg;
  uint64_t n = N_VALUES;
  int rc = kx_channel_send(ch, &n, sizeof n);
  double block[1000]; /* sent in blocks, received 7 values at a time */
  for (uint64_t i = 0; i < n && !rc; i++) {
    if (i == n / 2 && a->behaviour == 1) return kx_fail(KX_EINVAL, "value %llu is wrong", (unsigned long long)i);
    if (i == n / 2 && a->behaviour == 2) raise(SIGSEGV);
    if (i == n / 2 && a->behaviour == 3) abort();
    for (volatile int spin = 1; i == n / 2 && a->behaviour == 4 && spin;) {
    }
    block[i % 1000] = (double)i * 0.5;
    if (i % 1000 == 999) rc = kx_channel_send(ch, block, sizeof block);
  }
  return rc;
}

typedef struct {
  double *values;
  size_t n;
  int stop_early;
} receipt;

static int receiver(void *arg, kx_channel *ch) {
  receipt *r = arg;
  uint64_t n;
  int rc = kx_channel_recv(ch, &n, sizeof n);
  if (rc) return rc;
  if (r->stop_early) return kx_fail(KX_EINVAL, "receiver refuses");
  r->values = malloc(n * sizeof *r->values);
  r->n = n;
  /* 7 values at a time: reads that straddle the reader's frames */
  for (uint64_t i = 0; i < n && !rc; i += 7) rc = kx_channel_recv(ch, r->values + i, (n - i < 7 ? n - i : 7) * sizeof(double));
  return rc;
}

static int run(int isolated, int behaviour, int stop_early, receipt *r) {
  kx_sandbox_set_isolation(isolated);
  reader_arg a = {behaviour};
  memset(r, 0, sizeof *r);
  r->stop_early = stop_early;
  kx_error_clear();
  int rc = kx_sandbox_run("some.h5", reader, &a, receiver, r);
  kx_sandbox_set_isolation(1);
  return rc;
}

START_TEST(values_arrive_in_both_modes) {
  for (int isolated = 0; isolated < 2; isolated++) {
    receipt r;
    ck_assert_int_eq(run(isolated, 0, 0, &r), 0);
    ck_assert_uint_eq(r.n, N_VALUES);
    for (size_t i = 0; i < r.n; i++) ck_assert_double_eq(r.values[i], (double)i * 0.5);
    free(r.values);
  }
}
END_TEST

START_TEST(reader_errors_keep_their_message) {
  for (int isolated = 0; isolated < 2; isolated++) {
    receipt r;
    ck_assert_int_eq(run(isolated, 1, 0, &r), KX_EINVAL);
    ck_assert_str_eq(kx_error_message(), "value 150000 is wrong");
    free(r.values);
  }
}
END_TEST

START_TEST(a_dying_reader_is_a_malformed_file) {
  int signals[2] = {2, 3};
  for (int s = 0; s < 2; s++) {
    receipt r;
    ck_assert_int_eq(run(1, signals[s], 0, &r), KX_EIO);
    ck_assert_msg(strstr(kx_error_message(), "malformed HDF5 file 'some.h5': the HDF5 library crashed"),
                  "message: %s", kx_error_message());
    free(r.values);
  }
}
END_TEST

START_TEST(an_endless_reader_is_stopped) {
  setenv("KX_SANDBOX_CPU_SECONDS", "1", 1);
  receipt r;
  ck_assert_int_eq(run(1, 4, 0, &r), KX_EIO);
  unsetenv("KX_SANDBOX_CPU_SECONDS");
  ck_assert_msg(strstr(kx_error_message(), "did not finish reading it within 1 s of CPU"), "message: %s",
                kx_error_message());
  free(r.values);
}
END_TEST

START_TEST(a_receiver_stopping_early_ends_the_reader) {
  receipt r;
  ck_assert_int_eq(run(1, 0, 1, &r), KX_EINVAL);
  ck_assert_str_eq(kx_error_message(), "receiver refuses");
}
END_TEST

int main(void) {
  Suite *s = kx_test_suite("sandbox");
  TCase *tc = kx_test_case(s, "sandbox");
  kx_test_add(tc, (const TTest *const[]){values_arrive_in_both_modes, reader_errors_keep_their_message,
                                         a_dying_reader_is_a_malformed_file, an_endless_reader_is_stopped,
                                         a_receiver_stopping_early_ends_the_reader, NULL});
  return kx_test_run(s);
}
