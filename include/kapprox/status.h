/* libkapprox: status codes and error messages, shared by every public header.
 *
 * Library functions never print and never exit: a failure returns a
 * non-zero kx_status (or NULL) and leaves a human-readable message,
 * retrievable with kx_error_message(), that names what was wrong.  The
 * message is thread-local, so threads cannot clobber each other's reports.
 *
 * Call kx_init_library() once before anything else: it turns off GSL's
 * default error handler, which aborts the process. */
#ifndef KAPPROX_STATUS_H
#define KAPPROX_STATUS_H

#include <stddef.h>

/* Marks the names the shared library exports; every other symbol is hidden. */
#if defined(__GNUC__)
#define KX_API __attribute__((visibility("default")))
#else
#define KX_API
#endif

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
  KX_OK = 0,
  KX_EINVAL = 1,   /* impossible parameter or bad input values */
  KX_ENOMEM = 2,   /* allocation failed */
  KX_EIO = 3,      /* file missing, unreadable, truncated, foreign */
  KX_ERANGE = 4,   /* beyond a generator's or algorithm's range */
  KX_ENUM = 5,     /* numerical failure (non-finite result, no convergence) */
  KX_EBUSY = 6     /* claimed by another process */
} kx_status;

/* The message of the last failure on this thread ("unknown error" if none). */
KX_API const char *kx_error_message(void);
KX_API void kx_error_clear(void);

/* Turns off GSL's default error handler (which aborts) so GSL failures come
 * back as return codes.  Once, before any other call. */
KX_API void kx_init_library(void);

/* The library's version, "MAJOR.MINOR.PATCH". */
KX_API const char *kx_version(void);

#ifdef __cplusplus
}
#endif

#endif
