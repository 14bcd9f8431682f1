/* The atomic-publish helper (core/kx_atomic): what commit and abort leave
 * on disk, outputs that must not be replaced, and the removal of stale
 * temporary files.  Streaming into FIFOs and devices is in faults.sh.
 * Also the folder helpers of core/kx_fs. */
#include <check.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/kx_atomic.h"
#include "core/kx_error.h"
#include "core/kx_fs.h"
#include "tests/test_support.h"


static void put(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  ck_assert_ptr_nonnull(f);
  fputs(text, f);
  fclose(f);
}

static int holds(const char *path, const char *text) {
  char buf[256] = "";
  FILE *f = fopen(path, "r");
  if (!f) return 0;
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = '\0';
  return strcmp(buf, text) == 0;
}

/* Number of directory entries whose name contains ".tmp.". */
static int temporaries(void) {
  DIR *d = opendir(kx_test_dir());
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)))
    if (strstr(e->d_name, ".tmp.")) n++;
  closedir(d);
  return n;
}

static void setup(void) { ck_assert_int_eq(kx_test_tmpdir("atomic"), 0); }

static void teardown(void) { ck_assert_int_eq(kx_test_rmtree(), 0); }

START_TEST(test_commit_and_abort) {
  put(kx_test_path("out.csv"), "old\n");
  kx_atomic_file f;
  ck_assert_int_eq(kx_atomic_open(&f, kx_test_path("out.csv")), 0);
  fputs("new\n", f.fp);
  /* until commit the destination is the old file */
  ck_assert(holds(kx_test_path("out.csv"), "old\n"));
  ck_assert_int_eq(temporaries(), 1);
  kx_atomic_abort(&f);
  ck_assert(holds(kx_test_path("out.csv"), "old\n"));
  ck_assert_int_eq(temporaries(), 0);

  ck_assert_int_eq(kx_atomic_open(&f, kx_test_path("out.csv")), 0);
  fputs("new\n", f.fp);
  ck_assert_int_eq(kx_atomic_commit(&f), 0);
  ck_assert(holds(kx_test_path("out.csv"), "new\n"));
  ck_assert_int_eq(temporaries(), 0);

  /* a check leaves nothing behind */
  ck_assert_int_eq(kx_atomic_check(kx_test_path("out.csv")), 0);
  ck_assert_int_eq(kx_atomic_check(kx_test_path("new.csv")), 0);
  ck_assert_int_eq(access(kx_test_path("new.csv"), F_OK), -1);
  ck_assert_int_eq(temporaries(), 0);
}
END_TEST

START_TEST(test_refused_outputs) {
  kx_atomic_file f;
  mkdir(kx_test_path("sub"), 0777);
  ck_assert_int_ne(kx_atomic_open(&f, kx_test_path("sub")), 0);
  ck_assert_ptr_nonnull(strstr(kx_error_message(), "is a directory"));
  ck_assert_int_eq(symlink(kx_test_path("missing/x"), kx_test_path("dangling")), 0);
  ck_assert_int_ne(kx_atomic_check(kx_test_path("dangling")), 0);
  ck_assert_ptr_nonnull(strstr(kx_error_message(), "symbolic link to a missing file"));
  ck_assert_int_ne(kx_atomic_open(&f, ""), 0);
  ck_assert_ptr_nonnull(strstr(kx_error_message(), "empty"));
  ck_assert_int_ne(kx_atomic_open(&f, kx_test_path("no/such/dir/x.csv")), 0);
  ck_assert_ptr_nonnull(strstr(kx_error_message(), "No such file or directory"));
  ck_assert_int_ne(kx_atomic_check(kx_test_path("no/such/dir/x.csv")), 0);
  ck_assert_ptr_nonnull(strstr(kx_error_message(), "cannot create"));
  ck_assert_int_eq(temporaries(), 0);
  ck_assert_int_eq(kx_output_kind_is_stream("/dev/null"), 1);
  ck_assert_int_eq(kx_output_kind_is_stream(kx_test_path("not-yet")), 0);
}
END_TEST

