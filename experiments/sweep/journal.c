#include "experiments/sweep/journal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/kx_cli.h"
#include "core/kx_error.h"
#include "core/kx_input.h"

static const char header_end[] = "records:\n";

/* CRC-32 (IEEE, reflected 0xEDB88320), bitwise: records are a few hundred
 * bytes and written once per grid point, so a table buys nothing. */
uint32_t kx_crc32(const void *data, size_t len) {
  const unsigned char *p = data;
  uint32_t crc = 0xFFFFFFFFu;
  for (size_t i = 0; i < len; i++) {
    crc ^= p[i];
    for (int b = 0; b < 8; b++) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
  }
  return ~crc;
}

void kx_journal_contents_free(kx_journal_contents *c) {
  if (!c) return;
  free(c->header);
  for (size_t i = 0; i < c->n; i++) free(c->records[i]);
  free(c->records);
  memset(c, 0, sizeof *c);
}

static int add_record(kx_journal_contents *c, const char *s, size_t len) {
  int rc = kx_reserve(&c->records, &c->cap, c->n, sizeof *c->records, 256, "reading a journal");
  if (rc) return rc;
  char *copy = kx_malloc(len + 1);
  if (!copy) return KX_ENOMEM;
  memcpy(copy, s, len);
  copy[len] = '\0';
  c->records[c->n++] = copy;
  return 0;
}

/* A record line is valid when it ends with '\n' and its checksum matches;
 * anything else (a torn tail, a damaged sector) is counted and skipped. */
static int parse(const char *buf, size_t len, kx_journal_contents *c) {
  memset(c, 0, sizeof *c);
  c->bytes = len;
  memcpy(c->start, buf, len < sizeof c->start - 1 ? len : sizeof c->start - 1);
  const char *end = NULL;
  for (const char *p = buf; p < buf + len;) {
    const char *nl = memchr(p, '\n', (size_t)(buf + len - p));
    if (!nl) break;
    if ((size_t)(nl + 1 - p) == sizeof header_end - 1 && !memcmp(p, header_end, sizeof header_end - 1)) {
      end = nl + 1;
      break;
    }
    p = nl + 1;
  }
  if (!end) return 0; /* no complete header: an empty or freshly torn journal */
  /* text only: a NUL would cut the header short when it is used as a string */
  if (memchr(buf, '\0', (size_t)(end - buf))) {
    c->damaged_header = 1;
    return 0;
  }
  c->header = kx_malloc((size_t)(end - buf) + 1);
  if (!c->header) return KX_ENOMEM;
  memcpy(c->header, buf, (size_t)(end - buf));
  c->header[end - buf] = '\0';
  for (const char *p = end; p < buf + len;) {
    const char *nl = memchr(p, '\n', (size_t)(buf + len - p));
    const char *line_end = nl ? nl : buf + len;
    const char *tab = NULL;
    for (const char *t = line_end; t > p; t--)
      if (t[-1] == '\t') {
        tab = t - 1;
        break;
      }
    /* our records are text: a NUL is damage (and would cut the payload short) */
    int ok = nl && tab && line_end - tab == 9 && !memchr(p, '\0', (size_t)(line_end - p));
    if (ok) {
      char hex[9];
      memcpy(hex, tab + 1, 8);
      hex[8] = '\0';
      char *e;
      unsigned long want = strtoul(hex, &e, 16);
      ok = *e == '\0' && (uint32_t)want == kx_crc32(p, (size_t)(tab - p));
    }
    if (ok) {
      int rc = add_record(c, p, (size_t)(tab - p));
      if (rc) return rc;
    } else {
      c->dropped++;
    }
    p = line_end + (nl ? 1 : 0);
  }
  return 0;
}

static int slurp_fd(int fd, const char *path, char **buf, size_t *len) {
  struct stat st;
  if (fstat(fd, &st) != 0) return kx_fail(KX_EIO, "cannot stat '%s': %s", path, strerror(errno));
  size_t size = (size_t)st.st_size;
  *buf = kx_malloc(size + 1);
  if (!*buf) return KX_ENOMEM;
  size_t got = 0;
  while (got < size) {
    ssize_t r = pread(fd, *buf + got, size - got, (off_t)got);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      free(*buf);
      return kx_fail(KX_EIO, "reading '%s': %s", path, strerror(errno));
    }
    if (r == 0) break;
    got += (size_t)r;
  }
  (*buf)[got] = '\0';
  *len = got;
  return 0;
}

int kx_journal_read(const char *path, kx_journal_contents *c) {
  memset(c, 0, sizeof *c);
  int fd = kx_input_open(path, "journal");
  if (fd < 0) return KX_EIO;
  char *buf;
  size_t len;
  int rc = slurp_fd(fd, path, &buf, &len);
  close(fd);
  if (rc) return rc;
  rc = parse(buf, len, c);
  free(buf);
  if (rc) kx_journal_contents_free(c);
  return rc;
}

