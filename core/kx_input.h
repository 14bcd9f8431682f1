/* Files the user names as inputs: checkpoints, Q/K files, texts, results,
 * journals.
 *
 * Opening a named pipe for reading waits until some process opens it for
 * writing, and a character device (/dev/zero, a terminal) may never end;
 * libhdf5 and stdio open by path and would wait forever, with no CPU used
 * and nothing said.  So every input path is checked before any library
 * sees it: what exists must be a regular file (or a symbolic link to one).
 * kx_input_fopen opens without blocking and checks the file it opened, so
 * a path replaced by a pipe between a check and the open is refused too. */
#ifndef KX_INPUT_H
#define KX_INPUT_H

#include <stdio.h>

/* Refuses, with a message naming `what` ("checkpoint") and what to do, a
 * path that exists and is not a regular file.  A path that does not exist
 * or cannot be examined passes: the reader reports it in its own words. */
int kx_input_check(const char *path, const char *what);

/* Opens input `path` for reading ("rb"), refusing what is not a regular
 * file; NULL with the message "cannot open WHAT 'PATH': reason" on
 * failure. */
FILE *kx_input_fopen(const char *path, const char *what);

/* The same as a file descriptor (O_RDONLY | O_CLOEXEC); -1 on failure. */
int kx_input_open(const char *path, const char *what);

#endif
