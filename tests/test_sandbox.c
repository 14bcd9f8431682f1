/* Readers in a child process (core/kx_sandbox.h): values arrive intact in
 * both modes, a reader's error arrives with its message, a reader that dies
 * (as libhdf5 does on some malformed files) becomes KX_EIO with "malformed
 * HDF5 file", one that loops forever (as libhdf5 does on others) is stopped,
 * one that waits forever without computing (a blocked open) is stopped by
 * the wall clock, a reader whose caller is killed dies with it, a path
 * that is a named pipe never reaches a reader, and a receiver that stops
 * early does not hang. */
#include <check.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/kx_error.h"
#include "core/kx_sandbox.h"
#include "tests/test_support.h"

enum { N_VALUES = 300000 }; /* > a pipe's buffer: the two sides must overlap */

typedef struct {
  int behaviour; /* 0 send all, 1 fail after half, 2 die by SIGSEGV after half, 3 abort, 4 loop, 5 wait */
  int report_fd; /* behaviour 5: the reader's pid goes here first (-1: not) */
} reader_arg;

static int reader(const void *arg, kx_channel *ch) {
  const reader_arg *a = arg;
  if (a->behaviour == 5) {
    pid_t self = getpid();
    if (a->report_fd >= 0 && write(a->report_fd, &self, sizeof self) != sizeof self) return KX_EIO;
    for (;;) pause(); /* a read that never returns, using no CPU */
  }
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
  reader_arg a = {behaviour, -1};
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

START_TEST(a_waiting_reader_is_stopped_by_the_wall_clock) {
  setenv("KX_SANDBOX_WALL_SECONDS", "1", 1);
  receipt r;
  ck_assert_int_eq(run(1, 5, 0, &r), KX_EIO);
  unsetenv("KX_SANDBOX_WALL_SECONDS");
  ck_assert_msg(strstr(kx_error_message(), "did not finish within 1 s"), "message: %s", kx_error_message());
}
END_TEST

/* Gone, or a zombie nobody reaps (a container's init may not). */
static int dead(pid_t pid) {
  char path[64], buf[256];
  snprintf(path, sizeof path, "/proc/%ld/stat", (long)pid);
  FILE *f = fopen(path, "r");
  if (!f) return 1;
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = '\0';
  const char *p = strrchr(buf, ')');
  return p && p[1] == ' ' && p[2] == 'Z';
}

START_TEST(a_reader_dies_with_its_caller) {
  int fds[2];
  ck_assert_int_eq(pipe(fds), 0);
  pid_t caller = fork();
  ck_assert_int_ge(caller, 0);
  if (caller == 0) {
    close(fds[0]);
    reader_arg a = {5, fds[1]};
    receipt r = {0};
    kx_sandbox_run("some.h5", reader, &a, receiver, &r);
    _exit(0);
  }
  close(fds[1]);
  pid_t child;
  ck_assert_int_eq(read(fds[0], &child, sizeof child), (int)sizeof child);
  close(fds[0]);
  ck_assert(!dead(child));
  kill(caller, SIGKILL);
  waitpid(caller, NULL, 0);
  int gone = 0;
  for (int i = 0; i < 100 && !(gone = dead(child)); i++) {
    struct timespec ts = {0, 50 * 1000 * 1000};
    nanosleep(&ts, NULL);
  }
  if (!gone) kill(child, SIGKILL);
  ck_assert_msg(gone, "the reader %ld outlived its killed caller by 5 s", (long)child);
}
END_TEST

START_TEST(a_fifo_never_reaches_a_reader) {
  char dir[] = "/tmp/kx_sandbox_XXXXXX", path[64];
  ck_assert_ptr_nonnull(mkdtemp(dir));
  snprintf(path, sizeof path, "%s/pipe.h5", dir);
  ck_assert_int_eq(mkfifo(path, 0600), 0);
  reader_arg a = {0, -1};
  receipt r = {0};
  kx_error_clear();
  ck_assert_int_eq(kx_sandbox_run(path, reader, &a, receiver, &r), KX_EIO);
  ck_assert_msg(strstr(kx_error_message(), "is a named pipe (FIFO)"), "message: %s", kx_error_message());
  ck_assert_ptr_null(r.values); /* the receiver never ran */
  unlink(path);
  rmdir(dir);
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
                                         a_receiver_stopping_early_ends_the_reader,
                                         a_waiting_reader_is_stopped_by_the_wall_clock, a_reader_dies_with_its_caller,
                                         a_fifo_never_reaches_a_reader, NULL});
  return kx_test_run(s);
}
