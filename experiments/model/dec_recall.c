#include "experiments/model/dec_recall.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/kx_error.h"
#include "core/kx_seed.h"

size_t kx_dec_recall_default_length(size_t ctx) {
  size_t most = (ctx + 1) / 2, n = ctx / 2 > 3 ? ctx / 2 - 1 : 2;
  if (most < 2) return 0;
  return n < most ? n : most;
}

void kx_dec_recall_string(size_t V, size_t n, uint64_t seed, size_t index, int *out) {
  uint64_t s = kx_seed_derive(seed, index);
  for (size_t k = 0; k < n; k++) out[k] = (int)(kx_seed_derive(s, k) % V);
}

/* Cross-entropy (nats) of `target` under logits z (V), in double, and
 * whether the arg-max (lowest id on ties) is the target. */
static double token_loss(const float *z, size_t V, int target, int *hit) {
  size_t best = 0;
  for (size_t v = 1; v < V; v++)
    if (z[v] > z[best]) best = v;
  double mx = z[best], sum = 0.0;
  for (size_t v = 0; v < V; v++) sum += exp((double)z[v] - mx);
  *hit = (int)best == target;
  return mx + log(sum) - (double)z[target];
}

int kx_dec_recall_run(kx_dec_recall_scorer score, void *user, size_t V, size_t ctx, const kx_dec_recall_opts *o,
                      kx_dec_recall_result *r) {
  memset(r, 0, sizeof *r);
  size_t n = o->length ? o->length : kx_dec_recall_default_length(ctx);
  size_t S = o->strings ? o->strings : KX_DEC_RECALL_STRINGS, batch = o->batch ? o->batch : 16;
  if (n < 2 || 2 * n - 1 > ctx)
    return kx_fail(KX_EINVAL,
                   "recall length %zu: a string of n characters and its copy take 2n - 1 input tokens, which must "
                   "fit the context %zu, and n >= 2 (so at most %zu here)",
                   n, ctx, (ctx + 1) / 2);
  size_t T = 2 * n - 1;
  if (batch > S) batch = S;
  int *x = kx_malloc(batch * T * sizeof(int));
  if (!x) return KX_ENOMEM;
  double loss[2] = {0, 0};
  size_t hits[2] = {0, 0};
  int rc = 0;
  for (size_t first = 0; !rc && first < S; first += batch) {
    size_t B = S - first < batch ? S - first : batch;
    for (size_t b = 0; b < B; b++) {
      int *seq = x + b * T;
      kx_dec_recall_string(V, n, o->seed, first + b, seq);
      memcpy(seq + n, seq, (n - 1) * sizeof(int));
    }
    const float *logits;
    if ((rc = score(user, x, B, T, &logits))) break;
    /* logits at position t predict token t + 1 of s s: s_k at t = k - 1
     * (first copy) and at t = n + k - 1 (second), k = 1 .. n - 1 */
    for (size_t b = 0; b < B; b++)
      for (int copy = 0; copy < 2; copy++)
        for (size_t k = 1; k < n; k++) {
          size_t t = (copy ? n : 0) + k - 1;
          int hit;
          loss[copy] += token_loss(logits + (b * T + t) * V, V, x[b * T + k], &hit);
          hits[copy] += (size_t)hit;
        }
  }
  free(x);
  if (rc) return rc;
  double P = (double)(S * (n - 1));
  r->length = n, r->strings = S, r->predictions = S * (n - 1);
  r->first_loss = loss[0] / P, r->loss = loss[1] / P;
  r->first_accuracy = (double)hits[0] / P, r->accuracy = (double)hits[1] / P;
  return 0;
}

static int decoder_logits(void *user, const int *tokens, size_t B, size_t T, const float **logits) {
  kx_decoder *m = user;
  int rc = kx_dec_forward(m, tokens, NULL, B, T, NULL);
  *logits = m->logits;
  return rc;
}

int kx_dec_recall(kx_decoder *m, const kx_dec_recall_opts *o, kx_dec_recall_result *r) {
  return kx_dec_recall_run(decoder_logits, m, m->cfg.vocab, m->cfg.ctx, o, r);
}
