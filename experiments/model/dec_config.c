#include "experiments/model/dec_config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/kx_cli.h"
#include "core/kx_error.h"
#include "experiments/model/dec_attn.h"
#include "experiments/model/dec_dijiang_form.h"

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
  if (c->arch != KX_ARCH_PYTHIA && c->arch != KX_ARCH_LLAMA)
    return kx_fail(KX_EINVAL, "unknown architecture %u (0 pythia, 1 llama)", (unsigned)c->arch);
  if (!kx_dec_llama(c) && ((c->kv_heads && c->kv_heads != c->heads) || (c->ffn_hidden && c->ffn_hidden != 4 * c->width) || c->tied))
    return kx_fail(KX_EINVAL, "key/value heads, a feed-forward width other than 4C and a shared classifier belong to "
                   "the llama architecture");
  if (c->kv_heads > c->heads || (c->kv_heads && c->heads % c->kv_heads))
    return kx_fail(KX_EINVAL, "key/value heads (%zu) must divide the heads (%zu)", c->kv_heads, c->heads);
  if (c->ffn_hidden > 1u << 20)
    return kx_fail(KX_EINVAL, "feed-forward width must be in [1, 1048576], got %zu", c->ffn_hidden);
  int rc = kx_dec_config_check_window(c);
  if (rc) return rc;
  if (c->dijiang_flips & ~KX_DJ_ALL)
    return kx_fail(KX_EINVAL, "DiJiang form flips 0x%x name factors beyond the %d known", (unsigned)c->dijiang_flips,
                   KX_DJ_FACTORS);
  if (c->dijiang_flips && !kx_dijiang_preset_of(c->attn_kind))
    return kx_fail(KX_EINVAL, "attention '%s' has no DiJiang form switches (only dijiang, dijiang-code and "
                   "dijiang-released do)", c->attn_kind);
  if (c->softmax_layers) {
    char kept[256];
    kx_dec_format_layers(c->softmax_layers, kept, sizeof kept);
    if (c->softmax_layers & ~kx_dec_all_layers(c->layers))
      return kx_fail(KX_EINVAL, "softmax layers %s: the model has only %zu layers (0 to %zu)", kept, c->layers,
                     c->layers - 1);
    if (!strcmp(c->attn_kind, "softmax"))
      return kx_fail(KX_EINVAL, "softmax layers %s in a softmax model: a layer hybrid needs another attention kind",
                     kept);
    if (c->softmax_layers == kx_dec_all_layers(c->layers))
      return kx_fail(KX_EINVAL,
                     "softmax layers %s are every layer of the model: nothing would have attention '%s' (keep "
                     "fewer layers, or use the softmax model itself)",
                     kept, c->attn_kind);
  }
  return 0;
}

int kx_dec_config_check_window(const kx_dec_config *c) {
  const kx_attn_kind *k = kx_dec_attn_find(c->attn_kind);
  if (!k) {
    return kx_fail(KX_EINVAL, "unknown attention kind '%s' (known: %s)", c->attn_kind, kx_dec_attn_names());
  }
  /* a DiJiang form takes the window when it has the denominator */
  const kx_dijiang_preset *pr = kx_dijiang_preset_of(c->attn_kind);
  if (c->window && pr && kx_dj_released(pr->form ^ c->dijiang_flips, KX_DJ_NORMALISER)) {
    char label[KX_DEC_LABEL_MAX];
    kx_dec_config bare = *c;
    bare.window = 0, bare.softmax_layers = 0;
    kx_dec_config_label(&bare, label, sizeof label);
    return kx_fail(KX_EINVAL,
                   "attention '%s' cannot take a sliding window (--window %zu): its linear attention has no "
                   "normaliser (noden: the GroupNorm takes its place), so the window's softmax weights and its "
                   "scores have no common denominator to share; use a DiJiang form with the denominator (den)",
                   label, c->window);
  }
  if (c->window && !pr && !k->window)
    return kx_fail(KX_EINVAL, "attention '%s' cannot take a sliding window (--window %zu): %s", k->name, c->window,
                   k->no_window ? k->no_window : "it does not implement the hybrid");
  if (c->window > c->ctx)
    return kx_fail(KX_EINVAL,
                   "--window %zu is beyond the context %zu; give at most %zu (a window of the whole context is "
                   "softmax attention)",
                   c->window, c->ctx, c->ctx);
  return 0;
}

int kx_dec_parse_window(const char *s, size_t *window) {
  char *end;
  unsigned long long w = s && *s >= '0' && *s <= '9' ? strtoull(s, &end, 10) : 0;
  if (!s || *s < '0' || *s > '9' || *end || w == 0 || w > 8192)
    return kx_fail(KX_EINVAL,
                   "--window '%s': give the window's length in positions, a whole number in [1, 8192] (at most "
                   "the context); a window of 0 is the kind alone: omit --window",
                   s ? s : "");
  *window = (size_t)w;
  return 0;
}

