/* Sharded reproductions: the runs of kapprox reproduce table1, table2,
 * budget and factors split over N independent processes (--shard i/N),
 * which may run on several hosts sharing the output folder, then one
 * final command without --shard that writes the tables and figures.
 *
 * Every run (variant, seed, budget, size) has an index in the order the
 * unsharded command visits them; shard i of N does the runs with
 * index mod N == i - 1 (round robin, so every shard gets its share of
 * every kind and seed).  The list depends on the options only, not on what
 * is finished, so every shard of one configuration agrees on it, and the
 * first shard publishes it in OUTDIR/shards-<table>.txt (with N, the
 * teacher and the text): a shard of another configuration, or of another
 * N, finds a different list there and is refused before it writes
 * anything.
 *
 * A shard's driver runs in two passes over the unsharded command's loops:
 * a plan pass (KX_SHARD_PLAN: kx_repro_run only records the run folders;
 * no teacher is needed, the budget comes from the planned or existing
 * teacher's length) and the work pass (KX_SHARD_RUN: kx_repro_run does
 * this shard's runs, skips the others' and a run another live process has
 * claimed).  --dry-run is the plan pass alone, printed.  The teacher is
 * trained by whichever process gets its claim first; the others wait for
 * it (kx_repro_teacher). */
#ifndef KX_REPRO_SHARD_H
#define KX_REPRO_SHARD_H

#include <stddef.h>

enum { KX_SHARD_PLAN, KX_SHARD_RUN };

typedef struct kx_repro_shard {
  const char *table; /* "table2": the plan file's name and messages */
  const char *root;  /* the output folder; plan lines are relative to it */
  size_t i, n;       /* shard i of n (1-based); n = 0: unsharded (only with dry) */
  int dry, mode, said_header;
  size_t next;       /* index of the next run visited */
  char *plan;        /* PLAN: "config" lines, then one run folder a line */
  size_t plan_len, plan_cap;
  size_t runs, done, skipped; /* RUN: this shard's runs, finished now or before, left to a live claim */
} kx_repro_shard;

/* Parses "i/N" (1 <= i <= N) into sh->i, sh->n. */
int kx_repro_shard_parse(const char *spec, kx_repro_shard *sh);
/* 1 if index j is this shard's (every index when unsharded). */
int kx_repro_shard_mine(const kx_repro_shard *sh, size_t j);
/* Appends a line to the plan ("%s\n"). */
void kx_repro_shard_line(kx_repro_shard *sh, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The dry run's first line, once. */
void kx_repro_shard_header(kx_repro_shard *sh);
/* Records run folder `dir` (under sh->root) in the plan. */
void kx_repro_shard_record(kx_repro_shard *sh, const char *dir);
/* After the plan pass: the dry run prints the plan with each run's shard
 * and state; a shard compares it with OUTDIR/shards-<table>.txt if there is
 * one (refused if it differs).  Then the mode becomes RUN. */
int kx_repro_shard_checked(kx_repro_shard *sh);
/* Publishes the plan as OUTDIR/shards-<table>.txt unless it is there
 * (created exclusively: concurrent shards publish one, and compare). */
int kx_repro_shard_publish(kx_repro_shard *sh);
/* A shard's closing line (stderr unless quiet). */
void kx_repro_shard_report(const kx_repro_shard *sh, int quiet);
void kx_repro_shard_free(kx_repro_shard *sh);

#endif
