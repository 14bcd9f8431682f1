/* kapprox reproduce all: every table and figure of the toolkit into one
 * folder, with an index, one progress display and resumption
 * (experiments/reproduce/reproduce_all.h plans and runs the stages). */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/kx_cli.h"
#include "core/kx_error.h"
#include "core/kx_input.h"
#include "experiments/commands/commands.h"
#include "experiments/reproduce/reproduce_all.h"

static const char cmd[] = "reproduce all";

static void usage(FILE *out) {
  fprintf(out,
          "usage: kapprox reproduce all [options]\n\n"
          "Runs every table and figure of the toolkit into one folder: kernel tables,\n"
          "the comparison of every scheme, error against m and against the input norm,\n"
          "QMC convergence at d = 4, feature-map throughput (DCT against dense),\n"
          "attention maps, sampler points, Figure 4 (decoding cost against context\n"
          "length), Table 2 with Figures 2 and 3, and Table 1.\n"
          "OUTDIR/index.md links each table and figure to the exact command that made it,\n"
          "with the date, the machine and the toolkit's version.\n\n"
          "Interrupted (Ctrl-C, kill, even SIGKILL), the same command resumes: finished\n"
          "stages are not redone, the stage under way resumes where its command does.\n"
          "A failed stage is recorded in the index with the reason, the others still run,\n"
          "and the exit status is 1.\n\n"
          "  --quick          every stage at small sizes: the whole run in a few minutes\n"
          "  --outdir DIR     [results/all; --quick: results/all-quick]\n"
          "  --text FILE      the text of Tables 1 and 2 (default: the KJV corpus)\n"
          "  --dry-run        print the stages and their commands, run nothing\n"
          "  --quiet          no progress display\n"
          "  -h, --help       this text\n\n"
          "Exit status: 0 every stage done, 1 a stage failed, 2 usage error, 3 done but\n"
          "some points of a sweep failed, 130 interrupted (rerun to resume).\n");
}

static void describe_command(ra_run *run, int argc, char **argv) {
  size_t n = (size_t)snprintf(run->command, sizeof run->command, "kapprox reproduce");
  for (int i = 0; i < argc && n < sizeof run->command; i++)
    n += (size_t)snprintf(run->command + n, sizeof run->command - n, " %s", argv[i]);
}

static void print_error(void *user, const char *message) {
  (void)user;
  kx_cli_error(cmd, "%s", message);
}

int cmd_reproduce_all(int argc, char **argv) {
  enum { O_QUICK = 256, O_OUTDIR, O_TEXT, O_DRY, O_QUIET };
  static const struct option opts[] = {{"quick", no_argument, 0, O_QUICK},   {"outdir", required_argument, 0, O_OUTDIR},
                                       {"text", required_argument, 0, O_TEXT}, {"dry-run", no_argument, 0, O_DRY},
                                       {"quiet", no_argument, 0, O_QUIET},   {"help", no_argument, 0, 'h'},
                                       {0, 0, 0, 0}};
  ra_plan_options o = {0};
  int dry = 0, quiet = 0, c;
  optind = 1;
  opterr = 0;
  while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
    switch (c) {
    case 'h': usage(stdout); return 0;
    case O_QUICK: o.quick = 1; break;
    case O_OUTDIR: o.outdir = optarg; break;
    case O_TEXT: o.text = optarg; break;
    case O_DRY: dry = 1; break;
    case O_QUIET: quiet = 1; break;
    default:
      kx_cli_error(cmd, "unknown or incomplete option '%s' (see kapprox reproduce all --help)", argv[optind - 1]);
      return 2;
    }
  }
  if (optind < argc) return kx_cli_extra_operand(cmd, argv[optind], NULL);
  if (!o.outdir) o.outdir = o.quick ? "results/all-quick" : "results/all";
  if (!*o.outdir || strlen(o.outdir) > RA_PATH - 64) {
    kx_cli_error(cmd, "--outdir must be a folder name of 1 to %d characters", RA_PATH - 64);
    return 2;
  }
  if (o.text && access(o.text, R_OK) != 0) {
    kx_cli_error(cmd, "--text '%s' cannot be read: %s", o.text, strerror(errno));
    return 2;
  }
  if (o.text && kx_input_check(o.text, "--text")) return kx_cli_value_error(cmd, NULL);
  static ra_driver d;
  ra_init(&d, &o);
  describe_command(&d.run, argc, argv);
  d.on_error = print_error;
  int rc = 0;
  if (dry) {
    for (size_t k = 0; k < RA_N_STAGES; k++) {
      printf("%zu. %s: %s%s\n", k + 1, d.stages[k].name, d.stages[k].title,
             d.stages[k].state == RA_DISABLED ? " (not part of this build yet)" : "");
      for (int i = 0; i < d.stages[k].n_steps; i++) {
        char line[4096];
        ra_step_command(&d.stages[k].steps[i], o.outdir, line, sizeof line);
        printf("   %s\n", line);
      }
    }
  } else if (ra_start(&d, quiet)) {
    kx_cli_error(cmd, "%s", kx_error_message());
    rc = 1;
  } else {
    rc = ra_run_stages(&d);
    size_t done, failed;
    ra_count(&d, &done, &failed);
    if (rc == 130)
      fprintf(stderr, "kapprox %s: interrupted; run the same command again to resume (finished stages are kept)\n",
              cmd);
    else if (!quiet || failed)
      fprintf(stderr, "kapprox %s: %zu of %zu stages done, %zu failed; index: %s/index.md (%.0f s)\n", cmd, done,
              (size_t)RA_N_STAGES, failed, o.outdir, kx_now_seconds() - d.progress.start);
  }
  ra_free(&d);
  return rc;
}
