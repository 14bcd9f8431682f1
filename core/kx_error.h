/* Error reporting for the whole library.
 *
 * Library functions never print and never abort: they return a non-zero
 * kx_status and leave a human-readable message, retrievable with
 * kx_error_message(), that names what was wrong and, where possible, what to
 * do.  The message is thread-local so OpenMP workers cannot clobber each
 * other's reports. */
#ifndef KX_ERROR_H
#define KX_ERROR_H

#include <stddef.h>

/* kx_status, kx_error_message, kx_error_clear, kx_init_library: public */
#include "kapprox/status.h"

/* Records a printf-style message and returns `status` (so callers can write
 * `return kx_fail(KX_EINVAL, "m must be > 0, got %zu", m);`). */
kx_status kx_fail(kx_status status, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Prefixes the current message with context ("loading q.h5: " + old). */
kx_status kx_fail_context(kx_status status, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* malloc/calloc that record a message on failure. */
void *kx_malloc(size_t bytes);
void *kx_calloc(size_t count, size_t size);

/* Room for element n of a growing array: when n == *cap, *items (the
 * address of the array's pointer) is reallocated to twice the capacity
 * (`first` elements the first time).  0, or KX_ENOMEM with a message naming
 * `what`, the array left as it was. */
int kx_reserve(void *items, size_t *cap, size_t n, size_t elem_size, size_t first, const char *what);

/* Returns 1 if all n values are finite, else 0 and sets a message naming
 * `what` and the first bad index. */
int kx_all_finite(const double *x, size_t n, const char *what);
/* The same test without a message: 1 if all n values are finite. */
int kx_all_finite_quiet(const double *x, size_t n);

#endif
