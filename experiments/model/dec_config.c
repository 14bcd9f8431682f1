#include "experiments/model/dec_config.h"

#include <string.h>

#include "core/kx_error.h"
#include "experiments/model/dec_attn.h"

void kx_dec_config_default(kx_dec_config *cfg) {
  memset(cfg, 0, sizeof *cfg);
  cfg->ctx = 128;
  cfg->layers = 4;
  cfg->heads = 4;
  cfg->width = 256;
  cfg->rotary_dims = 16;
  cfg->rope_base = 10000.0;
  cfg->ln_eps = 1e-5;
  strcpy(cfg->attn_kind, "softmax");
}

int kx_dec_config_check(const kx_dec_config *c) {
  if (c->vocab < 2 || c->vocab > 1u << 20)
    return kx_fail(KX_EINVAL, "vocabulary size must be in [2, 1048576], got %zu", c->vocab);
  if (c->ctx < 2 || c->ctx > 8192) return kx_fail(KX_EINVAL, "--ctx must be in [2, 8192], got %zu", c->ctx);
  if (c->layers < 1 || c->layers > 64) return kx_fail(KX_EINVAL, "--layers must be in [1, 64], got %zu", c->layers);
  if (c->heads < 1 || c->heads > 256) return kx_fail(KX_EINVAL, "--heads must be in [1, 256], got %zu", c->heads);
  if (c->width < 2 || c->width > 16384) return kx_fail(KX_EINVAL, "--width must be in [2, 16384], got %zu", c->width);
  if (c->width % c->heads)
    return kx_fail(KX_EINVAL, "--width (%zu) must be a multiple of --heads (%zu)", c->width, c->heads);
  size_t d = c->width / c->heads;
  if (c->rotary_dims % 2 || c->rotary_dims > d)
    return kx_fail(KX_EINVAL, "rotary dimensions must be even and <= head dimension %zu, got %zu", d,
                   c->rotary_dims);
  if (!(c->rope_base > 1.0)) return kx_fail(KX_EINVAL, "rotary base must be > 1, got %g", c->rope_base);
  if (!(c->ln_eps > 0.0)) return kx_fail(KX_EINVAL, "LayerNorm epsilon must be > 0, got %g", c->ln_eps);
  if (!kx_dec_attn_find(c->attn_kind)) {
    return kx_fail(KX_EINVAL, "unknown attention kind '%s' (known: %s)", c->attn_kind, kx_dec_attn_names());
  }
  return 0;
}
