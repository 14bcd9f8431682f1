/* Fuzz harness of the claim record reader (core/kx_lock.c): the input is
 * the content of a folder's lock file, as a killed process, another host
 * or a damaged disk may leave it.
 *
 * Properties checked besides "no crash": a claim is either taken (the lock
 * file then holds this process's record, and releasing removes it) or
 * refused with KX_EBUSY leaving the file as it was, or fails with KX_EIO;
 * never anything else. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/kx_error.h"
#include "core/kx_lock.h"
#include "tests/fuzz/fuzz_input.h"
#include "tests/fuzz/fuzz_promise.h"

__attribute__((noreturn)) static void broken_promise(const char *what) { kx_fuzz_broken_promise("fuzz_lock", what); }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size > 4096) return 0; /* a record is a few hundred bytes */
  char folder[512], lock[600];
  snprintf(folder, sizeof folder, "%s/claimed", kx_fuzz_dir());
  mkdir(folder, 0700);
  snprintf(lock, sizeof lock, "%s", kx_fuzz_write("claimed/.lock", data, size));
  kx_lock l;
  int rc = kx_lock_dir(&l, folder);
  static char after[8192];
  long n = kx_fuzz_read(lock, after, sizeof after);
  if (rc == 0) {
    char mine[64];
    int len = snprintf(mine, sizeof mine, "kapprox lock\npid %ld\n", (long)getpid());
    if (n < len || memcmp(after, mine, (size_t)len)) broken_promise("a taken claim does not hold this process's record");
    kx_lock_release(&l);
    if (access(lock, F_OK) == 0) broken_promise("a released claim left its lock file");
  } else if (rc == KX_EBUSY) {
    if (l.fd >= 0) broken_promise("a refused claim is held");
    if (n != (long)size || memcmp(after, data, size)) broken_promise("a refused claim changed the lock file");
    unlink(lock);
  } else if (rc == KX_EIO) {
    unlink(lock);
  } else {
    broken_promise("a claim failed with neither KX_EBUSY nor KX_EIO");
  }
  kx_error_clear();
  return 0;
}
