/* OUTDIR/index.md of kapprox reproduce all: every table and figure linked
 * (relative links) under the exact command that made it, with the date, the
 * machine and the toolkit's version. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "core/kx_atomic.h"
#include "core/kx_error.h"
#include "experiments/reproduce/child_command.h"
#include "experiments/reproduce/reproduce_all.h"

#ifndef KX_VERSION
#define KX_VERSION "unknown"
#endif

static int shell_safe(const char *s) {
  if (!*s) return 0;
  for (; *s; s++)
    if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./:,=+@%", *s)) return 0;
  return 1;
}

void ra_step_command(const ra_step *s, const char *outdir, char *buf, size_t size) {
  size_t n = (size_t)snprintf(buf, size, "kapprox");
  for (int i = 0; i < s->argc && n < size; i++) {
    const char *a = s->argv[i];
    if (shell_safe(a)) {
      n += (size_t)snprintf(buf + n, size - n, " %s", a);
      continue;
    }
    n += (size_t)snprintf(buf + n, size - n, " '");
    for (; *a && n < size; a++)
      n += (size_t)snprintf(buf + n, size - n, *a == '\'' ? "'\\''" : "%c", *a);
    if (n < size) n += (size_t)snprintf(buf + n, size - n, "'");
  }
  if (s->capture[0] && n < size) snprintf(buf + n, size - n, " > %s/%s", outdir, s->capture);
}

/* The CPU model as /proc/cpuinfo names it (x86: "model name"; some ARM
 * kernels only give "Hardware" or "Processor"). */
static void cpu_model(char *buf, size_t size) {
  snprintf(buf, size, "unknown (no model name in /proc/cpuinfo)");
  FILE *fp = fopen("/proc/cpuinfo", "r");
  if (!fp) return;
  char line[512];
  while (fgets(line, sizeof line, fp)) {
    char *colon = strchr(line, ':');
    if (!colon) continue;
    if (strncmp(line, "model name", 10) && strncmp(line, "Hardware", 8) && strncmp(line, "Processor", 9)) continue;
    char *v = colon + 1;
    while (*v == ' ' || *v == '\t') v++;
    v[strcspn(v, "\n")] = '\0';
    if (*v) {
      snprintf(buf, size, "%s", v);
      break;
    }
  }
  fclose(fp);
}

static double mem_total_gib(void) {
  FILE *fp = fopen("/proc/meminfo", "r");
  double kib = 0;
  if (!fp) return 0;
  char line[256];
  while (fgets(line, sizeof line, fp))
    if (sscanf(line, "MemTotal: %lf kB", &kib) == 1) break;
  fclose(fp);
  return kib / (1024.0 * 1024.0);
}

/* git describe of the source tree the program was built from when it is a
 * git checkout and git is there; else the version meson was given. */
static void toolkit_version(char *buf, size_t size) {
  char src[RA_PATH], dotgit[RA_PATH + 8], line[256];
  snprintf(src, sizeof src, "%s", KX_PLOTS_SRCDIR); /* <source root>/plots */
  char *slash = strrchr(src, '/');
  if (slash) *slash = '\0';
  snprintf(dotgit, sizeof dotgit, "%s/.git", src);
  struct stat st;
  char *git[] = {"git", "-C", src, "describe", "--always", "--dirty", NULL};
  if (stat(dotgit, &st) == 0 && kx_run_for_line(git, line, sizeof line) == 0)
    snprintf(buf, size, "%s (`git describe --always --dirty` of %s)", line, src);
  else
    snprintf(buf, size, "%s (meson project version; no git checkout or no git)", KX_VERSION);
}

static void utc_now(char *buf, size_t size) {
  time_t t = time(NULL);
  struct tm tm;
  gmtime_r(&t, &tm);
  strftime(buf, size, "%Y-%m-%d %H:%M:%S UTC", &tm);
}

static const char *state_word(const ra_stage *s) {
  switch (s->state) {
  case RA_DONE: return "done";
  case RA_FAILED: return "**failed**";
  case RA_INTERRUPTED: return "interrupted";
  case RA_DISABLED: return "not run";
  default: return "not run yet";
  }
}

static int is_figure(const char *path) {
  const char *dot = strrchr(path, '.');
  return dot && !strcmp(dot, ".png");
}

