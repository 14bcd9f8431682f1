#include "experiments/plot/gnuplot.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/kx_atomic.h"
#include "core/kx_error.h"

#ifndef KX_PLOTS_SRCDIR
#define KX_PLOTS_SRCDIR ""
#endif

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

int kx_plot_scripts(const char *given, const char *probe, char *out, size_t cap) {
  const char *candidates[4] = {given, getenv("KAPPROX_PLOTS"), KX_PLOTS_SRCDIR, KX_DATADIR "/plots"};
  for (int i = given ? 0 : 1; i < 4; i++) {
    if (!candidates[i] || !*candidates[i]) continue;
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", candidates[i], probe);
    if (access(path, R_OK) == 0) {
      snprintf(out, cap, "%s", candidates[i]);
      return 0;
    }
    if (i == 0) return kx_fail(KX_EIO, "--scripts %s holds no %s", given, probe);
  }
  return kx_fail(KX_EIO, "cannot find the gnuplot scripts (plots/%s); set KAPPROX_PLOTS to the plots folder", probe);
}

int kx_plot_run(const char *scripts, const char *script, const char *datadir, const char *out_base) {
  static const char *const formats[2] = {"png", "svg"};
  size_t cap = 2 * strlen(scripts) + strlen(script) + strlen(datadir) + strlen(out_base) + 64;
  char *path = kx_malloc(cap), *vars = kx_malloc(cap), *out = kx_malloc(cap);
  int rc = path && vars && out ? 0 : KX_ENOMEM;
  if (!rc) {
    snprintf(path, cap, "%s/%s", scripts, script);
    snprintf(vars, cap, "datadir='%s'; scriptdir='%s'", datadir, scripts);
  }
  for (int f = 0; f < 2 && !rc; f++) {
    snprintf(out, cap, "%s.%s", out_base, formats[f]);
    rc = kx_gnuplot_figure(path, vars, formats[f], out);
  }
  free(path), free(vars), free(out);
  return rc;
}
