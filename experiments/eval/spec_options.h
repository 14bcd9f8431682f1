/* The option table of the experiment commands: every option that fills a
 * kx_spec (input, grid, kernel and map options) is one entry here, with
 * one parser, one limit and one message, and a command registers the
 * groups it takes plus its own options.  compare, kernel-error,
 * attn-fidelity, sweep, reproduce kernel, attn-maps, synth-qk and plot
 * (with the prefix "map-") parse their command lines through it. */
#ifndef KX_SPEC_OPTIONS_H
#define KX_SPEC_OPTIONS_H

#include <stdio.h>

#include "experiments/eval/spec.h"

/* Groups of spec options a command takes (bit mask). */
enum {
  KX_OPT_INPUT = 1u << 0,        /* --input FILE.h5 (one) */
  KX_OPT_INPUTS = 1u << 1,       /* --input FILE.h5 (repeatable) */
  KX_OPT_LAYERS_HEADS = 1u << 2, /* --layers LIST, --heads LIST */
  KX_OPT_LAYER_HEAD = 1u << 3,   /* --layer L, --head H (one head) */
  KX_OPT_MAX_TOKENS = 1u << 4,   /* --max-tokens N */
  KX_OPT_TOKENS = 1u << 5,       /* --tokens N (synthetic) */
  KX_OPT_NORM = 1u << 6,         /* --norm SPEC (one synthetic input) */
  KX_OPT_NORMS = 1u << 7,        /* --norms LIST (one synthetic input per item, 'none') */
  KX_OPT_CAUSAL = 1u << 8,       /* --causal, --no-causal */
  KX_OPT_SCHEMES = 1u << 9,      /* --schemes LIST */
  KX_OPT_M = 1u << 10,           /* --m LIST */
  KX_OPT_M_ONE = 1u << 11,       /* --m M (one value) */
  KX_OPT_SEEDS = 1u << 12,       /* --seeds LIST */
  KX_OPT_SEED = 1u << 13,        /* --seed S (one feature-map seed) */
  KX_OPT_KERNEL = 1u << 14,      /* --kernel softmax|gauss */
  KX_OPT_MAP = 1u << 15,         /* --radii, --calib-pairs, --ridge */
  KX_OPT_ALL_PAIRS = 1u << 16,   /* --calib-all-pairs */
  KX_OPT_DIM = 1u << 17,         /* --dim D (head dimension) */
  KX_OPT_DATA_SEED = 1u << 18,   /* --data-seed S */
};
/* the synthetic head's shape and data */
#define KX_OPT_SYNTHETIC (KX_OPT_TOKENS | KX_OPT_DIM | KX_OPT_DATA_SEED)


/* What a command line gave; lists stay text until kx_spec_args_finish so
 * that each command's defaults apply to what was not given. */
typedef struct {
  kx_spec spec;
  const char *schemes, *m, *seeds; /* NULL: not given */
  int norms_given, inputs_given;
} kx_spec_args;

/* A command's own option: getopt_long's has_arg, and an id >= 0 passed to
 * on_option. */
typedef struct {
  const char *name;
  int has_arg;
  int id;
} kx_cli_option;

typedef struct {
  const char *cmd;                   /* "compare", "reproduce kernel": messages and --help hints */
  unsigned groups;                   /* KX_OPT_* */
  const char *prefix;                /* "" or e.g. "map-": --map-tokens */
  const kx_cli_option *own;          /* terminated by a NULL name; may be NULL */
  /* Handles an own option; returns 0, or an error code with kx_fail's message.  */
  int (*on_option)(void *ctx, int id, const char *arg);
  void *ctx;
  void (*usage)(FILE *out, void *ctx); /* -h, --help */
} kx_cli_command;

/* Parses argv (argv[0] is the command) into a (defaulted by the caller)
 * args.  Returns 0 to go on, -1 after printing --help (exit 0), or 2 after
 * printing a usage error naming the option. */
int kx_spec_parse_cli(const kx_cli_command *c, int argc, char **argv, kx_spec_args *a);

/* Applies the command's defaults to the lists not given (schemes from
 * `set`, m from m_default, seeds from seeds_default; NULL: left as they
 * are) and parses them; an error is printed as a usage error and 2
 * returned. */
int kx_spec_args_finish(const kx_cli_command *c, kx_spec_args *a, kx_scheme_set set, const char *m_default,
                        const char *seeds_default);

#endif
