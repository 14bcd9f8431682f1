/* The checks a fuzz harness makes beyond "no crash": a loader that accepts
 * an input must hand over what it promises, and one that refuses it must
 * leave a message.  A broken promise aborts, so libFuzzer saves the input
 * as a crash and the replay test fails on it. */
#ifndef KX_FUZZ_PROMISE_H
#define KX_FUZZ_PROMISE_H

#include <stddef.h>

/* Prints "<harness>: <what>" and aborts. */
__attribute__((noreturn)) void kx_fuzz_broken_promise(const char *harness, const char *what);

/* For a loader that refused the input: checks that it left a message and
 * clears it; returns 0 (the value LLVMFuzzerTestOneInput returns). */
int kx_fuzz_refused(const char *harness);

/* Breaks the promise `what` unless x[0..n) are all finite. */
void kx_fuzz_check_finite(const char *harness, const double *x, size_t n, const char *what);
void kx_fuzz_check_finite_f(const char *harness, const float *x, size_t n, const char *what);

#endif
