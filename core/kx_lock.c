/* Claims of output files and folders (design in kx_lock.h). */
#include "core/kx_lock.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/kx_atomic.h"
#include "core/kx_error.h"

#define RECORD_CAP 2048

/* What a lock file says about its holder. */
typedef struct {
  int present;
  long pid;
  unsigned long long start; /* clock ticks after boot; 0 unknown */
  char host[256], boot[64], since[64], command[512];
} holder;

static void read_line_file(const char *path, char *out, size_t cap) {
  out[0] = '\0';
  FILE *f = fopen(path, "r");
  if (!f) return;
  if (fgets(out, (int)cap, f)) out[strcspn(out, "\n")] = '\0';
  fclose(f);
}

/* Field 22 of /proc/PID/stat: when the process started, in clock ticks
 * after boot; with the pid it names one process for the whole boot.  0 if
 * unknown.  *state (may be NULL): field 3, the process state ('Z': a zombie,
 * '\0' if unknown). */
static unsigned long long proc_stat(long pid, char *state) {
  char path[64], buf[1024];
  if (state) *state = '\0';
  snprintf(path, sizeof path, "/proc/%ld/stat", pid);
  FILE *f = fopen(path, "r");
  if (!f) return 0;
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = '\0';
  const char *p = strrchr(buf, ')'); /* the command name may hold spaces */
  if (!p) return 0;
  if (state && p[1] == ' ') *state = p[2];
  unsigned long long v = 0;
  int field = 2;
  for (p++; *p && field < 22; p++)
    if (*p == ' ') field++;
  if (field == 22) sscanf(p, "%llu", &v);
  return v;
}

static void host_name(char *out, size_t cap) {
  if (gethostname(out, cap) != 0) snprintf(out, cap, "unknown");
  out[cap - 1] = '\0';
}

/* The command line of this process, words separated by spaces. */
static void command_line(char *out, size_t cap) {
  out[0] = '\0';
  FILE *f = fopen("/proc/self/cmdline", "r");
  if (!f) return;
  size_t n = fread(out, 1, cap - 1, f);
  fclose(f);
  for (size_t i = 0; i < n; i++)
    if (out[i] == '\0' || out[i] == '\n') out[i] = ' ';
  while (n && out[n - 1] == ' ') n--;
  out[n] = '\0';
}

static void self_record(char *buf, size_t cap) {
  char host[256], boot[64], since[64], command[512];
  host_name(host, sizeof host);
  read_line_file("/proc/sys/kernel/random/boot_id", boot, sizeof boot);
  command_line(command, sizeof command);
  time_t t = time(NULL);
  struct tm tm;
  gmtime_r(&t, &tm);
  strftime(since, sizeof since, "%Y-%m-%d %H:%M:%S UTC", &tm);
  long pid = (long)getpid();
  snprintf(buf, cap, "kapprox lock\npid %ld\nhost %s\nboot %s\nstart %llu\nsince %s\ncommand %s\n", pid, host,
           boot[0] ? boot : "unknown", proc_stat(pid, NULL), since, command[0] ? command : "unknown");
}

