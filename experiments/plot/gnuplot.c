#include "experiments/plot/gnuplot.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/kx_atomic.h"
#include "core/kx_error.h"

static int run_gnuplot(const char *vars, const char *script) {
  fflush(NULL);
  pid_t pid = fork();
  if (pid < 0) return kx_fail(KX_EIO, "cannot start gnuplot: %s", strerror(errno));
  if (pid == 0) {
    execlp("gnuplot", "gnuplot", "-e", vars, script, (char *)NULL);
    fprintf(stderr, "kapprox: cannot run gnuplot: %s\n", strerror(errno));
    _exit(127);
  }
  int status;
  while (waitpid(pid, &status, 0) < 0)
    if (errno != EINTR) return kx_fail(KX_EIO, "waiting for gnuplot: %s", strerror(errno));
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    return kx_fail(KX_EIO, "gnuplot failed on %s%s", script,
                   WIFEXITED(status) && WEXITSTATUS(status) == 127 ? " (is gnuplot installed?)" : "");
  return 0;
}

int kx_gnuplot_figure(const char *script, const char *vars, const char *format, const char *out) {
  kx_atomic_file af;
  int rc = kx_atomic_open(&af, out);
  if (rc) return rc;
  /* a stream (a FIFO, /dev/null) has no temporary file: gnuplot writes it directly */
  const char *target = af.tmp ? af.tmp : af.dest;
  size_t cap = strlen(vars) + strlen(target) + strlen(format) + 32;
  char *all = kx_malloc(cap);
  if (!all) rc = KX_ENOMEM;
  else snprintf(all, cap, "%s; out='%s'; fmt='%s'", vars, target, format);
  if (!rc) rc = run_gnuplot(all, script);
  free(all);
  if (rc) {
    kx_fail_context(rc, "figure %s: ", out);
    kx_atomic_abort(&af);
    return rc;
  }
  return kx_atomic_commit(&af);
}
