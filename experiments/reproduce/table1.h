/* kapprox reproduce table1 (experiments/reproduce/table1.c): the paper's Table 1 at this toolkit's scale.
 * The paper converts Pythia models of 70M to 2.8B parameters to DiJiang
 * with about 1/16 of the pre-training cost and compares quality and
 * inference throughput.  Here: softmax teachers of three sizes (head
 * dimension 64 throughout), each converted to the paper's DiJiang and to
 * the released code's form, fine-tuned with 1/16 of the teacher's
 * pre-training steps over several seeds, scored on the validation text,
 * and timed generating 2048 tokens (softmax with a KV cache against the
 * recurrent form).  Does the gap to the teacher stay small as the model
 * grows, and does the inference advantage grow with it?
 *
 * Every size lives in OUTDIR/<l#w#h#>/ as a kx_repro (repro_runs.h:
 * teacher.h5, runs/), plus inference/<length>/<kind>.txt; all written
 * atomically, so a killed run started again keeps every finished teacher,
 * run and measurement. */
#ifndef KX_TABLE1_H
#define KX_TABLE1_H

#include <stddef.h>

#define KX_TABLE1_MAX_KINDS 8
#define KX_TABLE1_MAX_SEEDS 32

typedef struct {
  const char *outdir;  /* NULL: table1 (--quick: table1-quick) */
  const char *teacher; /* a softmax checkpoint: the teacher of the size it has */
  const char *text;    /* NULL: the KJV corpus */
  const char *kinds;   /* kinds to convert to, comma-separated; NULL: dijiang,dijiang-code */
  const char *sizes;   /* widths of the sizes to run, comma-separated; NULL: all three */
  int quick;           /* three toy models, one seed, length 256 */
  int figures;         /* run gnuplot (the figures' data are written anyway) */
  int quiet;           /* no progress on stderr */
  size_t shard_i, shard_n; /* shard i of N (repro_shard.h); N 0: every run, then the tables */
  int dry_run;         /* list the runs (and each shard's) and their state; do nothing */
  double budget;       /* fine-tuning steps / pre-training steps */
  size_t seeds;        /* seeds per variant; 0: 3 (--quick: 1) */
  size_t length;       /* tokens generated for the throughput; 0: 2048 (--quick: 256) */
} kx_table1_opts;

/* The whole pipeline, resuming what an earlier run of the same options
 * left, with the output folder claimed (kx_repro_claimed); progress on
 * stderr unless quiet.  *usage_error = 1 when the
 * options were refused before anything ran (a kind, a size, the teacher's
 * shape). */
int kx_table1_run(const kx_table1_opts *o, int *usage_error);

#endif