START_TEST(test_symlink_followed) {
  put(kx_test_path("target.csv"), "old\n");
  ck_assert_int_eq(symlink("target.csv", kx_test_path("link.csv")), 0);
  kx_atomic_file f;
  ck_assert_int_eq(kx_atomic_open(&f, kx_test_path("link.csv")), 0);
  fputs("new\n", f.fp);
  ck_assert_int_eq(kx_atomic_commit(&f), 0);
  struct stat st;
  ck_assert_int_eq(lstat(kx_test_path("link.csv"), &st), 0);
  ck_assert(S_ISLNK(st.st_mode));
  ck_assert(holds(kx_test_path("target.csv"), "new\n"));
}
END_TEST

START_TEST(test_stale_temporaries) {
  /* a pid that has certainly ended: a child we waited for */
  pid_t dead = fork();
  if (dead == 0) _exit(0);
  ck_assert_int_gt(dead, 0);
  waitpid(dead, NULL, 0);
  char name[64];
  snprintf(name, sizeof name, "out.csv.tmp.%ld", (long)dead);
  put(kx_test_path(name), "stale");
  snprintf(name, sizeof name, "out.csv.tmp.%ld", (long)getppid()); /* alive */
  put(kx_test_path(name), "live");
  put(kx_test_path("out.csv.tmp.12x"), "not a pid");
  char other[64];
  snprintf(other, sizeof other, "other.csv.tmp.%ld", (long)dead); /* another output's */
  put(kx_test_path(other), "other");
  snprintf(name, sizeof name, "out.csv.tmp.%ld", (long)dead);
  kx_atomic_remove_stale(kx_test_path("out.csv"));
  ck_assert_int_eq(access(kx_test_path(name), F_OK), -1);
  snprintf(name, sizeof name, "out.csv.tmp.%ld", (long)getppid());
  ck_assert_int_eq(access(kx_test_path(name), F_OK), 0);
  ck_assert_int_eq(access(kx_test_path("out.csv.tmp.12x"), F_OK), 0);
  ck_assert_int_eq(access(kx_test_path(other), F_OK), 0);
}
END_TEST

START_TEST(test_mkdir_p) {
  /* every missing level, an existing one again, a trailing slash */
  ck_assert_int_eq(kx_mkdir_p(kx_test_path("a/b/c")), 0);
  struct stat st;
  ck_assert_int_eq(stat(kx_test_path("a/b/c"), &st), 0);
  ck_assert(S_ISDIR(st.st_mode));
  ck_assert_int_eq(kx_mkdir_p(kx_test_path("a/b/c")), 0);
  ck_assert_int_eq(kx_mkdir_p(kx_test_path("a/d/")), 0);
  ck_assert_int_eq(stat(kx_test_path("a/d"), &st), 0);
  /* a file in the way: refused, naming the level that could not be made */
  put(kx_test_path("a/file"), "x");
  ck_assert_int_ne(kx_mkdir_p(kx_test_path("a/file/e")), 0);
  ck_assert_ptr_nonnull(strstr(kx_error_message(), "a/file/e"));
  ck_assert_ptr_nonnull(strstr(kx_error_message(), "Not a directory"));
  ck_assert_int_ne(kx_mkdir_p(kx_test_path("a/file")), 0);
  ck_assert_ptr_nonnull(strstr(kx_error_message(), "in the way"));
  /* the same file under two names; a missing one is no one's twin */
  ck_assert_int_eq(symlink("file", kx_test_path("a/link")), 0);
  ck_assert_int_eq(kx_same_file(kx_test_path("a/file"), kx_test_path("a/link")), 1);
  ck_assert_int_eq(kx_same_file(kx_test_path("a/file"), kx_test_path("a/d")), 0);
  ck_assert_int_eq(kx_same_file(kx_test_path("a/missing"), kx_test_path("a/missing")), 0);
  ck_assert_int_eq(kx_path_exists(kx_test_path("a/link")), 1);
  ck_assert_int_eq(kx_path_exists(kx_test_path("a/missing")), 0);
}
END_TEST

int main(void) {
  Suite *s = kx_test_suite("atomic");
  TCase *tc = kx_test_case(s, "atomic");
  tcase_add_checked_fixture(tc, setup, teardown);
  kx_test_add(tc, (const TTest *const[]){test_commit_and_abort, test_refused_outputs, test_symlink_followed,
                                         test_stale_temporaries, test_mkdir_p, NULL});
  return kx_test_run(s);
}