int kx_dec_config_set_attention(kx_dec_config *c, const char *spec) {
  size_t len = strcspn(spec, "+");
  char name[KX_DEC_NAME_MAX];
  snprintf(name, sizeof name, "%.*s", (int)(len < sizeof name ? len : sizeof name - 1), spec);
  if (len >= sizeof name || !kx_dec_attn_find(name))
    return kx_fail(KX_EINVAL, "unknown attention kind '%.*s' (known: %s)", (int)len, spec, kx_dec_attn_names());
  kx_dec_config t = *c;
  snprintf(t.attn_kind, sizeof t.attn_kind, "%s", name);
  t.dijiang_flips = 0;
  t.window = 0;
  /* "+a+b+w16": the window's token, and the others as "a,b" for the switches' parser */
  char list[256] = "", what[320];
  snprintf(what, sizeof what, "'%s'", spec);
  for (const char *p = spec + len; *p == '+';) {
    size_t n = strcspn(p + 1, "+");
    if (p[1] == 'w') {
      char *end;
      const char *digits = p + 2;
      unsigned long long w = *digits >= '0' && *digits <= '9' ? strtoull(digits, &end, 10) : 0;
      if (*digits < '0' || *digits > '9' || end != p + 1 + n || w == 0 || w > 1u << 20)
        return kx_fail(KX_EINVAL,
                       "'%s': a sliding window is written KIND+wN with a whole number N >= 1 of positions (e.g. "
                       "dijiang+w16); a window of 0 is the kind alone: write KIND",
                       spec);
      t.window = (size_t)w;
    } else {
      if (strlen(list) + n + 2 > sizeof list) return kx_fail(KX_EINVAL, "%s: too many switches", what);
      snprintf(list + strlen(list), sizeof list - strlen(list), "%s%.*s", list[0] ? "," : "", (int)n, p + 1);
    }
    p += 1 + n;
  }
  if (spec[len] && spec[strlen(spec) - 1] == '+') return kx_fail(KX_EINVAL, "%s: an empty item after '+'", what);
  if (list[0]) {
    int rc = kx_dec_config_set_form(&t, list, what);
    if (rc) return rc;
  }
  *c = t;
  return 0;
}

int kx_dec_config_set_form(kx_dec_config *c, const char *list, const char *what) {
  const kx_dijiang_preset *pr = kx_dijiang_preset_of(c->attn_kind);
  if (!pr)
    return kx_fail(KX_EINVAL, "%s: attention '%s' has no DiJiang form switches (only dijiang, dijiang-code and "
                   "dijiang-released do)", what, c->attn_kind);
  kx_dijiang_form form;
  int rc = kx_dijiang_form_apply(list, what, pr->form ^ c->dijiang_flips, &form);
  if (!rc) c->dijiang_flips = form ^ pr->form;
  return rc;
}

const char *kx_dec_config_layer_kind(const kx_dec_config *c, size_t layer) {
  return layer < 64 && (c->softmax_layers >> layer & 1) ? "softmax" : c->attn_kind;
}

uint64_t kx_dec_all_layers(size_t layers) { return layers >= 64 ? ~(uint64_t)0 : ((uint64_t)1 << layers) - 1; }

int kx_dec_parse_layers(const char *list, const char *what, size_t layers, uint64_t *mask) {
  char **items = NULL;
  size_t n = 0;
  int rc = kx_split_list(list, what, &items, &n);
  uint64_t m = 0;
  for (size_t i = 0; !rc && i < n; i++) {
    size_t l;
    if (kx_parse_size(items[i], what, 0, SIZE_MAX, &l))
      rc = kx_fail(KX_EINVAL, "%s: '%s' is not a layer index (a whole number from 0 to %zu)", what, items[i],
                   layers - 1);
    else if (l >= layers)
      rc = kx_fail(KX_EINVAL, "%s: layer %zu does not exist; the model has %zu layers (0 to %zu)", what, l, layers,
                   layers - 1);
    else if (m >> l & 1)
      rc = kx_fail(KX_EINVAL, "%s: layer %zu is listed twice", what, l);
    else
      m |= (uint64_t)1 << l;
  }
  kx_free_strings(items, n);
  if (!rc) *mask = m;
  return rc;
}

static void join_layers(uint64_t mask, const char *sep, char *buf, size_t cap) {
  size_t len = 0;
  if (cap) buf[0] = '\0';
  for (size_t l = 0; l < 64; l++) {
    if (!(mask >> l & 1)) continue;
    int w = snprintf(buf + len, len < cap ? cap - len : 0, "%s%zu", len ? sep : "", l);
    if (w < 0 || len + (size_t)w >= cap) break;
    len += (size_t)w;
  }
}

void kx_dec_format_layers(uint64_t mask, char *buf, size_t cap) { join_layers(mask, ",", buf, cap); }

void kx_dec_hybrid_suffix(uint64_t mask, char *buf, size_t cap) {
  char kept[256];
  join_layers(mask, ".", kept, sizeof kept);
  snprintf(buf, cap, "%s%s", mask ? "+sm" : "", kept);
}

void kx_dec_config_label(const kx_dec_config *c, char *buf, size_t cap) {
  char kept[256], window[32] = "", form[160] = "";
  const kx_dijiang_preset *pr = kx_dijiang_preset_of(c->attn_kind);
  kx_dec_hybrid_suffix(c->softmax_layers, kept, sizeof kept);
  if (pr) kx_dijiang_flips_suffix(pr->form, c->dijiang_flips, form, sizeof form);
  if (c->window) snprintf(window, sizeof window, "+w%zu", c->window);
  snprintf(buf, cap, "%s%s%s%s", c->attn_kind, form, window, kept);
}
