/* Publishing an output file atomically, for every writer of the toolkit.
 *
 * The contents go to "<dest>.tmp.<pid>" beside the destination; commit
 * flushes and fsyncs it, renames it over the destination and fsyncs the
 * directory, so after a crash or a kill the destination holds the old or the
 * new contents, never a mix, and what it names is on disk.
 *
 * Destinations that are not regular files are never replaced.  A character
 * device (/dev/null, a terminal) or a FIFO receives the output as a stream
 * (HDF5 writers, which need a seekable file, build it in memory first:
 * core/kx_h5.h).  A directory, a block device, a socket or a dangling symbolic link is
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
  FILE *fp;   /* the stream to write */
  char *path; /* destination as given (messages) */
  char *dest; /* destination with symbolic links resolved */
  char *tmp;  /* file holding the contents until commit (NULL for a stream) */
  int stream; /* destination is a character device or FIFO: no rename */
} kx_atomic_file;

/* Opens the stream f->fp (a FIFO: blocks until it has a reader). */
int kx_atomic_open(kx_atomic_file *f, const char *path);
/* Publishes (see above); on failure the destination is unchanged. */
int kx_atomic_commit(kx_atomic_file *f);
/* Discards the temporary file (what was already streamed stays streamed). */
void kx_atomic_abort(kx_atomic_file *f);

/* 1 if `path` is a character device or FIFO (written as a stream, never
 * replaced), 0 if it is missing or a regular file (or a link to one), and
 * -1 with a message if it cannot be an output at all. */
int kx_output_kind_is_stream(const char *path);

/* Whether `path` can be written, before a long computation: what open
 * would refuse, and for a regular destination that its temporary file can
 * be created (it is removed again; stale ones too).  A stream is not opened. */
int kx_atomic_check(const char *path);

/* Removes "<path>.tmp.<pid>" files beside `path` whose process is gone. */
void kx_atomic_remove_stale(const char *path);

#endif