static void write_stage(FILE *fp, size_t k, const ra_stage *s, const char *outdir) {
  char dur[64] = "";
  if (s->state == RA_DONE) snprintf(dur, sizeof dur, " in %.1f s, finished %s", s->seconds, s->finished);
  fprintf(fp, "\n## %zu. %s\n\n%s%s", k, s->title, state_word(s), dur);
  if (s->reason[0]) fprintf(fp, s->state == RA_DONE ? " (%s)" : ": %s", s->reason);
  if (s->state == RA_FAILED || s->state == RA_INTERRUPTED)
    fprintf(fp, " (log: [logs/%s.log](logs/%s.log))", s->name, s->name);
  fprintf(fp, "\n");
  for (int i = 0; i < s->n_steps; i++) {
    const ra_step *st = &s->steps[i];
    char cmd[4096];
    ra_step_command(st, outdir, cmd, sizeof cmd);
    fprintf(fp, "\n```sh\n%s\n```\n\n", cmd);
    for (int o = 0; o < st->n_out; o++) {
      char full[2 * RA_PATH];
      snprintf(full, sizeof full, "%s/%s", outdir, st->out[o].path);
      if (access(full, F_OK) != 0) {
        fprintf(fp, "- %s: `%s` (not written)\n", st->out[o].label, st->out[o].path);
        continue;
      }
      fprintf(fp, "- %s: [%s](%s)\n", st->out[o].label, st->out[o].path, st->out[o].path);
      if (is_figure(st->out[o].path) && s->state == RA_DONE)
        fprintf(fp, "\n  ![%s](%s)\n\n", st->out[o].label, st->out[o].path);
    }
  }
}

int ra_write_index(const ra_run *run, const ra_stage *stages, size_t n) {
  char path[RA_PATH + 16];
  snprintf(path, sizeof path, "%s/index.md", run->outdir);
  kx_atomic_file af;
  if (kx_atomic_open(&af, path)) return KX_EIO;
  FILE *fp = af.fp;
  char date[64], cpu[256], version[2 * RA_PATH];
  utc_now(date, sizeof date);
  cpu_model(cpu, sizeof cpu);
  toolkit_version(version, sizeof version);
  struct utsname un;
  if (uname(&un) != 0) snprintf(un.sysname, sizeof un.sysname, "unknown"), un.release[0] = un.machine[0] = '\0';
  size_t done = 0, failed = 0;
  for (size_t i = 0; i < n; i++) {
    done += stages[i].state == RA_DONE;
    failed += stages[i].state == RA_FAILED;
  }
  fprintf(fp, "# kapprox: every table and figure%s\n\n", run->quick ? " (--quick sizes)" : "");
  fprintf(fp, "- made by: `%s`\n", run->command);
  fprintf(fp, "- index written: %s; %zu of %zu stages done%s%zu failed\n", date, done, n, failed ? ", **" : ", ",
          failed);
  if (failed) fprintf(fp, "  (failed stages: see below; the exit status was non-zero)\n");
  fprintf(fp, "- machine: %ld cores online, %s, %.1f GiB memory, %s %s %s\n", sysconf(_SC_NPROCESSORS_ONLN), cpu,
          mem_total_gib(), un.sysname, un.release, un.machine);
  fprintf(fp, "- toolkit: kapprox %s\n", version);
  fprintf(fp, "- commands ran in `%s` as `%s`, one child process each; every link below is relative to this file\n",
          run->cwd, run->program);
  if (run->quick)
    fprintf(fp, "\n`--quick`: every stage at small sizes (few seeds and m, a tiny teacher, short benchmarks) to\n"
                "check the pipeline in minutes; the numbers are not the README's measurements.\n");
  fprintf(fp, "\n| # | stage | state | seconds |\n|---:|---|---|---:|\n");
  for (size_t i = 0; i < n; i++) {
    fprintf(fp, "| %zu | %s", i + 1, stages[i].title);
    fprintf(fp, " | %s | ", state_word(&stages[i]));
    if (stages[i].state == RA_DONE) fprintf(fp, "%.1f |\n", stages[i].seconds);
    else fprintf(fp, "— |\n");
  }
  for (size_t i = 0; i < n; i++) write_stage(fp, i + 1, &stages[i], run->outdir);
  if (ferror(fp)) {
    kx_atomic_abort(&af);
    return kx_fail(KX_EIO, "writing '%s' failed: %s", path, strerror(errno ? errno : EIO));
  }
  return kx_atomic_commit(&af);
}
