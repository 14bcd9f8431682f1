/* Options shared by the kapprox reproduce table commands (repro_opts.h). */
#include "experiments/reproduce/repro_opts.h"

#include <getopt.h>

#include "core/kx_cli.h"
#include "core/kx_error.h"
#include "experiments/reproduce/repro_shard.h"

void kx_repro_opts_init(kx_repro_opts *o) {
  *o = (kx_repro_opts){.figures = 1, .budget = 1.0 / 16.0};
  optind = 1; /* a fresh getopt loop (the command may run in-process after another) */
  opterr = 0;
}

int kx_repro_option(int c, const char *arg, char **argv, size_t max_seeds, kx_repro_opts *o, int *rc) {
  *rc = 0;
  switch (c) {
    case KX_REPRO_O_QUICK: o->quick = 1; break;
    case KX_REPRO_O_BUDGET:
      *rc = kx_parse_double(arg, "--budget", &o->budget);
      if (!*rc && !(o->budget > 0 && o->budget <= 100))
        *rc = kx_fail(KX_EINVAL, "--budget must be > 0 (a fraction of the pre-training steps), got %s", arg);
      break;
    case KX_REPRO_O_SEEDS: *rc = kx_parse_size(arg, "--seeds", 1, max_seeds, &o->seeds); break;
    case KX_REPRO_O_OUTDIR: o->outdir = arg; break;
    case KX_REPRO_O_TEACHER: o->teacher = arg; break;
    case KX_REPRO_O_TEXT: o->text = arg; break;
    case KX_REPRO_O_NOFIG: o->figures = 0; break;
    case KX_REPRO_O_QUIET: o->quiet = 1; break;
    case KX_REPRO_O_SHARD: {
      kx_repro_shard sh = {0};
      *rc = kx_repro_shard_parse(arg, &sh);
      o->shard_i = sh.i, o->shard_n = sh.n;
      break;
    }
    case KX_REPRO_O_DRY: o->dry_run = 1; break;
    case ':': *rc = kx_fail(KX_EINVAL, "option %s needs a value", argv[optind - 1]); break;
    case '?': *rc = kx_fail(KX_EINVAL, "unknown option '%s'", argv[optind - 1]); break;
    default: return 0;
  }
  return 1;
}
