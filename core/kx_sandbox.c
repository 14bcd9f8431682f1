/* A reader in a forked child, a receiver in the caller (see kx_sandbox.h).
 *
 * The pipe carries frames: a header {tag, status, length} then `length`
 * bytes.  DATA frames hold what the reader sent; the END frame holds the
 * reader's status and message.  A pipe closed before END means the child
 * died, and waitpid says how. */
#include "core/kx_sandbox.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/kx_error.h"
#include "core/kx_input.h"

enum { FRAME_DATA = 1, FRAME_END = 2 };

typedef struct {
  uint32_t tag;
  int32_t status;
  uint64_t length;
} frame_header;

struct kx_channel {
  int isolated;
  /* isolated: the pipe and the child */
  int fd;
  pid_t child;
  int reaped, child_status;
  uint64_t frame_left; /* DATA bytes of the current frame not yet received */
  const char *path;
  rlim_t cpu_seconds;   /* the child's CPU limit */
  unsigned wall_seconds; /* and its wall-clock limit */
  pid_t caller;         /* the process that started the child */
  /* in-process: the reader's bytes */
  unsigned char *buf;
  size_t len, cap, pos;
};

/* -1: not decided yet (environment); atomic because sweep workers load
 * their inputs from several threads */
static int isolation = -1;

void kx_sandbox_set_isolation(int on) { __atomic_store_n(&isolation, on != 0, __ATOMIC_RELAXED); }

int kx_sandbox_isolation(void) {
  int on = __atomic_load_n(&isolation, __ATOMIC_RELAXED);
  if (on < 0) {
    const char *e = getenv("KX_SANDBOX");
    on = !(e && !strcmp(e, "0"));
    __atomic_store_n(&isolation, on, __ATOMIC_RELAXED);
  }
  return on;
}

static int write_full(int fd, const void *data, size_t bytes) {
  const unsigned char *p = data;
  while (bytes) {
    ssize_t w = write(fd, p, bytes);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return -1;
    p += w;
    bytes -= (size_t)w;
  }
  return 0;
}

/* 1: all bytes read; 0: end of file first; -1: read error */
static int read_full(int fd, void *data, size_t bytes) {
  unsigned char *p = data;
  while (bytes) {
    ssize_t r = read(fd, p, bytes);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return -1;
    if (r == 0) return 0;
    p += r;
    bytes -= (size_t)r;
  }
  return 1;
}

int kx_channel_send(kx_channel *c, const void *data, size_t bytes) {
  if (!c->isolated) {
    if (bytes > c->cap - c->len) {
      size_t cap = c->cap ? c->cap : 4096;
      while (cap - c->len < bytes) {
        if (cap > SIZE_MAX / 2) return kx_fail(KX_ENOMEM, "reader output too large");
        cap *= 2;
      }
      unsigned char *nb = realloc(c->buf, cap);
      if (!nb) return kx_fail(KX_ENOMEM, "out of memory buffering %zu bytes read from the file", cap);
      c->buf = nb;
      c->cap = cap;
    }
    memcpy(c->buf + c->len, data, bytes);
    c->len += bytes;
    return 0;
  }
  frame_header h = {FRAME_DATA, 0, bytes};
  if (write_full(c->fd, &h, sizeof h) || write_full(c->fd, data, bytes))
    return kx_fail(KX_EIO, "the reading process lost its caller");
  return 0;
}

static void reap(kx_channel *c) {
  if (c->reaped) return;
  while (waitpid(c->child, &c->child_status, 0) < 0 && errno == EINTR) {
  }
  c->reaped = 1;
}

static int child_died(kx_channel *c) {
  reap(c);
  int st = c->child_status;
  char how[96];
  if (WIFSIGNALED(st) && WTERMSIG(st) == SIGXCPU)
    return kx_fail(KX_EIO, "malformed HDF5 file '%s': the HDF5 library did not finish reading it within %llu s "
                   "of CPU (an endless loop on a damaged file?)", c->path, (unsigned long long)c->cpu_seconds);
  if (WIFSIGNALED(st) && WTERMSIG(st) == SIGALRM)
    return kx_fail(KX_EIO, "reading '%s' did not finish within %u s: the reading process waited without "
                   "computing (a file system that stopped answering?); copy the file to a local disk and give "
                   "that", c->path, c->wall_seconds);
  if (WIFSIGNALED(st)) snprintf(how, sizeof how, "%s", strsignal(WTERMSIG(st)));
  else snprintf(how, sizeof how, "exit status %d; a sanitizer report above would say where",
                WIFEXITED(st) ? WEXITSTATUS(st) : -1);
  return kx_fail(KX_EIO, "malformed HDF5 file '%s': the HDF5 library crashed reading it (%s); the file is "
                 "damaged or was not written by HDF5", c->path, how);
}

/* Reads the next frame header; a nonzero status in an END frame becomes
 * the caller's error with the reader's message. */
static int next_frame(kx_channel *c, frame_header *h) {
  int r = read_full(c->fd, h, sizeof *h);
  if (r == 0) return child_died(c);
  if (r < 0) return kx_fail(KX_EIO, "reading '%s': pipe from the reader failed: %s", c->path, strerror(errno));
  if (h->tag == FRAME_DATA) return 0;
  if (h->tag != FRAME_END || h->length > 4096) return child_died(c);
  char msg[4097];
  r = read_full(c->fd, msg, (size_t)h->length);
  if (r <= 0) return child_died(c);
  msg[h->length] = '\0';
  if (h->status) return kx_fail(h->status, "%s", msg);
  return 0;
}

