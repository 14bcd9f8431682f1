#include "experiments/model/dec_sample.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/kx_error.h"
#include "core/kx_seed.h"

int kx_dec_pick(const float *logits, size_t V, double temperature, size_t top_k, double u) {
  size_t best = 0;
  for (size_t v = 1; v < V; v++)
    if (logits[v] > logits[best]) best = v;
  if (temperature <= 0.0) return (int)best;
  /* k-th largest logit as the cut (ties at the cut are all kept). */
  double cut = -INFINITY;
  if (top_k > 0 && top_k < V) {
    float *sorted = malloc(V * sizeof *sorted);
    if (!sorted) return (int)best;
    memcpy(sorted, logits, V * sizeof *sorted);
    for (size_t i = 0; i < top_k; i++) { /* partial selection sort: k is small */
      size_t mx = i;
      for (size_t j = i + 1; j < V; j++)
        if (sorted[j] > sorted[mx]) mx = j;
      float t = sorted[i];
      sorted[i] = sorted[mx];
      sorted[mx] = t;
    }
    cut = sorted[top_k - 1];
    free(sorted);
  }
  double total = 0.0, top = logits[best];
  for (size_t v = 0; v < V; v++)
    if (logits[v] >= cut) total += exp((logits[v] - top) / temperature);
  double target = u * total, acc = 0.0;
  size_t last = best;
  for (size_t v = 0; v < V; v++) {
    if (logits[v] < cut) continue;
    acc += exp((logits[v] - top) / temperature);
    last = v;
    if (acc > target) return (int)v;
  }
  return (int)last;
}

int kx_dec_logits_finite(const float *logits, size_t V, size_t i) {
  for (size_t v = 0; v < V; v++)
    if (!isfinite(logits[v]))
      return kx_fail(KX_ENUM, "the model's logits before generated character %zu are not finite (%g at token id "
                     "%zu): its parameters are beyond what float32 arithmetic can carry on this input", i + 1,
                     (double)logits[v], v);
  return 0;
}

int kx_dec_generate(kx_decoder *m, const int *prompt, size_t n, size_t length, double temperature, size_t top_k,
                    uint64_t seed, int *out) {
  if (n == 0) return kx_fail(KX_EINVAL, "the prompt must have at least one token");
  size_t ctx = m->cfg.ctx, total = n + length;
  int *seq = kx_malloc(total * sizeof(int));
  if (!seq) return KX_ENOMEM;
  memcpy(seq, prompt, n * sizeof(int));
  for (size_t i = 0; i < length; i++) {
    size_t len = n + i, T = len < ctx ? len : ctx;
    int rc = kx_dec_forward(m, seq + len - T, NULL, 1, T, NULL);
    if (rc) {
      free(seq);
      return rc;
    }
    double u = (double)(kx_seed_derive(seed, i) >> 11) * 0x1.0p-53;
    if ((rc = kx_dec_logits_finite(kx_dec_logits(m, 0, T - 1), m->cfg.vocab, i))) {
      free(seq);
      return rc;
    }
    seq[len] = kx_dec_pick(kx_dec_logits(m, 0, T - 1), m->cfg.vocab, temperature, top_k, u);
    out[i] = seq[len];
  }
  free(seq);
  return 0;
}

int kx_dec_extract_qk(kx_decoder *m, const int *tokens, size_t T, kx_qk_layer *layers, int *scaled) {
  const kx_attn_kind *lacking = KX_DEC_KIND_LACKING(m, qkv_view);
  if (lacking) return kx_fail(KX_EINVAL, "attention kind '%s' has no queries and keys to dump", lacking->name);
  int rc = kx_dec_forward(m, tokens, NULL, 1, T, NULL);
  if (!rc) rc = kx_dec_check_finite(m);
  if (rc) return rc;
  size_t H = m->cfg.heads;
  kx_attn_ctx ac = {&m->cfg, 1, T, m->rope_cos, m->rope_sin, 0, 0, NULL};
  memset(layers, 0, m->cfg.layers * sizeof *layers);
  /* One flag for the file: when a hybrid's kinds disagree, 1/sqrt(d) is
   * folded into the unscaled layers' queries so that q.k is every layer's
   * logit. */
  int any_scaled = 0;
  for (size_t l = 0; l < m->cfg.layers; l++) {
    const float *q, *k, *v;
    size_t dqk, dv;
    int s;
    m->li[l].attn->qkv_view(&ac, m->blk[l].attn_acts, &q, &k, &v, &dqk, &dv, &s);
    any_scaled |= s;
  }
  *scaled = any_scaled;
  for (size_t l = 0; l < m->cfg.layers; l++) {
    const float *q, *k, *v;
    size_t dqk, dv;
    int s;
    m->li[l].attn->qkv_view(&ac, m->blk[l].attn_acts, &q, &k, &v, &dqk, &dv, &s);
    double qscale = any_scaled && !s ? 1.0 / sqrt((double)dqk) : 1.0;
    kx_qk_layer *L = &layers[l];
    L->index = (int)l;
    L->heads = H, L->tokens = T, L->d = dqk, L->dv = v ? dv : 0;
    L->q = kx_malloc(H * T * dqk * sizeof(double));
    L->k = kx_malloc(H * T * dqk * sizeof(double));
    L->v = v ? kx_malloc(H * T * dv * sizeof(double)) : NULL;
    if (!L->q || !L->k || (v && !L->v)) {
      for (size_t i = 0; i <= l; i++) kx_qk_layer_free(&layers[i]);
      return KX_ENOMEM;
    }
    /* B = 1, so the views are (H, T, d) already. */
    for (size_t i = 0; i < H * T * dqk; i++) L->q[i] = q[i] * qscale, L->k[i] = k[i];
    if (v)
      for (size_t i = 0; i < H * T * dv; i++) L->v[i] = v[i];
    char what[48];
    snprintf(what, sizeof what, "block %zu's queries", l);
    int finite = kx_all_finite(L->q, H * T * dqk, what);
    snprintf(what, sizeof what, "block %zu's keys", l);
    finite = finite && kx_all_finite(L->k, H * T * dqk, what);
    snprintf(what, sizeof what, "block %zu's values", l);
    finite = finite && (!v || kx_all_finite(L->v, H * T * dv, what));
    if (!finite) {
      for (size_t i = 0; i <= l; i++) kx_qk_layer_free(&layers[i]);
      return KX_ENUM;
    }
  }
  return 0;
}
