#include "experiments/eval/spec.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/kx_cli.h"
#include "core/kx_error.h"
#include "experiments/qk/qk_file.h"

void kx_spec_defaults(kx_spec *s) {
  memset(s, 0, sizeof *s);
  kx_fmap_default_options(&s->fmap);
  s->norms[0] = (kx_norm_spec){1.0, 1.0};
  s->n_norms = 1;
  s->tokens = 256;
  s->d = 64;
  s->causal = -1;
}

void kx_spec_free(kx_spec *s) {
  kx_free_strings(s->schemes, s->n_schemes);
  s->schemes = NULL;
  s->n_schemes = 0;
}

const char *kx_spec_kernel_name(const kx_spec *s) {
  return s->fmap.kernel == KX_KERNEL_GAUSS ? "gauss" : "softmax";
}

int kx_spec_parse_schemes(const char *list, char ***items, size_t *n) {
  int rc = kx_split_list(list && !strcmp(list, "all") ? kx_fmap_names() : list, "--schemes", items, n);
  for (size_t i = 0; !rc && i < *n; i++) {
    if (!kx_fmap_lookup((*items)[i]))
      rc = kx_fail(KX_EINVAL, "unknown scheme '%s' (known: %s, or all)", (*items)[i], kx_fmap_names());
    for (size_t j = 0; !rc && j < i; j++)
      if (!strcmp((*items)[i], (*items)[j])) rc = kx_fail(KX_EINVAL, "scheme '%s' is listed twice", (*items)[i]);
  }
  if (rc) {
    kx_free_strings(*items, *n);
    *items = NULL;
    *n = 0;
  }
  return rc;
}

static void append_name(char *buf, size_t cap, const char *name) {
  if (strlen(buf) + strlen(name) + 2 > cap) return;
  if (buf[0]) strcat(buf, ",");
  strcat(buf, name);
}

/* The paper's comparison: Performer's maps, MC against QMC directions,
 * with and without fitted weights, and the paper's own WDCF; only
 * registered schemes are used, so the default works whichever feature maps
 * this build has. */
static void comparison_schemes(char *buf, size_t cap) {
  static const char *const preferred[] = {"prf", "orf", "pff-mc", "pff-sobol", "wpff-sobol",
                                          "wdcf", "pff-halton", NULL};
  size_t count = 0;
  for (size_t i = 0; preferred[i] && count < 6; i++)
    if (kx_fmap_lookup(preferred[i])) append_name(buf, cap, preferred[i]), count++;
  /* fewer than six of those: fill up with other kernel estimators */
  for (size_t i = 0; kx_fmap_types[i] && count < 6; i++) {
    const kx_fmap_type *t = kx_fmap_types[i];
    int taken = 0;
    for (size_t k = 0; preferred[k]; k++) taken |= !strcmp(preferred[k], t->name);
    if (!taken && t->kernel_estimator) append_name(buf, cap, t->name), count++;
  }
}

int kx_spec_default_schemes(kx_scheme_set set, char ***items, size_t *n) {
  char buf[1024] = "";
  if (set == KX_SCHEMES_COMPARISON) comparison_schemes(buf, sizeof buf);
  else
    for (size_t i = 0; kx_fmap_types[i]; i++)
      if (set == KX_SCHEMES_EVERY || kx_fmap_types[i]->kernel_estimator)
        append_name(buf, sizeof buf, kx_fmap_types[i]->name);
  return kx_split_list(buf, "schemes", items, n);
}

int kx_spec_check(const kx_spec *s) {
  if (!s->n_schemes) return kx_fail(KX_EINVAL, "empty grid: no schemes");
  if (!s->n_m) return kx_fail(KX_EINVAL, "empty grid: no values of m");
  if (!s->n_seeds) return kx_fail(KX_EINVAL, "empty grid: no seeds");
  if (!s->n_norms && !s->n_files)
    return kx_fail(KX_EINVAL, "empty grid: no inputs (neither a synthetic norm nor a Q/K file)");
  for (size_t i = 0; i < s->n_schemes; i++) {
    if (!kx_fmap_lookup(s->schemes[i]))
      return kx_fail(KX_EINVAL, "unknown scheme '%s' (known: %s)", s->schemes[i], kx_fmap_names());
    for (size_t j = 0; j < i; j++)
      if (!strcmp(s->schemes[i], s->schemes[j]))
        return kx_fail(KX_EINVAL, "scheme '%s' is listed twice", s->schemes[i]);
  }
  /* duplicates would make two points with the same key */
  for (size_t i = 0; i < s->n_m; i++) {
    if (s->m[i] == 0) return kx_fail(KX_EINVAL, "m must be at least 1");
    for (size_t j = 0; j < i; j++)
      if (s->m[i] == s->m[j]) return kx_fail(KX_EINVAL, "m = %zu is listed twice", s->m[i]);
  }
  for (size_t i = 0; i < s->n_seeds; i++)
    for (size_t j = 0; j < i; j++)
      if (s->seeds[i] == s->seeds[j])
        return kx_fail(KX_EINVAL, "seed %" PRIu64 " is listed twice", s->seeds[i]);
  for (size_t i = 0; i < s->n_norms; i++)
    for (size_t j = 0; j < i; j++)
      if (s->norms[i].lo == s->norms[j].lo && s->norms[i].hi == s->norms[j].hi)
        return kx_fail(KX_EINVAL, "norm %g is listed twice", s->norms[i].lo);
  if (s->n_norms && (s->tokens == 0 || s->d == 0))
    return kx_fail(KX_EINVAL, "synthetic data needs at least one token and dimension d >= 1");
  return 0;
}

