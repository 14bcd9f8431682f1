/* kapprox reproduce all: the stages, their markers and the driver that
 * runs them (reproduce_all.h).
 *
 * Each stage's commands run as child processes of this same program
 * (child_command.h says why: a crash or an abort in one stage cannot take
 * the others down, and the index's commands are exactly what ran).  A
 * finished step and a finished stage leave markers written atomically
 * after their outputs are complete; a rerun skips what its markers vouch
 * for and reruns the rest, where the sweeps and Table 2 resume from their
 * own journals and checkpoints. */
#include "experiments/reproduce/reproduce_all.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/kx_atomic.h"
#include "core/kx_cli.h"
#include "core/kx_error.h"
#include "core/kx_fs.h"
#include "core/kx_lock.h"
#include "experiments/reproduce/child_command.h"

/* the experiment commands' "finished, but some points failed" (docs/commands.md) */
enum { EXIT_SOME_POINTS_FAILED = 3 };

/* ---- the stages ---------------------------------------------------------- */

static ra_step *new_step(ra_stage *st) { return &st->steps[st->n_steps++]; }

static void arg(ra_step *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void arg(ra_step *s, const char *fmt, ...) {
  char buf[2 * RA_PATH];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  if (s->argc < RA_MAX_ARGS) s->argv[s->argc++] = strdup(buf);
}

/* Literal arguments, up to a NULL. */
static void args(ra_step *s, ...) __attribute__((sentinel));
static void args(ra_step *s, ...) {
  va_list ap;
  va_start(ap, s);
  for (const char *a; (a = va_arg(ap, const char *));) arg(s, "%s", a);
  va_end(ap);
}

static void output(ra_step *s, const char *path, const char *label) {
  if (s->n_out >= RA_MAX_OUTPUTS) return;
  snprintf(s->out[s->n_out].path, RA_PATH, "%.*s", RA_PATH - 1, path);
  snprintf(s->out[s->n_out].label, sizeof s->out[0].label, "%s", label);
  s->n_out++;
}

/* BASE.png and BASE.svg, as every figure of the toolkit is drawn */
static void figure(ra_step *s, const char *base, const char *label) {
  char path[RA_PATH], text[160];
  for (int svg = 0; svg < 2; svg++) {
    snprintf(path, sizeof path, "%.500s.%s", base, svg ? "svg" : "png");
    snprintf(text, sizeof text, "%.140s (%s)", label, svg ? "SVG" : "PNG");
    output(s, path, text);
  }
}

static void capture(ra_step *s, const char *path, const char *label) {
  snprintf(s->capture, RA_PATH, "%s", path);
  output(s, path, label);
}

/* kapprox plot of `figures` into OUTDIR/figdir (from OUTDIR/results, if any) */
static ra_step *plot_step(ra_stage *st, const ra_plan_options *o, const char *results, const char *figdir,
                          const char *figures) {
  ra_step *s = new_step(st);
  arg(s, "plot");
  if (results) arg(s, "--results"), arg(s, "%s/%s", o->outdir, results);
  arg(s, "--outdir");
  arg(s, "%s/%s", o->outdir, figdir);
  args(s, "--figures", figures, NULL);
  return s;
}

/* --out OUTDIR/name/name.csv: that CSV, and the table the command prints,
 * kept as name/name.txt */
static void csv_and_table(ra_step *s, const ra_plan_options *o, const char *name, const char *csv_label,
                          const char *table_label) {
  char path[RA_PATH];
  arg(s, "--out");
  arg(s, "%s/%s/%s.csv", o->outdir, name, name);
  snprintf(path, sizeof path, "%s/%s.csv", name, name);
  output(s, path, csv_label);
  snprintf(path, sizeof path, "%s/%s.txt", name, name);
  capture(s, path, table_label);
}

static void plan_kernel(ra_stage *st, const ra_plan_options *o) {
  for (int latex = 0; latex < 2; latex++) {
    ra_step *s = new_step(st);
    args(s, "reproduce", "kernel", "--metrics", "kernel_rel_fro,attn_kl", NULL);
    if (o->quick) args(s, "--seeds", "0:2", NULL);
    if (latex) arg(s, "--latex");
    arg(s, "--out");
    arg(s, "%s/kernel/kernel.%s", o->outdir, latex ? "tex" : "md");
    output(s, latex ? "kernel/kernel.tex" : "kernel/kernel.md",
           latex ? "table (LaTeX)" : "table (Markdown): error at m = d and m = 4d");
  }
}

static void plan_compare(ra_stage *st, const ra_plan_options *o) {
  ra_step *s = new_step(st);
  arg(s, "compare");
  if (o->quick) args(s, "--m", "16:256", "--seeds", "0:2", NULL);
  csv_and_table(s, o, "compare", "every point (CSV)", "table: mean ± standard error over seeds");
}

/* a sweep into OUTDIR/name/name.csv: its three files and its printed slopes */
static void sweep_step(ra_step *s, const ra_plan_options *o, const char *name) {
  char path[RA_PATH];
  arg(s, "--out");
  arg(s, "%s/%s/%s.csv", o->outdir, name, name);
  static const char *const files[][2] = {{"", "every point (CSV)"},
                                         {".summary", "summary: mean, standard error, 95% interval (CSV)"},
                                         {".slopes", "convergence slopes of log error against log m (CSV)"}};
  for (int i = 0; i < 3; i++) {
    snprintf(path, sizeof path, "%s/%s%s.csv", name, name, files[i][0]);
    output(s, path, files[i][1]);
  }
  snprintf(path, sizeof path, "%s/slopes.txt", name);
  capture(s, path, "table: convergence slopes");
}

static void plan_sweep(ra_stage *st, const ra_plan_options *o) {
  ra_step *s = new_step(st);
  args(s, "sweep", "--norms", "0.5,1,1.5,2", NULL);
  if (o->quick) args(s, "--m", "8:256", "--seeds", "0:2", NULL);
  sweep_step(s, o, "sweep");
  s = plot_step(st, o, "sweep/sweep.csv", "figures", "err-vs-m,err-vs-norm");
  args(s, "--input", "all", NULL);
  static const char *norms[] = {"0.5", "1", "1.5", "2"};
  for (int i = 0; i < 4; i++) {
    char base[64], label[96];
    snprintf(base, sizeof base, "figures/err-vs-m-%d", i + 1);
    snprintf(label, sizeof label, "figure: error against m, norm %s", norms[i]);
    figure(s, base, label);
  }
  figure(s, "figures/err-vs-norm", "figure: error against the input norm");
}

static void plan_low_dim(ra_stage *st, const ra_plan_options *o) {
  ra_step *s = new_step(st);
  args(s, "sweep", "--dim", "4", "--norms", "0.5", "--m", o->quick ? "64:256:x2" : "64:1024", NULL);
  if (o->quick) args(s, "--seeds", "0:2", NULL);
  args(s, "--schemes", "prf,pff-mc,pff-sobol,pff-halton", NULL);
  sweep_step(s, o, "sweep-d4");
  s = plot_step(st, o, "sweep-d4/sweep-d4.csv", "sweep-d4/figures", "err-vs-m");
  figure(s, "sweep-d4/figures/err-vs-m", "figure: error against m at d = 4");
}

static void plan_features(ra_stage *st, const ra_plan_options *o) {
  ra_step *s = new_step(st);
  args(s, "bench-features", "--schemes", "wdcf,prf", "--d", "64,128", "--mult", o->quick ? "1,4" : "1,2,4",
       "--reps", o->quick ? "1" : "7", "--threads", "1", NULL);
  csv_and_table(s, o, "features", "vectors per second, GFLOP/s and share of the DGEMM rate (CSV)",
                "table: each map natively and as a dense OpenBLAS product");
}

static void plan_attn_maps(ra_stage *st, const ra_plan_options *o) {
  ra_step *s = new_step(st);
  args(s, "attn-maps", "--out", NULL);
  arg(s, "%s/attn-maps/maps.h5", o->outdir);
  arg(s, "--text");
  arg(s, "%s/attn-maps/text", o->outdir);
  output(s, "attn-maps/maps.h5", "maps: exact, each scheme, difference (HDF5)");
  output(s, "attn-maps/text/exact.txt", "exact map (gnuplot matrix text; the schemes' beside it)");
  s = plot_step(st, o, NULL, "figures", "attn-maps");
  figure(s, "figures/attn-maps", "figure: attention maps of one head");
}

static void plan_points(ra_stage *st, const ra_plan_options *o) {
  ra_step *s = plot_step(st, o, NULL, "figures", "points");
  figure(s, "figures/points", "figure: each sampler's points, two coordinates");
}

static void plan_figure4(ra_stage *st, const ra_plan_options *o) {
  ra_step *s = new_step(st);
  arg(s, "bench-inference");
  if (o->quick) args(s, "--lengths", "256,1024,4096", "--seconds", "0.1", NULL);
  csv_and_table(s, o, "figure4", "every (kind, length) point (CSV)", "table: ms per token, memory; crossover lengths");
  arg(s, "--figure");
  arg(s, "%s/figure4/figure4", o->outdir);
  figure(s, "figure4/figure4", "Figure 4");
}

static void plan_table(ra_stage *st, const ra_plan_options *o, const char *which) {
  ra_step *s = new_step(st);
  args(s, "reproduce", which, NULL);
  if (o->quick) arg(s, "--quick");
  if (o->text) args(s, "--text", o->text, NULL);
  /* Table 2's teacher is Table 1's middle size: 11-17 minutes not spent twice
   * (the --quick sizes differ) */
  if (!o->quick && !strcmp(which, "table1")) arg(s, "--teacher"), arg(s, "%s/table2/teacher.h5", o->outdir);
  arg(s, "--outdir");
  arg(s, "%s/%s", o->outdir, which);
  char path[64], label[64];
  static const char *const formats[][2] = {{"md", "Markdown"}, {"csv", "CSV"}, {"tex", "LaTeX"}};
  for (int i = 0; i < 3; i++) {
    snprintf(path, sizeof path, "%s/%s.%s", which, which, formats[i][0]);
    snprintf(label, sizeof label, "Table %c (%s)", which[5], formats[i][1]);
    output(s, path, label);
  }
  if (!strcmp(which, "table2")) {
    figure(s, "table2/fig2_curves", "Figure 2: validation loss during fine-tuning");
    figure(s, "table2/fig3_attention_maps", "Figure 3: attention maps after fine-tuning");
  } else {
    figure(s, "table1/table1_gap", "figure: gap to the teacher against model size");
    figure(s, "table1/table1_speedup", "figure: inference speed-up against model size");
  }
}

static void plan_table1(ra_stage *st, const ra_plan_options *o) { plan_table(st, o, "table1"); }
static void plan_table2(ra_stage *st, const ra_plan_options *o) { plan_table(st, o, "table2"); }

typedef struct {
  const char *name, *title;
  void (*plan)(ra_stage *, const ra_plan_options *);
  /* expected seconds on the 2-core machine (quick, full), for the time left */
  double quick_s, full_s;
  int enabled;
  const char *needs_full; /* a stage that must be done first in the full run */
} stage_kind;

static const stage_kind stage_kinds[] = {
    {"kernel", "Kernel tables: each scheme's error at m = d and m = 4d", plan_kernel, 1, 2, 1, NULL},
    {"compare", "Every scheme's kernel error and attention fidelity", plan_compare, 2, 15, 1, NULL},
    {"sweep", "Error against m and against the input norm (sweep + figures)", plan_sweep, 3, 30, 1, NULL},
    {"sweep-d4", "QMC convergence at d = 4", plan_low_dim, 1, 2, 1, NULL},
    {"features", "Feature-map throughput: DCT maps against the dense product", plan_features, 2, 30, 1, NULL},
    {"attn-maps", "Attention maps of one head", plan_attn_maps, 2, 2, 1, NULL},
    {"points", "Sampler points", plan_points, 1, 1, 1, NULL},
    {"figure4", "Figure 4: decoding cost and memory against context length", plan_figure4, 8, 900, 1, NULL},
    {"table2", "Table 2 with Figures 2 and 3", plan_table2, 15, 2700, 1, NULL},
    {"table1", "Table 1: teacher against DiJiang as the model grows", plan_table1, 40, 6000, 1, "table2"},
};
#define N_STAGES ((size_t)RA_N_STAGES)
_Static_assert(sizeof stage_kinds / sizeof stage_kinds[0] == RA_N_STAGES, "RA_N_STAGES counts stage_kinds");

/* ---- markers ------------------------------------------------------------- */

static uint64_t fnv1a(uint64_t h, const char *s) {
  for (; *s; s++) h = (h ^ (unsigned char)*s) * 0x100000001b3ULL;
  return (h ^ '\n') * 0x100000001b3ULL;
}

static uint64_t step_fingerprint(const ra_step *s, const char *outdir) {
  char line[4096];
  ra_step_command(s, outdir, line, sizeof line);
  return fnv1a(0xcbf29ce484222325ULL, line);
}

static uint64_t stage_fingerprint(const ra_stage *st, const char *outdir) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (int i = 0; i < st->n_steps; i++) {
    char line[4096];
    ra_step_command(&st->steps[i], outdir, line, sizeof line);
    h = fnv1a(h, line);
  }
  return h;
}

