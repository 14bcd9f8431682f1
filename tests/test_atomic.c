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

static char dir[64];

static const char *at(const char *name) {
  static char buf[4][256];
  static int k;
  k = (k + 1) % 4;
  snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
  return buf[k];
}

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
  DIR *d = opendir(dir);
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)))
    if (strstr(e->d_name, ".tmp.")) n++;
  closedir(d);
  return n;
}

static void setup(void) {
  snprintf(dir, sizeof dir, "/tmp/kx_atomic_XXXXXX");
  ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void teardown(void) {
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  ck_assert_int_eq(system(cmd), 0);
}

START_TEST(test_commit_and_abort) {
  put(at("out.csv"), "old\n");
  kx_atomic_file f;
  ck_assert_int_eq(kx_atomic_open(&f, at("out.csv")), 0);
  fputs("new\n", f.fp);
  /* until commit the destination is the old file */
  ck_assert(holds(at("out.csv"), "old\n"));
  ck_assert_int_eq(temporaries(), 1);
  kx_atomic_abort(&f);
  ck_assert(holds(at("out.csv"), "old\n"));
  ck_assert_int_eq(temporaries(), 0);

  ck_assert_int_eq(kx_atomic_open(&f, at("out.csv")), 0);
  fputs("new\n", f.fp);
  ck_assert_int_eq(kx_atomic_commit(&f), 0);
  ck_assert(holds(at("out.csv"), "new\n"));
  ck_assert_int_eq(temporaries(), 0);

  /* a check leaves nothing behind */
  ck_assert_int_eq(kx_atomic_check(at("out.csv")), 0);
  ck_assert_int_eq(kx_atomic_check(at("new.csv")), 0);
  ck_assert_int_eq(access(at("new.csv"), F_OK), -1);
  ck_assert_int_eq(temporaries(), 0);
}
END_TEST

START_TEST(test_refused_outputs) {
  kx_atomic_file f;
  mkdir(at("sub"), 0777);
  ck_assert_int_ne(kx_atomic_open(&f, at("sub")), 0);
  ck_assert_ptr_nonnull(strstr(kx_error_message(), "is a directory"));
  ck_assert_int_eq(symlink(at("missing/x"), at("dangling")), 0);
  ck_assert_int_ne(kx_atomic_check(at("dangling")), 0);
  ck_assert_ptr_nonnull(strstr(kx_error_message(), "symbolic link to a missing file"));
  ck_assert_int_ne(kx_atomic_open(&f, ""), 0);
  ck_assert_ptr_nonnull(strstr(kx_error_message(), "empty"));
  ck_assert_int_ne(kx_atomic_open(&f, at("no/such/dir/x.csv")), 0);
  ck_assert_ptr_nonnull(strstr(kx_error_message(), "No such file or directory"));
  ck_assert_int_ne(kx_atomic_check(at("no/such/dir/x.csv")), 0);
  ck_assert_ptr_nonnull(strstr(kx_error_message(), "cannot create"));
  ck_assert_int_eq(temporaries(), 0);
  ck_assert_int_eq(kx_output_kind_is_stream("/dev/null"), 1);
  ck_assert_int_eq(kx_output_kind_is_stream(at("not-yet")), 0);
}
END_TEST

START_TEST(test_symlink_followed) {
  put(at("target.csv"), "old\n");
  ck_assert_int_eq(symlink("target.csv", at("link.csv")), 0);
  kx_atomic_file f;
  ck_assert_int_eq(kx_atomic_open(&f, at("link.csv")), 0);
  fputs("new\n", f.fp);
  ck_assert_int_eq(kx_atomic_commit(&f), 0);
  struct stat st;
  ck_assert_int_eq(lstat(at("link.csv"), &st), 0);
  ck_assert(S_ISLNK(st.st_mode));
  ck_assert(holds(at("target.csv"), "new\n"));
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
  put(at(name), "stale");
  snprintf(name, sizeof name, "out.csv.tmp.%ld", (long)getppid()); /* alive */
  put(at(name), "live");
  put(at("out.csv.tmp.12x"), "not a pid");
  char other[64];
  snprintf(other, sizeof other, "other.csv.tmp.%ld", (long)dead); /* another output's */
  put(at(other), "other");
  snprintf(name, sizeof name, "out.csv.tmp.%ld", (long)dead);
  kx_atomic_remove_stale(at("out.csv"));
  ck_assert_int_eq(access(at(name), F_OK), -1);
  snprintf(name, sizeof name, "out.csv.tmp.%ld", (long)getppid());
  ck_assert_int_eq(access(at(name), F_OK), 0);
  ck_assert_int_eq(access(at("out.csv.tmp.12x"), F_OK), 0);
  ck_assert_int_eq(access(at(other), F_OK), 0);
}
END_TEST

START_TEST(test_mkdir_p) {
  /* every missing level, an existing one again, a trailing slash */
  ck_assert_int_eq(kx_mkdir_p(at("a/b/c")), 0);
  struct stat st;
  ck_assert_int_eq(stat(at("a/b/c"), &st), 0);
  ck_assert(S_ISDIR(st.st_mode));
  ck_assert_int_eq(kx_mkdir_p(at("a/b/c")), 0);
  ck_assert_int_eq(kx_mkdir_p(at("a/d/")), 0);
  ck_assert_int_eq(stat(at("a/d"), &st), 0);
  /* a file in the way: refused, naming the level that could not be made */
  put(at("a/file"), "x");
  ck_assert_int_ne(kx_mkdir_p(at("a/file/e")), 0);
  ck_assert_ptr_nonnull(strstr(kx_error_message(), "a/file/e"));
  ck_assert_ptr_nonnull(strstr(kx_error_message(), "Not a directory"));
  ck_assert_int_ne(kx_mkdir_p(at("a/file")), 0);
  ck_assert_ptr_nonnull(strstr(kx_error_message(), "in the way"));
  /* the same file under two names; a missing one is no one's twin */
  ck_assert_int_eq(symlink("file", at("a/link")), 0);
  ck_assert_int_eq(kx_same_file(at("a/file"), at("a/link")), 1);
  ck_assert_int_eq(kx_same_file(at("a/file"), at("a/d")), 0);
  ck_assert_int_eq(kx_same_file(at("a/missing"), at("a/missing")), 0);
  ck_assert_int_eq(kx_path_exists(at("a/link")), 1);
  ck_assert_int_eq(kx_path_exists(at("a/missing")), 0);
}
END_TEST

int main(void) {
  kx_init_library();
  Suite *s = suite_create("atomic");
  TCase *tc = tcase_create("atomic");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, test_commit_and_abort);
  tcase_add_test(tc, test_refused_outputs);
  tcase_add_test(tc, test_symlink_followed);
  tcase_add_test(tc, test_stale_temporaries);
  tcase_add_test(tc, test_mkdir_p);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? 1 : 0;
}
