/* Scratch files of the fuzz harnesses (see fuzz_input.h). */
#include "tests/fuzz/fuzz_input.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir[256];

static void remove_dir(void) {
  DIR *d = opendir(dir);
  if (!d) return;
  struct dirent *e;
  char path[512];
  while ((e = readdir(d)))
    if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
      snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
      unlink(path);
    }
  closedir(d);
  rmdir(dir);
}

const char *kx_fuzz_dir(void) {
  if (!dir[0]) {
    const char *base = getenv("KX_FUZZ_SCRATCH");
    if (!base || !base[0]) base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(dir, sizeof dir, "%s/kx-fuzz-XXXXXX", base);
    if (!mkdtemp(dir)) {
      perror("kx_fuzz_dir: mkdtemp");
      abort();
    }
    atexit(remove_dir);
  }
  return dir;
}

static void write_all(int fd, const uint8_t *data, size_t size, const char *what) {
  for (size_t done = 0; done < size;) {
    ssize_t w = pwrite(fd, data + done, size - done, (off_t)done);
    if (w <= 0) {
      perror(what);
      abort();
    }
    done += (size_t)w;
  }
}

const char *kx_fuzz_write(const char *name, const uint8_t *data, size_t size) {
  static char path[512];
  snprintf(path, sizeof path, "%s/%s", kx_fuzz_dir(), name);
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (fd < 0) {
    perror(path);
    abort();
  }
  write_all(fd, data, size, path);
  close(fd);
  return path;
}

const char *kx_fuzz_file(const uint8_t *data, size_t size) { return kx_fuzz_write("input", data, size); }

long kx_fuzz_read(const char *path, char *buf, size_t cap) {
  FILE *f = fopen(path, "rb");
  if (!f) return -1;
  size_t n = fread(buf, 1, cap, f);
  fclose(f);
  return (long)n;
}
