#include "experiments/model/dec_attn_eval.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/kx_error.h"
#include "experiments/model/dec_data.h"

static kx_attn_ctx ctx_of(const kx_decoder *m) {
  kx_attn_ctx c = {&m->cfg, m->B, m->T, m->rope_cos, m->rope_sin, 0, 0, NULL};
  return c;
}

static int has_weights(const kx_decoder *m) {
  const kx_attn_kind *k = KX_DEC_KIND_LACKING(m, attn_weights);
  return k ? kx_fail(KX_EINVAL, "attention kind '%s' does not expose its attention weights", k->name) : 0;
}

/* Sum over rows of KL(A_i || S_i) of two (T,T) causal maps. */
static double rows_kl(const float *A, const float *S, size_t T) {
  double sum = 0.0;
  for (size_t i = 0; i < T; i++)
    for (size_t j = 0; j <= i; j++) {
      double a = A[i * T + j], s = S[i * T + j];
      if (a > 0) sum += a * (log(a) - log(s > KX_ATTN_KL_FLOOR ? s : KX_ATTN_KL_FLOOR));
    }
  return sum;
}

int kx_dec_attn_kl(kx_decoder *teacher, kx_decoder *student, const int *stream, size_t n, size_t windows,
                   double *kl) {
  const kx_dec_config *tc = &teacher->cfg, *sc = &student->cfg;
  if (tc->layers != sc->layers || tc->heads != sc->heads || tc->ctx != sc->ctx)
    return kx_fail(KX_EINVAL, "teacher and student differ in layers, heads or context");
  int rc = has_weights(teacher);
  if (!rc) rc = has_weights(student);
  if (rc) return rc;
  size_t T = tc->ctx, L = tc->layers, H = tc->heads;
  if (n < T) return kx_fail(KX_EINVAL, "the text has %zu characters, fewer than the context %zu", n, T);
  if (windows == 0) windows = 1;
  float *A = kx_malloc(T * T * sizeof(float)), *S = kx_malloc(T * T * sizeof(float));
  if (!A || !S) rc = KX_ENOMEM;
  double sum = 0.0;
  for (size_t w = 0; !rc && w < windows; w++) {
    size_t start = windows > 1 ? (size_t)((double)w * (double)(n - T) / (double)(windows - 1)) : 0;
    start = kx_dec_window_start(stream, start, tc->token_ids);
    rc = kx_dec_forward(teacher, stream + start, NULL, 1, T, NULL);
    if (!rc) rc = kx_dec_forward(student, stream + start, NULL, 1, T, NULL);
    kx_attn_ctx ct = ctx_of(teacher), cs = ctx_of(student);
    for (size_t l = 0; !rc && l < L; l++)
      for (size_t h = 0; h < H; h++) {
        teacher->li[l].attn->attn_weights(&ct, kx_dec_attn_p(teacher, l), teacher->blk[l].attn_acts, 0, h, A);
        student->li[l].attn->attn_weights(&cs, kx_dec_attn_p(student, l), student->blk[l].attn_acts, 0, h, S);
        sum += rows_kl(A, S, T);
      }
  }
  if (!rc && !isfinite(sum))
    rc = kx_fail(KX_ENUM, "the attention KL is not finite (%g): a model's parameters are beyond what float32 "
                 "arithmetic can carry on this text", sum);
  if (!rc) *kl = sum / (double)(windows * L * H * T);
  free(A);
  free(S);
  return rc;
}

int kx_dec_attn_map(kx_decoder *m, const int *tokens, size_t T, size_t layer, float *map) {
  int rc = has_weights(m);
  if (rc) return rc;
  if (layer >= m->cfg.layers)
    return kx_fail(KX_EINVAL, "layer %zu does not exist (the model has %zu)", layer, m->cfg.layers);
  if ((rc = kx_dec_forward(m, tokens, NULL, 1, T, NULL))) return rc;
  float *A = kx_malloc(T * T * sizeof(float));
  if (!A) return KX_ENOMEM;
  kx_attn_ctx c = ctx_of(m);
  size_t H = m->cfg.heads;
  memset(map, 0, T * T * sizeof(float));
  for (size_t h = 0; h < H; h++) {
    m->li[layer].attn->attn_weights(&c, kx_dec_attn_p(m, layer), m->blk[layer].attn_acts, 0, h, A);
    for (size_t k = 0; k < T * T; k++) map[k] += A[k] / (float)H;
  }
  free(A);
  for (size_t k = 0; k < T * T; k++)
    if (!isfinite(map[k]))
      return kx_fail(KX_ENUM, "the attention map of block %zu is not finite (%g): the model's parameters are "
                     "beyond what float32 arithmetic can carry on this text", layer, (double)map[k]);
  return 0;
}
