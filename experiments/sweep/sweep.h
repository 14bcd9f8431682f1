/* Ablation sweeps: the grid inputs x schemes x m x seeds, run point by
 * point with every finished point journalled at once (journal.h), so that
 * an interrupted sweep resumes where it stopped when the same command runs
 * again, and so that a grid can be cut into shards (--shard i/N) run on
 * different machines and merged into exactly the file one run gives.
 *
 * Inputs are heads: one per synthetic norm (label "synthetic:norm=X"), and
 * the selected layers and heads of each Q/K file.  Point p enumerates
 * (input, scheme, m, seed) with seed fastest:
 *   p = ((input * n_schemes + scheme) * n_m + m_index) * n_seeds + seed_index
 * and shard i/N (1 <= i <= N) holds the points with p mod N == i - 1
 * (round robin, so every shard gets its share of the expensive large m).
 *
 * The grid's fingerprint is a hash of a canonical text of everything that
 * changes a number (schemes, m, seeds, inputs including a hash of each
 * file's bytes, kernel, map options), so a journal from another grid is
 * recognised and refused instead of being silently mixed in. */
#ifndef KX_SWEEP_H
#define KX_SWEEP_H

#include <stddef.h>
#include <stdint.h>

#include "approx/fmap.h"
#include "experiments/eval/metrics.h"
#include "experiments/eval/results.h"
#include "experiments/eval/runner.h"
#include "experiments/eval/spec.h"

typedef struct {
  kx_spec grid;                    /* what to run (spec.h); synthetic inputs labelled by norm */
  /* how to run it */
  size_t shard_i, shard_n;         /* 1-based shard i of N (1/1: everything) */
  int progress;                    /* progress line on stderr */
  int force;                       /* discard a journal of another grid */
  unsigned throttle_ms;            /* test hook: pause after each point */
  /* derived by kx_sweep_prepare */
  kx_spec_input *inputs;
  size_t n_inputs;
  size_t n_points;                 /* whole grid, all shards */
  char *spec;                      /* canonical text of the grid */
  int input_error;                 /* kx_sweep_prepare failed on an input file (not the grid) */
  uint64_t fingerprint;
} kx_sweep;

typedef struct {
  size_t shard_points;  /* points of this shard */
  size_t resumed;       /* found in the journal */
  size_t computed;      /* computed by this run */
  size_t dropped;       /* damaged journal lines dropped */
  size_t failed;        /* points of the shard recorded as failed (NaN, with a reason) */
  int repaired;         /* final files of an interrupted replacement were rolled forward */
  int interrupted;      /* stopped by SIGINT/SIGTERM; rerun to resume */
  int conflict;         /* failed because OUT or its journal belongs to something else (another
                           grid or shard, another sweep running, not a journal) */
  double seconds;
} kx_sweep_report;

/* kx_spec_defaults with norm labels, shard 1/1. */
void kx_sweep_defaults(kx_sweep *s);
/* Validates the grid, lists its inputs (reading the files) and computes the
 * fingerprint.  Errors name what is wrong (empty grid, unknown scheme, ...). */
int kx_sweep_prepare(kx_sweep *s);
/* Frees what prepare derived (not the grid's schemes: kx_spec_free). */
void kx_sweep_free(kx_sweep *s);

/* "i/N" with 1 <= i <= N. */
int kx_parse_shard(const char *spec, size_t *i, size_t *n);

/* Output paths derived from the results path OUT: OUT.journal, and
 * OUT without ".csv" + ".summary.csv" / ".slopes.csv".  Static storage is
 * not used; free the three strings. */
int kx_sweep_paths(const char *out, char **journal, char **summary, char **slopes);

/* Runs (or resumes) the sweep; when every point of the shard is in the
 * journal, writes the sorted results CSV, summary and slopes atomically. */
int kx_sweep_run(const kx_sweep *s, const char *out, kx_sweep_report *rep);

/* Journal header text of a grid and shard. */
char *kx_sweep_header(uint64_t fingerprint, size_t n_points, size_t shard_i, size_t shard_n,
                      const char *spec);
int kx_sweep_parse_header(const char *header, uint64_t *fingerprint, size_t *n_points,
                          size_t *shard_i, size_t *shard_n, char **spec);
/* Names the first field in which two grid specs differ:
 * "m is '16,32' in <name_a> but '16,64' in <name_b>". */
void kx_sweep_spec_diff(const char *a, const char *name_a, const char *b, const char *name_b,
                        char *out, size_t cap);

/* A point's journal record:
 *   point,input,layer,head,kernel,scheme,m,seed,q_norm,k_norm,<value of each metric, nan if undefined>
 * and, for a failed point (kx_point_failure), every value nan and one
 * more field: the reason (commas made semicolons).  Newly allocated; NULL
 * with a message on failure. */
char *kx_sweep_format_record(size_t p, const kx_spec_input *in, const char *kernel, const char *scheme,
                             size_t m, uint64_t seed, double q_norm, double k_norm,
                             const double v[KX_N_METRICS], const char *failure);
/* Point index of a journal record (its first field); -1 if malformed. */
long long kx_sweep_record_point(const char *payload);
/* Sorts the records by point and writes the results CSV, summary and slopes
 * next to OUT (and, with a journal_header, OUT.journal holding the
 * records), replaced together (sweep_commit.h).  Shared by sweep and merge
 * so both give the same bytes. */
int kx_sweep_finish(const char *out, char **records, size_t n, const char *journal_header);
/* Refuses an OUT whose files exist but are not regular files, then
 * finishes or cleans up a replacement of OUT's files that a kill
 * interrupted (sweep_commit.h); *repaired says whether files changed. */
int kx_sweep_recover_outputs(const char *out, int *repaired);
/* Failed points among journal records. */
size_t kx_sweep_failed_records(char *const *records, size_t n);

#endif