typedef struct {
  uint64_t fingerprint;
  double seconds;
  char finished[40];
  char note[512];
} marker;

static void marker_path(char *buf, size_t size, const char *outdir, const char *stage, int step, const char *what) {
  if (step < 0) snprintf(buf, size, "%s/stages/%s.%s", outdir, stage, what);
  else snprintf(buf, size, "%s/stages/%s.step%d.%s", outdir, stage, step + 1, what);
}

static int read_marker(const char *path, marker *m) {
  memset(m, 0, sizeof *m);
  FILE *fp = fopen(path, "r");
  if (!fp) return -1;
  char line[1024];
  int have = 0;
  while (fgets(line, sizeof line, fp)) {
    line[strcspn(line, "\n")] = '\0';
    unsigned long long fp64;
    if (sscanf(line, "fingerprint %16llx", &fp64) == 1) m->fingerprint = fp64, have = 1;
    else if (!strncmp(line, "seconds ", 8)) m->seconds = strtod(line + 8, NULL);
    else if (!strncmp(line, "finished ", 9)) snprintf(m->finished, sizeof m->finished, "%.*s", (int)sizeof m->finished - 1, line + 9);
    else if (!strncmp(line, "note ", 5)) snprintf(m->note, sizeof m->note, "%.*s", (int)sizeof m->note - 1, line + 5);
  }
  fclose(fp);
  return have ? 0 : -1;
}

