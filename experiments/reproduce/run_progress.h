/* One progress display for a run made of stages (kapprox reproduce all), on
 * stderr: stage k/N, its name, done/total when known, the run's elapsed time
 * and an estimate of the time left, and the running command's own last
 * progress line nested after it.  On a terminal it is one line redrawn in
 * place; otherwise a line per event and a status line at most once a minute,
 * so a log stays readable. */
#ifndef KX_RUN_PROGRESS_H
#define KX_RUN_PROGRESS_H

#include <stddef.h>
#include <sys/types.h>

typedef struct {
  int quiet;
  int tty;
  size_t n_stages;
  double start;         /* kx_now_seconds() at the start of the run */
  double last_status;   /* when the last status line was printed (not a terminal) */
  int line_drawn;       /* a live line is on the terminal */
} kx_run_progress;

void kx_run_progress_init(kx_run_progress *p, int quiet, size_t n_stages);

/* The live status.  done/total < 0: unknown; eta_s < 0: unknown; eta_at_least:
 * the running stage has outlasted its usual time, so eta_s is a lower bound. */
void kx_run_progress_status(kx_run_progress *p, size_t stage, const char *name, long done, long total,
                            double eta_s, int eta_at_least, const char *detail);

/* A line that stays (a stage started, finished, failed). */
void kx_run_progress_event(kx_run_progress *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Clears the live line before the run's last words. */
void kx_run_progress_end(kx_run_progress *p);

/* The last complete or partial line written to `path` from byte `from` on
 * (a command's progress line, with carriage-return redraws reduced to their
 * last state), or "" when there is none. */
void kx_log_last_line(const char *path, off_t from, char *line, size_t size);

/* done/total from a progress line's "[k/N]" or "[k/N, ..." (N > 0); 0 if it has none. */
int kx_parse_done_total(const char *line, long *done, long *total);

/* "1:02:03", "4:05" or "12 s" */
void kx_format_duration(double s, char *buf, size_t size);

#endif