static int write_all(int fd, const char *s, size_t len, const char *path) {
  while (len) {
    ssize_t w = write(fd, s, len);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) return kx_fail(KX_EIO, "writing '%s': %s", path, strerror(errno));
    s += w;
    len -= (size_t)w;
  }
  return 0;
}

int kx_journal_open(kx_journal *j, const char *path, int discard, kx_journal_contents *c) {
  memset(c, 0, sizeof *c);
  j->fd = -1;
  j->path = NULL;
  int fd = open(path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) return kx_fail(KX_EIO, "cannot open '%s': %s", path, strerror(errno));
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    int e = errno;
    close(fd);
    if (e == EWOULDBLOCK)
      return kx_fail(KX_EIO, "'%s' is in use by another running sweep (wait for it, or write "
                     "the results elsewhere)", path);
    return kx_fail(KX_EIO, "cannot lock '%s': %s", path, strerror(e));
  }
  if (discard && ftruncate(fd, 0) != 0) {
    int e = errno;
    close(fd);
    return kx_fail(KX_EIO, "cannot truncate '%s': %s", path, strerror(e));
  }
  char *buf;
  size_t len;
  int rc = slurp_fd(fd, path, &buf, &len);
  if (!rc) {
    rc = parse(buf, len, c);
    free(buf);
  }
  if (rc) {
    kx_journal_contents_free(c);
    close(fd);
    return rc;
  }
  j->path = kx_malloc(strlen(path) + 1);
  if (!j->path) {
    kx_journal_contents_free(c);
    close(fd);
    return KX_ENOMEM;
  }
  strcpy(j->path, path);
  j->fd = fd;
  return 0;
}

int kx_journal_start(kx_journal *j, const char *header) {
  if (ftruncate(j->fd, 0) != 0) return kx_fail(KX_EIO, "cannot truncate '%s': %s", j->path, strerror(errno));
  int rc = write_all(j->fd, header, strlen(header), j->path);
  if (!rc && fdatasync(j->fd) != 0) rc = kx_fail(KX_EIO, "syncing '%s': %s", j->path, strerror(errno));
  return rc;
}

static char *format_line(const char *payload, size_t *len) {
  size_t n = strlen(payload);
  char *line = kx_malloc(n + 11);
  if (!line) return NULL;
  memcpy(line, payload, n);
  snprintf(line + n, 11, "\t%08x\n", (unsigned)kx_crc32(payload, n));
  *len = n + 10;
  return line;
}

int kx_journal_repair(kx_journal *j, const kx_journal_contents *c) {
  /* Rewritten in place: a crash half-way loses only records that the next
   * run recomputes, never duplicates one. */
  int rc = kx_journal_start(j, c->header);
  for (size_t i = 0; i < c->n && !rc; i++) {
    size_t len;
    char *line = format_line(c->records[i], &len);
    rc = line ? write_all(j->fd, line, len, j->path) : KX_ENOMEM;
    free(line);
  }
  if (!rc && fdatasync(j->fd) != 0) rc = kx_fail(KX_EIO, "syncing '%s': %s", j->path, strerror(errno));
  return rc;
}

int kx_journal_write_record(kx_journal *j, const char *payload) {
  size_t len;
  char *line = format_line(payload, &len);
  if (!line) return KX_ENOMEM;
  /* one write() per line: O_APPEND places it whole at the end */
  int rc = write_all(j->fd, line, len, j->path);
  free(line);
  return rc;
}

int kx_journal_sync(kx_journal *j) {
  if (fdatasync(j->fd) != 0) return kx_fail(KX_EIO, "syncing '%s': %s", j->path, strerror(errno));
  return 0;
}

int kx_journal_append(kx_journal *j, const char *payload) {
  int rc = kx_journal_write_record(j, payload);
  return rc ? rc : kx_journal_sync(j);
}

void kx_journal_close(kx_journal *j) {
  if (j->fd >= 0) close(j->fd); /* also releases the lock */
  free(j->path);
  j->fd = -1;
  j->path = NULL;
}

void kx_journal_fwrite(FILE *fp, const char *header, char *const *records, size_t n) {
  fputs(header, fp);
  for (size_t i = 0; i < n; i++)
    fprintf(fp, "%s\t%08x\n", records[i], (unsigned)kx_crc32(records[i], strlen(records[i])));
}

int kx_journal_write_all(const char *path, const char *header, char *const *records, size_t n) {
  kx_atomic_file f;
  int rc = kx_atomic_open(&f, path);
  if (rc) return rc;
  errno = 0;
  kx_journal_fwrite(f.fp, header, records, n);
  if (fflush(f.fp) != 0 || ferror(f.fp)) {
    int e = errno ? errno : EIO;
    kx_atomic_abort(&f);
    return kx_fail(KX_EIO, "writing '%s' failed: %s", path, strerror(e));
  }
  return kx_atomic_commit(&f);
}
