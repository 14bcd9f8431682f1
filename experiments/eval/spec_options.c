#include "experiments/eval/spec_options.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "core/kx_cli.h"
#include "core/kx_error.h"

/* ---- the table ------------------------------------------------------------- */

typedef int (*apply_fn)(kx_spec_args *a, const char *arg, const char *flag);

typedef struct {
  const char *name;
  int has_arg;
  unsigned group;
  apply_fn apply;
} spec_option;

static int to_int_list(const char *s, const char *flag, int *out, size_t *n) {
  size_t tmp[KX_SPEC_MAX];
  if (kx_parse_size_list(s, flag, 0, 1u << 30, tmp, KX_SPEC_MAX, n)) return KX_EINVAL;
  for (size_t i = 0; i < *n; i++) out[i] = (int)tmp[i];
  return 0;
}

static int one_int(const char *s, const char *flag, int *out, size_t *n) {
  size_t v;
  if (kx_parse_size(s, flag, 0, 1u << 30, &v)) return KX_EINVAL;
  *out = (int)v;
  *n = 1;
  return 0;
}

static int o_input(kx_spec_args *a, const char *arg, const char *flag) {
  (void)flag;
  a->spec.files[0] = arg;
  a->spec.n_files = 1;
  a->inputs_given = 1;
  return 0;
}
static int o_inputs(kx_spec_args *a, const char *arg, const char *flag) {
  if (a->spec.n_files == KX_SPEC_MAX_FILES) return kx_fail(KX_EINVAL, "at most %d %s files", KX_SPEC_MAX_FILES, flag);
  a->spec.files[a->spec.n_files++] = arg;
  a->inputs_given = 1;
  return 0;
}
static int o_layers(kx_spec_args *a, const char *arg, const char *flag) {
  return to_int_list(arg, flag, a->spec.layers, &a->spec.n_layers);
}
static int o_heads(kx_spec_args *a, const char *arg, const char *flag) {
  return to_int_list(arg, flag, a->spec.heads, &a->spec.n_heads);
}
static int o_layer(kx_spec_args *a, const char *arg, const char *flag) {
  return one_int(arg, flag, a->spec.layers, &a->spec.n_layers);
}
static int o_head(kx_spec_args *a, const char *arg, const char *flag) {
  return one_int(arg, flag, a->spec.heads, &a->spec.n_heads);
}
static int o_max_tokens(kx_spec_args *a, const char *arg, const char *flag) {
  return kx_parse_size(arg, flag, 1, KX_SPEC_MAX_FILE_TOKENS, &a->spec.max_tokens);
}
static int o_tokens(kx_spec_args *a, const char *arg, const char *flag) {
  return kx_parse_size(arg, flag, 1, KX_SPEC_MAX_TOKENS, &a->spec.tokens);
}
static int o_dim(kx_spec_args *a, const char *arg, const char *flag) {
  return kx_parse_size(arg, flag, 1, KX_SPEC_MAX_DIM, &a->spec.d);
}
static int o_data_seed(kx_spec_args *a, const char *arg, const char *flag) {
  return kx_parse_u64(arg, flag, &a->spec.data_seed);
}
static int o_norm(kx_spec_args *a, const char *arg, const char *flag) {
  a->spec.n_norms = 1;
  return kx_parse_norm_spec(arg, flag, &a->spec.norms[0]);
}
static int o_norms(kx_spec_args *a, const char *arg, const char *flag) {
  a->norms_given = 1;
  if (!strcmp(arg, "none")) {
    a->spec.n_norms = 0;
    return 0;
  }
  char **items;
  size_t n;
  if (kx_split_list(arg, flag, &items, &n)) return KX_EINVAL;
  int rc = n > KX_SPEC_MAX ? kx_fail(KX_EINVAL, "%s: more than %d values", flag, KX_SPEC_MAX) : 0;
  for (size_t i = 0; i < n && !rc; i++) rc = kx_parse_norm_spec(items[i], flag, &a->spec.norms[i]);
  if (!rc) a->spec.n_norms = n;
  kx_free_strings(items, n);
  return rc;
}
static int o_causal(kx_spec_args *a, const char *arg, const char *flag) {
  (void)arg;
  a->spec.causal = strstr(flag, "no-causal") ? 0 : 1;
  return 0;
}
static int o_schemes(kx_spec_args *a, const char *arg, const char *flag) {
  (void)flag;
  a->schemes = arg;
  return 0;
}
static int o_m(kx_spec_args *a, const char *arg, const char *flag) {
  (void)flag;
  a->m = arg;
  return 0;
}
static int o_m_one(kx_spec_args *a, const char *arg, const char *flag) {
  a->m = arg;
  a->spec.n_m = 1;
  return kx_parse_size(arg, flag, 1, KX_SPEC_MAX_M, &a->spec.m[0]);
}
static int o_seeds(kx_spec_args *a, const char *arg, const char *flag) {
  (void)flag;
  a->seeds = arg;
  return 0;
}
static int o_seed(kx_spec_args *a, const char *arg, const char *flag) {
  a->seeds = arg;
  a->spec.n_seeds = 1;
  return kx_parse_u64(arg, flag, &a->spec.seeds[0]);
}
static int o_kernel(kx_spec_args *a, const char *arg, const char *flag) {
  return kx_parse_kernel(arg, flag, &a->spec.fmap.kernel);
}
static int o_radii(kx_spec_args *a, const char *arg, const char *flag) {
  a->spec.fmap.radii = arg;
  if (strcmp(arg, "sequence") && strcmp(arg, "stratified"))
    return kx_fail(KX_EINVAL, "%s must be sequence or stratified, got '%s'", flag, arg);
  return 0;
}
static int o_calib_pairs(kx_spec_args *a, const char *arg, const char *flag) {
  return kx_parse_size(arg, flag, 1, KX_SPEC_MAX_CALIB_PAIRS, &a->spec.fmap.n_calib_pairs);
}
static int o_ridge(kx_spec_args *a, const char *arg, const char *flag) {
  return kx_parse_nonneg_double(arg, flag, &a->spec.fmap.ridge);
}
static int o_all_pairs(kx_spec_args *a, const char *arg, const char *flag) {
  (void)arg, (void)flag;
  a->spec.fmap.calib_all_pairs = 1;
  return 0;
}

