/* The switches of the DiJiang attention kinds (docs/dijiang-factors.md).
 *
 * The paper's DiJiang (Eq. 12 features, Eq. 4 normalisation) and the
 * authors' released code differ in nine separate choices, the factors.  A
 * form is one value of each: bit f of a kx_dijiang_form set means factor f
 * takes the released code's value, clear the paper's.  One implementation
 * (experiments/model/attn/dec_attn_dijiang.c) computes every form; the
 * kinds `dijiang`, `dijiang-code` and `dijiang-released` are its presets:
 *
 *   factor       paper (bit clear)                 released code (bit set)
 *   features     exp(l - c) / sqrt(d)              softmax over the d features
 *   scales       chi_d radii, stratified           signed normal Phi^-1(u)
 *   dct          C x (DCT-II)                      C^T x (DCT-III)
 *   weights      D, learnable per head             none
 *   square       l -= |x~|^2 / 2                   not subtracted
 *   prescale     x~ = x / d^(1/4)                  x~ = x
 *   normaliser   denominator + eps                 none (GroupNorm only)
 *   groupnorm    per head, no affine               d groups over C, affine
 *   gate         gate_w ~ N(0, 2/(5C))             xavier_uniform, gain 2^-2.5
 *
 *   dijiang            every factor the paper's (form 0)
 *   dijiang-code       features..normaliser released, groupnorm and gate as
 *                      the paper form's body (the kind Table 2 has measured)
 *   dijiang-released   every factor released
 *
 * A model stores the flips of its kind's preset (kx_dec_config.dijiang_flips,
 * 0: the preset itself), so every place that names a kind gets its preset.
 * Labels and attention specs write the flips after the kind, one token
 * each, in factor order: "dijiang+softmax+noden", "dijiang-released+exp". */
#ifndef KX_DEC_DIJIANG_FORM_H
#define KX_DEC_DIJIANG_FORM_H

#include <stddef.h>
#include <stdint.h>

enum {
  KX_DJ_FEATURES,
  KX_DJ_SCALES,
  KX_DJ_DCT,
  KX_DJ_WEIGHTS,
  KX_DJ_SQUARE,
  KX_DJ_PRESCALE,
  KX_DJ_NORMALISER,
  KX_DJ_GROUPNORM,
  KX_DJ_GATE,
  KX_DJ_FACTORS
};
#define KX_DJ_ALL ((1u << KX_DJ_FACTORS) - 1)

typedef uint32_t kx_dijiang_form;

/* 1 if factor f of `form` has the released code's value. */
static inline int kx_dj_released(kx_dijiang_form form, int f) { return (int)(form >> f & 1); }

typedef struct {
  const char *name;     /* "features" */
  const char *value[2]; /* its tokens: the paper's, the released code's ("exp", "softmax") */
  const char *meaning[2];
} kx_dijiang_factor;

extern const kx_dijiang_factor kx_dijiang_factors[KX_DJ_FACTORS];

typedef struct {
  const char *kind;
  kx_dijiang_form form;
  /* 1: the scales are folded into one frozen matrix feat_w = diag(t) M (as
   * the released code stores its projection); 0: a frozen vector feat_t
   * and the DCT applied by the program.  The two compute the same map up to
   * float rounding; attention transfer trains t (vector) or all of W. */
  int matrix;
} kx_dijiang_preset;

/* The preset of attention kind `kind`, NULL if it is not a DiJiang kind. */
const kx_dijiang_preset *kx_dijiang_preset_of(const char *kind);

/* The token's factor and value (0 paper, 1 released); -1 if `token` is
 * none of the tokens. */
int kx_dijiang_token(const char *token, int *value);

/* Applies a comma-separated list of tokens ("softmax,noden") to `base`:
 * each sets its factor's value (restating the base's value is allowed).
 * Refuses an unknown token, an empty item and a factor given twice, with a
 * message naming `what` and listing the tokens. */
int kx_dijiang_form_apply(const char *list, const char *what, kx_dijiang_form base, kx_dijiang_form *out);

/* Every factor's token of `form`, separated by `sep` ("exp,chi,dct2,..."). */
void kx_dijiang_form_format(kx_dijiang_form form, const char *sep, char *buf, size_t cap);
/* Parses kx_dijiang_form_format's list with separator ',' (every factor
 * exactly once, in any order). */
int kx_dijiang_form_parse_full(const char *list, const char *what, kx_dijiang_form *out);

/* "+softmax+noden": the tokens of the factors `flips` changes, values of
 * preset ^ flips, in factor order ("" for no flip). */
void kx_dijiang_flips_suffix(kx_dijiang_form preset, uint32_t flips, char *buf, size_t cap);

#endif
