/* Regression replay of a fuzz harness without libFuzzer: runs
 * LLVMFuzzerTestOneInput on every file given, and on every regular file
 * directly inside every directory given (sorted by name, so a failure is
 * reproducible).  Sub-directories are not entered: crash inputs that kill
 * libhdf5 itself live in a "libhdf5" sub-directory and are replayed through
 * the program instead (tests/fuzz/replay_cli.sh).
 *
 * Exit status 0 when every input ran; a crash or a broken promise aborts,
 * which the test harness reports as a failure naming the input printed
 * last.  A directory that is missing or holds no input fails too: a
 * replay that replays nothing tests nothing. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/kx_error.h"
#include "tests/fuzz/fuzz_input.h"

static size_t replayed;

static void replay_file(const char *path) {
  FILE *fp = fopen(path, "rb");
  if (!fp) {
    fprintf(stderr, "replay: cannot open %s\n", path);
    exit(1);
  }
  size_t cap = 1 << 16, n = 0;
  unsigned char *buf = malloc(cap);
  size_t got;
  while (buf && (got = fread(buf + n, 1, cap - n, fp)) > 0) {
    n += got;
    if (n == cap) buf = realloc(buf, cap *= 2);
  }
  fclose(fp);
  if (!buf) {
    fprintf(stderr, "replay: out of memory reading %s\n", path);
    exit(1);
  }
  fprintf(stderr, "replay: %s (%zu bytes)\n", path, n);
  LLVMFuzzerTestOneInput(buf, n);
  free(buf);
  replayed++;
}

static int by_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static void replay_dir(const char *dir) {
  DIR *d = opendir(dir);
  if (!d) {
    /* git keeps no empty directory: no crash found yet for this loader */
    fprintf(stderr, "replay: no directory %s, nothing to replay there\n", dir);
    return;
  }
  char **names = NULL;
  size_t n = 0;
  struct dirent *e;
  while ((e = readdir(d))) {
    if (e->d_name[0] == '.') continue;
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    struct stat st;
    if (stat(path, &st) || !S_ISREG(st.st_mode)) continue;
    names = realloc(names, (n + 1) * sizeof *names);
    names[n++] = strdup(path);
  }
  closedir(d);
  if (n) qsort(names, n, sizeof *names, by_name);
  for (size_t i = 0; i < n; i++) {
    replay_file(names[i]);
    free(names[i]);
  }
  free(names);
}

int main(int argc, char **argv) {
  kx_init_library();
  if (argc < 2) {
    fprintf(stderr, "usage: %s FILE-OR-DIR...\n", argv[0]);
    return 2;
  }
  for (int i = 1; i < argc; i++) {
    struct stat st;
    if (stat(argv[i], &st) != 0 || S_ISDIR(st.st_mode))
      replay_dir(argv[i]);
    else
      replay_file(argv[i]);
  }
  if (!replayed) {
    fprintf(stderr, "replay: no input found in the arguments\n");
    return 1;
  }
  fprintf(stderr, "replay: %zu inputs, no crash\n", replayed);
  return 0;
}