static const spec_option table[] = {
    {"input", required_argument, KX_OPT_INPUT, o_input},
    {"input", required_argument, KX_OPT_INPUTS, o_inputs},
    {"layers", required_argument, KX_OPT_LAYERS_HEADS, o_layers},
    {"heads", required_argument, KX_OPT_LAYERS_HEADS, o_heads},
    {"layer", required_argument, KX_OPT_LAYER_HEAD, o_layer},
    {"head", required_argument, KX_OPT_LAYER_HEAD, o_head},
    {"max-tokens", required_argument, KX_OPT_MAX_TOKENS, o_max_tokens},
    {"tokens", required_argument, KX_OPT_TOKENS, o_tokens},
    {"dim", required_argument, KX_OPT_DIM, o_dim},
    {"data-seed", required_argument, KX_OPT_DATA_SEED, o_data_seed},
    {"norm", required_argument, KX_OPT_NORM, o_norm},
    {"norms", required_argument, KX_OPT_NORMS, o_norms},
    {"causal", no_argument, KX_OPT_CAUSAL, o_causal},
    {"no-causal", no_argument, KX_OPT_CAUSAL, o_causal},
    {"schemes", required_argument, KX_OPT_SCHEMES, o_schemes},
    {"m", required_argument, KX_OPT_M, o_m},
    {"m", required_argument, KX_OPT_M_ONE, o_m_one},
    {"seeds", required_argument, KX_OPT_SEEDS, o_seeds},
    {"seed", required_argument, KX_OPT_SEED, o_seed},
    {"kernel", required_argument, KX_OPT_KERNEL, o_kernel},
    {"radii", required_argument, KX_OPT_MAP, o_radii},
    {"calib-pairs", required_argument, KX_OPT_MAP, o_calib_pairs},
    {"ridge", required_argument, KX_OPT_MAP, o_ridge},
    {"calib-all-pairs", no_argument, KX_OPT_ALL_PAIRS, o_all_pairs},
};
#define N_TABLE (sizeof table / sizeof table[0])
enum { SPEC_BASE = 1000, OWN_BASE = 2000, MAX_OPTIONS = 64 };

