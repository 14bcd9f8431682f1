/* What kapprox reproduce table1 and table2 share: a softmax teacher
 * pre-trained (or reused) under a directory, conversion + fine-tuning runs
 * of it that survive being killed, their scores, and the progress display.
 *
 * One kx_repro is one teacher and its runs.  Its directory holds
 *   teacher.h5                          the teacher (resumed if partial)
 *   runs/b<budget steps>/<label>-s<seed>/result.txt   a finished run
 * and a run's checkpoints while it is under way, so a rerun of the same
 * command keeps every finished teacher and run and resumes an interrupted
 * one exactly (kapprox train's resume).  Every file is written atomically.
 *
 * Claims (core/kx_lock.h): a command claims its output folder for as long
 * as it runs (kx_repro_claim), a run claims its run folder while it
 * computes (kx_repro_run; the teacher's checkpoint is claimed by its
 * training), so a second process writing into the same folder is refused
 * at once instead of interleaving its files with the first one's. */
#ifndef KX_REPRO_RUNS_H
#define KX_REPRO_RUNS_H

#include <stddef.h>
#include <stdint.h>

#include "core/kx_lock.h"
#include "experiments/model/dec_attn.h"
#include "experiments/model/dec_ckpt.h"
#include "experiments/model/dec_data.h"
#include "experiments/model/dec_model.h"
#include "experiments/model/dec_recall.h"
#include "experiments/reproduce/repro_shard.h"

#define KX_REPRO_PATH_CAP 4096

/* Progress on stderr: "<name> mm:ss [job/jobs, about m:ss left] message",
 * one line per message (or one rewritten line on a terminal).  Jobs
 * (teachers and runs) carry a cost in arbitrary units (e.g. steps x
 * parameters); time left = seconds per unit of the jobs done by this
 * invocation x units not yet done. */
typedef struct {
  const char *name;
  int quiet, tty, no_eta;
  double t0;
  size_t job, jobs;
  double units_total, units_done, fresh_units, fresh_seconds;
  double job_units, job_t0;
} kx_repro_progress;

