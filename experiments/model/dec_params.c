#include "experiments/model/dec_params.h"

#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/kx_error.h"
#include "core/kx_seed.h"

int kx_ptable_add(kx_param_table *tab, const char *name, size_t rows, size_t cols, int decay,
                  kx_init_kind init, size_t *index) {
  if (strlen(name) >= sizeof tab->t[0].name) return kx_fail(KX_EINVAL, "tensor name '%s' too long", name);
  if (kx_ptable_find(tab, name) >= 0) return kx_fail(KX_EINVAL, "tensor '%s' declared twice", name);
  int rc = kx_reserve(&tab->t, &tab->cap, tab->n, sizeof *tab->t, 32, "the parameter table");
  if (rc) return rc;
  kx_tensor_info *t = &tab->t[tab->n];
  memset(t, 0, sizeof *t);
  strcpy(t->name, name);
  t->rows = rows;
  t->cols = cols;
  t->size = rows * (cols ? cols : 1);
  /* 16-float alignment keeps every tensor on a 64-byte boundary for BLAS. */
  t->offset = (tab->total + 15) & ~(size_t)15;
  t->decay = decay;
  t->init = init;
  tab->total = t->offset + t->size;
  if (index) *index = tab->n;
  tab->n++;
  return 0;
}

void kx_ptable_free(kx_param_table *tab) {
  free(tab->t);
  memset(tab, 0, sizeof *tab);
}

void kx_ptable_freeze(kx_param_table *tab, size_t index) {
  if (index < tab->n) tab->t[index].frozen = 1;
}

long kx_ptable_find(const kx_param_table *tab, const char *name) {
  for (size_t i = 0; i < tab->n; i++)
    if (!strcmp(tab->t[i].name, name)) return (long)i;
  return -1;
}

int kx_ptable_init(const kx_param_table *tab, float *params, size_t width, size_t layers, uint64_t seed) {
  memset(params, 0, tab->total * sizeof *params);
  gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
  if (!r) return kx_fail(KX_ENOMEM, "cannot allocate a random number generator");
  double small = sqrt(2.0 / (5.0 * (double)width));
  double wang = 2.0 / ((double)layers * sqrt((double)width));
  for (size_t i = 0; i < tab->n; i++) {
    const kx_tensor_info *t = &tab->t[i];
    float *p = params + t->offset;
    gsl_rng_set(r, kx_gsl_seed(kx_seed_derive(seed, i)));
    switch (t->init) {
      case KX_INIT_ZERO:
      case KX_INIT_KIND: break;
      case KX_INIT_IDENTITY: {
        size_t cols = t->cols ? t->cols : 1;
        for (size_t k = 0; k < t->rows && k < cols; k++) p[k * cols + k] = 1.0f;
        break;
      }
      case KX_INIT_ONE:
        for (size_t k = 0; k < t->size; k++) p[k] = 1.0f;
        break;
      case KX_INIT_SMALL:
      case KX_INIT_WANG: {
        double sd = t->init == KX_INIT_SMALL ? small : wang;
        for (size_t k = 0; k < t->size; k++) p[k] = (float)gsl_ran_gaussian_ziggurat(r, sd);
        break;
      }
    }
  }
  gsl_rng_free(r);
  return 0;
}
