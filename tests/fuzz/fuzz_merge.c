/* Fuzz harness of `kapprox merge` (experiments/sweep/merge.c): the shard
 * journals it reads, the consistency checks between shards and the
 * results, summary and slopes CSVs it builds from their records.
 *
 * One input holds up to MAX_SHARDS shard journals separated by the byte
 * 0x1e (ASCII record separator, never part of a journal kapprox writes);
 * each becomes partN.csv.journal in the scratch directory and the harness
 * merges part1.csv ... into out.csv as `kapprox merge` does.  When merge
 * succeeds, what it wrote must read back: the results CSV through the
 * reader `plot` uses, the merged journal with no damaged line, marked
 * shard 1/1 and holding every record of the shards. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/kx_error.h"
#include "experiments/sweep/journal.h"
#include "experiments/eval/results.h"
#include "experiments/sweep/merge.h"
#include "experiments/sweep/sweep.h"
#include "tests/fuzz/fuzz_input.h"
#include "tests/fuzz/fuzz_promise.h"

enum { MAX_SHARDS = 6 };
static const uint8_t shard_separator = 0x1e;

__attribute__((noreturn)) static void broken_promise(const char *what) {
  kx_fuzz_broken_promise("fuzz_merge", what);
}

static void check_outputs(const char *dir, size_t n_records) {
  char path[512];
  snprintf(path, sizeof path, "%s/out.csv", dir);
  kx_results res = {0};
  if (kx_results_read_csv(path, &res))
    broken_promise("merge succeeded but its results CSV does not read back");
  kx_results_free(&res);
  snprintf(path, sizeof path, "%s/out.csv.journal", dir);
  kx_journal_contents c;
  if (kx_journal_read(path, &c)) broken_promise("merge succeeded but its journal does not read back");
  uint64_t fp;
  size_t points, si, sn;
  char *spec = NULL;
  if (!c.header || kx_sweep_parse_header(c.header, &fp, &points, &si, &sn, &spec))
    broken_promise("merge succeeded but its journal has no valid header");
  if (si != 1 || sn != 1) broken_promise("merge succeeded but its journal is not marked shard 1/1");
  if (c.dropped || c.n != n_records)
    broken_promise("merge succeeded but its journal lost or damaged records");
  free(spec);
  kx_journal_contents_free(&c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *dir = kx_fuzz_dir();
  static char paths[MAX_SHARDS][512];
  const char *shards[MAX_SHARDS];
  size_t n = 0;
  char out[512];
  snprintf(out, sizeof out, "%s/out.csv", dir);

  /* records the shards hold, counted as merge counts them */
  size_t n_records = 0;
  size_t start = 0;
  for (int s = 0; s < MAX_SHARDS && start <= size; s++) {
    const uint8_t *sep = size > start ? memchr(data + start, shard_separator, size - start) : NULL;
    size_t end = sep ? (size_t)(sep - data) : size;
    char name[32];
    snprintf(name, sizeof name, "part%d.csv.journal", s + 1);
    const char *path = kx_fuzz_write(name, data + start, end - start);
    kx_journal_contents c;
    if (!kx_journal_read(path, &c)) n_records += c.n;
    kx_journal_contents_free(&c);
    snprintf(paths[n], sizeof paths[n], "%s/part%d.csv", dir, s + 1);
    shards[n] = paths[n];
    n++;
    if (!sep) break;
    start = end + 1;
  }
  kx_error_clear();
  kx_merge_report rep;
  if (kx_merge_shards(out, shards, n, &rep) == 0) check_outputs(dir, n_records);
  kx_error_clear();
  return 0;
}
