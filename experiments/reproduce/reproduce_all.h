/* kapprox reproduce all: what a run is made of, the driver that runs it
 * (reproduce_all.c) and the index writer (run_index.c).
 *
 * A run is a list of stages (one table or figure family each); a stage is a
 * few steps, each one command of the toolkit with the files it makes.  Paths
 * of outputs are relative to the run's folder, so the index links them as
 * they are. */
#ifndef KX_REPRODUCE_ALL_H
#define KX_REPRODUCE_ALL_H

#include <stddef.h>

#include "core/kx_lock.h"
#include "experiments/reproduce/run_progress.h"

#define RA_MAX_ARGS 40
#define RA_MAX_STEPS 3
#define RA_MAX_OUTPUTS 24
#define RA_PATH 512

typedef struct {
  char path[RA_PATH];  /* relative to the run's folder */
  char label[160];
} ra_output;

typedef struct {
  char *argv[RA_MAX_ARGS + 1]; /* argv[0] the subcommand ("sweep"), NULL-terminated */
  int argc;
  char capture[RA_PATH];       /* "": none; else the file its standard output goes to */
  ra_output out[RA_MAX_OUTPUTS];
  int n_out;
} ra_step;

typedef enum { RA_PENDING, RA_DONE, RA_FAILED, RA_INTERRUPTED, RA_DISABLED } ra_state;

typedef struct {
  const char *name;   /* folder of its logs and marker */
  const char *title;
  ra_step steps[RA_MAX_STEPS];
  int n_steps;
  ra_state state;
  char reason[512];   /* failed or disabled: why; done: a note ("some points failed") */
  char finished[40];  /* UTC date the stage finished (from its marker) */
  double seconds;     /* its duration, summed over the runs that made it */
} ra_stage;

typedef struct {
  const char *outdir;
  int quick;
  const char *program;  /* the binary that ran the commands */
  char command[1024];   /* the reproduce all command line as given */
  char cwd[RA_PATH];    /* where the commands ran */
} ra_run;

/* ---- the driver ---- */

#define RA_N_STAGES 10

typedef struct {
  const char *outdir;
  const char *text; /* NULL: the KJV corpus */
  int quick;
} ra_plan_options;

typedef struct {
  ra_run run;
  ra_stage stages[RA_N_STAGES];
  kx_run_progress progress;
  double expected_done, actual_done; /* stages finished in this run: for the pace of the estimate */
  int some_points_failed;
  char self[RA_PATH]; /* this program ("" if /proc/self/exe cannot say) */
  kx_lock lock;       /* the claim of the run's folder (ra_start) */
  /* an error that does not stop the run (the index could not be written) */
  void (*on_error)(void *user, const char *message);
  void *on_error_user;
} ra_driver;

/* Plans every stage's commands and outputs (the driver's run.command is
 * left to the caller). */
int ra_init(ra_driver *d, const ra_plan_options *o);
/* Frees the plan and drops the folder's claim. */
void ra_free(ra_driver *d);

/* Creates OUTDIR, claims it (one run per folder, core/kx_lock.h), creates
 * logs/ and stages/, reads the stages' markers and writes the first index. */
int ra_start(ra_driver *d, int quiet);

/* Runs every stage not done yet, with the progress display and the index
 * rewritten after each.  0 every stage done, 1 a stage failed, 3 done but
 * some points of a sweep failed, 130 interrupted (SIGINT, SIGTERM, SIGHUP). */
int ra_run_stages(ra_driver *d);

/* Stages done and failed. */
void ra_count(const ra_driver *d, size_t *done, size_t *failed);

/* Writes OUTDIR/index.md atomically from the stages' states. */
int ra_write_index(const ra_run *run, const ra_stage *stages, size_t n);

/* The command of a step as a shell line: "kapprox sweep --out 'a b.csv' > OUTDIR/slopes.txt". */
void ra_step_command(const ra_step *s, const char *outdir, char *buf, size_t size);

#endif