void kx_repro_progress_init(kx_repro_progress *pg, const char *name, int quiet);
void kx_repro_say(const kx_repro_progress *pg, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Ends the rewritten terminal line. */
void kx_repro_say_done(const kx_repro_progress *pg);
void kx_repro_job_begin(kx_repro_progress *pg, double units);
/* fresh: the job did work now (not reused), so it counts in the time left. */
void kx_repro_job_end(kx_repro_progress *pg, int fresh);
/* Back to no job done, after a shard's plan pass visited every job; no
 * estimate of the time left from then on (a shard's jobs include the other
 * shards' runs and the waits for their teachers). */
void kx_repro_progress_restart(kx_repro_progress *pg);

/* The teacher's shape; 0 = kapprox train's default. */
typedef struct {
  size_t layers, heads, width, ctx;
  uint64_t batch, steps, save_every;
  const char *name;      /* in messages: "default", "--quick", "l4w512h8" */
  const char *run_name;  /* the run that wants it: "full", "--quick" */
} kx_repro_shape;

typedef struct {
  /* set by the caller */
  const char *dir;         /* where teacher.h5 and runs/ live */
  const char *text;        /* NULL: the KJV corpus */
  const char *teacher_in;  /* NULL: dir/teacher.h5, trained if needed */
  const char *table;       /* "Table 2": in messages */
  /* fine-tuning's peak learning rate; 0: kapprox finetune's default.
   * Converted runs at another rate live in runs/b<steps>-lr<rate>/, so
   * they never mix with the default's (rows from scratch do not use it) */
  double ft_lr;
  size_t eval_windows, kl_windows;
  kx_dec_recall_opts recall; /* the probe of every model (zero: its defaults) */
  /* 1: a run that diverges (a non-finite loss or gradient: KX_ENUM from
   * scoring, attention transfer or fine-tuning) is a result, not an error:
   * its folder gets diverged.txt (the stage and the message) and a
   * result.txt whose fields from that stage on are NaN, and kx_repro_run
   * returns 0.  0: the run's error is returned. */
  int keep_diverged;
  kx_repro_progress *pg;
  /* NULL: the command does every run and writes its tables; else a shard's
   * or a dry run's passes (repro_shard.h) */
  kx_repro_shard *shard;
  /* 1: kx_repro_teacher returns KX_EBUSY at once when another process
   * trains the teacher; 0: it waits for that process */
  int teacher_nowait;
  /* filled by kx_repro_teacher */
  kx_decoder teacher;
  kx_dec_vocab vocab;
  kx_dec_data data;
  char *text_path;
  uint64_t pretrain_steps, batch, budget_steps;
  double teacher_elapsed; /* NaN if unknown (a weights-only --teacher) */
  /* how the teacher was trained, when its checkpoint says (a complete
   * one with its optimizer): a softmax run from scratch with the same
   * options is the teacher's own training, and takes its checkpoint */
  kx_dec_train_state teacher_state;
  int teacher_state_known;
  char teacher_path[KX_REPRO_PATH_CAP];
  size_t teacher_params;
  int teacher_trained; /* 1 if this call pre-trained (some of) it */
} kx_repro;

/* Table 2's teacher (kapprox train's default shape, or the --quick one) and
 * evaluation (validation and KL windows), for every table that shares
 * Table 2's runs: a run two tables make is then the same run. */
void kx_repro_table2_setup(kx_repro *r, int quick, kx_repro_shape *shape);
/* The teacher's pre-training steps in that setup (quick or kapprox train's
 * default), for checking budgets before any work. */
uint64_t kx_repro_table2_pretrain_steps(int quick);
/* A run's evaluations (scores after conversion and after fine-tuning, the
 * curve's eight estimates) cost about as much as this many training steps:
 * the weight of a run beyond its steps in time estimates. */
#define KX_REPRO_RUN_OVERHEAD_STEPS 25

/* The median seconds of one training step (forward, backward, AdamW) of a
 * fresh model of configuration `cfg` on B sequences of cfg->ctx tokens of
 * `data`, after one untimed warm-up step, over `steps` steps (the median:
 * robust to a step slowed down by other processes; steps <= 7). */
int kx_repro_step_seconds(const kx_dec_config *cfg, const kx_dec_data *data, size_t B, int steps, double *seconds);

/* Trains dir/teacher.h5 (resuming a partial one) unless it is complete or
 * teacher_in gives one; loads it and the text; checks it has the shape
 * (unless teacher_in) and softmax attention.  The training is claimed
 * (dir/.teacher.lock) from the look at the file to the end of training:
 * when several processes (shards) want one teacher, the first trains it
 * and the others wait for the claim (saying who holds it, once a minute),
 * then find it finished; a holder that died leaves a claim taken over, and
 * its partial teacher resumed. */
int kx_repro_teacher(kx_repro *r, const kx_repro_shape *shape);
/* The plan pass's teacher (repro_shard.h): r->pretrain_steps and r->batch
 * from teacher_in, an existing dir/teacher.h5 or the shape, without
 * training or keeping anything; adds the teacher, text and score lines to
 * the plan, and prints the teacher's state in a dry run. */
int kx_repro_teacher_plan(kx_repro *r, const kx_repro_shape *shape);
/* 1 if this command writes the tables: neither a shard nor a plan pass. */
int kx_repro_final(const kx_repro *r);
/* budget_steps = round(budget x pre-training steps), at least 1. */
void kx_repro_set_budget(kx_repro *r, double budget);
void kx_repro_free(kx_repro *r);

typedef struct {
  char label[KX_DEC_LABEL_MAX + 8]; /* "performer", "hedgehog+AT", "performer-scratch", "performer+w16+sm0.3",
                                       "dijiang+softmax" */
  const kx_attn_kind *kind;
  int scratch, transfer;
  size_t window;           /* a sliding-window hybrid's window (kx_dec_config); 0: none */
  uint64_t softmax_layers; /* a layer hybrid's kept layers (kx_dec_config); 0: none */
  uint32_t dijiang_flips;  /* a DiJiang kind's form switches (kx_dec_config); 0: its preset */
} kx_repro_variant;

void kx_repro_variant_set(kx_repro_variant *v, const kx_attn_kind *k, int scratch, int transfer);
/* Gives v (a DiJiang kind) the form switches `flips`; its label gains them
 * right after the kind ("dijiang+softmax+noden"), as the runs' folders do. */
int kx_repro_variant_form(kx_repro_variant *v, uint32_t flips);
/* Makes v (converted, not from scratch) a hybrid: a sliding window of
 * `window` positions (0: none) in its converted layers, softmax kept in the
 * layers of `softmax_layers` (0: none); its label gains "+w<window>" and
 * "+sm<layers>" after the kind and its switches ("hedgehog+w16+sm0.3+AT").
 * Refuses a variant from scratch and a kind (or DiJiang form) without the
 * window hybrid. */
int kx_repro_variant_hybrid(kx_repro_variant *v, size_t window, uint64_t softmax_layers);
/* The attention spec a conversion takes: "KIND", "KIND+wN", with a DiJiang
 * kind's switches first ("dijiang+softmax+w16"). */
void kx_repro_variant_spec(const kx_repro_variant *v, char *out, size_t cap);
/* Refuses (message naming the label) a hybrid whose kept layers the
 * loaded teacher does not have, that keeps every layer, or whose window is
 * beyond the teacher's context. */
int kx_repro_variant_check(const kx_repro *r, const kx_repro_variant *v);
/* Steps of attention transfer (a quarter of the budget for +AT, rounded
 * up) and of fine-tuning (the rest): together the budget. */
uint64_t kx_repro_transfer_steps(const kx_repro *r, const kx_repro_variant *v);
uint64_t kx_repro_train_steps(const kx_repro *r, const kx_repro_variant *v);
/* Refuses (message naming the label) a +AT variant at a budget
 * (r->budget_steps) too small to hold both stages: one step of transfer
 * and at least one of fine-tuning. */
int kx_repro_budget_check(const kx_repro *r, const kx_repro_variant *v);

/* The fields of one run, in this order (kx_repro_summarise's index):
 * validation loss, accuracy, loss and attention KL after conversion, KL
 * after fine-tuning, wall time of conversion + transfer + fine-tuning;
 * then the recall probe (dec_recall.h) after conversion and after
 * fine-tuning: second-copy loss and accuracy, first-copy loss.  A result
 * written before the probe existed reads with NaN recall fields. */
enum {
  KX_R_LOSS, KX_R_ACC, KX_R_CONV, KX_R_KLC, KX_R_KLF, KX_R_WALL,
  KX_R_RCL_CONV, KX_R_RACC_CONV, KX_R_RFIRST_CONV, KX_R_RCL, KX_R_RACC, KX_R_RFIRST,
  KX_R_FIELDS
};
/* Fields every result file has had. */
#define KX_R_FIELDS_V1 (KX_R_WALL + 1)
typedef struct {
  double f[KX_R_FIELDS];
} kx_repro_result;

/* The text of a diverged run's diverged.txt into buf ("" if the run did not
 * diverge or is not there). */
void kx_repro_diverged(const kx_repro *r, const kx_repro_variant *v, uint64_t seed, char *buf, size_t cap);

/* dir/runs/b<budget steps>/<label>-s<seed>; a converted variant at a
 * fine-tuning rate of its own (r->ft_lr) in runs/b<steps>-lr<rate>/. */
void kx_repro_run_dir(const kx_repro *r, const kx_repro_variant *v, uint64_t seed, char *out, size_t cap);
/* Converts (unless scratch), transfers (if +AT), fine-tunes and scores
 * variant v with `seed`, or reads the finished run's result; *fresh = 1 if
 * it did work now.  Seed 0 of a kind with attention weights also leaves
 * map.txt (kx_repro_write_map).  The run folder is claimed while the run
 * computes; a run another process computes is waited for (the claim said
 * once a minute), except by a shard, which leaves it to that process.
 * With r->shard: the plan pass records the run folder, the work pass does
 * the shard's runs; a run not done now has NaN fields. */
int kx_repro_run(kx_repro *r, const kx_repro_variant *v, uint64_t seed, kx_repro_result *res, int *fresh);
/* Validation loss/accuracy on eval_windows windows and the attention KL
 * against the teacher on kl_windows (NaN when the kind has no attention
 * weights).  acc and kl may be NULL (kl: not computed). */
int kx_repro_score(kx_repro *r, kx_decoder *m, double *loss, double *acc, double *kl);
/* The recall probe (r->recall) of m into out: second-copy loss, accuracy,
 * first-copy loss, in the order of KX_R_RCL, KX_R_RACC, KX_R_RFIRST. */
int kx_repro_recall(kx_repro *r, kx_decoder *m, double out[3]);
/* The last block's attention averaged over heads on the first validation
 * window, as a gnuplot matrix file. */
int kx_repro_write_map(kx_repro *r, kx_decoder *m, const char *path);

/* Mean and standard error of field f over those of the n results whose
 * validation loss is finite: a run that diverged (keep_diverged) is a
 * result with a NaN loss, counted by the caller but never averaged.
 * Returns how many were averaged; mean NaN if none, se NaN below two. */
size_t kx_repro_summarise(const kx_repro_result *res, size_t n, int f, double *mean, double *se);

/* Runs run(arg) with output folder `dir` claimed: creates it (and its
 * parents) if missing, claims it (KX_EBUSY, with a message naming the
 * holder, if another process writes into it), runs, drops the claim, and
 * removes the folders it made again if they hold no file (a run refused
 * before its first file).  Returns the claim's or run's status.  A shard
 * (sh->n > 0) claims only its own share (dir/.shard-<table>-<i>of<N>.lock),
 * so that shards run side by side and two copies of one shard do not; a
 * dry run (sh->dry) claims and creates nothing. */
int kx_repro_claimed(const char *dir, const kx_repro_shard *sh, int (*run)(void *arg), void *arg);
/* Writes a small text file atomically. */
int kx_repro_write_text(const char *path, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
