#include "core/kx_atomic.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/kx_error.h"

static char *copy_string(const char *s) {
  char *c = kx_malloc(strlen(s) + 1);
  if (c) strcpy(c, s);
  return c;
}

/* Directory part of `path` ("." when it has none), malloc'd. */
static char *dir_of(const char *path) {
  const char *slash = strrchr(path, '/');
  if (!slash) return copy_string(".");
  size_t len = slash == path ? 1 : (size_t)(slash - path);
  char *d = kx_malloc(len + 1);
  if (d) {
    memcpy(d, path, len);
    d[len] = '\0';
  }
  return d;
}

int kx_output_kind_is_stream(const char *path) {
  if (!*path) return kx_fail(KX_EINVAL, "the output file name is empty"), -1;
  struct stat st;
  if (stat(path, &st) != 0) {
    if (errno != ENOENT)
      return kx_fail(KX_EIO, "cannot write '%s': %s", path, strerror(errno)), -1;
    struct stat lst;
    if (lstat(path, &lst) == 0 && S_ISLNK(lst.st_mode))
      return kx_fail(KX_EIO, "'%s' is a symbolic link to a missing file; remove it or give another output",
                     path), -1;
    return 0;
  }
  if (S_ISREG(st.st_mode)) return 0;
  if (S_ISCHR(st.st_mode) || S_ISFIFO(st.st_mode)) return 1;
  if (S_ISDIR(st.st_mode))
    return kx_fail(KX_EIO, "'%s' is a directory; give a file name for the output", path), -1;
  return kx_fail(KX_EIO,
                 "'%s' is neither a regular file nor a character device or FIFO; kapprox replaces only "
                 "regular files and streams into devices and FIFOs, give another output",
                 path), -1;
}

void kx_atomic_remove_stale(const char *path) {
  char *dir = dir_of(path);
  if (!dir) return;
  const char *slash = strrchr(path, '/');
  const char *base = slash ? slash + 1 : path;
  size_t bl = strlen(base);
  DIR *d = opendir(dir);
  if (!d) {
    free(dir);
    return;
  }
  pid_t self = getpid();
  struct dirent *e;
  while ((e = readdir(d))) {
    const char *n = e->d_name;
    if (strncmp(n, base, bl) != 0 || strncmp(n + bl, ".tmp.", 5) != 0) continue;
    const char *digits = n + bl + 5;
    char *end;
    errno = 0;
    long pid = strtol(digits, &end, 10);
    if (errno || end == digits || *end || *digits < '1' || *digits > '9' || pid <= 0 || (pid_t)pid != pid)
      continue;
    /* EPERM: the process exists under another user; leave its file. */
    if ((pid_t)pid == self || kill((pid_t)pid, 0) == 0 || errno != ESRCH) continue;
    size_t len = strlen(dir) + strlen(n) + 2;
    char *full = kx_malloc(len);
    if (!full) break;
    snprintf(full, len, "%s/%s", dir, n);
    struct stat st;
    if (lstat(full, &st) == 0 && S_ISREG(st.st_mode)) unlink(full);
    free(full);
  }
  closedir(d);
  free(dir);
}

/* Fills f->path, f->dest, f->stream and, for replaced destinations, f->tmp
 * (the name only), after removing stale temporaries. */
static int prepare(kx_atomic_file *f, const char *path) {
  memset(f, 0, sizeof *f);
  int kind = kx_output_kind_is_stream(path);
  if (kind < 0) return KX_EIO;
  f->stream = kind;
  f->path = copy_string(path);
  if (!f->path) return KX_ENOMEM;
  struct stat lst;
  if (!kind && lstat(path, &lst) == 0 && S_ISLNK(lst.st_mode)) {
    f->dest = realpath(path, NULL);
    if (!f->dest) {
      int e = errno;
      free(f->path);
      f->path = NULL;
      return kx_fail(KX_EIO, "cannot resolve the symbolic link '%s': %s", path, strerror(e));
    }
  } else {
    f->dest = copy_string(path);
  }
  if (!f->dest) {
    free(f->path);
    f->path = NULL;
    return KX_ENOMEM;
  }
  if (kind) return 0;
  size_t len = strlen(f->dest) + 32;
  f->tmp = kx_malloc(len);
  if (!f->tmp) {
    kx_atomic_abort(f);
    return KX_ENOMEM;
  }
  snprintf(f->tmp, len, "%s.tmp.%ld", f->dest, (long)getpid());
  kx_atomic_remove_stale(f->dest);
  return 0;
}

int kx_atomic_open(kx_atomic_file *f, const char *path) {
  int rc = prepare(f, path);
  if (rc) return rc;
  f->fp = fopen(f->stream ? f->dest : f->tmp, "w");
  if (!f->fp) {
    int e = errno;
    kx_atomic_abort(f);
    return kx_fail(KX_EIO, "cannot write '%s': %s", path, strerror(e));
  }
  return 0;
}

int kx_atomic_check(const char *path) {
  kx_atomic_file f;
  int rc = prepare(&f, path);
  if (rc) return rc;
  if (f.stream) {
    if (access(f.dest, W_OK) != 0) rc = kx_fail(KX_EIO, "cannot write '%s': %s", path, strerror(errno));
  } else {
    int fd = open(f.tmp, O_WRONLY | O_CREAT | O_TRUNC, 0666);
    if (fd < 0) {
      rc = kx_fail(KX_EIO, "cannot create '%s': %s", path, strerror(errno));
      free(f.tmp); /* nothing was created */
      f.tmp = NULL;
    } else {
      close(fd);
    }
  }
  kx_atomic_abort(&f); /* removes the temporary file */
  return rc;
}

static int sync_directory(const char *p) {
  int fd = open(p, O_RDONLY | O_DIRECTORY);
  if (fd < 0) return -1;
  int r = fsync(fd), e = errno;
  /* some file systems cannot sync a directory; nothing more can be done */
  if (r != 0 && (e == EINVAL || e == EROFS)) r = 0;
  close(fd);
  errno = e;
  return r;
}

int kx_atomic_commit(kx_atomic_file *f) {
  int rc = 0;
  const char *shown = f->path;
  if (f->fp) {
    int bad = fflush(f->fp) != 0 || (!f->stream && fsync(fileno(f->fp)) != 0);
    if (bad) rc = kx_fail(KX_EIO, "writing '%s': %s", shown, strerror(errno));
    if (fclose(f->fp) != 0 && !rc) rc = kx_fail(KX_EIO, "writing '%s': %s", shown, strerror(errno));
    f->fp = NULL;
  }
  if (!rc && !f->stream) {
    if (rename(f->tmp, f->dest) != 0) {
      rc = kx_fail(KX_EIO, "cannot rename the temporary file to '%s': %s", shown, strerror(errno));
    } else {
      free(f->tmp); /* published: nothing left to remove */
      f->tmp = NULL;
      char *dir = dir_of(f->dest);
      if (dir && sync_directory(dir) != 0)
        rc = kx_fail(KX_EIO, "'%s' is written but its directory could not be synced: %s", shown,
                     strerror(errno));
      free(dir);
    }
  }
  kx_atomic_abort(f);
  return rc;
}

void kx_atomic_abort(kx_atomic_file *f) {
  if (f->fp) fclose(f->fp);
  if (f->tmp) unlink(f->tmp);
  free(f->path);
  free(f->dest);
  free(f->tmp);
  memset(f, 0, sizeof *f);
}
