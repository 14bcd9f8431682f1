/* Fuzz harness of the sweep journal reader (experiments/sweep/journal.c) and of
 * the header and record parsers a resumed sweep applies to what it reads
 * (experiments/sweep/sweep_grid.c, sweep_records.c).
 *
 * Property checked besides "no crash": repairing a journal with damaged
 * lines, as a resumed sweep does, leaves a journal that reads back with
 * the same header and records and nothing damaged. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/kx_error.h"
#include "experiments/sweep/journal.h"
#include "experiments/sweep/sweep.h"
#include "tests/fuzz/fuzz_input.h"
#include "tests/fuzz/fuzz_promise.h"

__attribute__((noreturn)) static void broken_promise(const char *what) {
  kx_fuzz_broken_promise("fuzz_journal", what);
}

static void parse_header_and_records(const kx_journal_contents *c) {
  uint64_t fp;
  size_t points, si, sn;
  char *spec = NULL;
  if (c->header && !kx_sweep_parse_header(c->header, &fp, &points, &si, &sn, &spec)) {
    char diff[256];
    kx_sweep_spec_diff(spec, "journal", "", "empty", diff, sizeof diff);
  }
  kx_error_clear();
  free(spec);
  for (size_t i = 0; i < c->n; i++) {
    if (strchr(c->records[i], '\n')) broken_promise("a record holds a newline");
    (void)kx_sweep_record_point(c->records[i]);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *path = kx_fuzz_file(data, size);
  kx_journal_contents c;
  if (kx_journal_read(path, &c)) {
    kx_error_clear();
    return 0;
  }
  parse_header_and_records(&c);
  if (c.header && c.dropped) {
    kx_journal j;
    kx_journal_contents again, after;
    if (kx_journal_open(&j, path, 0, &again)) broken_promise("a journal that reads does not open");
    if (kx_journal_repair(&j, &again)) broken_promise("repairing the scratch journal failed");
    kx_journal_close(&j);
    if (kx_journal_read(path, &after)) broken_promise("a repaired journal does not read");
    if (after.dropped || !after.header || strcmp(after.header, c.header) || after.n != c.n)
      broken_promise("the repaired journal differs from what was read");
    for (size_t i = 0; i < c.n; i++)
      if (strcmp(after.records[i], c.records[i])) broken_promise("repair changed a record");
    kx_journal_contents_free(&again);
    kx_journal_contents_free(&after);
  }
  kx_journal_contents_free(&c);
  return 0;
}
