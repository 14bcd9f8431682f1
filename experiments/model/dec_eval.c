#include "experiments/model/dec_eval.h"

#include <stdlib.h>
#include <string.h>

#include "core/kx_error.h"
#include "experiments/model/dec_data.h"

/* Adds the summed loss and the number of correct arg-max predictions of the
 * last forward, (B,T) positions, to *loss and *correct. */
static void tally(const kx_decoder *m, size_t B, size_t T, const int *targets, double *loss, size_t *correct) {
  size_t V = m->cfg.vocab;
  for (size_t b = 0; b < B; b++)
    for (size_t t = 0; t < T; t++) {
      const float *z = kx_dec_logits(m, b, t);
      size_t best = 0;
      for (size_t v = 1; v < V; v++)
        if (z[v] > z[best]) best = v;
      *correct += (int)best == targets[b * T + t];
      *loss += m->losses[b * T + t];
    }
}

/* Start of window w of `windows` (kapprox train's spacing). */
static size_t spread_start(size_t w, size_t windows, size_t n, size_t T) {
  return windows > 1 ? (size_t)((double)w * (double)(n - T - 1) / (double)(windows - 1)) : 0;
}

/* Length of the window of token data at pos: up to the next BOS (its
 * prediction included), at most T, within the n - 1 predictions. */
static size_t story_window(const int *stream, size_t n, size_t pos, size_t T) {
  size_t end = pos + 1;
  while (end < n - 1 && end - pos < T && stream[end] != KX_DEC_BOS) end++;
  return end - pos;
}

int kx_dec_evaluate(kx_decoder *m, const int *stream, size_t n, size_t windows, size_t batch,
                    kx_dec_eval_result *r) {
  memset(r, 0, sizeof *r);
  size_t T = m->cfg.ctx;
  if (n < 2 || (windows && n < T + 1))
    return kx_fail(KX_EINVAL, "the validation text has %zu characters; it needs more than the context %zu", n, T);
  if (batch == 0) batch = 1;
  int *x = kx_malloc(batch * T * sizeof(int)), *y = kx_malloc(batch * T * sizeof(int));
  int rc = x && y ? 0 : KX_ENOMEM;
  double loss = 0.0;
  size_t correct = 0, preds = 0, pos = 0, w = 0;
  /* token data in consecutive windows: each story from its BOS, alone */
  int stories = !windows && m->cfg.token_ids;
  while (!rc && (windows ? w < windows : pos < n - 1)) {
    size_t B = 0, len = windows || n - 1 - pos >= T ? T : n - 1 - pos;
    if (stories) len = story_window(stream, n, pos, T);
    /* full windows together; the final partial one alone */
    do {
      size_t start = pos;
      if (windows) start = kx_dec_window_start(stream, spread_start(w++, windows, n, T), m->cfg.token_ids);
      memcpy(x + B * len, stream + start, len * sizeof(int));
      memcpy(y + B * len, stream + start + 1, len * sizeof(int));
      B++, pos += len;
    } while (!stories && len == T && B < batch && (windows ? w < windows : pos + T <= n - 1));
    rc = kx_dec_forward(m, x, y, B, len, NULL);
    if (!rc) tally(m, B, len, y, &loss, &correct);
    preds += B * len;
  }
  if (!rc) {
    r->predictions = preds;
    r->loss = loss / (double)preds;
    r->accuracy = (double)correct / (double)preds;
  }
  free(x);
  free(y);
  return rc;
}
