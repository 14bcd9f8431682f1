/* Promise checks of the fuzz harnesses (see fuzz_promise.h). */
#include "tests/fuzz/fuzz_promise.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/kx_error.h"

void kx_fuzz_broken_promise(const char *harness, const char *what) {
  fprintf(stderr, "%s: %s\n", harness, what);
  abort();
}

int kx_fuzz_refused(const char *harness) {
  if (!kx_error_message()[0])
    kx_fuzz_broken_promise(harness, "the loader refused the input but left no message");
  kx_error_clear();
  return 0;
}

void kx_fuzz_check_finite(const char *harness, const double *x, size_t n, const char *what) {
  for (size_t i = 0; i < n; i++)
    if (!isfinite(x[i])) kx_fuzz_broken_promise(harness, what);
}

void kx_fuzz_check_finite_f(const char *harness, const float *x, size_t n, const char *what) {
  for (size_t i = 0; i < n; i++)
    if (!isfinite(x[i])) kx_fuzz_broken_promise(harness, what);
}