static void read_holder(int fd, holder *h) {
  memset(h, 0, sizeof *h);
  char buf[RECORD_CAP + 1];
  ssize_t n = pread(fd, buf, RECORD_CAP, 0);
  if (n <= 0) return;
  buf[n] = '\0';
  if (strncmp(buf, "kapprox lock\n", 13)) return;
  char *save = NULL;
  for (char *line = strtok_r(buf + 13, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
    char *value = strchr(line, ' ');
    if (!value) continue;
    *value++ = '\0';
    if (!strcmp(line, "pid")) h->pid = strtol(value, NULL, 10);
    else if (!strcmp(line, "start")) h->start = strtoull(value, NULL, 10);
    else if (!strcmp(line, "host")) snprintf(h->host, sizeof h->host, "%s", value);
    else if (!strcmp(line, "boot")) snprintf(h->boot, sizeof h->boot, "%s", value);
    else if (!strcmp(line, "since")) snprintf(h->since, sizeof h->since, "%s", value);
    else if (!strcmp(line, "command")) snprintf(h->command, sizeof h->command, "%s", value);
  }
  /* a pid that pid_t cannot hold names no process (and would make kill(2)
   * address a process group) */
  h->present = h->pid > 0 && h->pid <= INT_MAX && h->host[0];
}

static int same_host(const holder *h) {
  char host[256];
  host_name(host, sizeof host);
  return !strcmp(h->host, host);
}

/* The holder, on this host, still runs: its pid exists (EPERM: under
 * another user), in the same boot, with the recorded start time, and is not
 * a zombie.  A killed process whose parent died first stays a zombie until
 * init reaps it (a second or more in some containers), and kill(pid, 0)
 * still finds it. */
static int holder_alive(const holder *h) {
  char boot[64], state;
  read_line_file("/proc/sys/kernel/random/boot_id", boot, sizeof boot);
  if (boot[0] && h->boot[0] && strcmp(boot, h->boot)) return 0;
  if (kill((pid_t)h->pid, 0) != 0 && errno == ESRCH) return 0;
  unsigned long long now = proc_stat(h->pid, &state);
  if (state == 'Z' || state == 'X') return 0;
  return !(h->start && now && now != h->start);
}

static void describe(const holder *h, char *out, size_t cap) {
  snprintf(out, cap, "kapprox process %ld on host %s, since %s: %s", h->pid, h->host, h->since[0] ? h->since : "?",
           h->command[0] ? h->command : "?");
}

static int refuse(const holder *h, const char *path, const char *target) {
  char who[1024];
  if (!h->present)
    return kx_fail(KX_EBUSY,
                   "'%s' is being written by another kapprox process (its lock file '%s' names no holder yet); "
                   "wait for it to finish or write elsewhere",
                   target, path);
  describe(h, who, sizeof who);
  if (same_host(h) && h->pid == (long)getpid())
    return kx_fail(KX_EBUSY, "internal error: '%s' is claimed twice by this process", target);
  if (!same_host(h))
    return kx_fail(KX_EBUSY,
                   "'%s' is claimed by another machine's %s; wait for it to finish or write elsewhere (if "
                   "nothing runs there any more, remove the lock file '%s')",
                   target, who, path);
  return kx_fail(KX_EBUSY, "'%s' is being written by %s; wait for it to finish or write elsewhere", target, who);
}

/* flock errors that mean "this file system has no locks". */
static int no_locks(int e) { return e == ENOLCK || e == EOPNOTSUPP || e == ENOSYS || e == EINVAL; }

void kx_lock_init(kx_lock *l) {
  l->fd = -1;
  l->path = NULL;
  l->took_over[0] = '\0';
}

int kx_lock_path(kx_lock *l, const char *path, const char *target) {
  kx_lock_init(l);
  for (int attempt = 0; attempt < 16; attempt++) {
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK, 0644);
    if (fd < 0)
      return kx_fail(KX_EIO, "cannot create '%s' (its lock file '%s'): %s", target, path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
      close(fd);
      return kx_fail(KX_EIO, "the lock file '%s' of '%s' is not a regular file; remove it", path, target);
    }
    holder h;
    int locked = flock(fd, LOCK_EX | LOCK_NB) == 0, e = errno;
    if (!locked && (e == EWOULDBLOCK || e == EAGAIN)) {
      /* a holder that has just taken the flock writes its record next */
      for (int i = 0; i < 20; i++) {
        read_holder(fd, &h);
        if (h.present) break;
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
      }
      close(fd);
      return refuse(&h, path, target);
    }
    if (!locked && !no_locks(e)) {
      close(fd);
      return kx_fail(KX_EIO, "cannot lock '%s' (for '%s'): %s", path, target, strerror(e));
    }
    struct stat now;
    if (locked && (stat(path, &now) != 0 || now.st_ino != st.st_ino || now.st_dev != st.st_dev)) {
      close(fd); /* its holder released and removed it meanwhile: start again */
      continue;
    }
    read_holder(fd, &h);
    if (h.present && (!same_host(&h) || h.pid == (long)getpid() || holder_alive(&h))) {
      close(fd);
      return refuse(&h, path, target);
    }
    if (h.present) describe(&h, l->took_over, sizeof l->took_over);
    char rec[RECORD_CAP];
    self_record(rec, sizeof rec);
    size_t len = strlen(rec);
    if (ftruncate(fd, 0) != 0 || pwrite(fd, rec, len, 0) != (ssize_t)len) {
      int we = errno;
      close(fd);
      return kx_fail(KX_EIO, "cannot write the lock file '%s' of '%s': %s", path, target, strerror(we));
    }
    l->path = kx_malloc(strlen(path) + 1);
    if (!l->path) {
      close(fd);
      return KX_ENOMEM;
    }
    strcpy(l->path, path);
    l->fd = fd;
    return 0;
  }
  return kx_fail(KX_EBUSY, "cannot claim '%s': its lock file '%s' keeps being replaced by other processes", target,
                 path);
}

static int lock_with_suffix(kx_lock *l, const char *base, const char *suffix, const char *target) {
  size_t len = strlen(base) + strlen(suffix) + 1;
  char *path = kx_malloc(len);
  if (!path) return KX_ENOMEM;
  snprintf(path, len, "%s%s", base, suffix);
  int rc = kx_lock_path(l, path, target);
  free(path);
  return rc;
}

int kx_lock_file(kx_lock *l, const char *file) {
  kx_lock_init(l);
  int stream = kx_output_kind_is_stream(file);
  if (stream < 0) return KX_EIO;
  if (stream) return 0;
  struct stat lst;
  if (lstat(file, &lst) == 0 && S_ISLNK(lst.st_mode)) {
    char *dest = realpath(file, NULL);
    if (!dest) return kx_fail(KX_EIO, "cannot resolve the symbolic link '%s': %s", file, strerror(errno));
    int rc = lock_with_suffix(l, dest, ".lock", file);
    free(dest);
    return rc;
  }
  return lock_with_suffix(l, file, ".lock", file);
}

int kx_lock_dir(kx_lock *l, const char *dir) { return lock_with_suffix(l, dir, "/.lock", dir); }

void kx_lock_release(kx_lock *l) {
  if (l->fd >= 0) {
    struct stat a, b;
    if (fstat(l->fd, &a) == 0 && stat(l->path, &b) == 0 && a.st_ino == b.st_ino && a.st_dev == b.st_dev)
      unlink(l->path);
    close(l->fd);
  }
  free(l->path);
  kx_lock_init(l);
}
