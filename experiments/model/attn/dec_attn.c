#include "experiments/model/dec_attn.h"

#include <stdint.h>
#include <string.h>

/* The linear kinds (dec_linear_attn.h). */
extern const kx_attn_kind kx_attn_performer, kx_attn_performer_prf, kx_attn_performer_redraw, kx_attn_pff,
    kx_attn_cosformer;
/* The gated kinds (dec_attn_gated.h; the DiJiang presets of
 * dec_dijiang_form.h) and causal Linformer. */
extern const kx_attn_kind kx_attn_retnet, kx_attn_dijiang, kx_attn_dijiang_code, kx_attn_dijiang_released,
    kx_attn_linformer;

/* One line per attention kind. */
static const kx_attn_kind *const kinds[] = {
    &kx_attn_softmax,
    &kx_attn_performer,
    &kx_attn_performer_prf,
    &kx_attn_performer_redraw,
    &kx_attn_pff,
    &kx_attn_cosformer,
    &kx_attn_retnet,
    &kx_attn_dijiang,
    &kx_attn_dijiang_code,
    &kx_attn_dijiang_released,
    &kx_attn_linformer,
    &kx_attn_hedgehog,
    NULL,
};

const kx_attn_kind *kx_dec_attn_find(const char *name) {
  for (size_t i = 0; kinds[i]; i++)
    if (!strcmp(kinds[i]->name, name)) return kinds[i];
  return NULL;
}

/* The names of the kinds (only those with transfer tensors) into buf once. */
static const char *names(char *buf, size_t cap, int transfer_only) {
  if (!buf[0])
    for (size_t i = 0; kinds[i]; i++) {
      if (transfer_only && !(kinds[i]->transfer_tensors && kinds[i]->transfer_tensors[0])) continue;
      if (buf[0]) strncat(buf, ", ", cap - strlen(buf) - 1);
      strncat(buf, kinds[i]->name, cap - strlen(buf) - 1);
    }
  return buf;
}

const char *kx_dec_attn_names(void) {
  static char buf[256];
  return names(buf, sizeof buf, 0);
}

const char *kx_dec_attn_transfer_names(void) {
  static char buf[256];
  return names(buf, sizeof buf, 1);
}

size_t kx_attn_any_position(const kx_dec_config *cfg) {
  (void)cfg;
  return SIZE_MAX;
}

size_t kx_attn_ctx_positions(const kx_dec_config *cfg) { return cfg->ctx; }
