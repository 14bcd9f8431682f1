#include "experiments/model/dec_dijiang_form.h"

#include <stdio.h>
#include <string.h>

#include "core/kx_cli.h"
#include "core/kx_error.h"

const kx_dijiang_factor kx_dijiang_factors[KX_DJ_FACTORS] = {
    [KX_DJ_FEATURES] = {"features", {"exp", "softmax"}, {"exp(l - c)/sqrt(d)", "softmax over the d features"}},
    [KX_DJ_SCALES] = {"scales", {"chi", "normal"}, {"chi_d radii, stratified", "signed normal Phi^-1(u)"}},
    [KX_DJ_DCT] = {"dct", {"dct2", "dct3"}, {"C x (DCT-II)", "C^T x (DCT-III)"}},
    [KX_DJ_WEIGHTS] = {"weights", {"D", "noD"}, {"learnable D per head", "no D"}},
    [KX_DJ_SQUARE] = {"square", {"sq", "nosq"}, {"l -= |x~|^2/2", "no |x~|^2 term"}},
    [KX_DJ_PRESCALE] = {"prescale", {"prescale", "noprescale"}, {"x~ = x/d^(1/4)", "x~ = x"}},
    [KX_DJ_NORMALISER] = {"normaliser", {"den", "noden"}, {"denominator + eps", "no denominator"}},
    [KX_DJ_GROUPNORM] = {"groupnorm", {"gnhead", "gnd"}, {"GroupNorm per head, no affine",
                                                          "GroupNorm of d groups over C channels, affine"}},
    [KX_DJ_GATE] = {"gate", {"gatenormal", "gatexavier"}, {"gate_w ~ N(0, 2/(5C))", "gate_w xavier, gain 2^-2.5"}},
};

#define CODE_FORM ((1u << KX_DJ_GROUPNORM) - 1)

static const kx_dijiang_preset presets[] = {
    {"dijiang", 0, 0},
    {"dijiang-code", CODE_FORM, 1},
    {"dijiang-released", KX_DJ_ALL, 1},
};

const kx_dijiang_preset *kx_dijiang_preset_of(const char *kind) {
  for (size_t i = 0; i < sizeof presets / sizeof presets[0]; i++)
    if (!strcmp(presets[i].kind, kind)) return &presets[i];
  return NULL;
}

int kx_dijiang_token(const char *token, int *value) {
  for (int f = 0; f < KX_DJ_FACTORS; f++)
    for (int v = 0; v < 2; v++)
      if (!strcmp(token, kx_dijiang_factors[f].value[v])) {
        *value = v;
        return f;
      }
  return -1;
}

/* "features exp|softmax, scales chi|normal, ..." for messages. */
static void token_list(char *buf, size_t cap) {
  size_t n = 0;
  buf[0] = '\0';
  for (int f = 0; f < KX_DJ_FACTORS && n < cap; f++) {
    const kx_dijiang_factor *k = &kx_dijiang_factors[f];
    int w = snprintf(buf + n, cap - n, "%s%s %s|%s", f ? ", " : "", k->name, k->value[0], k->value[1]);
    if (w < 0) break;
    n += (size_t)w;
  }
}

/* The tokens of `list` into `out` from `base`; *seen gets the factors named. */
static int apply(const char *list, const char *what, kx_dijiang_form base, kx_dijiang_form *out, uint32_t *seen) {
  char **items = NULL, known[512];
  size_t n = 0;
  kx_dijiang_form form = base;
  *seen = 0;
  int rc = kx_split_list(list, what, &items, &n);
  for (size_t i = 0; !rc && i < n; i++) {
    int v, f = kx_dijiang_token(items[i], &v);
    if (f < 0) {
      token_list(known, sizeof known);
      rc = kx_fail(KX_EINVAL, "%s: '%s' is not a DiJiang form switch (one value per factor: %s)", what, items[i],
                   known);
    } else if (*seen >> f & 1) {
      rc = kx_fail(KX_EINVAL, "%s: factor %s is given twice ('%s')", what, kx_dijiang_factors[f].name, items[i]);
    } else {
      *seen |= 1u << f;
      form = v ? form | 1u << f : form & ~(1u << f);
    }
  }
  kx_free_strings(items, n);
  if (!rc) *out = form;
  return rc;
}

int kx_dijiang_form_apply(const char *list, const char *what, kx_dijiang_form base, kx_dijiang_form *out) {
  uint32_t seen;
  return apply(list, what, base, out, &seen);
}

int kx_dijiang_form_parse_full(const char *list, const char *what, kx_dijiang_form *out) {
  uint32_t seen;
  int rc = apply(list, what, 0, out, &seen);
  for (int f = 0; !rc && f < KX_DJ_FACTORS; f++)
    if (!(seen >> f & 1))
      rc = kx_fail(KX_EINVAL, "%s: '%s' gives no value of factor %s (%s or %s)", what, list,
                   kx_dijiang_factors[f].name, kx_dijiang_factors[f].value[0], kx_dijiang_factors[f].value[1]);
  return rc;
}

void kx_dijiang_form_format(kx_dijiang_form form, const char *sep, char *buf, size_t cap) {
  size_t n = 0;
  if (cap) buf[0] = '\0';
  for (int f = 0; f < KX_DJ_FACTORS && n < cap; f++) {
    int w = snprintf(buf + n, cap - n, "%s%s", f ? sep : "", kx_dijiang_factors[f].value[kx_dj_released(form, f)]);
    if (w < 0) break;
    n += (size_t)w;
  }
}

void kx_dijiang_flips_suffix(kx_dijiang_form preset, uint32_t flips, char *buf, size_t cap) {
  size_t n = 0;
  kx_dijiang_form form = preset ^ flips;
  if (cap) buf[0] = '\0';
  for (int f = 0; f < KX_DJ_FACTORS && n < cap; f++) {
    if (!(flips >> f & 1)) continue;
    int w = snprintf(buf + n, cap - n, "+%s", kx_dijiang_factors[f].value[kx_dj_released(form, f)]);
    if (w < 0) break;
    n += (size_t)w;
  }
}
