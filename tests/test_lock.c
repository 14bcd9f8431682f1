/* Claims of output files and folders (core/kx_lock.h): a claim held by
 * another process is refused naming it; a claim left by a dead process is
 * taken over, also while nobody has reaped it yet; one recorded by another
 * host is refused with the advice to
 * remove it; releasing removes the lock file; devices and FIFOs need no
 * claim. */
#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/kx_error.h"
#include "core/kx_lock.h"
#include "tests/test_support.h"

static void setup(void) { ck_assert_int_eq(kx_test_tmpdir("lock"), 0); }

static void teardown(void) { kx_test_rmtree(); }

static void put(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  ck_assert_ptr_nonnull(f);
  fputs(text, f);
  fclose(f);
}

/* A process that claims `file` and waits; its pid, once it holds it. */
static pid_t holder(const char *file) {
  int fds[2];
  ck_assert_int_eq(pipe(fds), 0);
  pid_t pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0) {
    kx_lock l;
    char ok = kx_lock_file(&l, file) == 0;
    if (write(fds[1], &ok, 1) != 1) _exit(1);
    for (;;) pause();
  }
  char ok = 0;
  ck_assert_int_eq(read(fds[0], &ok, 1), 1);
  ck_assert(ok);
  close(fds[0]);
  close(fds[1]);
  return pid;
}

START_TEST(a_second_writer_is_refused_naming_the_first) {
  const char *out = kx_test_path("ck.h5");
  pid_t pid = holder(out);
  kx_lock l;
  ck_assert_int_eq(kx_lock_file(&l, out), KX_EBUSY);
  char needle[64];
  snprintf(needle, sizeof needle, "kapprox process %ld on host", (long)pid);
  ck_assert_msg(strstr(kx_error_message(), needle), "message: %s", kx_error_message());
  ck_assert_msg(strstr(kx_error_message(), "is being written by"), "message: %s", kx_error_message());
  ck_assert_int_lt(l.fd, 0);
  kx_lock_release(&l); /* an unheld lock: harmless */
  /* the holder dies by SIGKILL: its claim is taken over, its record named */
  kill(pid, SIGKILL);
  waitpid(pid, NULL, 0);
  ck_assert_int_eq(access(kx_test_path("ck.h5.lock"), F_OK), 0);
  ck_assert_int_eq(kx_lock_file(&l, out), 0);
  snprintf(needle, sizeof needle, "kapprox process %ld on host", (long)pid);
  ck_assert_msg(strstr(l.took_over, needle), "took over: '%s'", l.took_over);
  kx_lock_release(&l);
  ck_assert_int_ne(access(kx_test_path("ck.h5.lock"), F_OK), 0);
}
END_TEST

/* A killed holder that nobody has reaped yet (a zombie: its parent died
 * first and init reaps late) holds nothing: its claim is taken over. */
START_TEST(a_killed_holder_not_yet_reaped_is_taken_over) {
  const char *out = kx_test_path("z.h5");
  pid_t pid = holder(out);
  kill(pid, SIGKILL);
  siginfo_t info;
  ck_assert_int_eq(waitid(P_PID, (id_t)pid, &info, WEXITED | WNOWAIT), 0); /* dead, not reaped */
  kx_lock l;
  ck_assert_msg(kx_lock_file(&l, out) == 0, "refused: %s", kx_error_message());
  kx_lock_release(&l);
  waitpid(pid, NULL, 0);
}
END_TEST

START_TEST(a_claim_recorded_by_a_live_process_without_flock_is_refused) {
  /* as a file system without locks leaves it: a record, no flock; the
   * recorded process is this test's parent, alive */
  char host[256], rec[1024];
  gethostname(host, sizeof host);
  snprintf(rec, sizeof rec, "kapprox lock\npid %ld\nhost %s\nstart 0\nsince then\ncommand kapprox train\n",
           (long)getppid(), host);
  put(kx_test_path(".lock"), rec);
  kx_lock l;
  ck_assert_int_eq(kx_lock_dir(&l, kx_test_dir()), KX_EBUSY);
  ck_assert_msg(strstr(kx_error_message(), "since then: kapprox train"), "message: %s", kx_error_message());
  /* the same record with a pid no process has */
  snprintf(rec, sizeof rec, "kapprox lock\npid %ld\nhost %s\nstart 0\nsince then\ncommand kapprox train\n",
           (long)0x3ffffff0, host);
  put(kx_test_path(".lock"), rec);
  ck_assert_int_eq(kx_lock_dir(&l, kx_test_dir()), 0);
  ck_assert_ptr_nonnull(strstr(l.took_over, "since then"));
  kx_lock_release(&l);
}
END_TEST

START_TEST(another_hosts_claim_is_refused_with_advice) {
  put(kx_test_path(".lock"), "kapprox lock\npid 1\nhost some-other-machine\nstart 5\nsince yesterday\ncommand kapprox x\n");
  kx_lock l;
  ck_assert_int_eq(kx_lock_dir(&l, kx_test_dir()), KX_EBUSY);
  ck_assert_msg(strstr(kx_error_message(), "another machine's kapprox process 1 on host some-other-machine"),
                "message: %s", kx_error_message());
  ck_assert_msg(strstr(kx_error_message(), "remove the lock file"), "message: %s", kx_error_message());
  ck_assert_int_eq(access(kx_test_path(".lock"), F_OK), 0); /* not touched */
}
END_TEST

START_TEST(streams_need_no_claim_and_links_are_claimed_at_their_target) {
  kx_lock l;
  ck_assert_int_eq(kx_lock_file(&l, "/dev/null"), 0);
  ck_assert_int_lt(l.fd, 0);
  put(kx_test_path("target.h5"), "x");
  ck_assert_int_eq(symlink(kx_test_path("target.h5"), kx_test_path("link.h5")), 0);
  ck_assert_int_eq(kx_lock_file(&l, kx_test_path("link.h5")), 0);
  ck_assert_int_eq(access(kx_test_path("target.h5.lock"), F_OK), 0);
  kx_lock l2;
  ck_assert_int_eq(kx_lock_file(&l2, kx_test_path("target.h5")), KX_EBUSY); /* same process, second claim */
  ck_assert_ptr_nonnull(strstr(kx_error_message(), "claimed twice by this process"));
  kx_lock_release(&l);
  /* a lock path that is not a regular file is refused */
  ck_assert_int_eq(mkdir(kx_test_path("d.h5.lock"), 0755), 0);
  ck_assert_int_eq(kx_lock_file(&l, kx_test_path("d.h5")), KX_EIO);
}
END_TEST

int main(void) {
  Suite *s = kx_test_suite("lock");
  TCase *tc = kx_test_case(s, "lock");
  tcase_add_checked_fixture(tc, setup, teardown);
  kx_test_add(tc, (const TTest *const[]){a_second_writer_is_refused_naming_the_first,
                                         a_killed_holder_not_yet_reaped_is_taken_over,
                                         a_claim_recorded_by_a_live_process_without_flock_is_refused,
                                         another_hosts_claim_is_refused_with_advice,
                                         streams_need_no_claim_and_links_are_claimed_at_their_target, NULL});
  return kx_test_run(s);
}
