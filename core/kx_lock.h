/* Exclusive locks on what a command writes: a checkpoint, an output
 * folder, one run inside a reproduction's folder.
 *
 * Two processes writing the same checkpoint or folder interleave their
 * files (one's half-finished run resumed by the other, training curves with
 * both processes' rows), and nothing they print says so.  So every writer
 * of a run folder or a checkpoint claims it first, for as long as it
 * writes, and a second writer is refused at once with a message naming the
 * first one.
 *
 * Design.  A claim is a lock file: "<file>.lock" beside a file,
 * "<folder>/.lock" inside a folder.  It is held in two ways at once:
 *   - an flock(2) lock on the open file, which the kernel drops when the
 *     process dies, however it dies (SIGKILL included), and which NFS
 *     (v4, or v3 with its lock manager) shares between hosts;
 *   - a record in the file: process id, host name, boot id, the process's
 *     start time, the date and the command line, so that a refusal can say
 *     who holds the claim, and so that a claim still means something on a
 *     file system whose locks are local to one host or missing.
 * Taking a claim: open (create) the lock file and try flock without
 * waiting.  Held: refused, naming the holder from its record.  Acquired:
 * the record, if any, belongs to a process that died without releasing
 * (flock is gone with it) and is taken over, unless it names another host
 * (its flock may not reach this one: refused, with the advice to remove
 * the file if nothing runs there any more), or names a process of this
 * host and boot that still runs with the recorded start time (it holds the
 * claim through a file system without locks).  Where flock is not
 * available at all (ENOLCK and the like), the record alone decides, with
 * a window of microseconds in which two processes starting together could
 * both pass.  Releasing removes the lock file, then closes it; a process
 * that opened the file just before the removal finds, once it holds the
 * flock, that the file it locked is no longer the one on the path, and
 * starts again.
 *
 * Scope.  A reproduction (kapprox reproduce table1/table2) claims its
 * output folder for the whole command and each run folder
 * (runs/b<steps>/<label>-s<seed>/) while it computes that run; training
 * claims its checkpoint (kx_dec_train).  Claims of different folders are
 * independent, so runs sharded over several processes, on one host or on
 * several sharing a network file system, can each claim the runs they
 * compute: a run already claimed comes back as KX_EBUSY, to be skipped.
 *
 * The lock file descriptor is close-on-exec; a forked child without exec
 * (the sandboxed readers of core/kx_sandbox.h) shares it and dies with its
 * parent. */
#ifndef KX_LOCK_H
#define KX_LOCK_H

typedef struct {
  int fd;            /* -1: not held */
  char *path;        /* the lock file */
  char took_over[1024]; /* "" or the dead holder whose claim was taken over */
} kx_lock;

/* Claims output file `file` ("<file>.lock").  A character device or FIFO
 * (written as a stream: core/kx_atomic.h) needs no claim: l is left
 * unheld and 0 is returned.  A symbolic link is claimed at its target.
 * Returns 0, KX_EBUSY with a message naming the holder, or KX_EIO. */
int kx_lock_file(kx_lock *l, const char *file);
/* Claims folder `dir` ("<dir>/.lock"); the folder must exist. */
int kx_lock_dir(kx_lock *l, const char *dir);
/* Claims the lock file `path` itself. */
int kx_lock_path(kx_lock *l, const char *path, const char *target);
/* Drops the claim (removes the lock file); harmless on an unheld lock. */
void kx_lock_release(kx_lock *l);
/* An unheld lock (so that release is always safe). */
void kx_lock_init(kx_lock *l);

#endif
