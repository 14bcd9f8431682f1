/* The sequence type table and the generic front end: lookup by name,
 * dimension checks, allocation of the generator state, drawing. */
#include "samplers/sequence.h"

#include <stdlib.h>
#include <string.h>

#include "core/kx_error.h"
#include "samplers/sequence_impl.h"

const kx_sequence_type *const kx_sequence_types[] = {
    &kx_sequence_mc,          &kx_sequence_sobol,          &kx_sequence_sobol_shift,
    &kx_sequence_sobol_lms,   &kx_sequence_halton,         &kx_sequence_halton_perm,
    &kx_sequence_gsl_sobol,   &kx_sequence_gsl_niederreiter, &kx_sequence_gsl_halton,
    &kx_sequence_gsl_reversehalton, NULL};

struct kx_sequence {
  const kx_sequence_type *type;
  size_t dim;
  void *state;
};

const kx_sequence_type *kx_sequence_lookup(const char *name) {
  if (!name) return NULL;
  for (const kx_sequence_type *const *t = kx_sequence_types; *t; t++)
    if (!strcmp((*t)->name, name)) return *t;
  return NULL;
}

kx_sequence *kx_sequence_alloc(const char *spec, size_t dim, uint64_t seed) {
  const kx_sequence_type *type = kx_sequence_lookup(spec);
  if (!type) {
    char names[256] = "";
    for (const kx_sequence_type *const *t = kx_sequence_types; *t; t++) {
      if (names[0]) strncat(names, ", ", sizeof names - strlen(names) - 1);
      strncat(names, (*t)->name, sizeof names - strlen(names) - 1);
    }
    kx_fail(KX_EINVAL, "unknown sequence '%s' (known: %s)", spec ? spec : "(null)", names);
    return NULL;
  }
  if (dim == 0) {
    kx_fail(KX_EINVAL, "sequence '%s': dimension must be at least 1, got 0", type->name);
    return NULL;
  }
  if (dim > type->max_dim) {
    kx_fail(KX_ERANGE, "sequence '%s' supports dimensions 1..%zu, got %zu", type->name,
            type->max_dim, dim);
    return NULL;
  }
  kx_sequence *q = kx_malloc(sizeof *q);
  if (!q) return NULL;
  q->type = type;
  q->dim = dim;
  q->state = kx_calloc(1, type->state_size(dim));
  if (!q->state) {
    free(q);
    return NULL;
  }
  if (type->init(q->state, dim, seed) != 0) {
    /* init left its own message and released what it had allocated */
    free(q->state);
    free(q);
    return NULL;
  }
  return q;
}

int kx_sequence_next(kx_sequence *q, double *x) { return q->type->next(q->state, q->dim, x); }

int kx_sequence_skip(kx_sequence *q, size_t n) {
  if (n == 0) return 0;
  if (q->type->skip) return q->type->skip(q->state, q->dim, (uint64_t)n);
  double *scratch = kx_malloc(q->dim * sizeof *scratch);
  if (!scratch) return KX_ENOMEM;
  int rc = 0;
  for (size_t i = 0; i < n && !rc; i++) rc = q->type->next(q->state, q->dim, scratch);
  free(scratch);
  return rc;
}

int kx_sequence_fill(kx_sequence *q, size_t n, double *x) {
  for (size_t i = 0; i < n; i++) {
    int rc = q->type->next(q->state, q->dim, x + i * q->dim);
    if (rc) return rc;
  }
  return 0;
}

size_t kx_sequence_dim(const kx_sequence *q) { return q->dim; }

const kx_sequence_type *kx_sequence_get_type(const kx_sequence *q) { return q->type; }

const char *kx_sequence_type_name(const kx_sequence_type *t) { return t->name; }
const char *kx_sequence_type_description(const kx_sequence_type *t) { return t->description; }
size_t kx_sequence_type_max_dim(const kx_sequence_type *t) { return t->max_dim; }
int kx_sequence_type_randomised(const kx_sequence_type *t) { return t->randomised; }

void kx_sequence_free(kx_sequence *q) {
  if (!q) return;
  if (q->type->release) q->type->release(q->state);
  free(q->state);
  free(q);
}
