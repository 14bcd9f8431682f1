/* kapprox reproduce table2 (experiments/reproduce/table2.c): the paper's central experiment at this
 * toolkit's scale.  Pre-train (or reuse) the softmax teacher, convert it to
 * every attention kind of the table, fine-tune each with the same budget
 * over several seeds, train each kind from scratch with that budget too,
 * and write the comparison as Markdown, CSV and LaTeX, with Figure 2
 * (validation loss against step) and Figure 3 (head-averaged attention
 * maps after fine-tuning).
 *
 * Every stage writes its output atomically under --outdir, and a finished
 * run leaves runs/<variant>-s<seed>/result.txt, so a killed run, started
 * again with the same command, redoes no finished variant and resumes an
 * interrupted fine-tuning exactly (kapprox train's resume); the table it
 * ends with is the uninterrupted one except for the timing columns. */
#ifndef KX_TABLE2_H
#define KX_TABLE2_H

#include <stddef.h>

#define KX_TABLE2_MAX_SEEDS 32

typedef struct {
  const char *outdir;  /* NULL: table2 (--quick: table2-quick) */
  const char *teacher; /* NULL: OUTDIR/teacher.h5, pre-trained if needed */
  const char *text;    /* NULL: the KJV corpus */
  int quick;           /* the tiny teacher, one seed */
  int figures;         /* run gnuplot (the figures' data are written anyway) */
  int quiet;           /* no progress on stderr */
  double budget;       /* fine-tuning steps / pre-training steps */
  size_t seeds;        /* seeds per variant; 0: 3 (--quick: 1) */
  size_t scratch_seeds; /* seeds of the rows trained from scratch; 0: no such rows */
  char *const *kinds;  /* kinds to convert to; n_kinds 0: every kind but softmax */
  size_t n_kinds;
  char *const *maps;   /* variants in Figure 3 besides the teacher */
  size_t n_maps;
  int maps_given;      /* 0: the default list, keeping the variants that exist; 1: each must exist */
  size_t shard_i, shard_n; /* shard i of N (repro_shard.h); N 0: every run, then the tables */
  int dry_run;         /* list the runs (and each shard's) and their state; do nothing */
} kx_table2_opts;

/* The whole pipeline, resuming what an earlier run of the same options
 * left, with the output folder claimed (kx_repro_claimed); progress on
 * stderr unless quiet.  *usage_error = 1 when the options were refused
 * before anything ran (--kinds, --maps). */
int kx_table2_run(const kx_table2_opts *o, int *usage_error);

#endif
