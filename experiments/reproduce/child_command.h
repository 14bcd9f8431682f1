/* Running one of the toolkit's own commands as a child process of the same
 * program (/proc/self/exe), for drivers that chain commands (kapprox
 * reproduce all).
 *
 * A child, not a call: a command that crashes, aborts or leaks takes only
 * itself down, every command starts with fresh process-wide state (OpenMP
 * and OpenBLAS thread counts, signal handlers, getopt, the error message),
 * and what runs is exactly the command line a user could type.  The child
 * dies with its parent (PR_SET_PDEATHSIG), so a driver killed by SIGKILL
 * leaves no orphan writing into its results. */
#ifndef KX_CHILD_COMMAND_H
#define KX_CHILD_COMMAND_H

#include <stdio.h>
#include <sys/types.h>

#include "core/kx_atomic.h"

typedef struct {
  pid_t pid;
  int capturing;            /* standard output goes to `capture` */
  kx_atomic_file capture;   /* published only if the command succeeds */
} kx_child;

/* Starts `kapprox argv[0] argv[1] ...` (argv NULL-terminated) with its
 * standard error, and its standard output unless `stdout_path` is given,
 * appended to `log_path`; with `stdout_path` the standard output is written
 * there atomically (kept only when the command exits 0 or 3). */
int kx_child_start(kx_child *c, char *const argv[], const char *log_path, const char *stdout_path);

/* Waits at most `timeout_s` seconds.  Returns 1 when the child has ended
 * (*status as from waitpid), 0 while it still runs, -1 on error. */
int kx_child_poll(kx_child *c, double timeout_s, int *status);

/* Publishes or discards the captured standard output after the end.
 * Returns non-zero with a message if publishing failed. */
int kx_child_finish(kx_child *c, int keep_output);

/* Sends `sig` to a running child (a driver passes SIGINT/SIGTERM on). */
void kx_child_signal(kx_child *c, int sig);

/* "exit status 2", "killed by signal 9 (Killed)" */
void kx_child_describe_status(int status, char *buf, size_t size);

/* Runs a program found on the PATH (not the toolkit) and reads the first line
 * of its standard output into `line`; its standard error is discarded.  Returns
 * 0 if it ran and exited 0, non-zero (no message) otherwise: the caller has a
 * fallback, e.g. when git is missing. */
int kx_run_for_line(char *const argv[], char *line, size_t size);

#endif
