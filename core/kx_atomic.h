/* Publishing an output file atomically, for every writer of the toolkit.
 *
 * The contents go to "<dest>.tmp.<pid>" beside the destination; commit
 * flushes and fsyncs it, renames it over the destination and fsyncs the
 * directory, so after a crash or a kill the destination holds the old or the
 * new contents, never a mix, and what it names is on disk.
 *
 * Destinations that are not regular files are never replaced.  A character
 * device (/dev/null, a terminal) or a FIFO receives the output as a stream:
 * stdio writers write into it directly, path writers (HDF5 needs a seekable
 * file) write a temporary file under $TMPDIR that commit copies into it.
 * A directory, a block device, a socket or a dangling symbolic link is
 * refused with a message.  A symbolic link to a regular file is followed:
 * the link stays, its target is replaced.
 *
 * A writer killed before commit leaves "<dest>.tmp.<pid>" behind; the next
 * open of the same destination removes each such file whose process no
 * longer exists (a live process's temporary file is never touched). */
#ifndef KX_ATOMIC_H
#define KX_ATOMIC_H

#include <stdio.h>

typedef struct {
  FILE *fp;   /* kx_atomic_open: the stream to write */
  char *path; /* destination as given (messages) */
  char *dest; /* destination with symbolic links resolved */
  char *tmp;  /* file holding the contents until commit; path writers write it */
  int stream; /* destination is a character device or FIFO: no rename */
} kx_atomic_file;

/* Stdio writers: opens the stream f->fp. */
int kx_atomic_open(kx_atomic_file *f, const char *path);
/* Path writers (HDF5): creates the empty file f->tmp for the caller to
 * write (truncating it is fine) and close before commit.  Creating it at
 * once tells early whether the destination can be written at all. */
int kx_atomic_begin(kx_atomic_file *f, const char *path);
/* Publishes (see above); on failure the destination is unchanged. */
int kx_atomic_commit(kx_atomic_file *f);
/* Discards the temporary file (what was already streamed stays streamed). */
void kx_atomic_abort(kx_atomic_file *f);

/* 1 if `path` is a character device or FIFO (written as a stream, never
 * replaced), 0 if it is missing or a regular file (or a link to one), and
 * -1 with a message if it cannot be an output at all. */
int kx_output_kind_is_stream(const char *path);

/* Removes "<path>.tmp.<pid>" files beside `path` whose process is gone. */
void kx_atomic_remove_stale(const char *path);

#endif