int kx_channel_recv(kx_channel *c, void *data, size_t bytes) {
  if (!c->isolated) {
    if (bytes > c->len - c->pos)
      return kx_fail(KX_EIO, "internal error: the reader of '%s' sent fewer values than expected", c->path);
    memcpy(data, c->buf + c->pos, bytes);
    c->pos += bytes;
    return 0;
  }
  unsigned char *p = data;
  while (bytes) {
    if (c->frame_left == 0) {
      frame_header h;
      int rc = next_frame(c, &h);
      if (rc) return rc;
      if (h.tag == FRAME_END)
        return kx_fail(KX_EIO, "internal error: the reader of '%s' sent fewer values than expected", c->path);
      c->frame_left = h.length;
      continue;
    }
    size_t take = bytes < c->frame_left ? bytes : (size_t)c->frame_left;
    int r = read_full(c->fd, p, take);
    if (r == 0) return child_died(c);
    if (r < 0) return kx_fail(KX_EIO, "reading '%s': pipe from the reader failed: %s", c->path, strerror(errno));
    p += take;
    bytes -= take;
    c->frame_left -= take;
  }
  return 0;
}

static void child_main(kx_channel *c, kx_sandbox_reader reader, const void *arg) {
  /* dies with the caller (which may have died before this was armed) */
  if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != c->caller) _exit(1);
  /* a crash on a hostile file is expected: no core file for it; and a file
   * that sends libhdf5 into an endless loop (some do) ends too, as does a
   * read that waits forever */
  struct rlimit no_core = {0, 0}, cpu = {c->cpu_seconds, c->cpu_seconds + 5};
  setrlimit(RLIMIT_CORE, &no_core);
  setrlimit(RLIMIT_CPU, &cpu);
  signal(SIGALRM, SIG_DFL);
  alarm(c->wall_seconds);
  kx_error_clear();
  int rc = reader(arg, c);
  const char *msg = rc ? kx_error_message() : "";
  frame_header h = {FRAME_END, rc, strlen(msg)};
  if (h.length > 4096) h.length = 4096;
  int ok = !write_full(c->fd, &h, sizeof h) && !write_full(c->fd, msg, (size_t)h.length);
  /* _exit: no atexit handlers or stdio flushes of the caller's state */
  _exit(ok ? 0 : 1);
}

int kx_sandbox_run(const char *path, kx_sandbox_reader reader, const void *read_arg,
                   kx_sandbox_receiver receiver, void *recv_arg) {
  if (kx_input_check(path, "input file")) return KX_EIO;
  kx_channel c;
  memset(&c, 0, sizeof c);
  c.path = path;
  c.isolated = kx_sandbox_isolation();
  if (!c.isolated) {
    int rc = reader(read_arg, &c);
    if (!rc) rc = receiver(recv_arg, &c);
    if (!rc && c.pos != c.len)
      rc = kx_fail(KX_EIO, "internal error: the reader of '%s' sent more values than expected", path);
    free(c.buf);
    return rc;
  }
  /* CPU for the child: 30 s, plus 10 s per GB of file (HDF5 reads, even
   * decompressing, far faster); KX_SANDBOX_CPU_SECONDS replaces the 30 */
  const char *base = getenv("KX_SANDBOX_CPU_SECONDS");
  struct stat st;
  c.cpu_seconds = (rlim_t)(base && atoi(base) > 0 ? atoi(base) : 30);
  if (stat(path, &st) == 0) c.cpu_seconds += (rlim_t)(st.st_size / 100000000);
  /* wall clock: 120 s, plus 40 s per GB (a disk or network share read at
   * 25 MB/s); KX_SANDBOX_WALL_SECONDS replaces the 120 */
  const char *wall = getenv("KX_SANDBOX_WALL_SECONDS");
  c.wall_seconds = (unsigned)(wall && atoi(wall) > 0 ? atoi(wall) : 120);
  if (stat(path, &st) == 0) c.wall_seconds += (unsigned)(st.st_size / 25000000);
  c.caller = getpid();
  int fds[2];
  if (pipe(fds)) return kx_fail(KX_EIO, "cannot read '%s': no pipe for its reader: %s", path, strerror(errno));
  c.child = fork();
  if (c.child < 0) {
    int e = errno;
    close(fds[0]);
    close(fds[1]);
    return kx_fail(KX_EIO, "cannot read '%s': no process for its reader: %s", path, strerror(e));
  }
  if (c.child == 0) {
    close(fds[0]);
    c.fd = fds[1];
    child_main(&c, reader, read_arg);
  }
  close(fds[1]);
  c.fd = fds[0];
  int rc = receiver(recv_arg, &c);
  if (!rc) {
    frame_header h;
    if (c.frame_left) rc = kx_fail(KX_EIO, "internal error: the reader of '%s' sent more values than expected", path);
    else if (!(rc = next_frame(&c, &h)) && h.tag != FRAME_END)
      rc = kx_fail(KX_EIO, "internal error: the reader of '%s' sent more values than expected", path);
  }
  /* a receiver that stopped early leaves the child blocked on the pipe */
  if (!c.reaped) {
    if (rc) kill(c.child, SIGKILL);
    reap(&c);
  }
  close(c.fd);
  return rc;
}
