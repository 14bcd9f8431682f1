#include "experiments/model/dec_convert.h"

#include <string.h>

#include "core/kx_error.h"

long kx_dec_convert_source(const kx_decoder *teacher, const kx_tensor_info *t) {
  long i = kx_ptable_find(&teacher->tab, t->name);
  if (i < 0) return -1;
  const kx_tensor_info *s = &teacher->tab.t[i];
  return s->rows == t->rows && s->cols == t->cols ? i : -1;
}

int kx_dec_convert(const kx_decoder *teacher, const char *kind, uint64_t seed, kx_decoder *student) {
  return kx_dec_convert_hybrid(teacher, kind, 0, seed, student);
}

int kx_dec_convert_hybrid(const kx_decoder *teacher, const char *kind, uint64_t softmax_layers, uint64_t seed,
                          kx_decoder *student) {
  memset(student, 0, sizeof *student);
  if (strcmp(teacher->cfg.attn_kind, "softmax"))
    return kx_fail(KX_EINVAL,
                   "the source model has attention '%s'; conversion starts from a softmax teacher (a checkpoint "
                   "of kapprox train with the default --attention softmax)",
                   teacher->cfg.attn_kind);
  kx_dec_config cfg = teacher->cfg;
  int rc = kx_dec_config_set_attention(&cfg, kind);
  if (rc) return rc;
  cfg.softmax_layers = softmax_layers;
  rc = kx_dec_create(student, &cfg);
  if (!rc) rc = kx_dec_init_params(student, seed);
  for (size_t i = 0; !rc && i < student->tab.n; i++) {
    const kx_tensor_info *t = &student->tab.t[i];
    long s = kx_dec_convert_source(teacher, t);
    if (s >= 0) memcpy(student->params + t->offset, kx_dec_param(teacher, (size_t)s), t->size * sizeof(float));
  }
  if (rc) kx_dec_free(student);
  return rc;
}
