/* Merging the shards of one sweep (kapprox sweep --shard i/N) into the
 * files a single run of the whole grid gives: results, summary, slopes and
 * a complete journal marked shard 1/1, refusing anything that would not
 * add up to exactly that (shards of different grids, a shard given twice,
 * missing or unfinished shards, a point present twice, damaged journals,
 * an OUT that is one of the shards). */
#ifndef KX_MERGE_H
#define KX_MERGE_H

#include <stddef.h>

/* 1 if `arg` is a summary or slopes file that a shard X.csv wrote beside
 * itself (X.summary.csv, X.slopes.csv; as a glob like part*.csv picks them
 * up): its own journal is absent and X.csv's is present. */
int kx_merge_is_side_file(const char *arg);

typedef struct {
  size_t points; /* records merged */
  size_t failed; /* of them, points recorded as failed (NaN, with a reason) */
} kx_merge_report;

/* Merges the n shards (each a shard's --out path, whose journal is
 * SHARD.journal, or the journal itself) into OUT, OUT's summary and slopes
 * and OUT.journal, replaced together (sweep_commit.h). */
int kx_merge_shards(const char *out, const char *const *shards, size_t n, kx_merge_report *rep);

#endif