static int write_marker(const char *path, const char *stage, const marker *m) {
  kx_atomic_file af;
  if (kx_atomic_open(&af, path)) return KX_EIO;
  fprintf(af.fp, "stage %s\nfingerprint %016llx\nfinished %s\nseconds %.3f\n", stage,
          (unsigned long long)m->fingerprint, m->finished, m->seconds);
  if (m->note[0]) fprintf(af.fp, "note %s\n", m->note);
  return kx_atomic_commit(&af);
}

static void utc_now(char *buf, size_t size) {
  time_t t = time(NULL);
  struct tm tm;
  gmtime_r(&t, &tm);
  strftime(buf, size, "%Y-%m-%d %H:%M:%S UTC", &tm);
}

/* ---- outputs ------------------------------------------------------------- */

/* 0 if every output of the step is there and not empty; else the first missing one in `why`. */
static int outputs_complete(const ra_step *s, const char *outdir, char *why, size_t size) {
  for (int i = 0; i < s->n_out; i++) {
    char full[2 * RA_PATH];
    struct stat st;
    snprintf(full, sizeof full, "%s/%s", outdir, s->out[i].path);
    if (stat(full, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size == 0) {
      snprintf(why, size, "%.400s is missing or empty", full);
      return -1;
    }
  }
  return 0;
}

/* the folder of every output (attn-maps' --text folder is one) */
static int make_output_dirs(const ra_stage *st, const char *outdir) {
  for (int i = 0; i < st->n_steps; i++) {
    const ra_step *s = &st->steps[i];
    for (int k = 0; k < s->n_out; k++) {
      char full[2 * RA_PATH];
      snprintf(full, sizeof full, "%s/%s", outdir, s->out[k].path);
      *strrchr(full, '/') = '\0';
      if (kx_mkdir_p(full)) return KX_EIO;
    }
  }
  return 0;
}

/* ---- running ------------------------------------------------------------- */

static volatile sig_atomic_t interrupted_by;

static void on_signal(int sig) { interrupted_by = sig; }

static double expected_seconds(const ra_driver *d, size_t i) {
  return d->run.quick ? stage_kinds[i].quick_s : stage_kinds[i].full_s;
}

/* Time left: the expected durations of what remains, at the pace this run has
 * had so far; within the running command, its own done/total when it says. */
static double estimate_left(const ra_driver *d, size_t current, double stage_elapsed, long done, long total,
                            int *at_least) {
  double pace = d->expected_done > 0 ? d->actual_done / d->expected_done : 1.0;
  double left;
  if (total > 0 && done > 0) left = stage_elapsed * (double)(total - done) / (double)done;
  else left = expected_seconds(d, current) * pace - stage_elapsed;
  *at_least = left < 0;
  if (left < 0) left = 0;
  for (size_t i = current + 1; i < N_STAGES; i++)
    if (d->stages[i].state == RA_PENDING || d->stages[i].state == RA_FAILED) left += expected_seconds(d, i) * pace;
  return left;
}

/* The last line of this step's log that names an error, else the exit status. */
static void failure_reason(const char *log, off_t from, int status, char *why, size_t size) {
  char desc[128];
  kx_child_describe_status(status, desc, sizeof desc);
  snprintf(why, size, "%s", desc);
  FILE *fp = fopen(log, "r");
  if (!fp) return;
  fseeko(fp, from, SEEK_SET);
  char line[1024];
  while (fgets(line, sizeof line, fp)) {
    line[strcspn(line, "\n")] = '\0';
    const char *e = strstr(line, "error:");
    if (!e) continue;
    e += strlen("error:");
    while (*e == ' ') e++;
    snprintf(why, size, "%s (%s)", e, desc);
  }
  fclose(fp);
}

static void log_header(const char *log, const char *command) {
  FILE *fp = fopen(log, "a");
  if (!fp) return;
  char date[64];
  utc_now(date, sizeof date);
  fprintf(fp, "== %s: %s\n", date, command);
  fclose(fp);
}

/* Runs one step; 0 done, 1 failed (why), 130 interrupted. */
static int run_step(ra_driver *d, size_t k, int i, char *why, size_t size) {
  ra_stage *st = &d->stages[k];
  ra_step *s = &st->steps[i];
  const char *outdir = d->run.outdir;
  char log[2 * RA_PATH], command[4096], captured[2 * RA_PATH];
  snprintf(log, sizeof log, "%s/logs/%s.log", outdir, st->name);
  snprintf(captured, sizeof captured, "%s/%s", outdir, s->capture);
  ra_step_command(s, outdir, command, sizeof command);
  log_header(log, command);
  struct stat lst;
  off_t from = stat(log, &lst) == 0 ? lst.st_size : 0;
  kx_child child;
  if (kx_child_start(&child, s->argv, log, s->capture[0] ? captured : NULL)) {
    snprintf(why, size, "%s", kx_error_message());
    return 1;
  }
  double t0 = kx_now_seconds();
  int status = 0, forwarded = 0, r;
  while ((r = kx_child_poll(&child, d->progress.tty ? 0.25 : 1.0, &status)) == 0) {
    if (interrupted_by && !forwarded) {
      kx_child_signal(&child, interrupted_by);
      forwarded = 1;
    }
    char detail[512];
    long done = -1, total = -1;
    kx_log_last_line(log, from, detail, sizeof detail);
    if (!kx_parse_done_total(detail, &done, &total) && st->n_steps > 1) done = i, total = st->n_steps;
    int at_least;
    double left = estimate_left(d, k, kx_now_seconds() - t0, done, total, &at_least);
    kx_run_progress_status(&d->progress, k + 1, st->name, done, total, left, at_least, detail);
  }
  if (r < 0) {
    kx_child_signal(&child, SIGKILL);
    kx_child_finish(&child, 0);
    snprintf(why, size, "lost track of the command's process: %s", strerror(errno));
    return 1;
  }
  int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  int ok = code == 0 || code == EXIT_SOME_POINTS_FAILED;
  if (kx_child_finish(&child, ok)) {
    snprintf(why, size, "%s", kx_error_message());
    return 1;
  }
  if (!ok) {
    if (interrupted_by || code == 130) return 130;
    failure_reason(log, from, status, why, size);
    return 1;
  }
  if (outputs_complete(s, outdir, why, size)) return 1;
  marker m = {.fingerprint = step_fingerprint(s, outdir), .seconds = kx_now_seconds() - t0};
  utc_now(m.finished, sizeof m.finished);
  if (code == EXIT_SOME_POINTS_FAILED) {
    snprintf(m.note, sizeof m.note, "some points failed: value NaN, reason in the CSV's failure column");
    d->some_points_failed = 1;
  }
  char path[2 * RA_PATH];
  marker_path(path, sizeof path, outdir, st->name, i, "done");
  if (write_marker(path, st->name, &m)) {
    snprintf(why, size, "%s", kx_error_message());
    return 1;
  }
  return 0;
}

/* A step or stage is done when its marker matches its commands and its outputs are all there. */
static int step_is_done(const ra_driver *d, const ra_stage *st, int i, marker *m) {
  char path[2 * RA_PATH], why[512];
  marker_path(path, sizeof path, d->run.outdir, st->name, i, "done");
  return read_marker(path, m) == 0 && m->fingerprint == step_fingerprint(&st->steps[i], d->run.outdir) &&
         outputs_complete(&st->steps[i], d->run.outdir, why, sizeof why) == 0;
}

static void load_state(ra_driver *d, size_t k) {
  ra_stage *st = &d->stages[k];
  char path[2 * RA_PATH];
  marker m;
  if (!stage_kinds[k].enabled) {
    st->state = RA_DISABLED;
    snprintf(st->reason, sizeof st->reason, "`kapprox reproduce %s` is not part of this build yet", st->name);
    return;
  }
  marker_path(path, sizeof path, d->run.outdir, st->name, -1, "done");
  int complete = read_marker(path, &m) == 0 && m.fingerprint == stage_fingerprint(st, d->run.outdir);
  for (int i = 0; complete && i < st->n_steps; i++) {
    marker sm;
    complete = step_is_done(d, st, i, &sm);
  }
  if (complete) {
    st->state = RA_DONE;
    st->seconds = m.seconds;
    snprintf(st->finished, sizeof st->finished, "%s", m.finished);
    snprintf(st->reason, sizeof st->reason, "%s", m.note);
    return;
  }
  st->state = RA_PENDING;
  marker_path(path, sizeof path, d->run.outdir, st->name, -1, "failed");
  if (read_marker(path, &m) == 0 && m.fingerprint == stage_fingerprint(st, d->run.outdir)) {
    st->state = RA_FAILED; /* by an earlier run; retried */
    snprintf(st->reason, sizeof st->reason, "%s", m.note);
  }
}

/* Runs the stage's unfinished steps; 0 done, 1 failed, 130 interrupted. */
static int run_stage(ra_driver *d, size_t k) {
  ra_stage *st = &d->stages[k];
  char why[512] = "", path[2 * RA_PATH];
  double seconds = 0, t0 = kx_now_seconds();
  char note[512] = "";
  kx_run_progress_event(&d->progress, "[%zu/%zu] %s: %s", k + 1, N_STAGES, st->name, st->title);
  int rc = make_output_dirs(st, d->run.outdir) ? 1 : 0;
  if (rc) snprintf(why, sizeof why, "%s", kx_error_message());
  for (int i = 0; i < st->n_steps && !rc; i++) {
    marker m;
    if (!step_is_done(d, st, i, &m)) {
      rc = run_step(d, k, i, why, sizeof why);
      if (rc) break;
      step_is_done(d, st, i, &m);
    }
    seconds += m.seconds;
    if (m.note[0]) snprintf(note, sizeof note, "%s", m.note);
  }
  marker m = {.fingerprint = stage_fingerprint(st, d->run.outdir), .seconds = seconds};
  utc_now(m.finished, sizeof m.finished);
  if (rc == 130) {
    st->state = RA_INTERRUPTED;
    snprintf(st->reason, sizeof st->reason, "interrupted; run the same command again to resume");
    return 130;
  }
  if (rc == 0) {
    snprintf(m.note, sizeof m.note, "%s", note);
    marker_path(path, sizeof path, d->run.outdir, st->name, -1, "done");
    if (write_marker(path, st->name, &m)) {
      rc = 1;
      snprintf(why, sizeof why, "%s", kx_error_message());
    }
  }
  if (rc == 0) {
    marker_path(path, sizeof path, d->run.outdir, st->name, -1, "failed");
    unlink(path);
    st->state = RA_DONE;
    st->seconds = seconds;
    snprintf(st->finished, sizeof st->finished, "%s", m.finished);
    snprintf(st->reason, sizeof st->reason, "%s", note);
    d->expected_done += expected_seconds(d, k);
    d->actual_done += kx_now_seconds() - t0;
    kx_run_progress_event(&d->progress, "[%zu/%zu] %s done in %.1f s", k + 1, N_STAGES, st->name,
                          kx_now_seconds() - t0);
    return 0;
  }
  st->state = RA_FAILED;
  snprintf(st->reason, sizeof st->reason, "%s", why);
  snprintf(m.note, sizeof m.note, "%s", why);
  marker_path(path, sizeof path, d->run.outdir, st->name, -1, "failed");
  write_marker(path, st->name, &m); /* the index says it anyway */
  kx_run_progress_event(&d->progress, "[%zu/%zu] %s FAILED: %s (log: %s/logs/%s.log)", k + 1, N_STAGES, st->name,
                        why, d->run.outdir, st->name);
  return 1;
}

void ra_free(ra_driver *d) {
  kx_lock_release(&d->lock);
  for (size_t k = 0; k < N_STAGES; k++)
    for (int i = 0; i < d->stages[k].n_steps; i++)
      for (int a = 0; a < d->stages[k].steps[i].argc; a++) free(d->stages[k].steps[i].argv[a]);
}

/* Table 1's full run starts from Table 2's finished teacher (a partial one is
 * a training checkpoint, not a teacher). */
static int missing_prerequisite(ra_driver *d, size_t k) {
  const char *needs = stage_kinds[k].needs_full;
  if (d->run.quick || !needs) return 0;
  for (size_t i = 0; i < N_STAGES; i++) {
    if (strcmp(stage_kinds[i].name, needs) || d->stages[i].state == RA_DONE) continue;
    ra_stage *st = &d->stages[k];
    st->state = RA_FAILED;
    snprintf(st->reason, sizeof st->reason, "needs stage %s (its teacher), which did not finish", needs);
    kx_run_progress_event(&d->progress, "[%zu/%zu] %s FAILED: %s", k + 1, N_STAGES, st->name, st->reason);
    return 1;
  }
  return 0;
}

int ra_run_stages(ra_driver *d) {
  struct sigaction sa = {0}, old_int, old_term, old_hup;
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, &old_int);
  sigaction(SIGTERM, &sa, &old_term);
  sigaction(SIGHUP, &sa, &old_hup);
  interrupted_by = 0;
  int any_failed = 0, stopped = 0;
  for (size_t k = 0; k < N_STAGES && !stopped; k++) {
    ra_stage *st = &d->stages[k];
    if (st->state == RA_DONE) {
      kx_run_progress_event(&d->progress, "[%zu/%zu] %s: done by an earlier run, kept", k + 1, N_STAGES, st->name);
      continue;
    }
    if (st->state == RA_DISABLED) continue;
    int rc = missing_prerequisite(d, k) ? 1 : run_stage(d, k);
    any_failed |= rc == 1;
    stopped = rc == 130 || interrupted_by;
    if (ra_write_index(&d->run, d->stages, N_STAGES)) {
      if (d->on_error) d->on_error(d->on_error_user, kx_error_message());
      any_failed = 1;
    }
  }
  sigaction(SIGINT, &old_int, NULL);
  sigaction(SIGTERM, &old_term, NULL);
  sigaction(SIGHUP, &old_hup, NULL);
  kx_run_progress_end(&d->progress);
  if (stopped) return 130;
  size_t done, failed;
  ra_count(d, &done, &failed);
  return any_failed || failed ? 1 : d->some_points_failed ? EXIT_SOME_POINTS_FAILED : 0;
}