static int selected(const int *list, size_t n, int v) {
  if (n == 0) return 1;
  for (size_t i = 0; i < n; i++)
    if (list[i] == v) return 1;
  return 0;
}

typedef struct {
  kx_spec_input *items;
  size_t n, cap;
} input_list;

static int add_input(input_list *l, const kx_spec_input *in) {
  int rc = kx_reserve(&l->items, &l->cap, l->n, sizeof *l->items, 16, "the list of inputs");
  if (rc) return rc;
  l->items[l->n++] = *in;
  return 0;
}

/* Every selected layer must exist, and every selected head in each of them. */
static int check_selection(const kx_spec *s, const char *path, kx_qk_file *f) {
  for (size_t i = 0; i < s->n_layers; i++) {
    int found = 0;
    for (size_t j = 0; j < kx_qk_n_layers(f); j++) found |= kx_qk_layer_index(f, j) == s->layers[i];
    if (!found) return kx_fail(KX_EINVAL, "%s has no layer %d", path, s->layers[i]);
  }
  return 0;
}

static int list_file_heads(const kx_spec *s, int fi, input_list *l) {
  const char *path = s->files[fi];
  if (strpbrk(path, ",\t\n\r"))
    return kx_fail(KX_EINVAL, "input path '%s' contains a comma, tab or newline, which the CSV "
                   "results cannot hold; rename or link the file", path);
  if (strlen(path) >= sizeof l->items[0].label)
    return kx_fail(KX_EINVAL, "input path '%s' is longer than %zu characters", path,
                   sizeof l->items[0].label - 1);
  kx_qk_file *f = kx_qk_open(path);
  if (!f) return KX_EIO;
  int rc = check_selection(s, path, f);
  for (size_t j = 0; j < kx_qk_n_layers(f) && !rc; j++) {
    if (!selected(s->layers, s->n_layers, kx_qk_layer_index(f, j))) continue;
    kx_qk_layer L;
    if ((rc = kx_qk_layer_shape(f, j, &L))) break;
    for (size_t h = 0; h < s->n_heads && !rc; h++)
      if (s->heads[h] < 0 || (size_t)s->heads[h] >= L.heads)
        rc = kx_fail(KX_EINVAL, "%s layer %d has heads 0..%zu; head %d does not exist", path, L.index,
                     L.heads - 1, s->heads[h]);
    for (size_t h = 0; h < L.heads && !rc; h++) {
      if (!selected(s->heads, s->n_heads, (int)h)) continue;
      kx_spec_input in = {.file = fi, .layer_pos = j, .layer = L.index, .head = (int)h};
      snprintf(in.label, sizeof in.label, "%s", path);
      rc = add_input(l, &in);
    }
    kx_qk_layer_free(&L);
  }
  kx_qk_close(f);
  return rc;
}

int kx_spec_list_inputs(const kx_spec *s, kx_spec_input **inputs, size_t *n) {
  input_list l = {0};
  int rc = 0;
  for (size_t i = 0; i < s->n_norms && !rc; i++) {
    kx_spec_input in = {.file = -1, .norm = i, .layer = -1, .head = -1};
    if (!s->norm_labels) snprintf(in.label, sizeof in.label, "synthetic");
    else if (s->norms[i].lo == s->norms[i].hi) snprintf(in.label, sizeof in.label, "synthetic:norm=%g", s->norms[i].lo);
    else snprintf(in.label, sizeof in.label, "synthetic:norm=%g:%g", s->norms[i].lo, s->norms[i].hi);
    rc = add_input(&l, &in);
  }
  for (size_t f = 0; f < s->n_files && !rc; f++) rc = list_file_heads(s, (int)f, &l);
  if (rc) {
    free(l.items);
    l.items = NULL;
    l.n = 0;
  }
  *inputs = l.items;
  *n = l.n;
  return rc;
}
