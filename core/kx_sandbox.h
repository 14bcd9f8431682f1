/* Reading untrusted files in a child process.
 *
 * libhdf5 itself can crash (SIGSEGV, heap overflow, abort) on a malformed
 * file, and no check of ours can run before its parser does.  So a loader is
 * split in two: a `reader` that parses the file and runs in a forked child,
 * sending what it read through a pipe, and a `receiver` that runs in the
 * caller's process and takes the values into its own buffers.  When the child
 * dies, the caller gets KX_EIO and the message
 *   "malformed HDF5 file 'PATH': the HDF5 library crashed reading it (...)"
 * instead of dying with it.  The child leaves no core file, and has 30 s of
 * CPU plus 10 s per GB of file (KX_SANDBOX_CPU_SECONDS replaces the 30): a
 * file that loops libhdf5 forever ends with "did not finish reading it".
 * It also has 120 s of wall-clock time plus 40 s per GB
 * (KX_SANDBOX_WALL_SECONDS replaces the 120), for a reader that waits
 * without computing (a file system that stopped answering), and it dies
 * with the caller (a killed caller leaves no reader behind).  Paths that
 * are not regular files are refused before any child starts
 * (core/kx_input.h).
 *
 * The reader sends with kx_channel_send and ends by returning a kx_status (its
 * message travels to the caller too); the receiver takes exactly the bytes the
 * reader sent, in order, with kx_channel_recv.  A receiver that stops early
 * (it found the values wrong) ends the child.
 *
 * Without isolation (kx_sandbox_set_isolation(0), or the environment
 * variable KX_SANDBOX=0) the reader runs in the caller's process into a
 * memory buffer that the receiver then reads: the same code paths, for
 * fuzzing harnesses (whose coverage must be in-process) and for measuring the
 * cost of the child. */
#ifndef KX_SANDBOX_H
#define KX_SANDBOX_H

#include <stddef.h>

typedef struct kx_channel kx_channel;

typedef int (*kx_sandbox_reader)(const void *arg, kx_channel *to_caller);
typedef int (*kx_sandbox_receiver)(void *arg, kx_channel *from_reader);

/* Runs reader(read_arg) on `path` isolated, then receiver(recv_arg).
 * Returns 0, the status of whichever side failed (with its message), or
 * KX_EIO when the reader died. */
int kx_sandbox_run(const char *path, kx_sandbox_reader reader, const void *read_arg,
                   kx_sandbox_receiver receiver, void *recv_arg);

int kx_channel_send(kx_channel *c, const void *data, size_t bytes);
int kx_channel_recv(kx_channel *c, void *data, size_t bytes);

/* 1 (default): readers run in a child process; 0: in-process. */
void kx_sandbox_set_isolation(int on);
int kx_sandbox_isolation(void);

#endif