void ra_count(const ra_driver *d, size_t *done, size_t *failed) {
  *done = *failed = 0;
  for (size_t k = 0; k < N_STAGES; k++) {
    *done += d->stages[k].state == RA_DONE;
    *failed += d->stages[k].state == RA_FAILED;
  }
}

int ra_init(ra_driver *d, const ra_plan_options *o) {
  memset(d, 0, sizeof *d);
  kx_lock_init(&d->lock);
  d->run.outdir = o->outdir;
  d->run.quick = o->quick;
  ssize_t len = readlink("/proc/self/exe", d->self, sizeof d->self - 1);
  d->self[len > 0 ? len : 0] = '\0';
  d->run.program = d->self;
  if (!getcwd(d->run.cwd, sizeof d->run.cwd)) snprintf(d->run.cwd, sizeof d->run.cwd, "(unknown)");
  for (size_t k = 0; k < N_STAGES; k++) {
    d->stages[k].name = stage_kinds[k].name;
    d->stages[k].title = stage_kinds[k].title;
    d->stages[k].state = stage_kinds[k].enabled ? RA_PENDING : RA_DISABLED;
    stage_kinds[k].plan(&d->stages[k], o);
  }
  return 0;
}

int ra_start(ra_driver *d, int quiet) {
  const char *outdir = d->run.outdir;
  if (!d->self[0]) return kx_fail(KX_EIO, "cannot find this program through /proc/self/exe (is /proc mounted?)");
  char dir[2 * RA_PATH];
  int rc = kx_mkdir_p(outdir);
  if (!rc) rc = kx_check_output_dir(outdir, "--outdir");
  /* one run at a time per folder (two would write the same journals),
   * claimed before anything is written into it */
  if (!rc) rc = kx_lock_dir(&d->lock, outdir);
  snprintf(dir, sizeof dir, "%s/logs", outdir);
  if (!rc) rc = kx_mkdir_p(dir);
  snprintf(dir, sizeof dir, "%s/stages", outdir);
  if (!rc) rc = kx_mkdir_p(dir);
  if (rc) return rc;
  for (size_t k = 0; k < N_STAGES; k++) load_state(d, k);
  kx_run_progress_init(&d->progress, quiet, N_STAGES);
  return ra_write_index(&d->run, d->stages, N_STAGES);
}

