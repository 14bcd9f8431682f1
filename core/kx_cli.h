/* Shared pieces of the command-line front ends: the subcommand signature,
 * parsing of numbers and lists with messages that say what was wrong, and
 * atomic file writing (core/kx_atomic.h) for every result. */
#ifndef KX_CLI_H
#define KX_CLI_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "core/kx_atomic.h"

/* A subcommand: argv[0] is the subcommand name.  Returns the exit code:
 * 0 success, 1 runtime failure, 2 usage error. */
typedef int (*kx_command_fn)(int argc, char **argv);

/* Prints "kapprox CMD: error: <message>" to stderr. */
void kx_cli_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The end of a subcommand's getopt_long loop (opterr = 0, optstring starting
 * with ':'), so that every command words its usage errors alike.  Each prints
 * the error and returns 2, the usage-error exit code.
 * kx_cli_option_error: the switch's default case; c == ':' is an option given
 * without its value, any other c an unknown option; both point to
 * `kapprox CMD --help`.
 * kx_cli_value_error: an option parser failed; its message
 * (kx_error_message), then " (HINT)" unless hint is NULL.
 * kx_cli_extra_operand: an operand where the command takes none;
 * "unexpected argument 'ARG'", then " (HINT)" unless hint is NULL. */
int kx_cli_option_error(const char *cmd, int c, char **argv);
int kx_cli_value_error(const char *cmd, const char *hint);
int kx_cli_extra_operand(const char *cmd, const char *operand, const char *hint);

/* Strict parsers: the whole string must be a number in range; on failure they
 * record a message naming `what` and return non-zero. */
int kx_parse_size(const char *s, const char *what, size_t min, size_t max, size_t *out);
/* 1 if s ends with suffix (an output file's kind from its name: ".csv", ".h5"). */
int kx_has_suffix(const char *s, const char *suffix);
int kx_parse_u64(const char *s, const char *what, uint64_t *out);
int kx_parse_double(const char *s, const char *what, double *out);
/* A double that must be >= 0 (--ridge, ...). */
int kx_parse_nonneg_double(const char *s, const char *what, double *out);

/* Checks before any work that `path` can be created or replaced: not
 * empty, not a directory, in an existing directory we may write to.
 * Returns non-zero with a message naming `what` (e.g. "--out"). */
int kx_check_output_path(const char *path, const char *what);
/* The same for an output directory: it must exist and be writable. */
int kx_check_output_dir(const char *dir, const char *what);

/* A list of sizes: "64", "16,32,64" or a geometric range "16:1024" (doubling)
 * or "16:1024:x4" (factor 4) or an arithmetic range "0:9" with ":+1".  At most
 * `cap` values go into out; *n receives the count. */
int kx_parse_size_list(const char *s, const char *what, size_t min, size_t max,
                       size_t *out, size_t cap, size_t *n);
/* Seeds: "3" (the single seed 3), "0:9" (0..9 inclusive), "1,5,7". */
int kx_parse_u64_list(const char *s, const char *what, uint64_t *out, size_t cap, size_t *n);

/* Splits a comma-separated list into newly allocated strings (free with
 * kx_free_strings).  Empty items are an error. */
int kx_split_list(const char *s, const char *what, char ***items, size_t *n);
void kx_free_strings(char **items, size_t n);

/* Whether stderr is a terminal (progress bars are drawn only then). */
int kx_stderr_is_tty(void);
double kx_now_seconds(void);
/* CPU seconds of the calling thread: phases timed on a loaded machine
 * count their own work, not the time other processes ran. */
double kx_thread_cpu_seconds(void);

#endif
