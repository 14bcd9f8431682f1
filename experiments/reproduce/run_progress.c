/* The whole run's progress display (see run_progress.h). */
#include "experiments/reproduce/run_progress.h"

#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "core/kx_cli.h"

/* not a terminal: at most one status line per this many seconds */
#define STATUS_EVERY_S 60.0

void kx_run_progress_init(kx_run_progress *p, int quiet, size_t n_stages) {
  memset(p, 0, sizeof *p);
  p->quiet = quiet;
  p->tty = !quiet && kx_stderr_is_tty();
  p->n_stages = n_stages;
  p->start = kx_now_seconds();
  p->last_status = p->start;
}

void kx_format_duration(double s, char *buf, size_t size) {
  if (s < 0) s = 0;
  long t = (long)(s + 0.5);
  if (t < 60) snprintf(buf, size, "%ld s", t);
  else if (t < 3600) snprintf(buf, size, "%ld:%02ld", t / 60, t % 60);
  else snprintf(buf, size, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
}

static int terminal_width(void) {
  struct winsize ws;
  if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col >= 20) return ws.ws_col;
  return 100;
}

static void clear_line(kx_run_progress *p) {
  if (p->line_drawn) fputs("\r\033[K", stderr);
  p->line_drawn = 0;
}

void kx_run_progress_status(kx_run_progress *p, size_t stage, const char *name, long done, long total,
                            double eta_s, int eta_at_least, const char *detail) {
  if (p->quiet) return;
  double now = kx_now_seconds();
  if (!p->tty && now - p->last_status < STATUS_EVERY_S) return;
  p->last_status = now;
  char elapsed[32], left[40], count[48] = "";
  kx_format_duration(now - p->start, elapsed, sizeof elapsed);
  if (eta_s >= 0) {
    char eta[32];
    kx_format_duration(eta_s, eta, sizeof eta);
    snprintf(left, sizeof left, eta_at_least ? "more than ~%s left" : "~%s left", eta);
  } else {
    snprintf(left, sizeof left, "time left unknown");
  }
  if (total > 0) snprintf(count, sizeof count, " %ld/%ld", done, total);
  char line[1024];
  int n = snprintf(line, sizeof line, "reproduce all [%zu/%zu] %s%s, %s elapsed, %s", stage, p->n_stages, name,
                   count, elapsed, left);
  if (detail && *detail && n > 0 && (size_t)n < sizeof line)
    snprintf(line + n, sizeof line - (size_t)n, " | %s", detail);
  if (p->tty) {
    /* one line: cut to the terminal so a redraw never wraps */
    int width = terminal_width() - 1;
    if ((int)strlen(line) > width) line[width] = '\0';
    clear_line(p);
    fputs(line, stderr);
    p->line_drawn = 1;
  } else {
    fprintf(stderr, "%s\n", line);
  }
  fflush(stderr);
}

void kx_run_progress_event(kx_run_progress *p, const char *fmt, ...) {
  if (p->quiet) return;
  clear_line(p);
  char elapsed[32];
  kx_format_duration(kx_now_seconds() - p->start, elapsed, sizeof elapsed);
  fprintf(stderr, "reproduce all %s: ", elapsed);
  va_list ap;
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
  fflush(stderr);
}

void kx_run_progress_end(kx_run_progress *p) {
  if (!p->quiet) clear_line(p);
  fflush(stderr);
}

void kx_log_last_line(const char *path, off_t from, char *line, size_t size) {
  line[0] = '\0';
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;
  off_t end = lseek(fd, 0, SEEK_END);
  char tail[1024];
  off_t start = end - (off_t)sizeof tail + 1;
  if (start < from) start = from;
  ssize_t got = end > start ? pread(fd, tail, (size_t)(end - start), start) : 0;
  close(fd);
  if (got <= 0) return;
  tail[got] = '\0';
  /* drop trailing line ends, then take what follows the last \n or \r */
  while (got > 0 && (tail[got - 1] == '\n' || tail[got - 1] == '\r')) tail[--got] = '\0';
  char *s = tail + got;
  while (s > tail && s[-1] != '\n' && s[-1] != '\r') s--;
  /* escape sequences of a command's own redraws are not ours to replay */
  size_t n = 0;
  for (; *s && n + 1 < size; s++) {
    if (*s == '\033') { /* CSI: ESC [ parameters final-letter */
      if (s[1] == '[') s++;
      while (s[1] && !((s[1] >= '@' && s[1] <= '~') && s[1] != '[')) s++;
      if (s[1]) s++;
      continue;
    }
    if ((unsigned char)*s >= ' ') line[n++] = *s;
  }
  line[n] = '\0';
}

int kx_parse_done_total(const char *line, long *done, long *total) {
  for (const char *s = strchr(line, '['); s; s = strchr(s + 1, '[')) {
    long d, t;
    char after;
    if (sscanf(s, "[%ld/%ld%c", &d, &t, &after) == 3 && (after == ']' || after == ',') && t > 0 && d >= 0 &&
        d <= t) {
      *done = d;
      *total = t;
      return 1;
    }
  }
  return 0;
}
