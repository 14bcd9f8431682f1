#include "experiments/sweep/sweep_commit.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/kx_atomic.h"
#include "core/kx_error.h"

static char *joined(const char *a, const char *b) {
  char *s = kx_malloc(strlen(a) + strlen(b) + 1);
  if (s) {
    strcpy(s, a);
    strcat(s, b);
  }
  return s;
}

/* Renames are durable once the directory holding them is synced. */
static void sync_parent(const char *path) {
  char *dir = joined(path, "");
  if (!dir) return;
  char *slash = strrchr(dir, '/');
  if (!slash) strcpy(dir, ".");
  else if (slash == dir) dir[1] = '\0';
  else *slash = '\0';
  int fd = open(dir, O_RDONLY | O_DIRECTORY);
  if (fd >= 0) {
    fsync(fd);
    close(fd);
  }
  free(dir);
}

void kx_commit_abort(kx_commit_group *g) {
  for (size_t i = 0; i < g->n; i++) {
    if (g->fp[i]) fclose(g->fp[i]);
    if (g->fresh[i]) remove(g->fresh[i]);
    free(g->fresh[i]);
    free(g->final[i]);
  }
  free(g->marker);
  memset(g, 0, sizeof *g);
}

int kx_commit_check_targets(const char *const *paths, size_t n) {
  for (size_t i = 0; i < n; i++) {
    struct stat st;
    if (stat(paths[i], &st) == 0 && !S_ISREG(st.st_mode))
      return kx_fail(KX_EINVAL, "'%s' is not a regular file (a device, FIFO or directory); results of "
                     "sweep and merge are files replaced as a whole, so give a file name", paths[i]);
  }
  return 0;
}

int kx_commit_open(kx_commit_group *g, const char *out, const char *const *paths, size_t n) {
  memset(g, 0, sizeof *g);
  if (n > KX_COMMIT_MAX_FILES) return kx_fail(KX_EINVAL, "too many files in one commit");
  int rc = kx_commit_check_targets(paths, n);
  if (rc) return rc;
  g->marker = joined(out, ".commit");
  if (!g->marker) return KX_ENOMEM;
  for (size_t i = 0; i < n; i++) {
    g->n = i + 1;
    g->final[i] = joined(paths[i], "");
    g->fresh[i] = joined(paths[i], ".new");
    if (!g->final[i] || !g->fresh[i]) {
      kx_commit_abort(g);
      return KX_ENOMEM;
    }
    g->fp[i] = fopen(g->fresh[i], "w");
    if (!g->fp[i]) {
      int e = errno;
      free(g->fresh[i]); /* not created: nothing to remove */
      g->fresh[i] = NULL;
      kx_commit_abort(g);
      return kx_fail(KX_EIO, "cannot write '%s': %s", paths[i], strerror(e));
    }
  }
  return 0;
}

static int close_synced(FILE *fp, const char *name) {
  errno = 0;
  int bad = fflush(fp) != 0 || ferror(fp) || fsync(fileno(fp)) != 0;
  int e = errno ? errno : EIO;
  if (fclose(fp) != 0 && !bad) {
    bad = 1;
    e = errno;
  }
  return bad ? kx_fail(KX_EIO, "writing '%s' failed: %s", name, strerror(e)) : 0;
}

int kx_commit_finish(kx_commit_group *g) {
  int rc = 0;
  for (size_t i = 0; i < g->n; i++) {
    int r = close_synced(g->fp[i], g->final[i]);
    g->fp[i] = NULL;
    if (r && !rc) rc = r;
  }
  /* the marker, published atomically: from here on the new files are the truth */
  kx_atomic_file m;
  if (!rc) rc = kx_atomic_open(&m, g->marker);
  if (!rc) {
    for (size_t i = 0; i < g->n; i++) fprintf(m.fp, "%s\n", g->final[i]);
    if (ferror(m.fp)) {
      kx_atomic_abort(&m);
      rc = kx_fail(KX_EIO, "writing '%s' failed", g->marker);
    } else {
      rc = kx_atomic_commit(&m);
    }
  }
  if (rc) {
    kx_commit_abort(g);
    return rc;
  }
  for (size_t i = 0; i < g->n && !rc; i++)
    if (rename(g->fresh[i], g->final[i]) != 0)
      rc = kx_fail(KX_EIO, "renaming to '%s': %s (the next run finishes it)", g->final[i], strerror(errno));
  if (!rc) {
    sync_parent(g->marker);
    remove(g->marker);
  }
  for (size_t i = 0; i < g->n; i++) {
    free(g->fresh[i]);
    free(g->final[i]);
  }
  free(g->marker);
  memset(g, 0, sizeof *g);
  return rc;
}

int kx_commit_recover(const char *out, const char *const *paths, size_t n, int *repaired) {
  *repaired = 0;
  char *marker = joined(out, ".commit");
  if (!marker) return KX_ENOMEM;
  int rc = 0;
  FILE *m = fopen(marker, "r");
  if (m) {
    /* roll forward exactly the files the marker names */
    char line[4096];
    while (!rc && fgets(line, sizeof line, m)) {
      size_t len = strlen(line);
      if (len && line[len - 1] == '\n') line[--len] = '\0';
      int known = 0;
      for (size_t i = 0; i < n; i++) known |= !strcmp(line, paths[i]);
      if (!known) {
        rc = kx_fail(KX_EIO, "'%s' names '%s', which is not an output of '%s'; remove the marker if it "
                     "is not kapprox's", marker, line, out);
        break;
      }
      char *fresh = joined(line, ".new");
      if (!fresh) rc = KX_ENOMEM;
      else if (access(fresh, F_OK) == 0) {
        if (rename(fresh, line) != 0) rc = kx_fail(KX_EIO, "renaming '%s': %s", fresh, strerror(errno));
        else *repaired = 1;
      }
      free(fresh);
    }
    fclose(m);
    if (!rc) {
      sync_parent(marker);
      remove(marker);
    }
  } else {
    /* no marker: new files of an unfinished commit, never in effect */
    for (size_t i = 0; i < n; i++) {
      char *fresh = joined(paths[i], ".new");
      if (!fresh) {
        rc = KX_ENOMEM;
        break;
      }
      remove(fresh);
      free(fresh);
    }
  }
  /* a marker that was never put in place: kx_atomic removes its temporary
   * files on the next commit; versions before it left "<marker>.new" */
  char *stale = joined(marker, ".new");
  if (stale) remove(stale);
  free(stale);
  free(marker);
  return rc;
}
