#include "core/kx_fs.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/kx_error.h"

int kx_mkdir_p(const char *path) {
  char *buf = kx_malloc(strlen(path) + 1);
  if (!buf) return KX_ENOMEM;
  strcpy(buf, path);
  int rc = 0;
  for (char *p = buf + 1; !rc; p++) {
    if (*p && *p != '/') continue;
    char c = *p;
    *p = '\0';
    if (mkdir(buf, 0755) != 0 && errno != EEXIST) {
      int e = errno;
      rc = kx_fail(KX_EIO, "cannot create the folder '%s': %s", buf, strerror(e));
      errno = e;
    }
    if (!c) break;
    *p = c;
  }
  struct stat st;
  if (!rc && (stat(path, &st) != 0 || !S_ISDIR(st.st_mode)))
    rc = kx_fail(KX_EIO, "cannot create the folder '%s': a file of that name is in the way", path);
  free(buf);
  return rc;
}

int kx_same_file(const char *a, const char *b) {
  struct stat sa, sb;
  return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

int kx_path_exists(const char *path) { return access(path, F_OK) == 0; }
