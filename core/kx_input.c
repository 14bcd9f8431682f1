/* Inputs that are regular files (kx_input.h). */
#include "core/kx_input.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/kx_error.h"

static const char *kind_of(mode_t m) {
  if (S_ISFIFO(m)) return "a named pipe (FIFO)";
  if (S_ISCHR(m)) return "a character device";
  if (S_ISBLK(m)) return "a block device";
  if (S_ISSOCK(m)) return "a socket";
  if (S_ISDIR(m)) return "a directory";
  return "not a regular file";
}

static int refuse(const char *path, const char *what, mode_t m) {
  if (S_ISDIR(m)) return kx_fail(KX_EIO, "%s '%s' is a directory; give a file", what, path);
  return kx_fail(KX_EIO,
                 "%s '%s' is %s; kapprox reads its inputs from regular files only (reading this could wait "
                 "forever): save the data into a file and give that",
                 what, path, kind_of(m));
}

int kx_input_check(const char *path, const char *what) {
  struct stat st;
  if (stat(path, &st) != 0 || S_ISREG(st.st_mode)) return 0;
  return refuse(path, what, st.st_mode);
}

int kx_input_open(const char *path, const char *what) {
  /* O_NONBLOCK: a FIFO opens at once instead of waiting for a writer */
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
  if (fd < 0) return kx_fail(KX_EIO, "cannot open %s '%s': %s", what, path, strerror(errno)), -1;
  struct stat st;
  if (fstat(fd, &st) != 0) {
    int e = errno;
    close(fd);
    return kx_fail(KX_EIO, "cannot open %s '%s': %s", what, path, strerror(e)), -1;
  }
  if (!S_ISREG(st.st_mode)) {
    close(fd);
    return refuse(path, what, st.st_mode), -1;
  }
  int flags = fcntl(fd, F_GETFL);
  if (flags >= 0) fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
  return fd;
}

FILE *kx_input_fopen(const char *path, const char *what) {
  int fd = kx_input_open(path, what);
  if (fd < 0) return NULL;
  FILE *f = fdopen(fd, "rb");
  if (!f) {
    int e = errno;
    close(fd);
    kx_fail(KX_EIO, "cannot open %s '%s': %s", what, path, strerror(e));
  }
  return f;
}