/* ---- parsing --------------------------------------------------------------- */

/* getopt_long's table: the command's groups (names with the prefix), its
 * own options and --help; names live in `names`. */
static size_t build_options(const kx_cli_command *c, struct option *opts, char (*names)[40]) {
  size_t n = 0;
  const char *prefix = c->prefix ? c->prefix : "";
  for (size_t i = 0; i < N_TABLE && n < MAX_OPTIONS - 2; i++) {
    if (!(c->groups & table[i].group)) continue;
    snprintf(names[n], sizeof names[n], "%s%s", prefix, table[i].name);
    opts[n] = (struct option){names[n], table[i].has_arg, 0, SPEC_BASE + (int)i};
    n++;
  }
  for (size_t i = 0; c->own && c->own[i].name && n < MAX_OPTIONS - 2; i++)
    opts[n++] = (struct option){c->own[i].name, c->own[i].has_arg, 0, OWN_BASE + (int)i};
  opts[n++] = (struct option){"help", no_argument, 0, 'h'};
  opts[n] = (struct option){0, 0, 0, 0};
  return n;
}

int kx_spec_parse_cli(const kx_cli_command *c, int argc, char **argv, kx_spec_args *a) {
  struct option opts[MAX_OPTIONS];
  char names[MAX_OPTIONS][40];
  build_options(c, opts, names);
  optind = 1;
  opterr = 0;
  int o, idx;
  while ((o = getopt_long(argc, argv, "h", opts, &idx)) != -1) {
    int rc = 0;
    if (o == 'h') {
      c->usage(stdout, c->ctx);
      return -1;
    } else if (o >= SPEC_BASE && o < OWN_BASE) {
      char flag[48];
      snprintf(flag, sizeof flag, "--%s", opts[idx].name);
      rc = table[o - SPEC_BASE].apply(a, optarg, flag);
    } else if (o >= OWN_BASE) {
      rc = c->on_option(c->ctx, c->own[o - OWN_BASE].id, optarg);
    } else {
      kx_cli_error(c->cmd, "unknown or incomplete option '%s' (see kapprox %s --help)", argv[optind - 1], c->cmd);
      return 2;
    }
    if (rc) return kx_cli_value_error(c->cmd, NULL);
  }
  if (optind < argc) {
    kx_cli_error(c->cmd, "unexpected argument '%s' (see kapprox %s --help)", argv[optind], c->cmd);
    return 2;
  }
  return 0;
}

int kx_spec_args_finish(const kx_cli_command *c, kx_spec_args *a, kx_scheme_set set, const char *m_default,
                        const char *seeds_default) {
  kx_spec *s = &a->spec;
  const char *prefix = c->prefix ? c->prefix : "";
  char flag[48];
  snprintf(flag, sizeof flag, "--%sm", prefix);
  int rc = a->schemes ? kx_spec_parse_schemes(a->schemes, &s->schemes, &s->n_schemes)
                      : kx_spec_default_schemes(set, &s->schemes, &s->n_schemes);
  const char *m = a->m ? a->m : m_default, *seeds = a->seeds ? a->seeds : seeds_default;
  if (!rc && m && !(c->groups & KX_OPT_M_ONE))
    rc = kx_parse_size_list(m, flag, 1, KX_SPEC_MAX_M, s->m, KX_SPEC_MAX, &s->n_m);
  snprintf(flag, sizeof flag, "--%sseeds", prefix);
  if (!rc && seeds && !(c->groups & KX_OPT_SEED))
    rc = kx_parse_u64_list(seeds, flag, s->seeds, KX_SPEC_MAX, &s->n_seeds);
  if (rc) {
    kx_cli_error(c->cmd, "%s", kx_error_message());
    kx_spec_free(s);
    return 2;
  }
  return 0;
}
