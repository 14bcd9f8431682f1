/* Fuzz harness of the shard plan reader (experiments/reproduce/repro_shard.c):
 * the input is the content of OUTDIR/shards-TABLE.txt, as another
 * configuration's shards, a torn copy or a damaged disk may leave it, met
 * by a shard publishing its own plan.
 *
 * Properties checked besides "no crash": the shard goes on (0) exactly
 * when the file holds its own plan byte for byte; otherwise it is refused
 * with KX_EINVAL and a message naming the file, or fails with KX_EIO; and
 * the file is never changed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/kx_error.h"
#include "experiments/reproduce/repro_shard.h"
#include "tests/fuzz/fuzz_input.h"
#include "tests/fuzz/fuzz_promise.h"

__attribute__((noreturn)) static void broken_promise(const char *what) { kx_fuzz_broken_promise("fuzz_shard", what); }

/* The plan the corpus's "same" file holds. */
static const char own[] = "kapprox reproduce shards 1\nshards 2\nteacher teacher.h5\ntext (the KJV corpus)\n"
                          "scores 32 windows, attention KL 4 windows\nrun runs/b20/performer-s0\n"
                          "run runs/b20/performer+AT-s0\nrun runs/b20/softmax-scratch-s0\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size > 65536) return 0;
  const char *path = kx_fuzz_write("shards-table2.txt", data, size);
  kx_repro_shard sh = {.table = "table2", .root = kx_fuzz_dir(), .i = 1, .n = 2};
  kx_repro_shard_line(&sh, "teacher teacher.h5");
  kx_repro_shard_line(&sh, "text (the KJV corpus)");
  kx_repro_shard_line(&sh, "scores 32 windows, attention KL 4 windows");
  char run[64];
  static const char *const runs[] = {"performer-s0", "performer+AT-s0", "softmax-scratch-s0"};
  for (int k = 0; k < 3; k++) {
    snprintf(run, sizeof run, "%s/runs/b20/%s", kx_fuzz_dir(), runs[k]);
    kx_repro_shard_record(&sh, run);
  }
  int rc = kx_repro_shard_publish(&sh);
  static char after[65536 + 1];
  long n = kx_fuzz_read(path, after, sizeof after);
  if (n != (long)size || memcmp(after, data, size)) broken_promise("publishing changed an existing plan file");
  int equal = size == sizeof own - 1 && !memcmp(data, own, size);
  if (rc == 0 && !equal) broken_promise("a shard went on with another configuration's plan");
  if (rc != 0 && equal) broken_promise("a shard was refused its own plan");
  if (rc == KX_EINVAL && !strstr(kx_error_message(), "shards-table2.txt' holds the shards of another configuration"))
    broken_promise("a refusal does not name the plan file");
  if (rc != 0 && rc != KX_EINVAL && rc != KX_EIO) broken_promise("a refusal with neither KX_EINVAL nor KX_EIO");
  kx_repro_shard_free(&sh);
  unlink(path);
  kx_error_clear();
  return 0;
}
