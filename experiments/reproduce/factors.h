/* kapprox reproduce factors: what makes the released DiJiang code better
 * than the paper's form (docs/dijiang-factors.md).
 *
 * The two forms differ in nine choices, the switches of the DiJiang kinds
 * (dec_dijiang_form.h).  The study converts Table 2's teacher to the paper
 * form (kind dijiang), to the released form (kind dijiang-released) and to
 * each end with one factor flipped, fine-tunes each for the same budget
 * (Table 2's 1/16 of the pre-training steps by default) with several seeds,
 * and writes OUTDIR/factors.{md,csv,tex}: per row the gap to the teacher
 * and the recall probe after fine-tuning (mean ± standard error over
 * seeds), and each flip's effect, the difference to its end point (paired
 * by seed: mean ± standard error of the per-seed differences).  Runs are
 * Table 2's (kx_repro_run, OUTDIR/runs/b<steps>/<label>-s<seed>/), so an
 * interrupted study resumes without redoing a finished run, and the end
 * points are the very runs of Table 2's dijiang and dijiang-released rows
 * in a shared folder.  A form that diverges (a non-finite loss) is a
 * result, shown as diverged, and the study goes on. */
#ifndef KX_FACTORS_H
#define KX_FACTORS_H

#include <stddef.h>
#include <stdint.h>

#include "experiments/reproduce/repro_runs.h"

#define KX_FACTORS_MAX_SEEDS 32

typedef struct {
  /* set by the caller */
  const char *outdir;
  const char *teacher_in; /* NULL: outdir/teacher.h5, trained if needed */
  const char *text;       /* NULL: the KJV corpus */
  int quick;
  double budget;    /* fine-tuning steps / pre-training steps */
  size_t seeds;     /* seeds 0 .. seeds-1 of every row */
  uint32_t factors; /* the factors to flip (bit f: factor f of dec_dijiang_form.h) */
  kx_repro_progress *pg;
  size_t shard_i, shard_n; /* shard i of N (repro_shard.h); N 0: every run, then the tables */
  int dry_run;             /* list the runs and their state; do nothing */
} kx_factors_study;

/* "features,normaliser" (the factors' names, dec_dijiang_form.h) or "all"
 * into a mask; refuses unknown and repeated names. */
int kx_factors_parse(const char *list, uint32_t *mask);

/* The runs of a study (2 end points + 2 per factor, times the seeds) and
 * their fine-tuning steps, for pre-training of `pretrain_steps` steps. */
void kx_factors_count(const kx_factors_study *s, uint64_t pretrain_steps, size_t *runs, uint64_t *steps);

/* The estimated wall time of the study on this machine now: the median
 * training step of the teacher's shape, measured for the paper form, the
 * released form and (when outdir has no finished teacher) softmax, times
 * the study's steps plus each run's evaluations
 * (KX_REPRO_RUN_OVERHEAD_STEPS).  Trains nothing. */
typedef struct {
  double step_s[3];    /* seconds per step: paper form, released form, softmax */
  size_t runs;
  uint64_t steps;      /* fine-tuning steps of all runs */
  uint64_t teacher_steps; /* pre-training still to do (0: a finished teacher) */
  double seconds;
} kx_factors_estimate;
int kx_factors_estimate_time(const kx_factors_study *s, kx_factors_estimate *e);

/* Trains (or reuses) the teacher, runs every row with every seed and writes
 * the tables.  A rerun keeps every finished run. */
int kx_factors_study_run(kx_factors_study *s);

#endif
