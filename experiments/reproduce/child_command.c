/* Child processes of the toolkit's own program (see child_command.h). */
#include "experiments/reproduce/child_command.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/kx_cli.h"
#include "core/kx_error.h"

/* In the child between fork and exec: only async-signal-safe calls. */
static void become_command(char *const argv[], int log_fd, int out_fd, pid_t parent) {
  /* the parent may have died before the death signal was armed */
  if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent) _exit(127);
  int null_fd = open("/dev/null", O_RDONLY);
  if (null_fd >= 0) dup2(null_fd, STDIN_FILENO);
  dup2(out_fd >= 0 ? out_fd : log_fd, STDOUT_FILENO);
  dup2(log_fd, STDERR_FILENO);
  /* argv[0] of the command line is the subcommand; kapprox's main wants the
   * program name before it */
  char *full[64];
  size_t n = 0;
  full[n++] = (char *)"kapprox";
  for (size_t i = 0; argv[i] && n < 63; i++) full[n++] = argv[i];
  full[n] = NULL;
  execv("/proc/self/exe", full);
  static const char msg[] = "kapprox: error: cannot run /proc/self/exe (is /proc mounted?)\n";
  ssize_t ignored = write(STDERR_FILENO, msg, sizeof msg - 1);
  (void)ignored;
  _exit(127);
}

int kx_child_start(kx_child *c, char *const argv[], const char *log_path, const char *stdout_path) {
  memset(c, 0, sizeof *c);
  c->pid = -1;
  int log_fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log_fd < 0) return kx_fail(KX_EIO, "cannot open the log '%s': %s", log_path, strerror(errno));
  int out_fd = -1;
  if (stdout_path) {
    if (kx_atomic_open(&c->capture, stdout_path)) {
      close(log_fd);
      return KX_EIO;
    }
    c->capturing = 1;
    fflush(c->capture.fp);
    out_fd = fileno(c->capture.fp);
  }
  fflush(NULL); /* nothing buffered may be written twice */
  pid_t parent = getpid();
  c->pid = fork();
  if (c->pid == 0) become_command(argv, log_fd, out_fd, parent);
  int fork_errno = errno;
  close(log_fd);
  if (c->pid < 0) {
    if (c->capturing) kx_atomic_abort(&c->capture);
    c->capturing = 0;
    return kx_fail(KX_EIO, "cannot start a child process: %s", strerror(fork_errno));
  }
  return 0;
}

int kx_child_poll(kx_child *c, double timeout_s, int *status) {
  double until = kx_now_seconds() + timeout_s;
  for (;;) {
    pid_t r = waitpid(c->pid, status, WNOHANG);
    if (r == c->pid) {
      c->pid = -1;
      return 1;
    }
    if (r < 0 && errno != EINTR) return -1;
    double left = until - kx_now_seconds();
    if (left <= 0) return 0;
    /* short naps: a finished command should not wait for the display */
    double nap = left < 0.05 ? left : 0.05;
    struct timespec ts = {0, (long)(nap * 1e9)};
    nanosleep(&ts, NULL);
  }
}

int kx_child_finish(kx_child *c, int keep_output) {
  if (!c->capturing) return 0;
  c->capturing = 0;
  if (keep_output) return kx_atomic_commit(&c->capture);
  kx_atomic_abort(&c->capture);
  return 0;
}

void kx_child_signal(kx_child *c, int sig) {
  if (c->pid > 0) kill(c->pid, sig);
}

void kx_child_describe_status(int status, char *buf, size_t size) {
  if (WIFEXITED(status)) snprintf(buf, size, "exit status %d", WEXITSTATUS(status));
  else if (WIFSIGNALED(status))
    snprintf(buf, size, "killed by signal %d (%s)", WTERMSIG(status), strsignal(WTERMSIG(status)));
  else snprintf(buf, size, "ended with wait status %d", status);
}

int kx_run_for_line(char *const argv[], char *line, size_t size) {
  int fds[2];
  if (size == 0 || pipe2(fds, O_CLOEXEC) != 0) return -1;
  fflush(NULL);
  pid_t pid = fork();
  if (pid == 0) {
    int null_fd = open("/dev/null", O_RDWR);
    if (null_fd >= 0) {
      dup2(null_fd, STDIN_FILENO);
      dup2(null_fd, STDERR_FILENO);
    }
    dup2(fds[1], STDOUT_FILENO);
    execvp(argv[0], argv);
    _exit(127);
  }
  close(fds[1]);
  if (pid < 0) {
    close(fds[0]);
    return -1;
  }
  size_t got = 0;
  ssize_t r;
  while (got + 1 < size && (r = read(fds[0], line + got, size - 1 - got)) != 0) {
    if (r < 0) {
      if (errno == EINTR) continue;
      break;
    }
    got += (size_t)r;
  }
  close(fds[0]); /* a long output ends with SIGPIPE in the child: fine */
  line[got] = '\0';
  line[strcspn(line, "\n")] = '\0';
  int status;
  while (waitpid(pid, &status, 0) < 0)
    if (errno != EINTR) return -1;
  return WIFEXITED(status) && WEXITSTATUS(status) == 0 && line[0] ? 0 : -1;
}
